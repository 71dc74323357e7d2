#!/usr/bin/env bash
# Builds rag-embedding-server.
#   scripts/build-rag-embedding-server.sh            npm ci + npm run build (dist/)
#   scripts/build-rag-embedding-server.sh --docker   docker build (multi-stage Dockerfile)
# Env: IMAGE (default rag-embedding-server:latest) for --docker.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'
}

mode=local
for arg in "$@"; do
  case "$arg" in
    --docker) mode=docker ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "unknown argument: $arg" >&2
      usage >&2
      exit 2
      ;;
  esac
done

if [ "$mode" = docker ]; then
  image="${IMAGE:-rag-embedding-server:latest}"
  echo "== docker build -t $image ."
  exec docker build -t "$image" .
fi

# better-sqlite3 compiles with node-gyp: use the local Node headers so it never downloads them.
node_prefix="$(dirname "$(dirname "$(command -v node)")")"
if [ -d "$node_prefix/include/node" ]; then
  export npm_config_nodedir="$node_prefix"
fi

# onnxruntime-node's install script downloads CUDA binaries unless told to skip them.
export ONNXRUNTIME_NODE_INSTALL_CUDA="${ONNXRUNTIME_NODE_INSTALL_CUDA:-skip}"

echo "== node $(node -v), npm $(npm -v)"
# npm ci runs `prepare` (= npm run build) itself; build again explicitly so a failure is visible here.
npm ci --no-audit --no-fund
npm run build
# tsc emits only .js; the dashboard finds its assets in src/ from dist/ when run from this checkout.
echo "== built dist/ (start with scripts/start-rag-embedding-server.sh)"
