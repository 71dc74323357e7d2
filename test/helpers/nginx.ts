import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./server-process.js";

const READY_TIMEOUT_MS = 10_000;

/** nginx is usually in /usr/sbin, which is not on an unprivileged PATH. */
function findNginx(): string {
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
    const binary = findNginx();
    const dir = mkdtempSync(join(tmpdir(), "nginx-test-"));
    mkdirSync(join(dir, "tmp"), { recursive: true });
    mkdirSync(join(dir, "logs"), { recursive: true });
    const server = new NginxTestServer(await freePort(), dir);
    const conf = join(dir, "nginx.conf");
    writeFileSync(conf, nginxConfig(dir, server.port, upstreamPorts));
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
