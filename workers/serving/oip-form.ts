import { z } from 'zod';

/**
 * The form of a REST inference request (before the model's signature is checked). zod states
 * the rules and words every refusal; `isInferRequest` checks the same rules by hand, because
 * running the schema on every request cost more than the rest of the validation together. It
 * only ever says yes to what the schema accepts; on anything else the caller asks the schema,
 * so a refused request gets zod's message, and a request the hand check is unsure of still
 * gets zod's verdict.
 */

const tensor = z
  .object({
    name: z.string().min(1).max(256),
    shape: z.array(z.number().int().min(0).max(1_000_000_000)).min(1).max(8),
    datatype: z.string().min(1).max(16),
    data: z.array(z.unknown()).optional(),
    parameters: z.looseObject({ binary_data_size: z.number().int().min(0).max(2 ** 31).optional() }).optional(),
  })
  .strict();

export const inferRequest = z
  .object({
    id: z.string().max(256).optional(),
    parameters: z.looseObject({ binary_data_output: z.boolean().optional() }).optional(),
    inputs: z.array(tensor).min(1).max(1024),
    outputs: z.array(z.object({ name: z.string(), parameters: z.looseObject({ binary_data: z.boolean().optional() }).optional() }).strict()).optional(),
  })
  .strict();

export type InferRequest = z.output<typeof inferRequest>;

type Obj = Record<string, unknown>;

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
/** Own keys all among `allowed` (what `.strict()` demands). */
function onlyKeys(o: Obj, allowed: ReadonlySet<string>): boolean {
  for (const k of Object.keys(o)) if (!allowed.has(k)) return false;
  return true;
}
const isInt = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;
const isText = (v: unknown, min: number, max: number): boolean => typeof v === 'string' && v.length >= min && v.length <= max;

const REQUEST_KEYS = new Set(['id', 'parameters', 'inputs', 'outputs']);
const TENSOR_KEYS = new Set(['name', 'shape', 'datatype', 'data', 'parameters']);
const OUTPUT_KEYS = new Set(['name', 'parameters']);

function isTensor(t: unknown): boolean {
  if (!isObject(t) || !onlyKeys(t, TENSOR_KEYS)) return false;
  if (!isText(t.name, 1, 256) || !isText(t.datatype, 1, 16)) return false;
  const shape = t.shape;
  if (!Array.isArray(shape) || shape.length < 1 || shape.length > 8) return false;
  for (const d of shape) if (!isInt(d, 0, 1_000_000_000)) return false;
  if (t.data !== undefined && !Array.isArray(t.data)) return false;
  const p = t.parameters;
  if (p !== undefined && (!isObject(p) || (p.binary_data_size !== undefined && !isInt(p.binary_data_size, 0, 2 ** 31)))) return false;
  return true;
}

function isOutput(o: unknown): boolean {
  if (!isObject(o) || !onlyKeys(o, OUTPUT_KEYS) || typeof o.name !== 'string') return false;
  const p = o.parameters;
  return p === undefined || (isObject(p) && (p.binary_data === undefined || typeof p.binary_data === 'boolean'));
}

/** True only for a body `inferRequest` accepts as it is (the schema's output equals its input then). */
export function isInferRequest(body: unknown): body is InferRequest {
  if (!isObject(body) || !onlyKeys(body, REQUEST_KEYS)) return false;
  if (body.id !== undefined && !isText(body.id, 0, 256)) return false;
  const p = body.parameters;
  if (p !== undefined && (!isObject(p) || (p.binary_data_output !== undefined && typeof p.binary_data_output !== 'boolean'))) return false;
  const inputs = body.inputs;
  if (!Array.isArray(inputs) || inputs.length < 1 || inputs.length > 1024) return false;
  for (const t of inputs) if (!isTensor(t)) return false;
  const outputs = body.outputs;
  if (outputs !== undefined) {
    if (!Array.isArray(outputs)) return false;
    for (const o of outputs) if (!isOutput(o)) return false;
  }
  return true;
}
