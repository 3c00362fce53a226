import { log } from '@temporalio/activity';
import { placeSession, type OnnxDevice, type PlacedSession } from '../../infra/onnx-device';
import { currentGpu } from '../gpu-context';
import { SCORING_SESSION_OPTIONS } from './scoring';

/** Opens a step's scoring session somewhere, saying where. */
export type PlaceSession = (model: Uint8Array) => Promise<PlacedSession>;

export const onCpu: PlaceSession = (model) => placeSession(model, SCORING_SESSION_OPTIONS, { device: 'cpu' }, () => undefined);

/**
 * A step's scoring on the GPU it leased when the worker is configured for CUDA (MLOPS_ONNX_DEVICE);
 * on the CPU otherwise — a CPU worker, `--allow-cpu`, or no lease — whatever the setting says.
 */
export function stepPlacement(device: OnnxDevice = 'cpu'): PlaceSession {
  return (model) => {
    const lease = currentGpu();
    if (device !== 'cuda' || !lease) return onCpu(model);
    return placeSession(model, SCORING_SESSION_OPTIONS, { device: 'cuda', deviceId: lease.gpu.index }, (message) => log.warn(message));
  };
}
