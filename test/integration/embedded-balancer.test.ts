/**
 * Stage 1 of scaling out: two independent embedded instances (each its own SQLite file) behind a
 * real nginx running deploy/nginx-embedded.conf (rendered for loopback, policy unchanged). A job
 * lives on the instance that accepted it; GET /v1/jobs/{id} through nginx must find it anyway.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { JobBody } from "../helpers/fixtures.js";
import { NginxTestServer, renderDeployConfig } from "../helpers/nginx.js";
import { REPO_ROOT, tempDir } from "../helpers/paths.js";
import { parsePrometheus } from "../helpers/prometheus.js";
import {
  getJson,
  postJson,
  type ServerProcess,
  startServerProcess,
  waitFor,
} from "../helpers/server-process.js";

const REQUESTS = 10;
const PER_REQUEST = 5;
const JOB_ROUTE = "/v1/jobs/:id";

describe("stage 1: independent embedded instances behind nginx (deploy/nginx-embedded.conf)", () => {
  const dataDirs = [tempDir("embedded-a"), tempDir("embedded-b")];
  const instances: ServerProcess[] = [];
  let nginx: NginxTestServer;
  const jobIds: string[] = [];

  /** Requests each instance answered, by route and status, from its own /metrics. */
  async function answered(route: string, status?: number): Promise<number[]> {
    return Promise.all(
      instances.map(async (instance) => {
        const { samples } = parsePrometheus(await (await fetch(`${instance.url}/metrics`)).text());
        return samples
          .filter(
            (s) =>
              s.name === "rag_embed_http_requests_total" &&
              s.labels.route === route &&
              (status === undefined || s.labels.status === String(status)),
          )
          .reduce((sum, s) => sum + s.value, 0);
      }),
    );
  }
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

  before(async () => {
    instances.push(
      ...(await Promise.all(
        dataDirs.map((dir) => startServerProcess({ DATA_DIR: dir, LOG_LEVEL: "debug" })),
      )),
    );
    const ports = instances.map((instance) => Number(new URL(instance.url).port));
    const conf = readFileSync(join(REPO_ROOT, "deploy/nginx-embedded.conf"), "utf8");
    nginx = await NginxTestServer.startWithConfig((dir, port) => renderDeployConfig(conf, dir, port, ports));
  });

  after(async () => {
    await nginx?.stop();
    await Promise.all(instances.map((instance) => instance.stop("SIGKILL")));
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  });

  it("every job POSTed through nginx can be read through nginx, wherever it was accepted", async () => {
    for (let r = 0; r < REQUESTS; r++) {
      const chunks = Array.from({ length: PER_REQUEST }, (_, i) => ({
        id: `r${r}-c${i}`,
        text: `request ${r} chunk ${i}: ${"dosage and administration ".repeat(1 + i)}`,
      }));
      const accepted = await postJson<{ job_id: string }>(`${nginx.url}/v1/collections/docs/chunks`, {
        chunks,
      });
      assert.equal(accepted.status, 202);
      jobIds.push(accepted.body.job_id);
    }
    // Round-robin spread the jobs: each instance holds some and does not know the others'.
    const owners = await Promise.all(
      jobIds.map(async (id) => {
        const found = await Promise.all(
          instances.map(async (instance) => (await fetch(`${instance.url}/v1/jobs/${id}`)).status),
        );
        assert.equal(found.filter((status) => status === 200).length, 1, `job ${id} lives on one instance`);
        return found.indexOf(200);
      }),
    );
    assert.ok(owners.includes(0) && owners.includes(1), `jobs on both instances (${owners.join(",")})`);

    const notFoundBefore = sum(await answered(JOB_ROUTE, 404));
    // Each job is read twice in a row, so whichever instance round-robin asks first, one of the
    // two reads starts at the instance that does not have the job.
    const done = new Set<string>();
    await waitFor(
      async () => {
        for (const id of jobIds) {
          for (let read = 0; read < 2; read++) {
            const { status, body } = await getJson<JobBody>(`${nginx.url}/v1/jobs/${id}`);
            assert.equal(status, 200, `GET /v1/jobs/${id} through nginx`);
            assert.equal(body.id, id);
            assert.equal(body.counts.total, PER_REQUEST);
            if (body.state === "done") done.add(id);
          }
        }
        return done.size === jobIds.length;
      },
      { what: "every job to be done, read through nginx" },
    );
    const notFoundAfter = sum(await answered(JOB_ROUTE, 404));
    assert.ok(
      notFoundAfter > notFoundBefore,
      "some reads were first refused by the wrong instance (404), then found",
    );
    for (const id of jobIds) {
      const { body } = await getJson<JobBody>(`${nginx.url}/v1/jobs/${id}`);
      assert.equal(body.counts.stored, PER_REQUEST, `job ${id} stored`);
    }
  });

  it("an unknown job is asked of every instance and ends as 404 job_not_found", async () => {
    const before = sum(await answered(JOB_ROUTE, 404));
    const response = await fetch(`${nginx.url}/v1/jobs/00000000-0000-4000-8000-000000000000`);
    assert.equal(response.status, 404);
    assert.equal(((await response.json()) as { error: { code: string } }).error.code, "job_not_found");
    assert.equal(sum(await answered(JOB_ROUTE, 404)) - before, instances.length, "each instance asked once");
  });

  it("a cancel (DELETE) finds the job's instance; other methods go to one instance only", async () => {
    for (const id of jobIds) {
      const response = await fetch(`${nginx.url}/v1/jobs/${id}`, { method: "DELETE" });
      assert.equal(response.status, 200, `DELETE ${id} reached the instance that knows the job`);
      assert.equal(
        ((await response.json()) as { cancelled: number }).cancelled,
        0,
        "finished: nothing to cancel",
      );
    }
    // nginx would retry PATCH on http_404 too if the config let it; the config must not (and the
    // instance answers a method the path does not have with 405, which nginx never retries).
    // Unrouted requests are not in /metrics; each instance's debug log has one line per request.
    const patches = () =>
      sum(instances.map((i) => i.logs.filter((e) => e.msg === "request" && e.method === "PATCH").length));
    const response = await fetch(`${nginx.url}/v1/jobs/${jobIds[0]}`, { method: "PATCH" });
    assert.equal(response.status, 405);
    assert.equal(((await response.json()) as { error: { code: string } }).error.code, "method_not_allowed");
    // A marker request to each instance, after the answer: once its log line is in, so is any
    // earlier line of that process (one stdout, in order).
    const marker = `/health?marker=${Date.now()}`;
    for (const instance of instances) {
      await fetch(`${instance.url}${marker}`);
      await waitFor(async () => instance.logs.some((e) => e.msg === "request" && e.url === marker), {
        what: "the marker request to be logged",
      });
    }
    assert.equal(patches(), 1, "one instance saw the PATCH");
  });

  it("search is per instance: through nginx it sees only the vectors of the instance it lands on", async () => {
    const counts = await Promise.all(
      instances.map(async (instance) => {
        const { body } = await postJson<{ hits: unknown[] }>(`${instance.url}/v1/collections/docs/search`, {
          query: "dosage",
          top_k: 1000,
        });
        return body.hits.length;
      }),
    );
    assert.equal(sum(counts), REQUESTS * PER_REQUEST, "the instances together hold every chunk");
    const { body } = await postJson<{ hits: unknown[] }>(`${nginx.url}/v1/collections/docs/search`, {
      query: "dosage",
      top_k: 1000,
    });
    assert.ok(counts.includes(body.hits.length), "one instance's hits, not the union");
    assert.ok(body.hits.length < REQUESTS * PER_REQUEST);
  });
});
