import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { Client as PgClient, Pool } from 'pg';
import { createDb } from '../../infra/db/connection';
import { migrateToLatest } from '../../infra/db/migrate';
import { migrations } from '../../infra/db/migrations';
import * as repo from '../../infra/db/repositories';
import { ConfigError } from '../../infra/errors';
import { ensureDatabase } from '../../infra/postgres';

/**
 * Our tables live in a schema of their own (MLOPS_DB_SCHEMA, default `mlops`), never in the
 * connection's default `public`, where a user's own tables may be. This suite migrates two
 * schemas of one database — its own, so `public` can be checked exactly — with a user's
 * `public.models` table already there, and reads the result with an independent client.
 */

const rand = () => randomBytes(4).toString('hex');
const A = `mlops_t_${rand()}`;
const B = `mlops_t_${rand()}`;

let adminUrl: string;
let name: string;
let url: string;
let pg: PgClient;

async function tablesIn(schema: string): Promise<string[]> {
  const r = await pg.query<{ table_name: string }>(`select table_name from information_schema.tables where table_schema = $1 order by table_name`, [schema]);
  return r.rows.map((row) => row.table_name);
}

beforeAll(async () => {
  adminUrl = process.env.MLOPS_TEST_ADMIN_URL!;
  const admin = new PgClient({ connectionString: adminUrl });
  await admin.connect();
  name = `mlops_test_schema_${Date.now()}_${process.pid}`;
  url = await ensureDatabase(admin, adminUrl, name);
  await admin.end();
  pg = new PgClient({ connectionString: url });
  await pg.connect();
});

afterAll(async () => {
  await pg.query(`drop schema if exists "${A}" cascade`);
  await pg.query(`drop schema if exists "${B}" cascade`);
  await pg.end();
  const admin = new PgClient({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists "${name}" with (force)`);
  await admin.end();
});

test('two schemas in one database: our tables and kysely_migration in each, none in public, no cross-talk; a user pool keeps its search_path', async () => {
  // The user's own pool and their own `models` table in `public`, which ours must not touch or read.
  const userPool = new Pool({ connectionString: url, max: 2 });
  const dbs: Array<{ destroy(): Promise<void> }> = [];
  try {
    await userPool.query('create table public.models (id integer primary key, note text not null)');
    await userPool.query(`insert into public.models values (1, 'the user''s row')`);
    const userPath = (await userPool.query<{ search_path: string }>('show search_path')).rows[0]!.search_path;
    expect(userPath).toContain('public');

    const dbA = createDb({ pool: userPool }, { schema: A, max: 2 });
    dbs.push(dbA);
    const dbB = createDb(url, { schema: B, max: 2 });
    dbs.push(dbB);

    const all = Object.keys(migrations).sort();
    expect((await migrateToLatest(dbA, A)).applied).toEqual(all);
    // B has its own kysely_migration: it applies everything again, in B.
    expect((await migrateToLatest(dbB, B)).applied).toEqual(all);
    expect((await migrateToLatest(dbA, A)).applied).toEqual([]);

    // Our sessions create in, and read from, the schema alone.
    expect((await sql<{ s: string }>`select current_schema() as s`.execute(dbA)).rows[0]!.s).toBe(A);
    expect((await sql<{ search_path: string }>`show search_path`.execute(dbB)).rows[0]).toEqual({ search_path: B });

    const ma = await repo.upsertModel(dbA, 'only-in-a');
    const mb = await repo.upsertModel(dbB, 'only-in-b');
    await repo.registerModelVersion(dbA, { modelId: ma.id, idempotencyKey: 'k', status: 'registered', metrics: { auc: 0.9 }, inputSignature: [], outputSignature: [] });

    const inA = await tablesIn(A);
    for (const t of ['pipeline_runs', 'step_runs', 'artifacts', 'lineage_edges', 'models', 'model_versions', 'model_aliases', 'deployments', 'monitoring_reports', 'prediction_log', 'data_schemas', 'data_spans', 'kysely_migration', 'kysely_migration_lock']) {
      expect(inA).toContain(t);
    }
    expect(await tablesIn(B)).toEqual(inA);
    // `public` holds the user's table and nothing of ours; the user's table is as they left it.
    expect(await tablesIn('public')).toEqual(['models']);
    expect((await pg.query('select * from public.models')).rows).toEqual([{ id: 1, note: "the user's row" }]);
    // Indexes and sequences went with their tables.
    const strays = await pg.query(`select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and relname <> 'models' and relname <> 'models_pkey'`);
    expect(strays.rows).toEqual([]);

    // No cross-talk: each schema has its own rows.
    expect((await pg.query(`select name from "${A}".models`)).rows).toEqual([{ name: 'only-in-a' }]);
    expect((await pg.query(`select name from "${B}".models`)).rows).toEqual([{ name: 'only-in-b' }]);
    expect((await pg.query(`select count(*)::int as n from "${A}".model_versions`)).rows[0].n).toBe(1);
    expect((await pg.query(`select count(*)::int as n from "${B}".model_versions`)).rows[0].n).toBe(0);
    expect((await pg.query(`select count(*)::int as n from "${A}".kysely_migration`)).rows[0].n).toBe(all.length);
    expect((await pg.query(`select count(*)::int as n from "${B}".kysely_migration`)).rows[0].n).toBe(all.length);
    expect(mb.id).toBeDefined();

    // The user's sessions never saw a `set search_path`: `models` is still their table there.
    const [c1, c2] = await Promise.all([userPool.connect(), userPool.connect()]);
    try {
      for (const c of [c1, c2]) {
        expect((await c.query<{ search_path: string }>('show search_path')).rows[0]!.search_path).toBe(userPath);
        expect((await c.query('select note from models')).rows).toEqual([{ note: "the user's row" }]);
      }
    } finally {
      c1.release();
      c2.release();
    }

    // Mixing up the schema of a db and of its migration is refused before anything is written.
    await expect(migrateToLatest(dbA, B)).rejects.toThrow(ConfigError);
    await expect(migrateToLatest(dbA, B)).rejects.toThrow(/schema/);

    // destroy() ends our pool, not the user's.
    await dbA.destroy();
    dbs.splice(dbs.indexOf(dbA), 1);
    expect((await userPool.query('select count(*)::int as n from models')).rows[0].n).toBe(1);
  } finally {
    for (const db of dbs) await db.destroy();
    await userPool.end();
  }
});

test('a bad schema name is a ConfigError naming `schema`', async () => {
  expect(() => createDb(url, { schema: 'Bad-Name' })).toThrow(ConfigError);
  expect(() => createDb(url, { schema: 'Bad-Name' })).toThrow(/^schema: "Bad-Name"/);
  expect(() => createDb(url, { schema: 'x"; drop table models; --' })).toThrow(ConfigError);
  const db = createDb(url, { schema: A });
  try {
    await expect(migrateToLatest(db, 'Bad-Name')).rejects.toThrow(ConfigError);
    await expect(migrateToLatest(db, 'Bad-Name')).rejects.toThrow(/schema/);
  } finally {
    await db.destroy();
  }
});
