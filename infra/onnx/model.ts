import { ProtoWriter } from './protobuf';

/** A small, typed ONNX graph builder that serialises ModelProto (onnx.proto field numbers). */

export const TensorType = { FLOAT: 1, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, DOUBLE: 11 } as const;
export type TensorTypeName = keyof typeof TensorType;

export type Dim = number | string;

export interface ValueInfo {
  name: string;
  type: TensorTypeName;
  shape: Dim[];
}

export interface Tensor {
  name: string;
  type: 'FLOAT' | 'INT64' | 'STRING' | 'DOUBLE' | 'INT32';
  dims: number[];
  values: ArrayLike<number> | string[];
}

export type AttributeValue =
  | { kind: 'float'; value: number }
  | { kind: 'int'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'floats'; value: ArrayLike<number> }
  | { kind: 'ints'; value: ArrayLike<number> }
  | { kind: 'strings'; value: string[] }
  | { kind: 'tensor'; value: Tensor };

export interface Node {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attributes?: Record<string, AttributeValue>;
}

export interface ModelSpec {
  graphName: string;
  nodes: Node[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers?: Tensor[];
  /** Opsets by domain; '' is the default ONNX domain, 'ai.onnx.ml' the ML operators. */
  opsets?: Record<string, number>;
  producer?: { name: string; version: string };
  metadata?: Record<string, string>;
  docString?: string;
}

const IR_VERSION = 8;
const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7, strings: 8 } as const;

function writeTensor(w: ProtoWriter, t: Tensor): void {
  w.packedVarints(1, t.dims);
  w.varint(2, TensorType[t.type]);
  w.string(8, t.name);
  if (t.type === 'STRING') {
    for (const s of t.values as string[]) w.bytes(6, s);
  } else if (t.type === 'FLOAT') {
    w.packedFloats(4, t.values as ArrayLike<number>);
  } else if (t.type === 'DOUBLE') {
    w.packedDoubles(10, t.values as ArrayLike<number>);
  } else if (t.type === 'INT64') {
    w.packedVarints(7, t.values as ArrayLike<number>);
  } else {
    w.packedVarints(5, t.values as ArrayLike<number>);
  }
}

export function writeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.varint(1, TensorType[v.type]);
      tensor.message(2, (shape) => {
        for (const d of v.shape) shape.message(1, (dim) => (typeof d === 'number' ? dim.varint(1, d) : dim.string(2, d)));
      });
    }),
  );
}

function writeAttribute(w: ProtoWriter, name: string, a: AttributeValue): void {
  w.string(1, name);
  switch (a.kind) {
    case 'float':
      w.float(2, a.value);
      break;
    case 'int':
      w.varint(3, a.value);
      break;
    case 'string':
      w.bytes(4, a.value);
      break;
    case 'tensor':
      w.message(5, (t) => writeTensor(t, a.value));
      break;
    case 'floats':
      w.packedFloats(7, a.value);
      break;
    case 'ints':
      w.packedVarints(8, a.value);
      break;
    case 'strings':
      for (const s of a.value) w.bytes(9, s);
      break;
  }
  w.varint(20, ATTR_TYPE[a.kind]);
}

/** A NodeProto's fields (graph field 1). */
export function writeNode(w: ProtoWriter, n: Node, index: number): void {
  for (const input of n.inputs) w.string(1, input);
  for (const output of n.outputs) w.string(2, output);
  w.string(3, n.name ?? `${n.opType}_${index}`);
  w.string(4, n.opType);
  for (const [name, attr] of Object.entries(n.attributes ?? {})) w.message(5, (a) => writeAttribute(a, name, attr));
  if (n.domain) w.string(7, n.domain);
}

export function serializeModel(spec: ModelSpec): Buffer {
  const w = new ProtoWriter();
  w.varint(1, IR_VERSION);
  w.string(2, spec.producer?.name ?? 'temporal-mlops');
  w.string(3, spec.producer?.version ?? '0');
  if (spec.docString) w.string(6, spec.docString);
  w.message(7, (g) => {
    spec.nodes.forEach((n, i) => g.message(1, (node) => writeNode(node, n, i)));
    g.string(2, spec.graphName);
    for (const t of spec.initializers ?? []) g.message(5, (tw) => writeTensor(tw, t));
    for (const v of spec.inputs) g.message(11, (vw) => writeValueInfo(vw, v));
    for (const v of spec.outputs) g.message(12, (vw) => writeValueInfo(vw, v));
  });
  for (const [domain, version] of Object.entries(spec.opsets ?? { '': 17 })) {
    w.message(8, (o) => {
      if (domain) o.string(1, domain);
      o.varint(2, version);
    });
  }
  for (const [key, value] of Object.entries(spec.metadata ?? {})) {
    w.message(14, (e) => e.string(1, key).string(2, value));
  }
  return w.finish();
}

/** y = sigmoid(x·W + b): the smallest useful model, used by the platform check. */
export function logisticModel(weights: number[], bias: number): Buffer {
  const n = weights.length;
  return serializeModel({
    graphName: 'logistic',
    inputs: [{ name: 'x', type: 'FLOAT', shape: ['batch', n] }],
    outputs: [{ name: 'probability', type: 'FLOAT', shape: ['batch', 1] }],
    initializers: [
      { name: 'W', type: 'FLOAT', dims: [n, 1], values: weights },
      { name: 'b', type: 'FLOAT', dims: [1], values: [bias] },
    ],
    nodes: [
      { opType: 'MatMul', inputs: ['x', 'W'], outputs: ['logit_raw'] },
      { opType: 'Add', inputs: ['logit_raw', 'b'], outputs: ['logit'] },
      { opType: 'Sigmoid', inputs: ['logit'], outputs: ['probability'] },
    ],
    opsets: { '': 17 },
  });
}
