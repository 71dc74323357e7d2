// Live dashboard: the chart starts from the server's own history of the last 5 minutes
// (/v1/status/history), then polls /v1/status every second; recent jobs and dead letters every few
// seconds. No framework, no CDN: plain DOM and an SVG chart.

const KEY_STORAGE = "rag-embed-api-key";
const SAMPLE_MS = 1000;
const HISTORY = 300;
const SPAN_MS = HISTORY * SAMPLE_MS;
const $ = (id) => document.getElementById(id);

/** Everything the page has sampled; exposed for tests and for the curious (window.ragDashboard). */
const state = { samples: [], authNeeded: false, lastError: null };
window.ragDashboard = state;

class Unauthorized extends Error {}

/** fetch with the key the user entered; a 401 asks for a key (again). */
async function authorizedFetch(path, options = {}) {
  const headers = { ...(options.headers ?? {}) };
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (key) headers.authorization = `Bearer ${key}`;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    needKey(Boolean(key));
    throw new Unauthorized("API key needed");
  }
  return response;
}

async function api(path, options = {}) {
  const response = await authorizedFetch(path, options);
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error(body?.error?.message ?? `${response.status} ${response.statusText}`);
  return body;
}

/** `refused`: a key was sent and the server said no, which the person must be told, not left guessing. */
function needKey(refused) {
  if (state.authNeeded) return;
  state.authNeeded = true;
  sessionStorage.removeItem(KEY_STORAGE);
  text(
    "auth-error",
    refused
      ? "That key was refused (401): it is not one of the server's API_KEYS. Check it and try again."
      : "",
  );
  $("auth").hidden = false;
  $("auth-key").focus();
  setConnection(refused ? "API key refused" : "API key needed", "bad");
}

$("auth").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("auth-key").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORAGE, key);
  $("auth-key").value = "";
  $("auth").hidden = true;
  text("auth-error", "");
  state.authNeeded = false;
  setConnection("checking key…", "");
  loadHistory();
  refreshLists();
});

function setConnection(text, kind) {
  const pill = $("connection");
  pill.textContent = text;
  pill.className = `pill ${kind}`;
}

const fmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

function text(id, value) {
  $(id).textContent = value;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

/** Keeps the chart's window: samples older than its span fall off the left edge. */
function trimSamples() {
  const from = Date.now() - SPAN_MS;
  state.samples = state.samples.filter((s) => s.t >= from);
}

/** The server's samples of the last minutes, so the chart is full the moment the page opens. */
async function loadHistory() {
  try {
    const history = await api("/v1/status/history");
    const before = history.samples.map((s) => ({
      t: s.t,
      depth: s.pending_chunks,
      running: s.running_chunks,
      tokens: s.pending_tokens_estimate,
      rate: s.chunks_per_second,
      from: "server",
    }));
    const oldestLive = state.samples[0]?.t ?? Number.POSITIVE_INFINITY;
    state.samples = [...before.filter((s) => s.t < oldestLive), ...state.samples];
    trimSamples();
    drawChart();
  } catch (error) {
    if (!(error instanceof Unauthorized)) state.lastError = String(error.message ?? error);
  }
}

async function pollStatus() {
  if (state.authNeeded) return;
  try {
    const status = await api("/v1/status");
    const sample = {
      t: Date.now(),
      depth: status.queue.pending_chunks,
      running: status.queue.running_chunks,
      tokens: status.queue.pending_tokens_estimate,
      rate: status.throughput.chunks_per_second,
      from: "page",
    };
    state.samples.push(sample);
    trimSamples();
    text("queue-depth", String(sample.depth));
    text("running", String(sample.running));
    text("pending-tokens", fmt.format(sample.tokens));
    text("throughput-chunks", fmt.format(status.throughput.chunks_per_second));
    text("throughput-tokens", fmt.format(status.throughput.tokens_per_second));
    text("drain", sample.depth === 0 ? "idle" : duration(status.estimated_drain_seconds));
    text("dead-count", String(status.dead_letters));
    $("replay-all").disabled = status.dead_letters === 0;
    text(
      "model",
      status.model.ready ? `model: ${status.model.name} (${status.model.dimension}-d)` : "model: loading…",
    );
    setConnection("live", "ok");
    state.lastError = null;
    drawChart();
  } catch (error) {
    if (!(error instanceof Unauthorized)) {
      state.lastError = String(error.message ?? error);
      setConnection(`error: ${state.lastError}`, "bad");
    }
  }
}

// ---- chart -------------------------------------------------------------------------------------

const SVG_NS = "http://www.w3.org/2000/svg";
const W = 900;
const H = 260;
const PAD = { left: 52, right: 52, top: 12, bottom: 24 };

function el(name, attrs, content) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (content !== undefined) node.textContent = content;
  return node;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * magnitude) return step * magnitude;
  return 10 * magnitude;
}

