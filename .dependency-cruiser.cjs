/**
 * The layers of src/, written down once and checked in `npm test` (`npm run deps`). Bottom to top:
 *
 *   domain          types, ids, the error catalog: imports nothing of ours
 *   wire            the HTTP API's request and response schemas (TypeBox): imports only domain
 *   config          the settings schema
 *   observability   logger, throughput meter (utilities any layer may use)
 *   storage         the SQLite file (opened once, shared by the embedded queue and store)
 *   queue, embedder, vector-store
 *                   one interface each (job-queue.ts, embedder.ts, vector-store.ts) and its
 *                   adapters in sub-folders; they never import each other
 *   pipeline        the ingest loop: talks to the three interfaces, never to an adapter
 *   embedded        the one-transaction commit of the embedded mode (SQLite queue + store)
 *   server          HTTP: talks to interfaces, never to an adapter
 *   lifecycle       process-level guards
 *   composition     the composition root, the only folder that names adapters: adapters.ts opens
 *                   the ones the settings choose, components.ts wires them; only main.ts imports it
 *   main.ts         the server's lifecycle over those components (listen, ready, shutdown)
 *   cli, eval       entry points
 *   launcher        starts `rag-embed serve` as a child process (tests, eval, bench) and talks to it
 *                   through the client, like any client: imports only client, wire, domain
 *   client          the SDK: standalone, only domain types and the wire schemas (type-only)
 *
 * A new adapter goes in its interface's folder (e.g. src/queue/<engine>/) and is chosen in
 * composition/adapters.ts;
 * a new route goes in src/server/routes/ (importing App and AppDeps from server/app-deps.ts, never
 * app.ts), its request and response schemas in src/wire/, and is registered in server/app.ts.
 * ARCHITECTURE.md says the same at more length.
 */
const ADAPTERS = [
  "^src/queue/(sqlite|bullmq|redis)/",
  "^src/vector-store/(sqlite-vec|qdrant)/",
  // The local embedder: the process WorkerEmbedder forks and everything it runs.
  "^src/embedder/(worker|worker-embedder|worker-protocol|model-loader|embed-job|batch-scheduler|text-inputs|session-pool|onnx-runner|runner-protocol|transformers-location|remote)",
];

/** `from` may not import `to`: a lower layer reaching up. */
function below(name, from, to) {
  return { name, severity: "error", from: { path: from }, to: { path: to } };
}

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "Modules that import each other cannot be understood or tested one at a time.",
      from: {},
      to: { circular: true },
    },
    {
      name: "domain-imports-nothing",
      severity: "error",
      from: { path: "^src/domain/" },
      to: { path: "^src/", pathNot: "^src/domain/" },
    },
    below("wire-is-low", "^src/wire/", "^src/(?!wire/|domain/)"),
    below("config-is-low", "^src/config/", "^src/(?!config/|domain/)"),
    below("observability-is-low", "^src/observability/", "^src/(?!observability/|domain/|config/)"),
    below("storage-is-low", "^src/storage/", "^src/(?!storage/|domain/)"),
    below("queue-stays-below", "^src/queue/", "^src/(embedder|vector-store|pipeline|embedded|server|lifecycle|cli|eval|client|main|composition)"),
    below("embedder-stays-below", "^src/embedder/", "^src/(queue|vector-store|pipeline|embedded|server|lifecycle|cli|eval|client|main|composition)"),
    below("vector-store-stays-below", "^src/vector-store/", "^src/(queue|embedder|pipeline|embedded|server|lifecycle|cli|eval|client|main|composition)"),
    below("pipeline-stays-below", "^src/pipeline/", "^src/(embedded|server|lifecycle|cli|eval|client|main|composition)"),
    below("server-stays-below", "^src/server/", "^src/(embedded|lifecycle|cli|eval|main|composition)"),
    {
      name: "only-main-imports-the-composition",
      severity: "error",
      comment: "The composition root builds the server; only main.ts (its lifecycle) uses it.",
      from: { path: "^src/", pathNot: "^src/(main\\.ts$|composition/)" },
      to: { path: "^src/composition/" },
    },
    {
      name: "only-main-chooses-adapters",
      severity: "error",
      comment: "The pipeline and the server see interfaces only; composition/ wires the adapters.",
      from: { path: "^src/(pipeline|server)/" },
      to: { path: ADAPTERS },
    },
    {
      name: "adapters-do-not-know-each-other",
      severity: "error",
      from: { path: "^src/queue/sqlite/" },
      to: { path: "^src/queue/(bullmq|redis)/" },
    },
    {
      name: "adapters-do-not-know-each-other-2",
      severity: "error",
      from: { path: "^src/queue/(bullmq|redis)/" },
      to: { path: "^src/queue/sqlite/" },
    },
    {
      name: "stores-do-not-know-each-other",
      severity: "error",
      from: { path: "^src/vector-store/(sqlite-vec|qdrant)/" },
      to: { path: "^src/vector-store/(sqlite-vec|qdrant)/", pathNot: "^src/vector-store/$1/" },
    },
    below("launcher-is-a-client", "^src/launcher/", "^src/(?!launcher/|client/|wire/|domain/)"),
    {
      name: "nothing-imports-the-launcher",
      severity: "error",
      comment: "The launcher is for tests, eval and bench: the server never starts itself.",
      from: { path: "^src/", pathNot: "^src/(eval|launcher)/" },
      to: { path: "^src/launcher/" },
    },
    {
      name: "client-is-standalone",
      severity: "error",
      comment: "The SDK ships alone: it may use domain types and the wire schemas, nothing of the server.",
      from: { path: "^src/client/" },
      to: { path: "^src/", pathNot: "^src/(client|domain|wire)/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    includeOnly: "^src/",
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
  },
};
