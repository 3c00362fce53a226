#!/usr/bin/env bash
# `npm run gpu-check`: the GPU path on a machine with NVIDIA GPUs, in one short run, after
# `npm install && npm run build && npm run setup` (and onnxruntime-node's CUDA files:
# `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node`). Four checks, each with its
# figures; the first that fails ends the run with exit 1 and the reason:
#   1. GPU discovery: nvidia-smi, the GPUs and the class the worker derives.
#   2. onnxruntime-node's CUDA execution provider: a model placed as evaluation places it, run on
#      every GPU, against the CPU's output.
#   3. The PyTorch example trainer on CUDA (MLOPS_PYTHON: a Python whose torch has CUDA; Debian's
#      python3-torch has not): trained on the weather table, its ONNX export scored on CUDA
#      against torch's own scores.
#   4. The dev stack's GPU worker on its class queue with MLOPS_ONNX_DEVICE=cuda: platformCheck's
#      probes on mlops-gpu and mlops-gpu-<class> lease a GPU and run their model on CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.bin:$PATH"
PYTHON="${MLOPS_PYTHON:-/usr/bin/python3}"
WORK="$(mktemp -d /tmp/gpu-check.XXXXXX)"
DEV_PID=""
cleanup() {
  if [ -n "$DEV_PID" ]; then kill -INT "$DEV_PID" 2>/dev/null || true; wait "$DEV_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "gpu-check: FAIL: $*" >&2; exit 1; }
step() { echo; echo "== $* ($(date +%T))"; STEP_START=$(date +%s%N); }
took() { echo "   $(( ($(date +%s%N) - STEP_START) / 1000000 )) ms"; }

step "1. GPU discovery"
nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version --format=csv,noheader || fail "nvidia-smi does not run"
CLASS=$(node -e "
const d = require('./dist/workers/gpu-discovery');
d.discoverGpus().then((f) => {
  if (!f.gpus.length) { console.error(f.reason); process.exit(1); }
  for (const g of f.gpus) console.error('   GPU ' + g.index + ': ' + g.name + ' (' + g.memoryMiB + ' MiB) -> class ' + d.gpuClassOf(g.name));
  console.log(d.gpuClassOf(f.gpus[0].name));
});") || fail "the worker's discovery found no GPUs"
echo "   the worker polls mlops-gpu and mlops-gpu-$CLASS"
took

step "2. onnxruntime-node on CUDA"
node -e "
const ort = require('onnxruntime-node');
const { placeSession } = require('./dist/infra/onnx-device');
const { logisticModel } = require('./dist/infra/onnx/model');
const { discoverGpus } = require('./dist/workers/gpu-discovery');
(async () => {
  const model = logisticModel([0.5, -1.25, 2], 0.1);
  const x = new ort.Tensor('float32', Float32Array.from({ length: 3 * 4096 }, (_, i) => (i % 7) - 3), [4096, 3]);
  const cpu = await ort.InferenceSession.create(model);
  const want = (await cpu.run({ x })).probability.data;
  for (const g of (await discoverGpus()).gpus) {
    const placed = await placeSession(model, {}, { device: 'cuda', deviceId: g.index }, (m) => console.error('   ' + m));
    if (placed.device !== 'cuda:' + g.index) { console.error('   GPU ' + g.index + ': ran on ' + placed.device); process.exit(1); }
    const t = performance.now();
    const got = (await placed.session.run({ x })).probability.data;
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(want[i] - got[i]));
    console.log('   GPU ' + g.index + ': ' + placed.device + ', 4096 rows in ' + (performance.now() - t).toFixed(1) + ' ms, max |cuda - cpu| ' + worst.toExponential(2));
    if (worst > 1e-5) process.exit(1);
  }
})();" || fail "onnxruntime-node has no working CUDA execution provider (see its message above)"
took

step "3. the PyTorch trainer on CUDA"
"$PYTHON" -c 'import torch, sys; ok = torch.cuda.is_available(); print("   torch", torch.__version__, "CUDA", torch.version.cuda, "available:", ok, torch.cuda.get_device_name(0) if ok else ""); sys.exit(0 if ok else 1)' \
  || fail "$PYTHON's torch sees no CUDA device (point MLOPS_PYTHON at a Python whose torch is built with CUDA)"
node -e "
const { withDuckDb, literal } = require('./dist/activities/data/duck');
const src = require('path').resolve('node_modules/vega-datasets/data/seattle-weather.csv');
const rows = (where) => 'SELECT precipitation, temp_max, temp_min, wind, month(date)::DOUBLE AS month, list_position([\'drizzle\', \'fog\', \'rain\', \'snow\', \'sun\'], weather) - 1 AS label FROM read_csv(' + literal(src) + ') WHERE ' + where + ' ORDER BY date';
withDuckDb(async (c) => {
  await c.run('COPY (' + rows('date < DATE \'2015-03-01\'') + ') TO ' + literal('$WORK/train.csv') + ' (HEADER)');
  await c.run('COPY (' + rows('date >= DATE \'2015-03-01\'') + ') TO ' + literal('$WORK/valid.csv') + ' (HEADER)');
});" || fail "could not write the weather split"
mkdir -p "$WORK/out" "$WORK/checkpoints"
env -i PATH="$PATH" HOME="$HOME" ${LD_LIBRARY_PATH:+LD_LIBRARY_PATH=$LD_LIBRARY_PATH} CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0}" \
  MLOPS_TRAIN_DATA="$WORK/train.csv" MLOPS_VALID_DATA="$WORK/valid.csv" MLOPS_LABEL=label MLOPS_TASK=multiclass \
  MLOPS_CLASSES='["drizzle","fog","rain","snow","sun"]' \
  MLOPS_FEATURES='[{"name":"precipitation","kind":"numeric"},{"name":"temp_max","kind":"numeric"},{"name":"temp_min","kind":"numeric"},{"name":"wind","kind":"numeric"},{"name":"month","kind":"numeric"}]' \
  MLOPS_HYPERPARAMETERS='{"epochs": 100, "hidden": 32, "weightDecay": 0.001}' MLOPS_SEED=7 \
  MLOPS_OUTPUT_DIR="$WORK/out" MLOPS_CHECKPOINT_DIR="$WORK/checkpoints" MLOPS_TEST_SCORES="$WORK/out/scores.csv" \
  "$PYTHON" examples/trainers/torch_mlp.py > "$WORK/events.jsonl" || fail "the torch trainer failed (its stderr above)"