function drawChart() {
  const svg = $("chart");
  const samples = state.samples;
  const now = Date.now();
  const span = SPAN_MS;
  const x = (t) => PAD.left + ((t - (now - span)) / span) * (W - PAD.left - PAD.right);
  const depthMax = niceMax(Math.max(0, ...samples.map((s) => s.depth)));
  const rateMax = niceMax(Math.max(0, ...samples.map((s) => s.rate)));
  const plotH = H - PAD.top - PAD.bottom;
  const yDepth = (v) => PAD.top + plotH - (v / depthMax) * plotH;
  const yRate = (v) => PAD.top + plotH - (v / rateMax) * plotH;

  const nodes = [];
  for (let i = 0; i <= 4; i++) {
    const y = PAD.top + (plotH * i) / 4;
    nodes.push(el("line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: y, y2: y }));
    nodes.push(
      el(
        "text",
        { class: "axis", x: PAD.left - 6, y: y + 4, "text-anchor": "end" },
        fmt.format(depthMax * (1 - i / 4)),
      ),
    );
    nodes.push(
      el("text", { class: "axis", x: W - PAD.right + 6, y: y + 4 }, fmt.format(rateMax * (1 - i / 4))),
    );
  }
  for (const minutesAgo of [5, 4, 3, 2, 1, 0]) {
    const label = minutesAgo === 0 ? "now" : `-${minutesAgo} min`;
    nodes.push(
      el(
        "text",
        { class: "axis", x: x(now - minutesAgo * 60_000), y: H - 6, "text-anchor": "middle" },
        label,
      ),
    );
  }
  if (samples.length > 0) {
    const depthPoints = samples.map((s) => `${x(s.t).toFixed(1)},${yDepth(s.depth).toFixed(1)}`);
    const first = samples[0];
    const last = samples[samples.length - 1];
    const base = PAD.top + plotH;
    nodes.push(
      el("polygon", {
        class: "depth-area",
        points: `${x(first.t).toFixed(1)},${base} ${depthPoints.join(" ")} ${x(last.t).toFixed(1)},${base}`,
      }),
    );
    nodes.push(el("polyline", { class: "depth", points: depthPoints.join(" ") }));
    nodes.push(
      el("polyline", {
        class: "rate",
        points: samples.map((s) => `${x(s.t).toFixed(1)},${yRate(s.rate).toFixed(1)}`).join(" "),
      }),
    );
  }
  svg.replaceChildren(...nodes);
  svg.dataset.samples = String(samples.length);
  svg.dataset.depthMax = String(Math.max(0, ...samples.map((s) => s.depth)));
}

// ---- jobs and dead letters ---------------------------------------------------------------------

function cell(value, className) {
  const td = document.createElement("td");
  td.textContent = value === null || value === undefined ? "" : String(value);
  if (className) td.className = className;
  return td;
}

function shortTime(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "";
}

function fillTable(tbody, rows, columns, empty) {
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = cell(empty, "muted");
    td.colSpan = columns;
    tr.append(td);
    tbody.replaceChildren(tr);
    return;
  }
  tbody.replaceChildren(...rows);
}

/** A job with dead letters is not simply "done": it needs a replay or a look at the reasons. */
function jobLabel(job) {
  if (job.counts.dead > 0) {
    return {
      text: `${job.state} · ${job.counts.dead} dead`,
      className: "state-attention",
      attention: "dead",
    };
  }
  return { text: job.state, className: `state-${job.state}`, attention: "" };
}

async function pollJobs() {
  const { jobs } = await api("/v1/jobs?limit=20");
  const rows = jobs.map((job) => {
    const tr = document.createElement("tr");
    const label = jobLabel(job);
    tr.dataset.jobId = job.id;
    tr.dataset.state = job.state;
    tr.dataset.attention = label.attention;
    const state = cell(label.text, label.className);
    if (label.attention)
      state.title = "some chunks are dead letters: see below, replay once the cause is fixed";
    tr.append(
      cell(job.id.slice(0, 8), "id"),
      cell(job.collection),
      state,
      cell(job.counts.total),
      cell(job.counts.queued),
      cell(job.counts.running),
      cell(job.counts.stored),
      cell(job.counts.unchanged),
      cell(job.counts.failed),
      cell(job.counts.dead),
      cell(shortTime(job.updated_at)),
    );
    tr.firstChild.title = job.id;
    return tr;
  });
  fillTable($("jobs"), rows, 11, "no jobs on record");
}

async function replay(selector) {
  const result = await api("/v1/dead-letters/replay", { method: "POST", body: JSON.stringify(selector) });
  text("replay-result", `replayed ${result.replayed} dead letter(s)`);
  await refreshLists();
}

async function pollDeadLetters() {
  const { dead_letters: deadLetters } = await api("/v1/dead-letters?limit=50");
  const rows = deadLetters.map((dead) => {
    const tr = document.createElement("tr");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Replay job";
    button.addEventListener("click", () => replay({ job_id: dead.job_id }).catch(showError));
    const action = document.createElement("td");
    action.append(button);
    tr.append(
      cell(dead.id),
      cell(dead.job_id.slice(0, 8), "id"),
      cell(dead.collection),
      cell(dead.chunk_id),
      cell(dead.attempts),
      cell(dead.reason),
      cell(shortTime(dead.dead_at)),
      action,
    );
    return tr;
  });
  fillTable($("dead-letters"), rows, 8, "none");
}

function showError(error) {
  if (error instanceof Unauthorized) return;
  text("replay-result", `error: ${error.message ?? error}`);
}

$("replay-all").addEventListener("click", () => replay({ all: true }).catch(showError));

/** The metrics need the key too: fetched with it and shown here, never a raw 401 page. */
async function showMetrics() {
  const response = await authorizedFetch("/metrics");
  const body = await response.text();
  if (!response.ok) throw new Error(`metrics: ${response.status} ${response.statusText}`);
  // The server's own families first: they are what a person opens this for, not the process defaults.
  const families = body.trim().split(/\n\n+/);
  const ours = families.filter((family) => family.includes("# TYPE rag_embed_"));
  const others = families.filter((family) => !family.includes("# TYPE rag_embed_"));
  text("metrics-text", [...ours, ...others].join("\n\n"));
  text(
    "metrics-summary",
    `${ours.length} rag_embed_ metric families, then ${others.length} of the process, as Prometheus scrapes /metrics`,
  );
  $("metrics-view").showModal();
}

$("metrics-link").addEventListener("click", (event) => {
  event.preventDefault();
  showMetrics().catch(showError);
});
$("metrics-close").addEventListener("click", () => $("metrics-view").close());

async function refreshLists() {
  if (state.authNeeded) return;
  await Promise.all([pollJobs(), pollDeadLetters()]).catch(showError);
}

// Poll on a fixed cadence, never overlapping: the next round starts after the previous one ends.
async function every(ms, task) {
  for (;;) {
    const started = Date.now();
    await task();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, ms - (Date.now() - started))));
  }
}

loadHistory().finally(() => every(SAMPLE_MS, pollStatus));
every(2000, refreshLists);
