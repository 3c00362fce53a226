import { spawn } from 'node:child_process';
import { migrations } from '../../infra/db/migrations';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client as PgClient } from 'pg';
import { createDb } from '../../infra/db/connection';
import { migrateToLatest } from '../../infra/db/migrate';
import * as repo from '../../infra/db/repositories';
import { compiledEntry } from '../../infra/entry';
import { PROJECT_ROOT } from '../../infra/paths';

/**
 * With no DATABASE_URL and no local server, the project serves embedded PGlite on a Unix
 * socket, so everything still goes through `pg` and kysely's Postgres dialect. PGlite runs in a
 * child process here (it loads its WebAssembly with dynamic imports, which jest's VM forbids) —
 * the same way a worker reaches it through `npm run dev`.
 */
test('embedded PGlite serves the Postgres protocol to pg and kysely', async () => {
  const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlops-pglite-'));
  const child = spawn(process.execPath, [compiledEntry('infra/pglite-cli.ts')], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, DATABASE_URL: '', MLOPS_STATE_DIR: stateDir, MLOPS_LOCAL_POSTGRES: 'off' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /PGLITE_URL=(\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`pglite exited ${code}: ${stderr}`)));
    });
    expect(url).toContain(encodeURIComponent(path.join(stateDir, 'pglite', 'run')));
    expect(stderr).toMatch(/started embedded PGlite/);

    const db = createDb(url, { max: 1, schema: 'mlops' });
    try {
      expect((await migrateToLatest(db, 'mlops')).applied).toEqual(Object.keys(migrations).sort());
      const model = await repo.upsertModel(db, 'pglite-model');
      const v = await repo.registerModelVersion(db, {
        modelId: model.id,
        idempotencyKey: 'k',
        status: 'registered',
        metrics: { auc: 0.8 },
        inputSignature: [],
        outputSignature: [],
      });
      expect((await repo.registerModelVersion(db, { modelId: model.id, idempotencyKey: 'k', status: 'registered', metrics: {}, inputSignature: [], outputSignature: [] })).id).toBe(v.id);
      await repo.setAlias(db, model.id, 'candidate', v.id);
    } finally {
      await db.destroy();
    }
    const client = new PgClient({ connectionString: url });
    await client.connect();
    try {
      // The search_path set by createDb's connection hook took effect on PGlite too: our tables,
      // kysely's included, are in `mlops`, none in `public`.
      const placed = await client.query(
        `select table_schema, count(*)::int as n from information_schema.tables where table_name in ('models', 'prediction_log', 'kysely_migration') group by table_schema`,
      );
      expect(placed.rows).toEqual([{ table_schema: 'mlops', n: 3 }]);
      const rows = await client.query(
        'select m.name, v.version, a.alias from mlops.models m join mlops.model_versions v on v.model_id = m.id join mlops.model_aliases a on a.model_version_id = v.id',
      );
      expect(rows.rows).toEqual([{ name: 'pglite-model', version: 1, alias: 'candidate' }]);
    } finally {
      await client.end();
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
    await fs.rm(stateDir, { recursive: true, force: true });
  }
});
