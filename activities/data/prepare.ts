import { createReadStream } from 'node:fs';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { ArtifactStore } from '../../infra/artifacts';
import { taskKind, type FeatureDef, type LabelDef, type SplitDef, type TaskKind } from '../../workflows/contracts/training-spec';
import type { ClassList, FeatureSpec, Table } from '../ml/dataset';
import { timestampColumns } from '../ml/model-inputs';
import { dataError } from '../steps';
import { ident, literal, withDuckDb } from './duck';
import { PARQUET, duckMessage } from './snapshot';
import { MAX_CLASSES, MIN_TEST_ROWS, MIN_TRAIN_ROWS, computeStatistics, type SpanStatistics } from './validate';

/**
 * Prepare: raw columns → model features and the label (0/1, or the target of a regression), split into train and test parquet
 * files (content-addressed artifacts), plus the training split's statistics: the baseline that
 * monitoring compares served traffic with.
 */

export interface SplitRef {
  uri: string;
  sha256: string;
  /** Absent in outputs cached before it was recorded. */
  bytes?: number;
  rows: number;
  /** Binary tasks: rows of the positive class. */
  positives?: number;
  /** Regression: the target's mean and spread on this split. */
  target?: { mean: number; std: number };
  /** Multiclass: rows of each class, in the order of PreparedData.classes. */
  classCounts?: number[];
}

export interface PreparedData {
  train: SplitRef;
  test: SplitRef;
  baseline: { uri: string; sha256: string; bytes?: number };
  features: FeatureSpec[];
  split: string;
  /** Absent for binary, the task of every run prepared before there were kinds (their cache keys stay). */
  task?: Exclude<TaskKind, 'binary'>;
  /** Multiclass: the classes found in the data, in model order (the label column holds each row's index here). */
  classes?: ClassList;
}

export interface PrepareInput {
  snapshot: { uri: string; sha256: string };
  features: FeatureDef[];
  label: LabelDef;
  split: SplitDef;
  sampleRows?: number;
  seed: number;
}

export const LABEL_COLUMN = 'label';

/** The SQL of one feature from its definition: what training, and anything that must feed the model alike, select. */
export function featureExpr(f: FeatureDef): string {
  const col = f.column ?? f.name;
  // From whole epoch seconds in UTC, as the graph derives it from its INT64 input (make_timestamp is UTC whatever the session's time zone).
  if (f.transform) return `${f.transform}(make_timestamp(${epochExpr(col)} * 1000000))::FLOAT`;
  if (f.kind === 'numeric') return `TRY_CAST(${ident(col)} AS FLOAT)`;
  // A missing category is the empty string: unseen in training, so it gets the unknown code.
  return `coalesce(CAST(${ident(col)} AS VARCHAR), '')`;
}

/** A timestamp column as the model takes it: whole epoch seconds (UTC). */
export function epochExpr(column: string): string {
  return `floor(epoch(${ident(column)}))::BIGINT`;
}

/** The features a model is trained on, the derived ones with the timestamp column they come from. */
export function featureSpecs(defs: FeatureDef[]): FeatureSpec[] {
  return defs.map((f) => (f.transform ? { name: f.name, kind: 'numeric', column: f.column ?? f.name, transform: f.transform } : { name: f.name, kind: f.kind }));
}

/** Multiclass: the label's classes are integers when its column is an integer type, or a float type holding only whole numbers. */
type ClassType = 'BIGINT' | 'VARCHAR';

function labelExpr(l: LabelDef, classType?: ClassType): string {
  if (classType) return `CAST(${ident(l.column)} AS ${classType})`;
  const col = `TRY_CAST(${ident(l.column)} AS DOUBLE)`;
  if (taskKind(l) === 'regression') return col;
  return l.greaterThan === undefined ? `(${col} = 1)::UTINYINT` : `(${col} > ${l.greaterThan})::UTINYINT`;
}

