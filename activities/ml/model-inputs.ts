import type { TimeTransform } from '../../workflows/contracts/training-spec';
import type { FeatureSpec, Table } from './dataset';

/**
 * What a served model takes, from the features it was trained on: one input per raw column.
 * A numeric feature is an FP32 input, a categorical one BYTES; the features derived from a
 * timestamp share one INT64 input, the column as epoch seconds, and the graph derives them.
 * Pure, so clients building requests use the same mapping as training and serving.
 */

export type InputDatatype = 'FP32' | 'BYTES' | 'INT64';

/** onnxruntime's name of each input datatype's tensor type. */
export const ORT_TYPES: Record<InputDatatype, string> = { FP32: 'float32', BYTES: 'string', INT64: 'int64' };

export interface DerivedFeature {
  name: string;
  transform: TimeTransform;
}

export interface ModelInput {
  name: string;
  datatype: InputDatatype;
  /** INT64 timestamp inputs: the features the graph derives from it. */
  derives?: DerivedFeature[];
}

export const isDerived = (f: FeatureSpec): f is FeatureSpec & { column: string; transform: TimeTransform } => f.transform !== undefined && f.column !== undefined;

export function modelInputs(features: FeatureSpec[]): ModelInput[] {
  const inputs: ModelInput[] = [];
  for (const f of features) {
    if (!isDerived(f)) {
      inputs.push({ name: f.name, datatype: f.kind === 'numeric' ? 'FP32' : 'BYTES' });
      continue;
    }
    let input = inputs.find((i) => i.name === f.column && i.derives);
    if (!input) inputs.push((input = { name: f.column, datatype: 'INT64', derives: [] }));
    input.derives!.push({ name: f.name, transform: f.transform });
  }
  return inputs;
}

/** The inverse: the features a stored signature's inputs stand for. */
export function featuresOfInputs(inputs: ReadonlyArray<{ name: string; datatype: string; derives?: DerivedFeature[] }>): FeatureSpec[] {
  return inputs.flatMap((s): FeatureSpec[] =>
    s.derives?.length ? s.derives.map((d) => ({ name: d.name, kind: 'numeric', column: s.name, transform: d.transform })) : [{ name: s.name, kind: s.datatype === 'BYTES' ? 'categorical' : 'numeric' }],
  );
}

/** The timestamp columns the model takes (INT64 inputs), in input order. */
export function timestampColumns(features: FeatureSpec[]): string[] {
  return modelInputs(features).filter((i) => i.derives).map((i) => i.name);
}

/** An ISO time (with its zone) as the model takes it: whole epoch seconds. */
export function epochSeconds(iso: string): number {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) throw new Error(`not a timestamp: ${JSON.stringify(iso)}`);
  return Math.floor(ms / 1000);
}

const SECONDS_PER_DAY = 86_400;

/** The derived value the graph computes (UTC), for code that must see what the model saw (monitoring). NaN stays NaN. */
export function deriveTime(transform: TimeTransform, epoch: number): number {
  if (!Number.isFinite(epoch)) return NaN;
  const days = Math.floor(epoch / SECONDS_PER_DAY);
  if (transform === 'hour') return Math.floor((epoch - days * SECONDS_PER_DAY) / 3600);
  if (transform === 'dayofweek') return (((days + 4) % 7) + 7) % 7;
  return new Date(days * SECONDS_PER_DAY * 1000).getUTCMonth() + 1;
}

/** Rows [start, end) of a table as OIP JSON inputs: what a client sends for them (null for a missing number). */
export function requestInputs(table: Table, features: FeatureSpec[], start: number, end: number): Array<{ name: string; datatype: InputDatatype; shape: number[]; data: Array<number | string | null> }> {
  return modelInputs(features).map((i) => {
    let data: Array<number | string | null>;
    if (i.datatype === 'INT64') data = Array.from(table.timestamps![i.name]!.subarray(start, end), Number);
    else if (i.datatype === 'FP32') data = Array.from(table.numeric[i.name]!.subarray(start, end), (v) => (Number.isNaN(v) ? null : v));
    else data = table.categorical[i.name]!.slice(start, end);
    return { name: i.name, datatype: i.datatype, shape: [end - start, 1], data };
  });
}