tail -1 "$WORK/events.jsonl" | grep -q '"cuda":1' || fail "the torch trainer trained on the CPU: $(tail -1 "$WORK/events.jsonl")"
echo "   $(tail -1 "$WORK/events.jsonl")"
echo "   checkpoints: $(ls "$WORK/checkpoints" | wc -l)"
WORK="$WORK" node -e "
const ort = require('onnxruntime-node');
const fs = require('fs');
const { placeSession } = require('./dist/infra/onnx-device');
(async () => {
  const w = process.env.WORK;
  const [head, ...lines] = fs.readFileSync(w + '/valid.csv', 'utf8').trim().split('\n');
  const cols = head.split(',');
  const feeds = {};
  for (const n of ['precipitation', 'temp_max', 'temp_min', 'wind', 'month']) feeds[n] = new ort.Tensor('float32', Float32Array.from(lines.map((l) => Number(l.split(',')[cols.indexOf(n)]))), [lines.length, 1]);
  const placed = await placeSession(fs.readFileSync(w + '/out/model.onnx'), {}, { device: 'cuda' }, (m) => console.error('   ' + m));
  const got = (await placed.session.run(feeds)).probabilities.data;
  const mine = fs.readFileSync(w + '/out/scores.csv', 'utf8').trim().split('\n').slice(1).flatMap((l) => l.split(',').map(Number));
  let worst = 0;
  for (let i = 0; i < mine.length; i++) worst = Math.max(worst, Math.abs(mine[i] - got[i]));
  console.log('   ONNX on ' + placed.device + ' vs torch on CUDA, ' + lines.length + ' rows: max |diff| ' + worst.toExponential(2) + ' (the parity gate allows 1e-4)');
  process.exit(placed.device.startsWith('cuda') && worst <= 1e-4 ? 0 : 1);
})();" || fail "the exported model does not give torch's scores on CUDA"
took

step "4. the dev stack's GPU worker on mlops-gpu-$CLASS, ONNX on CUDA"
export MLOPS_STATE_DIR="$WORK/state" MLOPS_ONNX_DEVICE=cuda MLOPS_METRICS_PORT=off
npm run --silent dev > "$WORK/dev.log" 2>&1 &
DEV_PID=$!
for _ in $(seq 1 180); do grep -q 'dev stack is up' "$WORK/dev.log" && break; kill -0 "$DEV_PID" 2>/dev/null || break; sleep 1; done
grep -q 'dev stack is up' "$WORK/dev.log" || { tail -20 "$WORK/dev.log" >&2; fail "the dev stack did not start"; }
grep -E '^\s+(Temporal gRPC|Workers)' "$WORK/dev.log"
ADDRESS=$(sed -n 's/^  Temporal gRPC *\([^ ]*\).*/\1/p' "$WORK/dev.log" | head -1)
TEMPORAL_ADDRESS="$ADDRESS" npm run --silent mlops -- platform-check --gpu-class "$CLASS" --json > "$WORK/check.json" || { cat "$WORK/check.json" >&2; fail "platformCheck failed"; }
node -e "
const r = JSON.parse(require('fs').readFileSync('$WORK/check.json', 'utf8'));
let ok = true;
for (const q of r.queues) {
  const gpuQueue = q.queue.includes('-gpu');
  console.log('   ' + q.queue.padEnd(20) + (q.ok ? q.result.device + ', onnx on ' + q.result.onnx.provider + ', ' + q.result.ms + ' ms' : 'FAILED ' + q.error));
  if (!q.ok || (gpuQueue && (!q.result.device.startsWith('gpu') || !q.result.onnx.provider.startsWith('cuda')))) ok = false;
}
process.exit(ok ? 0 : 1);" || fail "a GPU queue's probe did not lease a GPU and run on CUDA"
took

echo
echo "gpu-check: all four checks passed"
