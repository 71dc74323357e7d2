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

async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(join(REPO_ROOT, "test-artifacts"), { recursive: true });
  const path = join(REPO_ROOT, "test-artifacts", name);
  await page.screenshot({ path, fullPage: true });
  console.log(`dashboard screenshot: ${path}`);
}

interface ChartSample {
  t: number;
  depth: number;
  rate: number;
  from: "server" | "page";
}

async function chartSamples(page: Page): Promise<ChartSample[]> {
  return page.evaluate(() =>
    (globalThis as unknown as { ragDashboard: { samples: ChartSample[] } }).ragDashboard.samples.map((s) => ({
      t: s.t,
      depth: s.depth,
      rate: s.rate,
      from: s.from,
    })),
  );
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

    await screenshot(page, "dashboard.png");
    assert.deepEqual(pageErrors, [], "no errors in the page");
    await page.close();
  });

  it("a page opened after an ingest shows it: the chart starts from the server's history", async () => {
    const posted = Date.now();
    const accepted = await postJson<{ job_id: string }>(`${server.url}/v1/collections/history/chunks`, {
      chunks: Array.from({ length: 150 }, (_, i) => ({ id: `h-${i}`, text: `History chunk ${i}` })),
    });
    assert.equal(accepted.status, 202);
    await waitForJobDone(server.url, accepted.body.job_id);

    const opened = Date.now();
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(server.url);
    await page.locator("#connection", { hasText: "live" }).waitFor({ timeout: 15_000 });
    const samples = await chartSamples(page);
    const before = samples.filter((s) => s.t < opened);
    assert.ok(before.length >= 3, `samples from before the page opened: ${before.length}`);
    assert.ok(
      before.every((s) => s.from === "server"),
      "they come from the server",
    );
    const peak = Math.max(...before.filter((s) => s.t >= posted).map((s) => s.depth));
    assert.ok(peak > 0 && peak <= 150, `the ingest's queue is on the chart (peak ${peak})`);
    const points = await page.locator("#chart polyline.depth").getAttribute("points");
    assert.equal(points?.split(" ").length, samples.length, "drawn, one point per sample");
    await screenshot(page, "dashboard-history.png");
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

    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(server.url);
    await page.locator("#dead-letters tr", { hasText: "p-1" }).waitFor({ timeout: 10_000 });
    await waitFor(async () => (await shown(page, "dead-count")) === "2", { what: "dead letter count 2" });

    // The job is done, but not fine: its row says so, not in the green of a clean "done".
    const row = page.locator(`#jobs tr[data-job-id="${accepted.body.job_id}"]`);
    await row.and(page.locator('[data-attention="dead"]')).waitFor({ timeout: 10_000 });
    const stateCell = row.locator("td").nth(2);
    assert.equal(await stateCell.textContent(), "done · 2 dead");
    const color = await stateCell.evaluate(
      (td) =>
        (globalThis as unknown as { getComputedStyle(node: unknown): { color: string } }).getComputedStyle(td)
          .color,
    );
    assert.equal(color, "rgb(153, 27, 27)", "shown in red");
    await screenshot(page, "dashboard-dead-letters.png");

    store.poison = false;
    await page.locator("#replay-all").click();
    await page.locator("#replay-result", { hasText: "replayed 2" }).waitFor({ timeout: 10_000 });
    const job = await waitForJobDone(server.url, accepted.body.job_id);
    assert.equal(job.counts.stored, 2, "replayed chunks are stored");
    await page.locator("#dead-letters", { hasText: "none" }).waitFor({ timeout: 10_000 });
    await row
      .and(page.locator('[data-attention=""]'))
      .and(page.locator('[data-state="done"]'))
      .waitFor({ timeout: 10_000 });
    assert.equal(await stateCell.textContent(), "done", "replayed and stored: a plain done again");
    await page.close();
  });

  it("works with API_KEYS: asks for a key, keeps it in sessionStorage, sends it as Bearer", async () => {
    const secured = await startInProcess({ API_KEYS: "dash-key-1" });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      await page.goto(secured.url);
      await page.locator("#auth").waitFor({ state: "visible", timeout: 10_000 });
      assert.equal(await shown(page, "auth-error"), "", "no complaint before a key was tried");

      // A wrong key is refused in words, and the form stays for another try.
      await page.fill("#auth-key", "not-the-key");
      await page.click("#auth button[type=submit]");
      await page.locator("#auth-error", { hasText: "refused" }).waitFor({ timeout: 10_000 });
      assert.equal(await shown(page, "connection"), "API key refused");
      assert.equal(await page.locator("#auth").isVisible(), true);
      await screenshot(page, "dashboard-wrong-key.png");

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
      assert.equal(await shown(page, "auth-error"), "", "the complaint is gone once the key works");

      // The metrics link fetches /metrics with the key and shows it on the page.
      await page.click("#metrics-link");
      await page.locator("#metrics-view").waitFor({ state: "visible", timeout: 10_000 });
      const metricsText = await shown(page, "metrics-text");
      assert.match(metricsText, /^rag_embed_queue_pending_chunks /m);
      assert.match(metricsText, /^# HELP rag_embed_/, "the server's own metrics first");
      assert.match(await shown(page, "metrics-summary"), /^\d+ rag_embed_ metric families/);
      assert.equal(new URL(page.url()).pathname, "/", "no navigation to a raw 401 page");
      await screenshot(page, "dashboard-metrics.png");
      await page.click("#metrics-close");
      await page.locator("#metrics-view").waitFor({ state: "hidden", timeout: 10_000 });
      await page.close();
    } finally {
      await secured.shutdown(5_000);
    }
  });
});
