import { UserFacingError } from '../infra/errors';
import { GPU_CLASS_PATTERN, TASK_QUEUES } from '../workflows/contracts/names';

export type QueueSelection = { control: boolean; cpu: boolean; gpu: boolean; gpuClass?: string };

/** Parses `control,cpu,gpu` or `gpu-h100` (full queue names `mlops-…` accepted too). */
export function parseQueueList(list: string): QueueSelection {
  const sel: QueueSelection = { control: false, cpu: false, gpu: false };
  for (const raw of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const name = raw.startsWith('mlops-') ? raw.slice('mlops-'.length) : raw;
    if (name === 'control' || name === 'cpu' || name === 'gpu') {
      sel[name] = true;
    } else if (name.startsWith('gpu-') && GPU_CLASS_PATTERN.test(name.slice(4))) {
      sel.gpu = true;
      sel.gpuClass = name.slice(4);
    } else {
      throw new UserFacingError(
        `--queues: unknown queue ${JSON.stringify(raw)}; use ${Object.values(TASK_QUEUES).join(', ')} or mlops-gpu-<class>`,
      );
    }
  }
  if (!sel.control && !sel.cpu && !sel.gpu) throw new UserFacingError('--queues: name at least one queue');
  return sel;
}
