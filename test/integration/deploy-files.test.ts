/**
 * The files in deploy/, checked without a Docker engine or a Kubernetes cluster: the compose file
 * is parsed and its Redis command run on a real redis-server (then checked for durability), the
 * Qdrant healthcheck command is run by bash against a stub, both nginx configs pass `nginx -t`,
 * and the KEDA ScaledObject validates against KEDA's own CRD schema (vendored, v2.20.2).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Ajv } from "ajv";
import { Redis } from "ioredis";
import { parse, parseAllDocuments } from "yaml";
import { envName, settingKeys } from "../../src/config/settings.js";
import { checkRedisDurability } from "../../src/queue/redis/redis-durability.js";
import { Metrics } from "../../src/server/metrics.js";
import { nginxTest, nginxVersion, renderDeployConfig, supportsUpstreamResolve } from "../helpers/nginx.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { RedisTestServer } from "../helpers/redis-server.js";

type Json = Record<string, unknown>;

/**
 * kubectl validates strictly by default (unknown fields are errors, not silently pruned): every
 * object schema that lists its properties refuses others, unless the CRD preserves unknown fields.
 */
function strictFields(schema: Json): Json {
  const out: Json = {};
  for (const [key, value] of Object.entries(schema)) {
    if (Array.isArray(value)) {
      out[key] = value.map((v) => (v !== null && typeof v === "object" ? strictFields(v as Json) : v));
    } else if (value !== null && typeof value === "object") {
      out[key] =
        key === "properties"
          ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, strictFields(v as Json)]))
          : strictFields(value as Json);
    } else out[key] = value;
  }
  if (
    out.properties &&
    out.additionalProperties === undefined &&
    !out["x-kubernetes-preserve-unknown-fields"]
  ) {
    out.additionalProperties = false;
  }
  return out;
}

const read = (path: string) => readFileSync(join(REPO_ROOT, path), "utf8");
const obj = (value: unknown): Json => {
  assert.ok(value !== null && typeof value === "object" && !Array.isArray(value), "an object");
  return value as Json;
};
/** `${VAR:-default}` as compose interpolates it with VAR unset. */
const interpolate = (value: string) => value.replace(/\$\{\w+:-([^}]*)\}/g, "$1");

// merge: compose files share settings through YAML anchors and `<<` merge keys.
const compose = obj(parse(read("deploy/docker-compose.yml"), { merge: true }));
const services = obj(compose.services);

