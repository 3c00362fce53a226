export { platformCheck } from './platform-check';
export { continuousTraining } from './continuous-training';
export { noopPipeline } from './noop-pipeline';
export { promotion } from './promotion';
