import { alertmanager } from './alertmanager';
import { plainRetrain } from './retrain';
import type { TriggerSource } from './types';

export type { TriggerItem, TriggerOutcome, TriggerSource } from './types';

/**
 * The webhook's trigger sources, by path. A new one (Grafana alerts, a data catalogue's
 * events, …) is a file beside these and one line here. Schedules, the dataset watcher and
 * monitoring are triggers too, as workflows (workflows/scheduled-retrain.ts, dataset-watcher.ts,
 * monitoring.ts).
 */
export const TRIGGER_SOURCES: readonly TriggerSource[] = [alertmanager, plainRetrain];
