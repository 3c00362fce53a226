import { createHash, randomUUID } from 'node:crypto';
import { migrations } from '../../infra/db/migrations';
import { Readable } from 'node:stream';
import { Client as PgClient } from 'pg';
import { ArtifactKeyError, S3ArtifactStore, createS3Client, readAll } from '../../infra/artifacts';
import { createDb } from '../../infra/db/connection';
import { migrateToLatest } from '../../infra/db/migrate';
import * as repo from '../../infra/db/repositories';
import { ensureDatabase } from '../../infra/postgres';
import { independentS3, testServices } from '../helpers/real';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('metadata store', () => {
  let url: string;
  let name: string;

  beforeAll(async () => {
    // A database of its own: this suite checks what a first migration does.
    const admin = new PgClient({ connectionString: process.env.MLOPS_TEST_ADMIN_URL });
    await admin.connect();
    name = `mlops_test_mig_${Date.now()}_${process.pid}`;
    url = await ensureDatabase(admin, process.env.MLOPS_TEST_ADMIN_URL!, name);
    await admin.end();
  });

  afterAll(async () => {
    const admin = new PgClient({ connectionString: process.env.MLOPS_TEST_ADMIN_URL });
    await admin.connect();
    await admin.query(`drop database if exists "${name}" with (force)`);
    await admin.end();
  });

  test('two workers migrating at once: both succeed, the schema is applied once', async () => {
    const a = createDb(url);
    const b = createDb(url);
    try {
      const [ra, rb] = await Promise.all([migrateToLatest(a), migrateToLatest(b)]);
      expect([...ra.applied, ...rb.applied]).toEqual(Object.keys(migrations).sort());
      const again = await migrateToLatest(a);
      expect(again.applied).toEqual([]);
    } finally {
      await a.destroy();
      await b.destroy();
    }
  });

  test('writes are idempotent and aliases are unique per model by constraint', async () => {
    const db = createDb(url);
    try {
      const run = await repo.upsertPipelineRun(db, { workflowId: 'wf', runId: 'r1', pipeline: 'ct', status: 'running' });
      const again = await repo.upsertPipelineRun(db, { workflowId: 'wf', runId: 'r1', pipeline: 'ct', status: 'succeeded' });
      expect(again.id).toBe(run.id);
      expect(again.status).toBe('succeeded');

      const s1 = await repo.upsertStepRun(db, { pipelineRunId: run.id, stepName: 'train', status: 'running', attempts: 1, cacheKey: 'k1' });
      await repo.upsertStepRun(db, { pipelineRunId: run.id, stepName: 'train', status: 'succeeded', attempts: 2, outputs: { model: 's3://x/y' } });
      const steps = await repo.listStepRuns(db, run.id);
      expect(steps).toHaveLength(1);
      expect(steps[0]).toMatchObject({ id: s1.id, status: 'succeeded', attempts: 2, cache_key: 'k1', outputs: { model: 's3://x/y' } });
      expect(steps[0]!.started_at).not.toBeNull();
      expect((await repo.findCachedStep(db, 'k1'))?.id).toBe(s1.id);

      const art = { uri: 's3://b/cas/x', sha256: sha('x'), bytes: 1, media_type: 'text/plain', producing_step_run_id: s1.id };
      const a1 = await repo.recordArtifact(db, art);
      const a2 = await repo.recordArtifact(db, art);
      expect(a2.id).toBe(a1.id);

      await repo.addLineageEdge(db, { kind: 'artifact', id: a1.id }, { kind: 'step', id: s1.id }, 'input');
      await repo.addLineageEdge(db, { kind: 'artifact', id: a1.id }, { kind: 'step', id: s1.id }, 'input');
      expect(await repo.lineageInto(db, { kind: 'step', id: s1.id })).toHaveLength(1);

      const model = await repo.upsertModel(db, 'flights-delay');
      expect((await repo.upsertModel(db, 'flights-delay')).id).toBe(model.id);
      const base = { modelId: model.id, status: 'registered' as const, metrics: { auc: 0.7 }, inputSignature: [], outputSignature: [] };
      // Concurrent registrations with distinct keys get distinct numbers; a retried key gets its old version.
      const versions = await Promise.all([1, 2, 3, 4].map((i) => repo.registerModelVersion(db, { ...base, idempotencyKey: `run-${i}` })));
      expect(versions.map((v) => v.version).sort()).toEqual([1, 2, 3, 4]);
      const retried = await repo.registerModelVersion(db, { ...base, idempotencyKey: 'run-2' });
      expect(retried.id).toBe(versions[1]!.id);

      await repo.setAlias(db, model.id, 'production', versions[0]!.id);
      await repo.setAlias(db, model.id, 'production', versions[2]!.id);
      expect((await repo.getAlias(db, model.id, 'production'))?.version).toBe(versions[2]!.version);

      const pg = new PgClient({ connectionString: url });
      await pg.connect();
      try {
        // createDb's default schema: our tables are not in `public`.
        await pg.query('set search_path to mlops');
        const rows = await pg.query('select count(*)::int as n from model_aliases where model_id = $1', [model.id]);
        expect(rows.rows[0].n).toBe(1);
        await expect(
          pg.query('insert into model_aliases (model_id, alias, model_version_id) values ($1, $2, $3)', [model.id, 'production', versions[3]!.id]),
        ).rejects.toMatchObject({ code: '23505' });
        await expect(
          pg.query('insert into model_aliases (model_id, alias, model_version_id) values ($1, $2, $3)', [model.id, 'latest', versions[3]!.id]),
        ).rejects.toMatchObject({ code: '23514' });
      } finally {
        await pg.end();
      }

      const dep = await repo.upsertDeployment(db, { modelVersionId: versions[0]!.id, slot: 'stable', status: 'serving', weight: 100 });
      const dep2 = await repo.upsertDeployment(db, { modelVersionId: versions[0]!.id, slot: 'stable', status: 'serving', weight: 95 });
      expect(dep2.id).toBe(dep.id);
      expect(dep2.weight).toBe(95);

      const window = { windowStart: new Date('2001-02-01T00:00:00Z'), windowEnd: new Date('2001-02-02T00:00:00Z') };
      const r1 = await repo.insertMonitoringReport(db, { modelId: model.id, kind: 'drift', ...window, figures: { psi: 0.1 }, breach: false });
      const r2 = await repo.insertMonitoringReport(db, { modelId: model.id, kind: 'drift', ...window, figures: { psi: 0.3 }, breach: true });
      expect(r2.id).toBe(r1.id);
      expect(r2.breach).toBe(true);

      const preds = [1, 2, 3].map((i) => ({ requestId: `req-${i}`, modelId: model.id, modelVersionId: versions[0]!.id, inputs: { x: i }, outputs: { p: 0.5 }, latencyMs: 1.5 }));
      expect(await repo.insertPredictions(db, preds)).toBe(3);
      expect(await repo.insertPredictions(db, preds)).toBe(0);
      expect(await repo.attachLabel(db, model.id, 'req-2', { delayed: true })).toBe(true);
      expect(await repo.attachLabel(db, model.id, 'req-missing', { delayed: true })).toBe(false);
    } finally {
      await db.destroy();
    }
  });
});

