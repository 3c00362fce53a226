/**
 * `temporal-mlops/trainers`: what a TypeScript trainer of your own needs — the contract, and the
 * building blocks of ours (columnar tables, the linear model and its ONNX export with the
 * preprocessing in the graph) for trainers that refit or extend them.
 */
export { CheckpointRefused, defineTrainer, TRAINER_NAME, type AnyTrainer, type ResumePoint, type Trainer, type TrainerCheckpoint, type TrainerContext, type TrainedModel } from './types';
export type { CategoricalEncoding, FeatureSpec, Table } from '../../ml/dataset';
export { design as standardizedDesign, exportLogregOnnx, predictLogreg, trainLogreg, type LogregModel, type LogregParams } from '../../ml/logreg';
export { featureMatrix } from '../../ml/features';
export { sigmoid } from '../../ml/metrics';