describe("deploy/docker-compose.yml", () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const step of cleanup) await step();
  });

  it("runs Redis with AOF always and a memory ceiling that never evicts: checked on a real redis-server", async () => {
    const command = (obj(services.redis).command as string[]).map(String).map(interpolate);
    assert.equal(command[0], "redis-server");
    const args = command.slice(1);
    const option = (name: string) => {
      const at = args.indexOf(`--${name}`);
      assert.ok(at >= 0, `--${name} is set`);
      return args[at + 1];
    };
    assert.equal(option("appendonly"), "yes");
    assert.equal(option("appendfsync"), "always");
    assert.equal(option("maxmemory-policy"), "noeviction");
    assert.match(String(option("maxmemory")), /^\d+(b|kb|mb|gb)?$/i, "a maxmemory value");

    // The same arguments on a real Redis, through the check the server runs at start-up.
    const redis = await RedisTestServer.start(args);
    cleanup.push(() => redis.stop());
    const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    try {
      const report = await checkRedisDurability(client);
      assert.deepEqual(report.problems, []);
      assert.equal(report.verified, true);
      const maxmemory = (await client.config("GET", "maxmemory")) as string[];
      assert.ok(Number(maxmemory[1]) > 0, "maxmemory is in force");
    } finally {
      client.disconnect();
    }
  });

  it("gives Qdrant a healthcheck that works without curl, and dependants wait for it", async () => {
    const qdrant = obj(services.qdrant);
    const test = obj(qdrant.healthcheck).test as string[];
    assert.deepEqual(test.slice(0, 3), ["CMD", "bash", "-c"], "bash only: the image has no curl or wget");
    const script = String(test[3]);
    assert.match(script, /\/dev\/tcp\/127\.0\.0\.1\/6333/);

    const dependants = Object.entries(services).filter(([, service]) => {
      const dependsOn = obj(service).depends_on;
      return dependsOn !== undefined && "qdrant" in obj(dependsOn);
    });
    assert.ok(dependants.length >= 3, "the API instances and the workers depend on Qdrant");
    for (const [name, service] of dependants) {
      assert.equal(obj(obj(obj(service).depends_on).qdrant).condition, "service_healthy", name);
    }

    // Run the very command with bash against a stub on a free port: 200 → healthy, 503 → not.
    const requests: string[] = [];
    let status = 200;
    const stub: Server = createServer((request, response) => {
      requests.push(`${request.method} ${request.url} HTTP/${request.httpVersion}`);
      response.writeHead(status, { "content-type": "text/plain" }).end("stub");
    });
    stub.listen(0, "127.0.0.1");
    await once(stub, "listening");
    cleanup.push(() => new Promise((resolve) => stub.close(resolve)));
    const port = (stub.address() as AddressInfo).port;
    const healthcheck = async (targetPort: number) => {
      const child = spawn("bash", ["-c", script.replace("127.0.0.1/6333", `127.0.0.1/${targetPort}`)], {
        stdio: "ignore",
      });
      const [code] = (await once(child, "exit")) as [number | null];
      return code;
    };
    assert.equal(await healthcheck(port), 0, "healthy on 200");
    assert.deepEqual(requests, ["GET /readyz HTTP/1.0"]);
    status = 503;
    assert.notEqual(await healthcheck(port), 0, "unhealthy on 503");
    stub.close();
    await once(stub, "close");
    assert.notEqual(await healthcheck(port), 0, "unhealthy when nothing listens");
  });

  it("workers serve /health, /ready and /metrics on WORKER_PORT and expose it", () => {
    const worker = obj(services.worker);
    const environment = obj(worker.environment);
    assert.equal(environment.ROLE, "worker");
    const port = String(environment.WORKER_PORT);
    assert.match(port, /^\d+$/);
    assert.deepEqual((worker.expose as unknown[]).map(String), [port]);
    const test = (obj(worker.healthcheck).test as string[]).join(" ");
    assert.ok(test.includes(`127.0.0.1:${port}/ready`), "the healthcheck probes the worker's port");
    for (const name of Object.keys(environment)) {
      assert.ok(
        settingKeys().some((key) => envName(key) === name),
        `${name} is a setting of the server`,
      );
    }
  });

  it("runs an nginx that re-resolves upstream names (server ... resolve needs >= 1.27.3)", () => {
    const image = String(obj(services.nginx).image);
    const match = /^nginx:(\d+)\.(\d+)(?:\.(\d+))?/.exec(image);
    assert.ok(match, `a pinned nginx version (${image})`);
    const [major, minor] = [Number(match[1]), Number(match[2])];
    assert.ok(major > 1 || (major === 1 && minor >= 28), `${image} supports resolve in upstreams`);
  });
});

describe("deploy/ nginx configs", () => {
  for (const file of ["deploy/nginx.conf", "deploy/nginx-embedded.conf"]) {
    it(`${file}: re-resolves upstream names through Docker's DNS and passes nginx -t`, () => {
      const text = read(file);
      assert.match(text, /^\s*resolver 127\.0\.0\.11 valid=10s/m, "Docker's DNS, re-asked every 10 s");
      const servers = text.split("\n").filter((line) => /^\s*server \S+:\d+/.test(line));
      assert.ok(servers.length >= 2);
      for (const line of servers) assert.match(line, / resolve\b/, `re-resolved: ${line.trim()}`);
      assert.match(text, /^\s*zone \w+ \d+k;/m, "a shared zone, which resolve needs");
      // Upstream names become loopback ports here; `resolve` stays if this nginx has it.
      const output = nginxTest((dir) => renderDeployConfig(text, dir, 8080, [18001, 18002]));
      assert.match(output, /test is successful/);
      if (!supportsUpstreamResolve()) {
        const version = nginxVersion().join(".");
        process.stdout.write(`# nginx ${version} < 1.27.3: checked ${file} with 'resolve' removed\n`);
      }
    });
  }
});

