import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GpuPool, bindActivitiesToGpus, currentGpu, gpuChildEnv, type Gpu } from '../../activities/gpu-context';
import { discoverGpus, gpuClassOf, parseNvidiaSmi } from '../../workers/gpu-discovery';
import { parseQueueList } from '../../workers/queues';

const SMI = `0, GPU-1111aaaa-0000-0000-0000-000000000000, NVIDIA H100 80GB HBM3, 81559
1, GPU-2222bbbb-0000-0000-0000-000000000000, NVIDIA H100 80GB HBM3, 81559
`;

test('parses nvidia-smi CSV and names GPU classes', () => {
  expect(parseNvidiaSmi(SMI)).toEqual([
    { index: 0, uuid: 'GPU-1111aaaa-0000-0000-0000-000000000000', name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559 },
    { index: 1, uuid: 'GPU-2222bbbb-0000-0000-0000-000000000000', name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559 },
  ]);
  expect(gpuClassOf('NVIDIA H100 80GB HBM3')).toBe('h100');
  expect(gpuClassOf('NVIDIA A100-SXM4-40GB')).toBe('a100');
  expect(gpuClassOf('NVIDIA L4')).toBe('l4');
  expect(gpuClassOf('NVIDIA L40S')).toBe('l40s');
  expect(gpuClassOf('Tesla T4')).toBe('t4');
  expect(gpuClassOf('NVIDIA GeForce RTX 4090')).toBe('rtx-4090');
});

test('discovers GPUs through an nvidia-smi executable, and says why when there are none', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'smi-'));
  const fake = path.join(dir, 'nvidia-smi');
  await fs.writeFile(fake, `#!/bin/sh\ncat <<'EOF'\n${SMI}EOF\n`, { mode: 0o755 });
  const failing = path.join(dir, 'nvidia-smi-broken');
  await fs.writeFile(failing, '#!/bin/sh\necho "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver." >&2\nexit 9\n', { mode: 0o755 });
  try {
    expect((await discoverGpus(fake)).gpus.map((g) => g.index)).toEqual([0, 1]);
    expect(await discoverGpus(path.join(dir, 'missing'))).toEqual({ gpus: [], reason: `${path.join(dir, 'missing')} not found` });
    expect((await discoverGpus(failing)).reason).toMatch(/could not communicate with the NVIDIA driver/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('the GPU pool runs at most one activity per GPU and pins each to its device', async () => {
  const gpus: Gpu[] = parseNvidiaSmi(SMI);
  const pool = new GpuPool(gpus);
  let running = 0;
  let peak = 0;
  const seen: string[] = [];
  const activities = bindActivitiesToGpus(
    {
      async train(ms: number): Promise<string> {
        running++;
        peak = Math.max(peak, running);
        const lease = currentGpu()!;
        const env = gpuChildEnv({});
        seen.push(env.CUDA_VISIBLE_DEVICES!);
        await new Promise((r) => setTimeout(r, ms));
        // Still the same device after awaiting: the lease follows the async context.
        expect(currentGpu()!.gpu.index).toBe(lease.gpu.index);
        running--;
        return lease.cudaVisibleDevices;
      },
    },
    pool,
  );
  const results = await Promise.all([20, 20, 20, 20, 20].map((ms) => activities.train(ms)));
  expect(peak).toBe(2);
  expect(new Set(results)).toEqual(new Set(gpus.map((g) => g.uuid)));
  expect(seen).toHaveLength(5);
  expect(pool.busy).toBe(0);
  expect(currentGpu()).toBeUndefined();
});

test('on --allow-cpu, activities see no GPU and children get an empty CUDA_VISIBLE_DEVICES', async () => {
  const activities = bindActivitiesToGpus({ async probe() { return [currentGpu(), gpuChildEnv({}).CUDA_VISIBLE_DEVICES]; } }, 'cpu');
  expect(await activities.probe()).toEqual([undefined, '']);
});

test('queue lists', () => {
  expect(parseQueueList('control,cpu')).toEqual({ control: true, cpu: true, gpu: false });
  expect(parseQueueList('mlops-gpu-h100')).toEqual({ control: false, cpu: false, gpu: true, gpuClass: 'h100' });
  expect(() => parseQueueList('tpu')).toThrow(/unknown queue "tpu"/);
  expect(() => parseQueueList('')).toThrow(/at least one queue/);
});
