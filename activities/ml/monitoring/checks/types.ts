import type { MonitoringThresholds } from '../../../../workflows/contracts/lifecycle';
import type { DriftCheckInput, DriftCheckResult } from '../drift-check';

/** What a monitoring check reads (one window against the training baseline) and where it writes. */
export interface CheckContext {
  input: DriftCheckInput;
  thresholds: MonitoringThresholds;
  rows: number;
  labeledRows: number;
  /** Whether the window has enough rows (labelled rows) to be judged on drift (performance). */
  enoughRows: boolean;
  enoughLabels: boolean;
  /** Reasons to retrain, and warnings, in the order the checks run. */
  act: string[];
  warn: string[];
  figures: Pick<DriftCheckResult, 'features' | 'quality' | 'prediction' | 'performance'>;
}

export interface MonitoringCheck {
  name: string;
  run(ctx: CheckContext): void;
}
