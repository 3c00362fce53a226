FROM node:20-bookworm-slim
WORKDIR /app
# `skip` keeps CPU images offline-buildable; the GPU worker's build sets cuda12.
ARG ONNXRUNTIME_NODE_INSTALL=skip
ENV ONNXRUNTIME_NODE_INSTALL=${ONNXRUNTIME_NODE_INSTALL}
COPY package.json package-lock.json .npmrc ./
RUN npm ci
COPY . .
USER node
CMD ["npm", "run", "worker:control"]
