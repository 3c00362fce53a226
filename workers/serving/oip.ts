import * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { HttpError } from '../../infra/http';

/**
 * Open Inference Protocol (KServe v2) request parsing: every request is checked against the
 * model's signature — names, datatypes, shapes, element counts, finiteness — before anything
 * reaches onnxruntime, and each problem is named in the 400 it gets.
 */

export interface InputSignature {
  name: string;
  datatype: 'FP32' | 'BYTES';
  shape: number[];
}

/** A request the protocol refuses (400 unless said otherwise). */
export class BadRequest extends HttpError {
  constructor(message: string, status = 400) {
    super(message, status);
    this.name = 'BadRequest';
  }
}

const tensor = z
  .object({
    name: z.string().min(1).max(256),
    shape: z.array(z.number().int().min(0).max(1_000_000_000)).min(1).max(8),
    datatype: z.string().min(1).max(16),
    data: z.array(z.unknown()),
    parameters: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export const inferRequest = z
  .object({
    id: z.string().max(256).optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    inputs: z.array(tensor).min(1).max(1024),
    outputs: z.array(z.object({ name: z.string(), parameters: z.record(z.string(), z.unknown()).optional() }).strict()).optional(),
  })
  .strict();

export type InferRequest = z.output<typeof inferRequest>;

function flatten(data: unknown[], depth = 0): unknown[] {
  if (depth > 8) throw new BadRequest('data is nested too deeply');
  return data.some(Array.isArray) ? data.flatMap((d) => (Array.isArray(d) ? flatten(d, depth + 1) : [d])) : data;
}

export interface ParsedInfer {
  id?: string;
  rows: number;
  feeds: Record<string, ort.Tensor>;
  /** The request's values by input name, for the prediction log. */
  columns: Record<string, Array<number | string | null>>;
}

/** Validates a parsed JSON body against the model's inputs and builds onnxruntime feeds. */
export function parseInfer(body: unknown, signature: InputSignature[], maxBatch: number): ParsedInfer {
  const parsed = inferRequest.safeParse(body);
  if (!parsed.success) {
    throw new BadRequest(`invalid inference request: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`);
  }
  const req = parsed.data;
  const byName = new Map(req.inputs.map((t) => [t.name, t]));
  if (byName.size !== req.inputs.length) throw new BadRequest('an input is given twice');
  for (const t of req.inputs) if (!signature.some((s) => s.name === t.name)) throw new BadRequest(`unexpected input ${JSON.stringify(t.name)}; the model takes ${signature.map((s) => s.name).join(', ')}`);
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
    const data = flatten(t.data);
    if (data.length !== n) throw new BadRequest(`input ${sig.name}: ${data.length} elements for shape [${t.shape.join(', ')}] (${n} expected)`);
    if (sig.datatype === 'FP32') {
      const values = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const v = data[i];
        // null is a missing value (the model imputes it); anything else must be a finite number.
        if (v === null) values[i] = NaN;
        else if (typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= 3.4e38) values[i] = v;
        else throw new BadRequest(`input ${sig.name}[${i}]: ${JSON.stringify(v)} is not a finite FP32 number (use null for a missing value)`);
      }
      feeds[sig.name] = new ort.Tensor('float32', values, [n, 1]);
      columns[sig.name] = Array.from(values, (v) => (Number.isNaN(v) ? null : v));
    } else {
      const values: string[] = [];
      for (let i = 0; i < n; i++) {
        const v = data[i];
        if (typeof v !== 'string') throw new BadRequest(`input ${sig.name}[${i}]: ${JSON.stringify(v)} is not a string (BYTES)`);
        if (v.length > 1024) throw new BadRequest(`input ${sig.name}[${i}]: string longer than 1024 characters`);
        values.push(v);
      }
      feeds[sig.name] = new ort.Tensor('string', values, [n, 1]);
      columns[sig.name] = values;
    }
  }
  for (const o of req.outputs ?? []) if (o.name !== 'probability') throw new BadRequest(`unknown output ${JSON.stringify(o.name)}; the model gives probability`);
  return { id: req.id, rows: rows!, feeds, columns };
}