describe('S3 artifact store on MinIO', () => {
  const bucket = `st-${randomUUID().slice(0, 8)}`;
  const store = () =>
    new S3ArtifactStore(
      createS3Client({
        endPoint: new URL(testServices.s3Endpoint()).hostname,
        port: Number(new URL(testServices.s3Endpoint()).port),
        useSSL: false,
        accessKey: testServices.s3AccessKey(),
        secretKey: testServices.s3SecretKey(),
        region: 'us-east-1',
      }),
      bucket,
      'team/a',
    );

  test('creates its bucket, streams with sha256, stores content by hash once', async () => {
    const s = store();
    const s3 = independentS3();
    expect(await s3.bucketExists(bucket)).toBe(false);
    await s.ensureReady();
    expect(await s3.bucketExists(bucket)).toBe(true);

    // 8 MiB streamed in 64 KiB chunks: never held whole by the store.
    const chunk = Buffer.alloc(64 * 1024, 7);
    const expected = createHash('sha256');
    for (let i = 0; i < 128; i++) expected.update(chunk);
    const put = await s.put('datasets/big.bin', Readable.from((function* () { for (let i = 0; i < 128; i++) yield chunk; })()));
    expect(put).toMatchObject({ uri: `s3://${bucket}/team/a/datasets/big.bin`, bytes: 8 * 1024 * 1024, sha256: expected.digest('hex') });
    const stat = await s3.statObject(bucket, 'team/a/datasets/big.bin');
    expect(stat.size).toBe(8 * 1024 * 1024);

    const c1 = await s.putContent('hello');
    const c2 = await s.putContent(Buffer.from('hello'));
    expect(c1.uri).toBe(c2.uri);
    expect(c1.sha256).toBe(sha('hello'));
    expect((await readAll(await s3.getObject(bucket, `team/a/${s.contentKey(c1.sha256)}`))).toString()).toBe('hello');
    expect(s.keyFromUri(c1.uri)).toBe(c1.key);
    // No staging leftovers.
    const names: string[] = [];
    for await (const obj of s3.listObjectsV2(bucket, 'team/a/.tmp/', true)) names.push((obj as { name: string }).name);
    expect(names).toEqual([]);
  });

  test.each(['../escape', 'a/../../b', '/etc/passwd', 'a\\b', 'a\u0000b', '%2e%2e/x', 'a/%252e%252e/b'])('rejects key %j', async (key) => {
    await expect(store().put(key, 'x')).rejects.toBeInstanceOf(ArtifactKeyError);
  });
});