type SplitCounts = Pick<SplitRef, 'rows' | 'positives' | 'target'>;

function checkSplit(train: SplitCounts, test: SplitCounts, input: PrepareInput): void {
  const how = input.split.kind === 'time' ? `the time split on ${input.split.column}` : 'the random split';
  if (train.rows < MIN_TRAIN_ROWS || test.rows < MIN_TEST_ROWS) {
    throw dataError(
      `prepare: too few rows for ${how}: ${train.rows + test.rows} labelled rows give ${train.rows} training and ${test.rows} test rows; ` +
        `training needs at least ${MIN_TRAIN_ROWS} and the test split at least ${MIN_TEST_ROWS} (more data, or another split.testFraction)`,
      { overrides: ['dataset', 'split', 'sampleRows'] },
    );
  }
  const label = input.label.column;
  if (taskKind(input.label) === 'multiclass') return;
  for (const [name, s] of [['training', train], ['test', test]] as const) {
    if (taskKind(input.label) === 'regression') {
      if (s.target!.std === 0) {
        throw dataError(`prepare: ${how} leaves label ${label} constant (${s.target!.mean}) in the ${name} split; a regression needs a target that varies (another split, or more data)`, {
          overrides: ['split', 'label', 'dataset'],
        });
      }
      continue;
    }
    if (s.positives === 0 || s.positives === s.rows) {
      throw dataError(
        `prepare: ${how} leaves a single class of label ${label} in the ${name} split (${s.positives} positive of ${s.rows}); ${name === 'training' ? 'training' : 'evaluation'} needs both (another split, more data, or another label.greaterThan)`,
        { overrides: ['split', 'label', 'dataset'] },
      );
    }
  }
}

