import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./server-process.js";

const READY_TIMEOUT_MS = 10_000;

/** nginx is usually in /usr/sbin, which is not on an unprivileged PATH. */
export function findNginx(): string {
  for (const candidate of [process.env.NGINX_BIN, "/usr/sbin/nginx", "/usr/local/sbin/nginx", "nginx"]) {
    if (candidate === undefined || candidate === "") continue;
    const probe = spawnSync(candidate, ["-v"], { encoding: "utf8" });
    if (probe.error === undefined && probe.status === 0) return candidate;
  }
  throw new Error(
    "nginx is not installed (looked for $NGINX_BIN, /usr/sbin/nginx, /usr/local/sbin/nginx and nginx on PATH). " +
      "The distributed-mode test drives a real nginx: apt-get install -y nginx (CI's .ci/run must install it).",
  );
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.on("error", () => resolve(false));
    socket.on("connect", () => {
      socket.destroy();
      resolve(true);
    });
  });
}

/**
 * The same balancing policy as deploy/nginx.conf, with every path inside `dir` so nginx runs
 * unprivileged: round-robin over the API instances, an instance that fails once (refused,
 * reset, timeout, 502/503/429) is skipped for 2 s, and a failed request is tried on the next
 * instance once. Retrying POSTs is safe here: see docs/distributed.md ("Why nginx may retry a POST").
 */
export function nginxConfig(dir: string, listenPort: number, upstreamPorts: number[]): string {
  const servers = upstreamPorts
    .map((port) => `    server 127.0.0.1:${port} max_fails=1 fail_timeout=2s;`)
    .join("\n");
  // As root, nginx would switch its workers to "nobody", who cannot use the 0700 temp dir.
  const user = process.getuid?.() === 0 ? "user root;\n" : "";
  return `${user}worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;

events {
  worker_connections 1024;
}

http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/tmp/client_body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;

  client_max_body_size 32m;
  client_body_buffer_size 1m;

  upstream rag_api {
${servers}
    keepalive 16;
  }

  server {
    listen 127.0.0.1:${listenPort};

    location / {
      proxy_pass http://rag_api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_connect_timeout 2s;
      proxy_read_timeout 60s;
      proxy_next_upstream error timeout http_502 http_503 non_idempotent;
      proxy_next_upstream_tries 2;
      proxy_next_upstream_timeout 10s;
    }
  }
}
`;
}

/** A throwaway nginx in front of API instances on 127.0.0.1, unprivileged, in its own temp prefix. */
export class NginxTestServer {
  readonly port: number;
  readonly dir: string;
  private process: ChildProcess | null = null;
  private log = "";

  private constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(upstreamPorts: number[]): Promise<NginxTestServer> {
    return NginxTestServer.startWithConfig((dir, port) => nginxConfig(dir, port, upstreamPorts));
  }

