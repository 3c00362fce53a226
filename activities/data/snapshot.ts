import { createReadStream, existsSync } from 'node:fs';
import path from 'node:path';
import { heartbeat } from '@temporalio/activity';
import type { Kysely } from 'kysely';
import type { ArtifactStore } from '../../infra/artifacts';
import type { Config } from '../../infra/config';
import type { Database } from '../../infra/db/schema';
import { recordArtifact } from '../../infra/db/repositories';
import { PROJECT_ROOT } from '../../infra/paths';
import { BUNDLED_DATASETS, type DatasetDef } from '../../workflows/contracts/training-spec';
import { DATASET_FIX } from '../../workflows/contracts/step-fix';
import { dataError } from '../steps';
import { literal, readExpr, withDuckDb } from './duck';
import { fetchSource, hashFile, withTempDir } from './sources';

/**
 * Snapshot: pins a run's input. Whatever the sources (parquet or CSV, local or S3, or a month
 * range of the bundled flights data), the result is one parquet file in the artifact store,
 * addressed by its sha256 — the identity every later step, the step cache and lineage use.
 */

export interface SnapshotRef {
  uri: string;
  sha256: string;
  bytes: number;
  rows: number;
  columns: Array<{ name: string; type: string }>;
  sources: Array<{ uri: string; sha256: string; bytes: number }>;
}

export const PARQUET = 'application/vnd.apache.parquet';

/** A file of the vega-datasets package. */
function vegaDataPath(name: string, what: string): string {
  // Resolved like any dependency, so it is found in a checkout and when we are installed under a user's node_modules.
  let file: string;
  try {
    file = path.join(path.dirname(require.resolve('vega-datasets')), '..', 'data', name);
  } catch {
    file = path.join(PROJECT_ROOT, 'node_modules', 'vega-datasets', 'data', name);
  }
  if (!existsSync(file)) throw new Error(`bundled ${what} not found at ${file} (is the vega-datasets package installed? run npm install)`);
  return file;
}

export function flightsParquetPath(): string {
  return vegaDataPath('flights-3m.parquet', 'flights data');
}

function formatOf(uri: string, explicit?: 'parquet' | 'csv'): 'parquet' | 'csv' {
  if (explicit) return explicit;
  if (/\.(parquet|pq)$/i.test(uri)) return 'parquet';
  if (/\.(csv|csv\.gz)$/i.test(uri)) return 'csv';
  throw dataError(`dataset ${uri}: cannot tell the format from the name; set dataset.format to parquet or csv`, DATASET_FIX);
}

/** DuckDB's message without its internal prefix. */
export function duckMessage(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/^[A-Za-z ]*Error: /, '').split('\n')[0]!;
}

export async function snapshotDataset(deps: { config: Config; artifacts: ArtifactStore; db: Kysely<Database> }, dataset: DatasetDef): Promise<SnapshotRef> {
  return withTempDir('snapshot', async (dir) => {
    let files: Array<{ path: string; format: 'parquet' | 'csv'; uri: string; sha256: string; bytes: number }>;
    let where = '';
    if ('bundled' in dataset) {
      const name = BUNDLED_DATASETS[dataset.bundled];
      const file = vegaDataPath(name, `dataset ${dataset.bundled}`);
      const h = await hashFile(file);
      files = [{ path: file, format: formatOf(name), uri: `vega-datasets:${name}`, sha256: h.sha256, bytes: h.bytes }];
    } else if ('flights' in dataset) {
      const file = flightsParquetPath();
      const h = await hashFile(file);
      files = [{ path: file, format: 'parquet', uri: `vega-datasets:flights-3m.parquet`, sha256: h.sha256, bytes: h.bytes }];
      const [fy, fm] = dataset.flights.from.split('-').map(Number) as [number, number];
      const [ty, tm] = dataset.flights.to.split('-').map(Number) as [number, number];
      const end = tm === 12 ? `${ty + 1}-01-01` : `${ty}-${String(tm + 1).padStart(2, '0')}-01`;
      where = `WHERE "date" >= TIMESTAMP '${fy}-${String(fm).padStart(2, '0')}-01' AND "date" < TIMESTAMP '${end}'`;
    } else {
      files = [];
      for (const uri of dataset.uris) {
        const format = formatOf(uri, dataset.format);
        const got = await fetchSource(uri, deps, dir);
        files.push({ path: got.path, format, uri, sha256: got.sha256, bytes: got.bytes });
        heartbeat({ fetched: files.length, of: dataset.uris.length });
      }
      const formats = new Set(files.map((f) => f.format));
      if (formats.size > 1) throw dataError('dataset: mixes parquet and CSV files; give one format per run', DATASET_FIX);
    }
    const out = path.join(dir, 'snapshot.parquet');
    const { rows, columns } = await withDuckDb(async (c) => {
      let described;
      try {
        described = await c.runAndReadAll(`DESCRIBE SELECT * FROM ${readExpr(files)}`);
      } catch (err) {
        const which = files.length === 1 ? files[0]!.uri : files.map((f) => f.uri).join(', ');
        throw dataError(`dataset ${which}: cannot read as ${files[0]!.format}: ${duckMessage(err)}`, DATASET_FIX);
      }
      const columns = described.getRowObjectsJson().map((r) => ({ name: String(r.column_name), type: String(r.column_type) }));
      try {
        // Insertion order is preserved, so the same sources give the same rows in the same order.
        await c.run(`COPY (SELECT * FROM ${readExpr(files)} ${where}) TO ${literal(out)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)`);
      } catch (err) {
        throw dataError(`dataset: reading failed: ${duckMessage(err)}`, DATASET_FIX);
      }
      const counted = await c.runAndReadAll(`SELECT count(*)::DOUBLE AS n FROM read_parquet(${literal(out)})`);
      return { rows: Number(counted.getRowObjectsJson()[0]!.n), columns };
    });
    const h = await hashFile(out);
    const put = await deps.artifacts.putContent(createReadStream(out), { mediaType: PARQUET });
    if (put.sha256 !== h.sha256) throw new Error(`snapshot changed while uploading (${h.sha256} → ${put.sha256})`);
    await recordArtifact(deps.db, { uri: put.uri, sha256: put.sha256, bytes: put.bytes, media_type: PARQUET, producing_step_run_id: null });
    return {
      uri: put.uri,
      sha256: put.sha256,
      bytes: put.bytes,
      rows,
      columns,
      sources: files.map((f) => ({ uri: f.uri, sha256: f.sha256, bytes: f.bytes })),
    };
  });
}
