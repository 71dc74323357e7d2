#!/usr/bin/env bash
# Starts rag-embedding-server in one role, configured from the environment.
#   ROLE=all     (default) HTTP API + embedding pipeline in one process: the embedded mode
#   ROLE=api     HTTP only; needs QUEUE_URL (shared Redis queue) to be useful with workers
#   ROLE=worker  embedding pipeline only (HTTP: /health, /ready, /metrics on WORKER_PORT); needs QUEUE_URL
# Every other setting is an env var too (PORT, HOST, DATA_DIR, EMBEDDING_MODEL, QUEUE_URL,
# QUEUE_PREFIX, VECTOR_STORE, QDRANT_URL, ...; see README "Settings"). Extra arguments are
# passed to the CLI as flags, e.g. --max-queue-size 50000.
# Uses dist/ when built, else the TypeScript sources through tsx (development).
set -euo pipefail
cd "$(dirname "$0")/.."

role="${ROLE:-all}"
case "$role" in
  all | api | worker) ;;
  *)
    echo "ROLE must be api, worker or all (got '$role')" >&2
    exit 2
    ;;
esac

if [ "$role" != all ] && [ -z "${QUEUE_URL:-}" ]; then
  echo "ROLE=$role needs QUEUE_URL=redis://host:port: without a shared queue, api and worker processes cannot meet" >&2
  exit 2
fi

if [ "${VECTOR_STORE:-sqlite}" = qdrant ] && [ -z "${QDRANT_URL:-}" ] && [ -z "${QDRANT_HOST:-}" ]; then
  echo "VECTOR_STORE=qdrant needs QDRANT_URL (or QDRANT_HOST)" >&2
  exit 2
fi

if [ -f dist/cli/main.js ]; then
  cli=(node dist/cli/main.js)
else
  cli=(node --import tsx src/cli/main.ts)
fi

# `serve --role worker` is the same as `rag-embed worker`.
# exec: the server replaces this shell, so SIGTERM reaches it (graceful drain).
exec "${cli[@]}" serve --role "$role" "$@"
