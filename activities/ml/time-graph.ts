import { prependToGraph, type GraphFront } from '../../infra/onnx/graph-edit';
import type { Node } from '../../infra/onnx/model';
import type { FeatureSpec } from './dataset';
import { modelInputs, type DerivedFeature } from './model-inputs';

/**
 * The time features inside the graph: an INT64 input of epoch seconds becomes hour, day of
 * week and month (UTC) in integer arithmetic, exact for any date (a FLOAT input would round
 * epoch seconds to 128 s). Month is Howard Hinnant's days-to-civil algorithm; floor division
 * is `(x - Mod(x, d)) / d`, since ONNX's integer Div truncates and Mod takes the divisor's sign.
 */

/** Mod (opset 10) and the int64 arithmetic this front uses. */
const OPSET = 13;

function nodesFor(column: string, derives: DerivedFeature[]): Node[] {
  const nodes: Node[] = [];
  const p = `mlops_time.${column}`;
  let n = 0;
  const constant = (value: number) => {
    const name = `${p}.c${value}`;
    if (!nodes.some((x) => x.outputs[0] === name)) nodes.push({ opType: 'Constant', inputs: [], outputs: [name], name: `${p}.const${value}`, attributes: { value: { kind: 'tensor', value: { name: '', type: 'INT64', dims: [], values: [value] } } } });
    return name;
  };
  const op = (opType: string, a: string, b: number | string, attributes?: Node['attributes']) => {
    const out = `${p}.t${n++}`;
    nodes.push({ opType, inputs: [a, typeof b === 'number' ? constant(b) : b], outputs: [out], name: `${p}.${opType.toLowerCase()}${n}`, ...(attributes ? { attributes } : {}) });
    return out;
  };
  const mod = (a: string, d: number) => op('Mod', a, d, { fmod: { kind: 'int', value: 0 } });
  const cast = (from: string, to: string) => nodes.push({ opType: 'Cast', inputs: [from], outputs: [to], name: `${p}.${to}`, attributes: { to: { kind: 'int', value: 1 } } });

  const secondOfDay = mod(column, 86_400);
  const days = op('Div', op('Sub', column, secondOfDay), 86_400);
  for (const d of derives) {
    if (d.transform === 'hour') cast(op('Div', secondOfDay, 3600), d.name);
    else if (d.transform === 'dayofweek') cast(mod(op('Add', days, 4), 7), d.name);
    else {
      const z = op('Add', days, 719_468);
      const doe = mod(z, 146_097);
      // yoe = (doe - doe/1460 + doe/36524 - doe/146096) / 365
      const yoe = op('Div', op('Sub', op('Add', op('Sub', doe, op('Div', doe, 1460)), op('Div', doe, 36_524)), op('Div', doe, 146_096)), 365);
      // doy = doe - (365·yoe + yoe/4 - yoe/100)
      const doy = op('Sub', doe, op('Sub', op('Add', op('Mul', yoe, 365), op('Div', yoe, 4)), op('Div', yoe, 100)));
      const mp = op('Div', op('Add', op('Mul', doy, 5), 2), 153);
      cast(op('Add', mod(op('Add', mp, 2), 12), 1), d.name);
    }
  }
  return nodes;
}

/** The front for a model's timestamp inputs; undefined when no feature is derived. */
export function timeFront(features: FeatureSpec[]): GraphFront | undefined {
  const stamps = modelInputs(features).filter((i) => i.derives);
  if (!stamps.length) return undefined;
  return {
    nodes: stamps.flatMap((s) => nodesFor(s.name, s.derives!)),
    replaces: stamps.flatMap((s) => s.derives!.map((d) => d.name)),
    inputs: stamps.map((s) => ({ name: s.name, type: 'INT64', shape: ['batch', 1] })),
    opset: OPSET,
  };
}

/**
 * A trainer's model (derived features as FLOAT inputs) as it is served: taking the timestamp
 * columns themselves. Unchanged when no feature is derived.
 */
export function withTimeInputs(onnx: Uint8Array, features: FeatureSpec[]): Buffer {
  const front = timeFront(features);
  return front ? prependToGraph(onnx, front) : Buffer.from(onnx);
}