describe("deploy/keda-scaledobject.yaml and deploy/k8s-worker-deployment.yaml", () => {
  const crd = obj(parse(read("test/fixtures/keda/keda.sh_scaledobjects.v2.20.2.yaml")));
  const version = (obj(crd.spec).versions as Json[]).find((v) => v.name === "v1alpha1");
  assert.ok(version, "the CRD serves keda.sh/v1alpha1");
  const schema = strictFields(obj(obj(version.schema).openAPIV3Schema));
  // Kubernetes' structural schemas are OpenAPI v3 subsets: x-kubernetes-* keywords and formats
  // such as int32 are not JSON Schema's, so they are ignored; CEL rules are checked by hand below.
  const validate = new Ajv({ strict: false, validateFormats: false, allErrors: true }).compile(schema);

  const scaledObjects = parseAllDocuments(read("deploy/keda-scaledobject.yaml")).map((d) => obj(d.toJSON()));
  const [deployment] = parseAllDocuments(read("deploy/k8s-worker-deployment.yaml")).map((d) =>
    obj(d.toJSON()),
  );
  assert.equal(scaledObjects.length, 1);
  const scaledObject = scaledObjects[0]!;

  it("the ScaledObject is valid against KEDA's CRD schema (which does reject a broken one)", () => {
    assert.equal(scaledObject.apiVersion, "keda.sh/v1alpha1");
    assert.equal(scaledObject.kind, "ScaledObject");
    assert.ok(validate(scaledObject), JSON.stringify(validate.errors, null, 2));
    const spec = obj(scaledObject.spec);
    // The CRD's CEL rule (x-kubernetes-validations), which Ajv cannot run.
    assert.ok(Number(spec.minReplicaCount ?? 0) <= Number(spec.maxReplicaCount ?? 100));

    const broken = structuredClone(scaledObject);
    const brokenSpec = obj(broken.spec);
    brokenSpec.minReplicaCount = "one";
    delete brokenSpec.triggers;
    assert.equal(validate(broken), false, "the schema is not a rubber stamp");
    const typo = structuredClone(scaledObject);
    obj(typo.spec).minReplicaCout = 1;
    assert.equal(validate(typo), false, "an unknown field is refused, as kubectl's strict validation does");
  });

  it("scales the worker Deployment on the queue-depth gauge the processes export", () => {
    const spec = obj(scaledObject.spec);
    const metadata = obj(deployment?.metadata);
    assert.equal(obj(spec.scaleTargetRef).name, metadata.name);
    assert.equal(obj(scaledObject.metadata).namespace, metadata.namespace);
    const triggers = spec.triggers as Json[];
    assert.equal(triggers.length, 1);
    const trigger = obj(triggers[0]);
    assert.equal(trigger.type, "prometheus");
    // The Prometheus scaler's metadata (kedacore/keda pkg/scalers/prometheus_scaler.go): required
    // serverAddress, query and threshold; numbers are strings that parse as floats.
    const meta = obj(trigger.metadata) as Record<string, string>;
    assert.match(String(meta.serverAddress), /^https?:\/\/[^/\s]+/);
    assert.ok(Number.parseFloat(String(meta.threshold)) > 0, "threshold > 0");
    assert.ok(!Number.isNaN(Number.parseFloat(String(meta.activationThreshold ?? "0"))));
    assert.ok(["true", "false", undefined].includes(meta.ignoreNullValues));
    const metric = /\b(rag_embed_\w+)\b/.exec(String(meta.query))?.[1];
    assert.equal(metric, "rag_embed_queue_pending_tokens");
    assert.match(String(meta.query), /^max\(/, "max over processes: each reports the whole shared queue");
    const exported = new Metrics().registry.getSingleMetric(metric);
    assert.ok(exported, `${metric} is exported by the server`);
  });

  it("the Deployment runs ROLE=worker with probes and metrics on WORKER_PORT and drains on SIGTERM", () => {
    assert.ok(deployment);
    assert.equal(deployment.apiVersion, "apps/v1");
    assert.equal(deployment.kind, "Deployment");
    const spec = obj(deployment.spec);
    const template = obj(spec.template);
    assert.deepEqual(obj(spec.selector).matchLabels, obj(template.metadata).labels, "selector matches");
    const podSpec = obj(template.spec);
    const [container] = podSpec.containers as Json[];
    assert.ok(container);
    const env = Object.fromEntries((container.env as Json[]).map((e) => [e.name, String(e.value)]));
    for (const name of Object.keys(env)) {
      assert.ok(
        settingKeys().some((key) => envName(key) === name),
        `${name} is a setting of the server`,
      );
    }
    assert.equal(env.ROLE, "worker");
    assert.equal(env.HOST, "0.0.0.0", "reachable by the kubelet and Prometheus");
    const [port] = container.ports as Json[];
    assert.equal(String(port?.containerPort), env.WORKER_PORT);
    const probe = (name: string) => obj(obj(container[name]).httpGet);
    assert.equal(probe("readinessProbe").path, "/ready");
    assert.equal(probe("livenessProbe").path, "/health");
    for (const name of ["readinessProbe", "livenessProbe", "startupProbe"]) {
      assert.equal(probe(name).port, port?.name, `${name} on the worker's port`);
    }
    assert.equal(obj(obj(template.metadata).annotations)["prometheus.io/port"], env.WORKER_PORT);
    assert.ok(
      Number(podSpec.terminationGracePeriodSeconds) > Number(env.SHUTDOWN_TIMEOUT_SECONDS),
      "the kubelet waits longer than the drain",
    );
  });
});