export async function prepareData(artifacts: ArtifactStore, snapshotPath: string, input: PrepareInput, dir: string): Promise<PreparedData> {
  if (input.features.some((f) => f.name === LABEL_COLUMN)) throw dataError(`features: "${LABEL_COLUMN}" is reserved for the label`, { overrides: ['features'] });
  const features = featureSpecs(input.features);
  // The model takes each timestamp column as an input of its own name, so no feature may have that name too.
  const stamps = timestampColumns(features);
  for (const name of stamps) {
    const clash = features.find((f) => f.name === name) ?? (name === LABEL_COLUMN ? { name } : undefined);
    if (clash) throw dataError(`features: ${clash.name} is the name of the timestamp column that ${features.find((f) => f.column === name && f.transform)!.name} is derived from; the model takes that column as an input, so a feature of the same name needs another name`, { overrides: ['features'] });
  }
  const trainFile = path.join(dir, 'train.parquet');
  const testFile = path.join(dir, 'test.parquet');
  const kind = taskKind(input.label);
  const regression = kind === 'regression';
  const { train, test, baseline, classes } = await withDuckDb(async (c) => {
    const src = `read_parquet(${literal(snapshotPath)}, file_row_number = true)`;
    const rowHash = `hash(file_row_number + ${input.seed} * 1000003)`;
    // A row without its timestamp has nothing the served model could take (an INT64 input has no missing value): it is left out like an unlabelled one.
    const usable = [input.label.column, ...stamps].map((col) => `${ident(col)} IS NOT NULL`).join(' AND ');
    const sampled = input.sampleRows
      ? `(SELECT * FROM (SELECT * FROM ${src} WHERE ${usable} ORDER BY ${rowHash} LIMIT ${input.sampleRows}) ORDER BY file_row_number)`
      : `(SELECT * FROM ${src} WHERE ${usable})`;
    let isTest: string;
    if (input.split.kind === 'time') {
      const col = ident(input.split.column);
      isTest = `${col} >= (SELECT quantile_disc(${col}, ${1 - input.split.testFraction}) FROM ${sampled})`;
    } else {
      isTest = `(hash(file_row_number, ${input.split.seed}) % 1000000) < ${Math.round(input.split.testFraction * 1_000_000)}`;
    }
    const selectFeatures = [...input.features.map((f) => `${featureExpr(f)} AS ${ident(f.name)}`), ...stamps.map((s) => `${epochExpr(s)} AS ${ident(s)}`)].join(', ');
    const classType = kind === 'multiclass' ? await classTypeOf(c, src, input.label.column) : undefined;
    try {
      await c.run(`CREATE TEMP TABLE prepared AS SELECT ${selectFeatures}, ${labelExpr(input.label, classType)} AS ${LABEL_COLUMN}, (${isTest}) AS is_test FROM ${sampled} ORDER BY file_row_number`);
    } catch (err) {
      throw dataError(`prepare: ${duckMessage(err)}`, { overrides: ['features', 'label', 'split', 'dataset'] });
    }
    const classed = classType ? await classesOf(c, input, classType) : undefined;
    // Multiclass files hold each row's class index: what the trainers fit and the graph's outputs index.
    const labelOut = classed ? `(list_position(${classed.list}, ${LABEL_COLUMN}) - 1)::INTEGER AS ${LABEL_COLUMN}` : LABEL_COLUMN;
    const cols = [...input.features.map((f) => ident(f.name)), ...stamps.map(ident), labelOut].join(', ');
    await c.run(`COPY (SELECT ${cols} FROM prepared WHERE NOT is_test) TO ${literal(trainFile)} (FORMAT parquet, COMPRESSION zstd)`);
    await c.run(`COPY (SELECT ${cols} FROM prepared WHERE is_test) TO ${literal(testFile)} (FORMAT parquet, COMPRESSION zstd)`);
    const counts = (
      await c.runAndReadAll(
        classType
          ? `SELECT is_test, count(*)::DOUBLE AS n FROM prepared GROUP BY is_test`
          : `SELECT is_test, count(*)::DOUBLE AS n, sum(${LABEL_COLUMN})::DOUBLE AS pos, avg(${LABEL_COLUMN})::DOUBLE AS mean, stddev_pop(${LABEL_COLUMN})::DOUBLE AS std FROM prepared GROUP BY is_test`,
      )
    ).getRowObjectsJson();
    // A split with no rows has none of these: 0 rows, which checkSplit names.
    const of = (t: boolean): SplitCounts => {
      const r = counts.find((x) => Boolean(x.is_test) === t);
      if (classType) return { rows: r ? Number(r.n) : 0 };
      if (!r) return regression ? { rows: 0, target: { mean: NaN, std: NaN } } : { rows: 0, positives: 0 };
      return regression ? { rows: Number(r.n), target: { mean: Number(r.mean), std: Number(r.std) } } : { rows: Number(r.n), positives: Number(r.pos) };
    };
    const train = { ...of(false), ...(classed ? { classCounts: classed.counts.false } : {}) };
    const test = { ...of(true), ...(classed ? { classCounts: classed.counts.true } : {}) };
    checkSplit(train, test, input);
    const baseline = await computeStatistics(c, `(SELECT ${input.features.map((f) => ident(f.name)).join(', ')} FROM read_parquet(${literal(trainFile)}))`);
    return { train, test, baseline, classes: classed?.classes };
  });
  const putFile = async (file: string) => artifacts.putContent(createReadStream(file), { mediaType: PARQUET });
  const [trainPut, testPut] = [await putFile(trainFile), await putFile(testFile)];
  const baselinePut = await artifacts.putContent(JSON.stringify({ kind: 'training-baseline', features, statistics: baseline } satisfies Baseline), { mediaType: 'application/json' });
  return {
    train: { uri: trainPut.uri, sha256: trainPut.sha256, bytes: trainPut.bytes, ...train },
    test: { uri: testPut.uri, sha256: testPut.sha256, bytes: testPut.bytes, ...test },
    baseline: { uri: baselinePut.uri, sha256: baselinePut.sha256, bytes: baselinePut.bytes },
    features,
    split: input.split.kind === 'time' ? `time on ${input.split.column}, last ${input.split.testFraction} as test` : `random (seed ${input.split.seed}), ${input.split.testFraction} as test`,
    ...(kind === 'binary' ? {} : { task: kind }),
    ...(classes ? { classes } : {}),
  };
}

