import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CategoricalEncoding, Table } from '../../activities/ml/dataset';
import { featureMatrix } from '../../activities/ml/features';
import { pythonInterpreter } from '../../infra/config';
import { PROJECT_ROOT } from '../../infra/paths';

/**
 * Runs Debian's xgboost (`hist`, test/reference/xgboost_ref.py) on the matrix our trees split on —
 * categories encoded with our model's encodings — so both see the same data. Used by the
 * reference test and `npm run bench -- ct`.
 */

function writeCsv(file: string, t: Table, cols: Float32Array[]): void {
  const lines = [[...t.features.map((f) => f.name), 'label'].join(',')];
  for (let i = 0; i < t.rows; i++) lines.push([...cols.map((c) => (Number.isNaN(c[i]!) ? '' : String(c[i]))), t.label[i]].join(','));
  fs.writeFileSync(file, lines.join('\n'));
}

export interface XgboostResult {
  /** The task's figures on the test split: binary AUC, regression RMSE, multiclass macro-F1 and log loss. */
  auc?: number;
  rmse?: number;
  macroF1?: number;
  logLoss?: number;
  trainSeconds: number;
  rows: number;
  xgboostVersion: string;
}

export function xgboostReference(train: Table, test: Table, encodings: CategoricalEncoding[], params: Record<string, number | undefined>, threads = 2): XgboostResult {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xgb-'));
  try {
    writeCsv(path.join(dir, 'train.csv'), train, featureMatrix(train, train.features, encodings));
    writeCsv(path.join(dir, 'test.csv'), test, featureMatrix(test, test.features, encodings));
    const task = train.task ?? 'binary';
    const job = { train: path.join(dir, 'train.csv'), test: path.join(dir, 'test.csv'), label: 'label', params, threads, task, ...(train.classes ? { classes: train.classes.length } : {}) };
    const py = spawnSync(pythonInterpreter(), [path.join(PROJECT_ROOT, 'test/reference/xgboost_ref.py')], { input: JSON.stringify(job), encoding: 'utf8' });
    if (py.status !== 0) throw new Error(`xgboost reference failed — apt-get install python3-xgboost python3-sklearn python3-pandas: ${py.stderr || py.error}`);
    return JSON.parse(py.stdout.trim().split('\n').pop()!) as XgboostResult;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