  /** nginx with the config `render` writes for its temp prefix `dir` and listen port. */
  static async startWithConfig(render: (dir: string, port: number) => string): Promise<NginxTestServer> {
    const binary = findNginx();
    const dir = mkdtempSync(join(tmpdir(), "nginx-test-"));
    mkdirSync(join(dir, "tmp"), { recursive: true });
    mkdirSync(join(dir, "logs"), { recursive: true });
    const server = new NginxTestServer(await freePort(), dir);
    const conf = join(dir, "nginx.conf");
    writeFileSync(conf, render(dir, server.port));
    const child = spawn(binary, ["-p", dir, "-c", conf, "-e", join(dir, "error.log")], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    server.process = child;
    const append = (chunk: Buffer) => {
      server.log = (server.log + chunk.toString()).slice(-4000);
    };
    child.stdout?.on("data", append);
    child.stderr?.on("data", append);
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) break;
      if (await accepts(server.port)) return server;
      await new Promise((r) => setTimeout(r, 50));
    }
    await server.stop();
    throw new Error(`nginx did not start on port ${server.port}:\n${server.log}`);
  }

  /** Stops nginx (SIGTERM = fast shutdown of master and workers) and removes its directory. */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = null;
    if (child !== null && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    if (existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The installed nginx's version, e.g. [1, 22, 1]. */
export function nginxVersion(): [number, number, number] {
  const probe = spawnSync(findNginx(), ["-v"], { encoding: "utf8" });
  const match = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(`${probe.stderr}${probe.stdout}`);
  if (!match) throw new Error(`cannot read the nginx version from: ${probe.stderr}`);
  return [Number(match[1]), Number(match[2]), Number(match[3])];
}

/** `server ... resolve` in an upstream block: open-source nginx since 1.27.3. */
export function supportsUpstreamResolve(): boolean {
  const [major, minor, patch] = nginxVersion();
  return major > 1 || (major === 1 && (minor > 27 || (minor === 27 && patch >= 3)));
}

function replaceOnce(text: string, pattern: RegExp, replacement: string): string {
  if (!pattern.test(text)) throw new Error(`the config has no ${pattern}: update renderDeployConfig`);
  return text.replace(pattern, replacement);
}

/**
 * One of the deploy/ nginx configs, made runnable by an unprivileged test nginx without changing
 * its policy: paths go into `dir`, it listens on 127.0.0.1:`listenPort`, and each upstream's
 * `server host:port ...` lines become one line per loopback port in `upstreamPorts`, with the
 * same parameters. `resolve` is dropped when this nginx is older than 1.27.3 (the upstreams are
 * IP addresses here anyway). Fails if the file no longer has what it rewrites, so the test never
 * silently runs another config.
 */
export function renderDeployConfig(
  text: string,
  dir: string,
  listenPort: number,
  upstreamPorts: number[],
): string {
  let out = text;
  const user = process.getuid?.() === 0 ? "user root;\n" : "";
  out = replaceOnce(out, /^worker_processes .*;$/m, `${user}worker_processes 1;\ndaemon off;`);
  out = replaceOnce(out, /^pid .*;$/m, `pid ${dir}/nginx.pid;`);
  out = replaceOnce(out, /^error_log .*;$/m, `error_log ${dir}/error.log warn;`);
  out = replaceOnce(out, /^(\s*)access_log \/dev\/stdout;$/m, `$1access_log ${dir}/access.log;`);
  out = replaceOnce(out, /^(\s*)listen 8080;$/m, `$1listen 127.0.0.1:${listenPort};`);
  out = out.replace(/(\w+_temp_path) \/tmp\/nginx-([\w-]+);/g, `$1 ${dir}/tmp/$2;`);
  const resolve = supportsUpstreamResolve();
  out = out.replace(/upstream (\w+) \{([^}]*)\}/g, (_block, name: string, body: string) => {
    const lines = body.split("\n");
    const servers = lines.filter((line) => /^\s*server \S+:\d+/.test(line));
    const first = servers[0];
    if (first === undefined) throw new Error(`upstream ${name} has no server line`);
    const [, indent, params] = /^(\s*)server \S+:\d+(.*);/.exec(first) ?? [];
    const kept = resolve ? (params ?? "") : (params ?? "").replace(/ resolve\b/, "");
    const local = upstreamPorts.map((port) => `${indent}server 127.0.0.1:${port}${kept};`);
    const rest = lines.filter((line) => !servers.includes(line));
    const at = lines.indexOf(first);
    rest.splice(at, 0, ...local);
    return `upstream ${name} {${rest.join("\n")}}`;
  });
  return out;
}

/** `nginx -t` on the config `render` writes for a temp prefix; returns nginx's output, throws it on failure. */
export function nginxTest(render: (dir: string) => string): string {
  const dir = mkdtempSync(join(tmpdir(), "nginx-t-"));
  try {
    mkdirSync(join(dir, "tmp"), { recursive: true });
    const conf = join(dir, "nginx.conf");
    const configText = render(dir);
    writeFileSync(conf, configText);
    const probe = spawnSync(findNginx(), ["-t", "-p", dir, "-c", conf, "-e", join(dir, "error.log")], {
      encoding: "utf8",
    });
    const output = `${probe.stdout}${probe.stderr}`;
    if (probe.status !== 0) throw new Error(`nginx -t failed:\n${output}\n--- config\n${configText}`);
    return output;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
