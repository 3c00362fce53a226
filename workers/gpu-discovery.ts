import { execFile } from 'node:child_process';
import type { Gpu } from '../activities/gpu-context';

export interface GpuDiscovery {
  gpus: Gpu[];
  /** Why none were found, when none were. */
  reason?: string;
}

/** Runs `nvidia-smi` and parses its CSV; no nvidia-smi or no devices means no GPUs. */
export async function discoverGpus(nvidiaSmi = process.env.MLOPS_NVIDIA_SMI ?? 'nvidia-smi'): Promise<GpuDiscovery> {
  return new Promise((resolve) => {
    execFile(
      nvidiaSmi,
      ['--query-gpu=index,uuid,name,memory.total', '--format=csv,noheader,nounits'],
      { timeout: 15_000 },
      (err, stdout, stderr) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException).code;
          const reason = code === 'ENOENT' ? `${nvidiaSmi} not found` : `${nvidiaSmi} failed: ${(stderr || err.message).trim().split('\n')[0]}`;
          resolve({ gpus: [], reason });
          return;
        }
        const gpus = parseNvidiaSmi(stdout);
        resolve(gpus.length ? { gpus } : { gpus, reason: `${nvidiaSmi} listed no GPUs` });
      },
    );
  });
}

export function parseNvidiaSmi(csv: string): Gpu[] {
  const gpus: Gpu[] = [];
  for (const line of csv.split('\n')) {
    if (!line.trim()) continue;
    const [index, uuid, name, mem] = line.split(',').map((s) => s.trim());
    if (index === undefined || !/^\d+$/.test(index) || !name) continue;
    gpus.push({ index: Number(index), uuid: uuid ?? '', name, memoryMiB: Number(mem) || 0 });
  }
  return gpus;
}

const KNOWN_CLASSES = ['gb200', 'b200', 'h200', 'h100', 'h800', 'a100', 'a800', 'a10g', 'a10', 'a30', 'a40', 'l40s', 'l40', 'l4', 't4', 'v100', 'p100', 'k80'];

/** `NVIDIA H100 80GB HBM3` → `h100`; unknown names → a slug of the model part. */
export function gpuClassOf(name: string): string {
  const lower = name.toLowerCase();
  for (const cls of KNOWN_CLASSES) {
    if (new RegExp(`(^|[^a-z0-9])${cls}([^a-z0-9]|$)`).test(lower)) return cls;
  }
  const slug = lower
    .replace(/^nvidia\s+/, '')
    .replace(/geforce|tesla|quadro/g, '')
    .trim()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 30);
  return slug || 'gpu';
}
