FROM node:20-bookworm-slim
WORKDIR /app
# The example external trainer (examples/trainers) runs on the workers with Debian's Python stack.
ARG WITH_PYTHON_TRAINERS=true
RUN if [ "$WITH_PYTHON_TRAINERS" = "true" ]; then \
      apt-get update && apt-get install -y --no-install-recommends python3-sklearn python3-onnx python3-pandas && rm -rf /var/lib/apt/lists/*; \
    fi
# `skip` keeps CPU images offline-buildable; the GPU worker's build sets cuda12.
ARG ONNXRUNTIME_NODE_INSTALL=skip
ENV ONNXRUNTIME_NODE_INSTALL=${ONNXRUNTIME_NODE_INSTALL}
COPY package.json package-lock.json .npmrc ./
# Scripts wait for the sources: `prepare` builds the package, which needs them.
RUN npm ci --ignore-scripts
COPY . .
# Images carry no .git: the code version recorded in lineage and step-cache keys comes from the
# build (docker compose build --build-arg MLOPS_CODE_VERSION=$(git describe --always --dirty)).
ARG MLOPS_CODE_VERSION=
ENV MLOPS_CODE_VERSION=${MLOPS_CODE_VERSION}
# Every entry point runs from the compiled output (dist/) with plain node; the plugin writes
# its generated workflows entry (queue names) under node_modules/.cache.
RUN npm run build && mkdir -p node_modules/.cache && chown node node_modules/.cache
USER node
CMD ["npm", "run", "worker:control"]