const INTEGER_TYPES = new Set(['TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'UTINYINT', 'USMALLINT', 'UINTEGER', 'UBIGINT', 'HUGEINT', 'UHUGEINT']);

/** Integer classes for an integer column, or a float one whose values are all whole (validation rejects the others); strings otherwise. */
async function classTypeOf(c: DuckDBConnection, src: string, column: string): Promise<ClassType> {
  const type = String((await c.runAndReadAll(`SELECT typeof(${ident(column)}) AS t FROM ${src} LIMIT 1`)).getRowObjectsJson()[0]?.t ?? 'VARCHAR');
  if (INTEGER_TYPES.has(type)) return 'BIGINT';
  if (!/^(FLOAT|DOUBLE|DECIMAL)/.test(type)) return 'VARCHAR';
  const q = ident(column);
  const fractional = Number((await c.runAndReadAll(`SELECT count(*) FILTER (WHERE NOT (isfinite(${q}::DOUBLE) AND ${q}::DOUBLE = floor(${q}::DOUBLE)))::DOUBLE AS n FROM ${src}`)).getRowObjectsJson()[0]!.n);
  if (fractional > 0) throw dataError(`prepare: label ${column}: ${fractional} rows are not whole numbers; a class is a string or an integer (label.kind regression predicts a number)`, { overrides: ['label', 'dataset'] });
  return 'BIGINT';
}

/**
 * The classes of the prepared rows (sorted: integers ascending, strings by JavaScript's order)
 * and each split's count of each. A class the training split lacks could never be predicted,
 * and a task needs two: both are data errors naming the label.
 */
async function classesOf(c: DuckDBConnection, input: PrepareInput, type: ClassType): Promise<{ classes: ClassList; list: string; counts: Record<'true' | 'false', number[]> }> {
  const rows = (await c.runAndReadAll(`SELECT ${LABEL_COLUMN}::VARCHAR AS v, is_test, count(*)::DOUBLE AS n FROM prepared GROUP BY ALL`)).getRowObjectsJson();
  const names = [...new Set(rows.map((r) => String(r.v)))];
  const label = input.label.column;
  if (names.length > MAX_CLASSES) throw dataError(`prepare: label ${label}: ${names.length} distinct values; a multiclass task takes at most ${MAX_CLASSES} classes`, { overrides: ['label', 'dataset'] });
  const classes: ClassList = type === 'BIGINT' ? names.map(Number).sort((a, b) => a - b) : names.sort();
  if (type === 'BIGINT' && (classes as number[]).some((v) => !Number.isSafeInteger(v))) {
    throw dataError(`prepare: label ${label}: a class beyond ±2^53 (${names.find((v) => !Number.isSafeInteger(Number(v)))}); integer classes must be exact in JSON`, { overrides: ['label', 'dataset'] });
  }
  const index = new Map(classes.map((v, i) => [String(v), i]));
  const counts = { true: new Array<number>(classes.length).fill(0), false: new Array<number>(classes.length).fill(0) };
  for (const r of rows) counts[r.is_test ? 'true' : 'false'][index.get(String(r.v))!] = Number(r.n);
  if (classes.length < 2) {
    throw dataError(`prepare: label ${label} has a single class (${String(classes[0] ?? 'none')}) in the prepared rows; a multiclass task needs at least two (another label, or more data)`, {
      overrides: ['label', 'dataset'],
    });
  }
  const missing = classes.filter((_, i) => counts.false[i] === 0);
  if (missing.length) {
    throw dataError(`prepare: class ${missing.map((v) => JSON.stringify(v)).join(', ')} of label ${label} is in the test split only: the model could never predict it (another split, or more data)`, {
      overrides: ['split', 'dataset'],
    });
  }
  const list = `[${classes.map((v) => (type === 'BIGINT' ? `${v}::BIGINT` : literal(String(v)))).join(', ')}]`;
  return { classes, list, counts };
}

/** The training baseline artifact (read by monitoring). */
export interface Baseline {
  kind: 'training-baseline';
  features: FeatureSpec[];
  statistics: SpanStatistics;
}

/** Reads a prepared split into the trainers' in-memory columnar table. */
/** `maxRows`: a sample of about that many rows; `task` reads the label as 0/1 (binary, the default) or as the number. */
export async function loadTable(file: string, features: FeatureSpec[], c?: DuckDBConnection, opts: { maxRows?: number; task?: TaskKind; classes?: ClassList } = {}): Promise<Table> {
  const task = opts.task ?? 'binary';
  if (task === 'multiclass' && !opts.classes?.length) throw new Error(`${file}: a multiclass table needs the prepared classes`);
  const run = async (conn: DuckDBConnection): Promise<Table> => {
    const stamps = timestampColumns(features);
    const cols = [...features.map((f) => ident(f.name)), ...stamps.map(ident), LABEL_COLUMN].join(', ');
    let from = `read_parquet(${literal(file)})`;
    if (opts.maxRows !== undefined) {
      // Every k-th row by file position: the same file always gives the same sample (DuckDB's
      // reservoir sampling is not repeatable across threads).
      const total = Number((await conn.runAndReadAll(`SELECT count(*)::DOUBLE AS n FROM ${from}`)).getRowObjectsJson()[0]!.n);
      const step = Math.max(1, Math.ceil(total / opts.maxRows));
      from = `read_parquet(${literal(file)}, file_row_number = true) WHERE file_row_number % ${step} = 0 ORDER BY file_row_number`;
    }
    const reader = await conn.runAndReadAll(`SELECT ${cols} FROM ${from}`);
    const columns = reader.getColumns();
    const rows = reader.currentRowCount;
    const label = task === 'regression' ? new Float64Array(rows) : task === 'multiclass' ? new Int32Array(rows) : new Uint8Array(rows);
    const table: Table = { rows, features, numeric: {}, categorical: {}, label, task, ...(task === 'multiclass' ? { classes: opts.classes } : {}) };
    features.forEach((f, j) => {
      const values = columns[j]!;
      if (f.kind === 'numeric') {
        const out = new Float32Array(rows);
        for (let i = 0; i < rows; i++) {
          const v = values[i];
          out[i] = v === null || v === undefined ? NaN : Number(v);
        }
        table.numeric[f.name] = out;
      } else {
        table.categorical[f.name] = values.map((v) => (v === null || v === undefined ? '' : String(v)));
      }
    });
    if (stamps.length) {
      table.timestamps = {};
      stamps.forEach((name, k) => {
        const values = columns[features.length + k]!;
        const out = new BigInt64Array(rows);
        for (let i = 0; i < rows; i++) {
          const v = values[i];
          if (v === null || v === undefined) throw new Error(`${file}: timestamp ${name} is missing in row ${i}; prepare leaves such rows out`);
          out[i] = BigInt(v as bigint | number);
        }
        table.timestamps![name] = out;
      });
    }
    const labels = columns[features.length + stamps.length]!;
    if (task === 'multiclass') {
      const k = opts.classes!.length;
      for (let i = 0; i < rows; i++) {
        const v = Number(labels[i]);
        if (!(v >= 0 && v < k)) throw new Error(`${file}: row ${i} has class index ${String(labels[i])}; the model has ${k} classes`);
        label[i] = v;
      }
    } else if (task === 'regression') for (let i = 0; i < rows; i++) label[i] = Number(labels[i]);
    else for (let i = 0; i < rows; i++) label[i] = Number(labels[i]) ? 1 : 0;
    return table;
  };
  return c ? run(c) : withDuckDb(run);
}
