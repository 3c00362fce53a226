export { platformCheck } from './platform-check';
export { continuousTraining } from './continuous-training';
export { noopPipeline } from './noop-pipeline';
export { promotion } from './promotion';
export { modelLifecycle } from './lifecycle';
export { monitoring } from './monitoring';
export { scheduledRetrain } from './scheduled-retrain';
export { datasetWatcher } from './dataset-watcher';
