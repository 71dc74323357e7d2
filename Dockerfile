# syntax=docker/dockerfile:1
# rag-embedding-server: multi-stage build.
#   docker build -t rag-embedding-server .          (or: scripts/build-rag-embedding-server.sh --docker)
#   docker run -p 8000:8000 -v rag-models:/models -v rag-data:/data rag-embedding-server
# The same image runs every role: ROLE=api|worker|all (see deploy/docker-compose.yml).

############################ build ############################
FROM node:24-bookworm-slim AS build
# better-sqlite3 12.x compiles from source (its prebuilt download is not relied on): needs a toolchain.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# onnxruntime-node's install script would download CUDA binaries from GitHub: not wanted, and it
# fails without that network. It reads this variable (an .npmrc key makes npm warn on every command).
ENV ONNXRUNTIME_NODE_INSTALL_CUDA=skip
# Dependencies first, so source edits do not invalidate the npm ci layer.
COPY package.json package-lock.json .npmrc ./
# --ignore-scripts: `prepare` (= build) would run before the sources are copied; native modules
# are built explicitly by `npm rebuild` right after.
RUN npm ci --no-audit --no-fund --ignore-scripts \
 && npm rebuild better-sqlite3 onnxruntime-node esbuild
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# `npm run build` compiles and copies the dashboard's static files next to the compiled routes.
RUN npm run build \
 && npm prune --omit=dev

############################ runtime ############################
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    WORKER_PORT=8001 \
    ROLE=all \
    DATA_DIR=/data \
    MODEL_CACHE_DIR=/models \
    EMBEDDING_MODEL=Xenova/all-MiniLM-L6-v2 \
    LOG_LEVEL=info
WORKDIR /app
# Non-root: a fixed uid so volumes can be chowned the same way on every host.
RUN groupadd --system --gid 10001 rag \
 && useradd --system --uid 10001 --gid rag --home-dir /app --shell /usr/sbin/nologin rag \
 && mkdir -p /data /models \
 && chown rag:rag /data /models
COPY --from=build --chown=rag:rag /app/package.json ./package.json
COPY --from=build --chown=rag:rag /app/node_modules ./node_modules
COPY --from=build --chown=rag:rag /app/dist ./dist
COPY --chown=rag:rag scripts/start-rag-embedding-server.sh ./scripts/start-rag-embedding-server.sh
USER rag
# Hub models are downloaded once into /models (mount a volume, or bake a local model directory
# and point EMBEDDING_MODEL at it). /data holds the SQLite queue/store of embedded mode.
VOLUME ["/models", "/data"]
# 8000: the API (ROLE=all|api). 8001: a worker's /health, /ready and /metrics (ROLE=worker).
EXPOSE 8000 8001
# Liveness only: /health answers as soon as the process listens (on WORKER_PORT for a worker).
# Load balancers that actively check should use GET /ready (model loaded).
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD node -e "const e=process.env,p=e.ROLE==='worker'?(e.WORKER_PORT||8001):(e.PORT||8000);fetch('http://127.0.0.1:'+p+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# 2 MB young-generation semi-spaces: 30-40 MB less peak RSS, no slower (docs/bench.md, "Peak RSS").
CMD ["node", "--max-semi-space-size=2", "dist/cli/main.js", "serve"]
