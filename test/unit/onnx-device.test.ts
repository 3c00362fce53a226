import type * as ort from 'onnxruntime-node';
import { INSTALL_CUDA_HINT, hasCudaProviderFiles, placeSession, type CreateSession } from '../../infra/onnx-device';
import { logisticModel } from '../../infra/onnx/model';
import { stepPlacement } from '../../activities/training/scoring-device';

/** Where a session is placed: the CPU as asked, CUDA when onnxruntime has it, else the CPU said loudly — never a failure for want of CUDA. */

const MODEL = logisticModel([0.5, -1.25], 0.1);
const fakeSession = { release: async () => undefined } as unknown as ort.InferenceSession;

function recorder(failCuda?: string): { create: CreateSession; calls: ort.InferenceSession.SessionOptions[] } {
  const calls: ort.InferenceSession.SessionOptions[] = [];
  return {
    calls,
    create: async (_model, options) => {
      calls.push(options);
      if (failCuda && options.executionProviders) throw new Error(`${failCuda}\nsecond line`);
      return fakeSession;
    },
  };
}

test('cpu asks for no execution provider; cuda asks for CUDA on the given device, then the CPU for what CUDA cannot run', async () => {
  const cpu = recorder();
  expect(await placeSession(MODEL, { intraOpNumThreads: 1 }, { device: 'cpu' }, () => undefined, cpu.create)).toEqual({ session: fakeSession, device: 'cpu' });
  expect(cpu.calls).toEqual([{ intraOpNumThreads: 1 }]);

  const cuda = recorder();
  const warnings: string[] = [];
  expect(await placeSession(MODEL, { intraOpNumThreads: 1 }, { device: 'cuda', deviceId: 2 }, (m) => warnings.push(m), cuda.create)).toEqual({ session: fakeSession, device: 'cuda:2' });
  expect(cuda.calls).toEqual([{ intraOpNumThreads: 1, executionProviders: [{ name: 'cuda', deviceId: 2 }, 'cpu'] }]);
  expect(warnings).toEqual([]);
});

test('no CUDA provider: the CPU, a warning naming the GPU, the reason and the install command, and the reason kept', async () => {
  const failing = recorder('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library');
  const warnings: string[] = [];
  const placed = await placeSession(MODEL, {}, { device: 'cuda', deviceId: 1 }, (m) => warnings.push(m), failing.create);
  expect(placed).toEqual({ session: fakeSession, device: 'cpu', fallback: 'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library' });
  expect(failing.calls).toEqual([{ executionProviders: [{ name: 'cuda', deviceId: 1 }, 'cpu'] }, {}]);
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toContain('CUDA execution provider unavailable for GPU 1 (OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library); THIS MODEL RUNS ON THE CPU');
  expect(warnings[0]).toContain(INSTALL_CUDA_HINT);
});

test('a graph onnxruntime cannot load fails on the CPU too: the error is the CPU provider\'s, not a fallback', async () => {
  const create: CreateSession = async () => {
    throw new Error('INVALID_PROTOBUF');
  };
  await expect(placeSession(MODEL, {}, { device: 'cuda' }, () => undefined, create)).rejects.toThrow('INVALID_PROTOBUF');
});

test('the real onnxruntime-node: CUDA when its CUDA files are installed, else the CPU with the reason; the model scores either way', async () => {
  const hasCuda = hasCudaProviderFiles();
  const warnings: string[] = [];
  const placed = await placeSession(MODEL, {}, { device: 'cuda' }, (m) => warnings.push(m));
  try {
    if (hasCuda) expect(placed.device).toBe('cuda:0');
    else expect({ device: placed.device, warned: warnings.length, fallback: typeof placed.fallback }).toEqual({ device: 'cpu', warned: 1, fallback: 'string' });
    expect(placed.session.outputNames).toEqual(['probability']);
  } finally {
    await placed.session.release();
  }
});

test('a step outside a GPU lease scores on the CPU, whatever the worker is configured for', async () => {
  const placed = await stepPlacement('cuda')(MODEL);
  try {
    expect({ device: placed.device, fallback: placed.fallback }).toEqual({ device: 'cpu', fallback: undefined });
  } finally {
    await placed.session.release();
  }
});
