import { ProtoWriter } from './protobuf';
import { writeNode, writeValueInfo, type Node, type ValueInfo } from './model';

/**
 * Edits a serialised ONNX model without a protobuf runtime: it walks ModelProto's wire format,
 * copies every field it does not touch byte for byte, and in the graph puts new nodes first,
 * drops the inputs those nodes now produce and declares the new inputs. Any trainer's model —
 * ours or an external one's — gets the same front this way.
 */

interface Field {
  field: number;
  wireType: number;
  /** The field's whole encoding (tag included), to copy as it is. */
  raw: Buffer;
  /** Length-delimited fields: the payload. */
  payload?: Buffer;
  varint?: bigint;
}

function readVarint(buf: Buffer, at: number): { value: bigint; next: number } {
  let value = 0n;
  let shift = 0n;
  for (let i = at; i < buf.length && i < at + 10; i++) {
    const b = buf[i]!;
    value |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) return { value, next: i + 1 };
    shift += 7n;
  }
  throw new Error('ONNX model: truncated varint');
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let at = 0;
  while (at < buf.length) {
    const start = at;
    const tag = readVarint(buf, at);
    at = tag.next;
    const field = Number(tag.value >> 3n);
    const wireType = Number(tag.value & 7n);
    let payload: Buffer | undefined;
    let varint: bigint | undefined;
    if (wireType === 0) ({ value: varint, next: at } = readVarint(buf, at));
    else if (wireType === 1) at += 8;
    else if (wireType === 5) at += 4;
    else if (wireType === 2) {
      const len = readVarint(buf, at);
      at = len.next + Number(len.value);
      payload = buf.subarray(len.next, at);
    } else throw new Error(`ONNX model: wire type ${wireType} of field ${field} is not protobuf this reader knows`);
    if (at > buf.length) throw new Error(`ONNX model: field ${field} runs past the end`);
    out.push({ field, wireType, raw: buf.subarray(start, at), payload, varint });
  }
  return out;
}

const text = (f: Field | undefined) => (f?.payload ? f.payload.toString('utf8') : '');

export interface GraphFront {
  /** Runs before the graph's own nodes. */
  nodes: Node[];
  /** Graph inputs the new nodes produce instead. */
  replaces: string[];
  inputs: ValueInfo[];
  /** The default-domain opset the new nodes need at least. */
  opset: number;
}

// onnx.proto field numbers.
const MODEL_GRAPH = 7;
const MODEL_OPSET = 8;
const GRAPH_NODE = 1;
const GRAPH_INPUT = 11;

/** A ValueInfoProto's name (its field 1). */
const valueName = (f: Field) => text(fields(f.payload!).find((x) => x.field === 1));

export function prependToGraph(model: Uint8Array, front: GraphFront): Buffer {
  const top = fields(Buffer.from(model));
  const graphs = top.filter((f) => f.field === MODEL_GRAPH);
  if (graphs.length !== 1) throw new Error(`ONNX model: ${graphs.length} graphs, expected one`);
  const opsets = top.filter((f) => f.field === MODEL_OPSET).map((f) => {
    const parts = fields(f.payload!);
    return { domain: text(parts.find((p) => p.field === 1)), version: Number(parts.find((p) => p.field === 2)?.varint ?? 0n) };
  });
  const main = opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  if (main && main.version < front.opset) throw new Error(`ONNX model: default opset ${main.version}; the time features need ${front.opset} or later`);

  const graphFields = fields(graphs[0]!.payload!);
  const inputs = new Map(graphFields.filter((f) => f.field === GRAPH_INPUT).map((f) => [f, valueName(f)]));
  const inputNames = [...inputs.values()];
  for (const name of front.replaces) if (!inputNames.includes(name)) throw new Error(`ONNX model: the graph has no input ${name} (inputs: ${inputNames.join(', ')})`);
  for (const v of front.inputs) if (inputNames.includes(v.name) && !front.replaces.includes(v.name)) throw new Error(`ONNX model: the graph already has an input ${v.name}`);

  const graph = new ProtoWriter();
  front.nodes.forEach((n, i) => graph.message(GRAPH_NODE, (w) => writeNode(w, n, i)));
  for (const f of graphFields) {
    if (inputs.has(f) && front.replaces.includes(inputs.get(f)!)) continue;
    graph.raw(f.raw);
  }
  for (const v of front.inputs) graph.message(GRAPH_INPUT, (w) => writeValueInfo(w, v));

  const out = new ProtoWriter();
  for (const f of top) {
    if (f.field === MODEL_GRAPH) out.bytes(MODEL_GRAPH, graph.finish());
    else out.raw(f.raw);
  }
  if (!main) out.message(MODEL_OPSET, (o) => o.varint(2, front.opset));
  return out.finish();
}
