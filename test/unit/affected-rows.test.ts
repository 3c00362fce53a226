import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import { attachLabels, insertPredictions } from '../../infra/db/repositories';
import type { Database } from '../../infra/db/schema';

/**
 * A driver that reports no row count (kysely's DummyDriver answers every statement with rows
 * and nothing else): the prediction log's writes fail instead of reading it as "0 rows written".
 */
const db = new Kysely<Database>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (k) => new PostgresIntrospector(k),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

test('a write whose row count the driver does not report is an error, not 0 rows', async () => {
  const row = { requestId: 'r1', modelId: 'm', modelVersionId: 'v', inputs: {}, outputs: {}, latencyMs: 1 };
  await expect(insertPredictions(db, [row])).rejects.toThrow('prediction_log insert: the database driver reported no row count');
  await expect(attachLabels(db, 'm', [{ requestId: 'r1', label: 1 }])).rejects.toThrow('prediction_log label update: the database driver reported no row count');
  // Nothing to write is 0 without asking the driver.
  await expect(insertPredictions(db, [])).resolves.toBe(0);
});
