import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { literal, withDuckDb } from '../../activities/data/duck';
import { commandTrainer } from '../../activities/training/trainers/command';
import type { TrainerContext } from '../../activities/training/trainers';

/** A command trainer runs with an allowlisted environment: what it needs, none of the worker's secrets. */

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'trainer-env-'));
  await withDuckDb(async (c) => {
    for (const name of ['train', 'test']) await c.run(`COPY (SELECT 1.5::DOUBLE AS x, 1::INTEGER AS label) TO ${literal(path.join(dir, `${name}.parquet`))} (FORMAT parquet)`);
  });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('the trainer process sees PATH, its GPU, the contract variables and the names let through; no DATABASE_URL, S3 keys or tokens', async () => {
  const dump = path.join(dir, 'env.txt');
  const trainer = commandTrainer({ 'env-dump': ['sh', '-c', `env > ${dump}; printf onnx > "$MLOPS_OUTPUT_DIR/model.onnx"`] }, ['WANDB_API_KEY']);
  const worker = {
    ...process.env,
    DATABASE_URL: 'postgres://mlops:hunter2@db/mlops',
    AWS_SECRET_ACCESS_KEY: 's3-secret',
    AWS_ACCESS_KEY_ID: 's3-key',
    MLOPS_ADMIN_TOKEN: 'admin-token-0123456789',
    TEMPORAL_API_KEY: 'temporal-key',
    WANDB_API_KEY: 'let-through',
    CUDA_VISIBLE_DEVICES: 'GPU-1234',
  };
  const ctx: TrainerContext = {
    model: 'm',
    task: 'binary',
    features: [{ name: 'x', kind: 'numeric' }],
    hyperparameters: {},
    seed: 1,
    checkpointEvery: 10,
    files: { train: path.join(dir, 'train.parquet'), test: path.join(dir, 'test.parquet') },
    tables: () => Promise.reject(new Error('not used')),
    progress: () => undefined,
    signal: new AbortController().signal,
    metadata: {},
    log: { info: () => undefined, warn: () => undefined },
    childEnv: () => worker,
    command: 'env-dump',
  };
  const result = await trainer.train(ctx);
  expect(Buffer.from(result.onnx).toString()).toBe('onnx');
  const seen = Object.fromEntries(readFileSync(dump, 'utf8').split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  expect(seen).toMatchObject({ CUDA_VISIBLE_DEVICES: 'GPU-1234', WANDB_API_KEY: 'let-through', MLOPS_SEED: '1', MLOPS_LABEL: 'label', MLOPS_TASK: 'binary' });
  expect(seen.PATH).toBe(process.env.PATH);
  expect(seen.MLOPS_TRAIN_DATA).toMatch(/train\.csv$/);
  for (const secret of ['DATABASE_URL', 'AWS_SECRET_ACCESS_KEY', 'AWS_ACCESS_KEY_ID', 'MLOPS_ADMIN_TOKEN', 'TEMPORAL_API_KEY']) expect(Object.keys(seen)).not.toContain(secret);
});
