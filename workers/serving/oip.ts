import * as ort from 'onnxruntime-node';
import { BadRequest } from './bad-request';
import { binaryInputs } from './oip-binary';
import { inferRequest, isInferRequest, type InferRequest } from './oip-form';
import { decodeRaw } from './raw-tensors';
import { requestedOutputs, type AnswerShape } from './answer';

export { BadRequest } from './bad-request';

/**
 * Open Inference Protocol (KServe v2) request checks: every request — REST JSON, REST with binary
 * tensors, gRPC — is checked against the model's signature (names, datatypes, shapes, element
 * counts, finiteness) by `checkInfer` before anything reaches onnxruntime, and each problem is
 * named in the error it gets. The transports only decode their wire format into `TensorIn`s.
 */

export interface InputSignature {
  name: string;
  datatype: 'FP32' | 'BYTES' | 'INT64';
  shape: number[];
}


/**
 * One input as a transport gives it. Its elements are decoded only once its name, datatype and
 * shape are checked, so those are what a request gets named first, and `count` (the shape's
 * element count) lets byte-sized encodings check their size against it.
 */
export interface TensorIn {
  name: string;
  datatype: string;
  shape: number[];
  elements(count: number): unknown[];
}

export interface ParsedInfer {
  id?: string;
  rows: number;
  feeds: Record<string, ort.Tensor>;
  /** The request's values by input name, for the prediction log. */
  columns: Record<string, Array<number | string | null>>;
  /** The outputs to answer with, in order: those the request names, else every one the version gives. */
  outputs: string[];
}

const show = (v: unknown) => (typeof v === 'number' || typeof v === 'bigint' ? String(v) : JSON.stringify(v));

/** Checks decoded inputs and the requested outputs against the model's signature and builds onnxruntime feeds. */
export function checkInfer(inputs: TensorIn[], outputs: string[], signature: InputSignature[], maxBatch: number, id: string | undefined, answer: AnswerShape): ParsedInfer {
  const byName = new Map(inputs.map((t) => [t.name, t]));
  if (byName.size !== inputs.length) throw new BadRequest('an input is given twice');
  for (const t of inputs) if (!signature.some((s) => s.name === t.name)) throw new BadRequest(`unexpected input ${JSON.stringify(t.name)}; the model takes ${signature.map((s) => s.name).join(', ')}`);
  let rows: number | undefined;
  const feeds: Record<string, ort.Tensor> = {};
  const columns: ParsedInfer['columns'] = {};
  for (const sig of signature) {
    const t = byName.get(sig.name);
    if (!t) throw new BadRequest(`input ${sig.name} is missing`);
    if (t.datatype !== sig.datatype) throw new BadRequest(`input ${sig.name}: datatype ${t.datatype}, expected ${sig.datatype}`);
    if (t.shape.length !== 2 || t.shape[1] !== 1) throw new BadRequest(`input ${sig.name}: shape [${t.shape.join(', ')}], expected [batch, 1]`);
    const n = t.shape[0]!;
    if (n < 1) throw new BadRequest(`input ${sig.name}: empty batch`);
    if (n > maxBatch) throw new BadRequest(`input ${sig.name}: batch of ${n} is over the limit of ${maxBatch}`);
    if (rows !== undefined && n !== rows) throw new BadRequest(`input ${sig.name}: batch of ${n}, but other inputs have ${rows}`);
    rows = n;
    const data = t.elements(n);
    if (data.length !== n) throw new BadRequest(`input ${sig.name}: ${data.length} elements for shape [${t.shape.join(', ')}] (${n} expected)`);
    if (sig.datatype === 'FP32') {
      const values = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const v = data[i];
        // null is a missing value (the model imputes it); anything else must be a finite number.
        if (v === null) values[i] = NaN;
        else if (typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= 3.4e38) values[i] = v;
        else throw new BadRequest(`input ${sig.name}[${i}]: ${show(v)} is not a finite FP32 number (use null for a missing value)`);
      }
      feeds[sig.name] = new ort.Tensor('float32', values, [n, 1]);
      columns[sig.name] = Array.from(values, (v) => (Number.isNaN(v) ? null : v));
    } else if (sig.datatype === 'INT64') {
      // A timestamp as epoch seconds, from which the graph derives its time features: an INT64 has no missing value.
      const values = new BigInt64Array(n);
      for (let i = 0; i < n; i++) {
        const v = data[i];
        if (typeof v === 'number' && Number.isSafeInteger(v)) values[i] = BigInt(v);
        else throw new BadRequest(`input ${sig.name}[${i}]: ${show(v)} is not an INT64 integer (${sig.name} is a timestamp in whole epoch seconds, UTC; it cannot be missing)`);
      }
      feeds[sig.name] = new ort.Tensor('int64', values, [n, 1]);
      columns[sig.name] = data as number[];
    } else {
      const values: string[] = [];
      for (let i = 0; i < n; i++) {
        const v = data[i];
        if (typeof v !== 'string') throw new BadRequest(`input ${sig.name}[${i}]: ${show(v)} is not a string (BYTES)`);
        if (v.length > 1024) throw new BadRequest(`input ${sig.name}[${i}]: string longer than 1024 characters`);
        values.push(v);
      }
      feeds[sig.name] = new ort.Tensor('string', values, [n, 1]);
      columns[sig.name] = values;
    }
  }
  return { id, rows: rows!, feeds, columns, outputs: requestedOutputs(outputs, answer) };
}

// REST: JSON, with the binary tensor data extension.

export { inferRequest, type InferRequest } from './oip-form';

function flatten(data: unknown[], depth = 0): unknown[] {
  if (depth > 8) throw new BadRequest('data is nested too deeply');
  return data.some(Array.isArray) ? data.flatMap((d) => (Array.isArray(d) ? flatten(d, depth + 1) : [d])) : data;
}

/** zod's verdict, for what the hand check did not pass: its output, or a 400 naming every field at fault. */
function formChecked(body: unknown): InferRequest {
  const parsed = inferRequest.safeParse(body);
  if (!parsed.success) {
    throw new BadRequest(`invalid inference request: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

export interface RestInfer extends ParsedInfer {
  /** The answer's outputs that go as raw bytes after its JSON header (binary tensor data extension). */
  binaryOutputs: string[];
}

/**
 * Validates a REST request: its JSON (the whole body, or the header of a binary one) and, for
 * inputs with `parameters.binary_data_size`, their bytes from `binary` (what follows the header).
 */
export function parseInfer(body: unknown, signature: InputSignature[], maxBatch: number, binary: Buffer | undefined, answer: AnswerShape): RestInfer {
  const req = isInferRequest(body) ? body : formChecked(body);
  const raw = binaryInputs(
    req.inputs.map((t) => ({ name: t.name, size: t.parameters?.binary_data_size, hasData: t.data !== undefined })),
    binary,
  );
  const inputs: TensorIn[] = req.inputs.map((t, i) => ({
    name: t.name,
    datatype: t.datatype,
    shape: t.shape,
    elements: (count) => (t.data ? flatten(t.data) : decodeRaw(t.name, t.datatype, raw[i]!, count, 'binary_data_size')),
  }));
  const out = checkInfer(
    inputs,
    (req.outputs ?? []).map((o) => o.name),
    signature,
    maxBatch,
    req.id,
    answer,
  );
  // An output's own binary_data wins over the request-wide binary_data_output.
  const binaryOutputs = out.outputs.filter((name) => req.outputs?.find((o) => o.name === name)?.parameters?.binary_data ?? req.parameters?.binary_data_output ?? false);
  return { ...out, binaryOutputs };
}
