import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type Browser, chromium, type Page } from "playwright-core";
import { ProcessingError } from "../../src/domain/errors.js";
import type { HttpServer } from "../../src/main.js";
import type { VectorStore } from "../../src/vector-store/vector-store.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { postJson, waitFor } from "../helpers/server-process.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
// The machine's closed network makes Chromium stall on its background services without these.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    // Never skip silently: CI installs Debian's chromium (.ci/run); locally: apt-get install -y chromium.
    assert.fail(
      `Chromium not found at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM_PATH`,
    );
  }
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** The real store, but writes into the "poison" collection fail permanently while `state.poison`. */
function poisonable(inner: VectorStore, state: { poison: boolean }): VectorStore {
  return new Proxy(inner, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (property === "writeChunks") {
        return async (collection: string, writes: Parameters<VectorStore["writeChunks"]>[1]) => {
          if (state.poison && collection === "poison") {
            throw new ProcessingError("injected permanent store error", { retryable: false });
          }
          return target.writeChunks(collection, writes);
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

async function shown(page: Page, id: string): Promise<string> {
  return (await page.locator(`#${id}`).textContent()) ?? "";
}

describe("dashboard at / in headless Chromium", () => {
  let server: HttpServer;
  let browser: Browser;
  const store = { poison: false };

  before(async () => {
    browser = await launchChromium();
    // 60 chunks/s: 360 chunks take ~6 s to drain, long enough for a 1 s poll to see the queue.
    server = await startInProcess(
      { EMBEDDING_MAX_RATE: "60", RESERVE_MAX_CHUNKS: "16" },
      { decorateStore: (inner) => poisonable(inner, store) },
    );
  });
  after(async () => {
    await browser?.close();
    await server?.shutdown(5_000);
  });

  it("shows the queue depth rising and falling during an ingest, and the job's state", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const pageErrors: string[] = [];
    page.on("pageerror", (error) => pageErrors.push(String(error)));
    await page.goto(server.url);
    await page.locator("#connection", { hasText: "live" }).waitFor({ timeout: 15_000 });
    assert.equal(await shown(page, "queue-depth"), "0");

    const count = 360;
    const accepted = await postJson<{ job_id: string }>(`${server.url}/v1/collections/dash/chunks`, {
      chunks: Array.from({ length: count }, (_, i) => ({
        id: `d-${i}`,
        text: `Dashboard chunk ${i}: ${"store below 25 °C, away from light; ".repeat(1 + (i % 6))}`,
      })),
    });
    assert.equal(accepted.status, 202);

    // What the page shows, read from the DOM over time.
    const seen: number[] = [];
    const deadline = Date.now() + 60_000;
    for (;;) {
      seen.push(Number(await shown(page, "queue-depth")));
      const peak = Math.max(...seen);
      if (peak > 0 && seen.at(-1) === 0) break;
      assert.ok(Date.now() < deadline, `queue depth never rose and fell back to 0: ${seen.join(",")}`);
      await sleep(250);
    }
    const peak = Math.max(...seen);
    const peakAt = seen.indexOf(peak);
    assert.ok(peak > 0 && peak <= count, `peak ${peak}`);
    assert.equal(seen[0], 0, "zero before the ingest");
    assert.ok(
      seen.slice(peakAt).some((v) => v > 0 && v < peak),
      `seen draining: ${seen.join(",")}`,
    );
    await waitForJobDone(server.url, accepted.body.job_id);

    // The chart's own data: samples of 0, then above 0, then 0 again; the SVG has the polyline.
    const samples = await page.evaluate(() =>
      (
        globalThis as unknown as { ragDashboard: { samples: Array<{ depth: number; rate: number }> } }
      ).ragDashboard.samples.map((s) => ({ depth: s.depth, rate: s.rate })),
    );
    const firstUp = samples.findIndex((s) => s.depth > 0);
    assert.ok(firstUp > 0, "the chart has a zero sample before the rise");
    assert.equal(samples.at(-1)?.depth, 0, "and ends at zero");
    assert.ok(
      samples.some((s) => s.rate > 0),
      "throughput sampled above zero",
    );
    const points = await page.locator("#chart polyline.depth").getAttribute("points");
    assert.ok(points && points.split(" ").length === samples.length, "one chart point per sample");

    // Recent jobs list the job as done with all its chunks stored.
    const row = page.locator(`#jobs tr[data-job-id="${accepted.body.job_id}"]`);
    await row.and(page.locator('[data-state="done"]')).waitFor({ timeout: 10_000 });
    assert.match((await row.textContent()) ?? "", new RegExp(`dash.*done.*${count}`));

    mkdirSync(join(REPO_ROOT, "test-artifacts"), { recursive: true });
    const screenshot = join(REPO_ROOT, "test-artifacts", "dashboard.png");
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`dashboard screenshot: ${screenshot}`);
    assert.deepEqual(pageErrors, [], "no errors in the page");
    await page.close();
  });

  it("lists dead letters and replays them with the button", async () => {
    store.poison = true;
    const accepted = await postJson<{ job_id: string }>(`${server.url}/v1/collections/poison/chunks`, {
      chunks: [
        { id: "p-1", text: "this one fails to store" },
        { id: "p-2", text: "and so does this one" },
      ],
    });
    assert.equal(accepted.status, 202);
    await waitForJobDone(server.url, accepted.body.job_id);

    const page = await browser.newPage();
    await page.goto(server.url);
    await page.locator("#dead-letters tr", { hasText: "p-1" }).waitFor({ timeout: 10_000 });
    await waitFor(async () => (await shown(page, "dead-count")) === "2", { what: "dead letter count 2" });

    store.poison = false;
    await page.locator("#replay-all").click();
    await page.locator("#replay-result", { hasText: "replayed 2" }).waitFor({ timeout: 10_000 });
    const job = await waitForJobDone(server.url, accepted.body.job_id);
    assert.equal(job.counts.stored, 2, "replayed chunks are stored");
    await page.locator("#dead-letters", { hasText: "none" }).waitFor({ timeout: 10_000 });
    await page.close();
  });

  it("works with API_KEYS: asks for a key, keeps it in sessionStorage, sends it as Bearer", async () => {
    const secured = await startInProcess({ API_KEYS: "dash-key-1" });
    try {
      const page = await browser.newPage();
      await page.goto(secured.url);
      await page.locator("#auth").waitFor({ state: "visible", timeout: 10_000 });
      await page.fill("#auth-key", "dash-key-1");
      await page.click("#auth button[type=submit]");
      await page.locator("#connection", { hasText: "live" }).waitFor({ timeout: 10_000 });
      assert.equal(
        await page.evaluate(() =>
          (
            globalThis as unknown as { sessionStorage: { getItem(key: string): string | null } }
          ).sessionStorage.getItem("rag-embed-api-key"),
        ),
        "dash-key-1",
      );
      assert.equal(
        (await fetch(`${secured.url}/v1/status`)).status,
        401,
        "the API itself still needs the key",
      );
      assert.equal((await fetch(`${secured.url}/metrics`)).status, 401, "so do the metrics");
      for (const open of ["/", "/dashboard/dashboard.js", "/openapi.json", "/docs/json"]) {
        assert.equal((await fetch(`${secured.url}${open}`)).status, 200, `${open} is public`);
      }
      await page.close();
    } finally {
      await secured.shutdown(5_000);
    }
  });
});
