import { existsSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';

/**
 * Where onnxruntime runs a model: the CPU, or CUDA's execution provider. CUDA is opt-in: the npm
 * package holds the CPU build, and its CUDA files come from `INSTALL_CUDA_HINT` on a machine with
 * CUDA 12 and cuDNN 9. A session that cannot be placed on CUDA runs on the CPU, said loudly
 * rather than failing, so a GPU worker without the files still evaluates and serves.
 */

export const ONNX_DEVICES = ['cpu', 'cuda'] as const;
export type OnnxDevice = (typeof ONNX_DEVICES)[number];

export const INSTALL_CUDA_HINT = 'ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node (with CUDA 12 and cuDNN 9 on the machine)';

/** Whether this onnxruntime-node install has its CUDA provider's files (what the opt-in install adds); the GPU itself is another matter. */
export function hasCudaProviderFiles(): boolean {
  const root = path.dirname(require.resolve('onnxruntime-node/package.json'));
  return existsSync(path.join(root, 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so'));
}

export interface Placement {
  device: OnnxDevice;
  /** CUDA's device index (nvidia-smi's, as the GPU pool leases them). */
  deviceId?: number;
}

/** Where a session's graph runs: `cpu` or `cuda:<index>`, and why not CUDA when it was asked for and could not be had. */
export interface ScoringDevice {
  device: string;
  fallback?: string;
}

export interface PlacedSession extends ScoringDevice {
  session: ort.InferenceSession;
}

export type CreateSession = (model: Uint8Array, options: ort.InferenceSession.SessionOptions) => Promise<ort.InferenceSession>;

const createOrt: CreateSession = (model, options) => ort.InferenceSession.create(model, options);

export async function placeSession(model: Uint8Array, options: ort.InferenceSession.SessionOptions, placement: Placement, warn: (message: string) => void, create: CreateSession = createOrt): Promise<PlacedSession> {
  if (placement.device === 'cpu') return { session: await create(model, options), device: 'cpu' };
  const deviceId = placement.deviceId ?? 0;
  let reason: string;
  try {
    // Nodes CUDA has no kernel for (the ONNX-ML encoders, string ops) run on the CPU provider listed after it.
    const session = await create(model, { ...options, executionProviders: [{ name: 'cuda', deviceId }, 'cpu'] });
    return { session, device: `cuda:${deviceId}` };
  } catch (err) {
    reason = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 300);
  }
  // A graph onnxruntime cannot load fails here as well, with the CPU provider's own message.
  const session = await create(model, options);
  warn(`onnxruntime: CUDA execution provider unavailable for GPU ${deviceId} (${reason}); THIS MODEL RUNS ON THE CPU. To run it on the GPU: ${INSTALL_CUDA_HINT}`);
  return { session, device: 'cpu', fallback: reason };
}
