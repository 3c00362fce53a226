/** What may ask a model's lifecycle for a retrain; the decision log and the metrics name it. */
export const TRIGGER_SOURCES = ['cli', 'schedule', 'monitoring', 'webhook', 'new-data', 'demo', 'api'] as const;
export type TriggerSource = (typeof TRIGGER_SOURCES)[number];
