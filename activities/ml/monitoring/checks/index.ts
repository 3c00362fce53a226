import { featureDrift } from './feature-drift';
import { performanceCheck } from './performance';
import { predictionDrift } from './prediction-drift';
import { schemaCheck } from './schema';
import type { MonitoringCheck } from './types';

export type { CheckContext, MonitoringCheck } from './types';

/** The monitoring checks, in the order their reasons are listed. A new one is a file beside these and one line here. */
export const MONITORING_CHECKS: readonly MonitoringCheck[] = [featureDrift, schemaCheck, predictionDrift, performanceCheck];
