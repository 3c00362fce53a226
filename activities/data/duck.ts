import os from 'node:os';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { COLUMN } from '../../workflows/contracts/training-spec';

/**
 * DuckDB, the columnar engine behind snapshot, validation and preparation: one in-memory
 * instance per activity call, so nothing is shared between concurrent steps.
 */
export async function withDuckDb<T>(fn: (c: DuckDBConnection) => Promise<T>, opts: { threads?: number } = {}): Promise<T> {
  const instance = await DuckDBInstance.create(':memory:', {
    threads: String(opts.threads ?? Math.max(1, os.availableParallelism())),
    // Runs on workers next to other steps: do not let one query take most of the machine's memory.
    memory_limit: `${Math.max(512, Math.floor(os.totalmem() / 1024 / 1024 / 4))}MB`,
  });
  const conn = await instance.connect();
  try {
    return await fn(conn);
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** A validated column name, double-quoted for SQL. */
export function ident(name: string): string {
  if (!COLUMN.test(name)) throw new Error(`not a column name: ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/** A SQL string literal (file paths we created ourselves). */
export function literal(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

export function readExpr(files: Array<{ path: string; format: 'parquet' | 'csv' }>): string {
  const format = files[0]!.format;
  const list = `[${files.map((f) => literal(f.path)).join(', ')}]`;
  return format === 'parquet' ? `read_parquet(${list}, union_by_name = true)` : `read_csv(${list}, union_by_name = true, header = true)`;
}

export type ColumnKind = 'numeric' | 'string' | 'timestamp' | 'boolean' | 'other';

export function kindOfDuckType(type: string): ColumnKind {
  const t = type.toUpperCase();
  if (/^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|REAL|DECIMAL)/.test(t)) return 'numeric';
  if (/^(VARCHAR|TEXT|STRING|CHAR)/.test(t)) return 'string';
  if (/^(TIMESTAMP|DATE|TIME)/.test(t)) return 'timestamp';
  if (t === 'BOOLEAN') return 'boolean';
  return 'other';
}
