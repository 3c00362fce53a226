import { z } from 'zod';
import { BadRequest } from './bad-request';
import { modelName, versionNumber } from './describe';
import type { InferResult } from './inference';
import type { ParsedInfer, TensorIn } from './oip';
import { answerTensors, encodeTensor, type AnswerTensor } from './answer';
import { decodeRaw, utf8Text } from './raw-tensors';

/**
 * gRPC `ModelInfer` messages (as @grpc/proto-loader decodes them) to and from the checks every
 * transport shares: typed `contents` (`fp32_contents`, `bytes_contents`) or `raw_input_contents`
 * in, and the answer in the same form — raw bytes when the request sent raw bytes.
 */

const bytes = z.instanceof(Uint8Array);
const parameters = z.record(z.string(), z.unknown()).optional();
/** Proto-loader gives every field: repeated ones as arrays (empty when unset), a message as null when unset. */
const contents = z.record(z.string(), z.array(z.unknown())).nullable().optional();

const grpcInferRequest = z.object({
  model_name: z.string().max(256),
  model_version: z.string().max(16),
  id: z.string().max(256),
  parameters,
  inputs: z
    .array(
      z.object({
        name: z.string().min(1).max(256),
        datatype: z.string().min(1).max(16),
        shape: z.array(z.number().int().min(0).max(1_000_000_000)).min(1).max(8),
        parameters,
        contents,
      }),
    )
    .min(1)
    .max(1024),
  outputs: z.array(z.object({ name: z.string().max(256), parameters })),
  raw_input_contents: z.array(bytes),
});

/** Where each datatype's elements go in InferTensorContents. */
const CONTENTS_FIELD: Record<string, string> = { FP32: 'fp32_contents', INT64: 'int64_contents', BYTES: 'bytes_contents' };

export interface GrpcInfer {
  model: string;
  version?: number;
  id?: string;
  inputs: TensorIn[];
  outputs: string[];
  /** The request used raw_input_contents: the answer uses raw_output_contents. */
  raw: boolean;
}

function typedElements(name: string, datatype: string, given: Record<string, unknown[]> | null | undefined, index: number): unknown[] {
  const field = CONTENTS_FIELD[datatype];
  if (!field) throw new BadRequest(`inputs[${index}] (${name}): ${datatype} contents are not supported; the model takes FP32, INT64 and BYTES`);
  for (const [other, values] of Object.entries(given ?? {})) {
    if (other !== field && values.length) throw new BadRequest(`inputs[${index}] (${name}): contents.${other} is given; ${datatype} elements go in contents.${field}`);
  }
  const values = given?.[field] ?? [];
  // Bytes are checked as text here, so a bad element is named by its index like any other.
  return datatype === 'BYTES' ? values.map((v, j) => utf8Text(name, j, v as Uint8Array)) : values;
}

/** Checks a decoded ModelInferRequest's form (the model's signature is checked later, by `checkInfer`). */
export function decodeGrpcInfer(message: unknown): GrpcInfer {
  const parsed = grpcInferRequest.safeParse(message);
  if (!parsed.success) throw new BadRequest(`invalid inference request: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`).join('; ')}`);
  const req = parsed.data;
  if (!req.model_name) throw new BadRequest('model_name is required');
  const raw = req.raw_input_contents.length > 0;
  if (raw) {
    if (req.raw_input_contents.length !== req.inputs.length) throw new BadRequest(`raw_input_contents has ${req.raw_input_contents.length} entries for ${req.inputs.length} inputs; give one per input, in their order`);
    const typed = req.inputs.findIndex((t) => Object.values(t.contents ?? {}).some((v) => v.length));
    if (typed >= 0) throw new BadRequest(`inputs[${typed}] (${req.inputs[typed]!.name}): contents and raw_input_contents cannot both be given`);
  }
  return {
    model: modelName(req.model_name),
    version: req.model_version ? versionNumber(req.model_version) : undefined,
    id: req.id || undefined,
    inputs: req.inputs.map((t, i) => ({
      name: t.name,
      datatype: t.datatype,
      shape: t.shape,
      elements: (count) => (raw ? decodeRaw(t.name, t.datatype, req.raw_input_contents[i]!, count, `raw_input_contents[${i}]`) : typedElements(t.name, t.datatype, t.contents, i)),
    })),
    outputs: req.outputs.map((o) => o.name),
    raw,
  };
}

/** The ModelInferResponse: typed contents, or raw_output_contents for a request that sent raw inputs. */
export function grpcAnswer(model: string, result: InferResult<ParsedInfer>, raw: boolean) {
  const { target, parsed, requestId, probs } = result;
  const tensors = answerTensors(target, parsed.rows, probs, parsed.outputs);
  return {
    model_name: model,
    model_version: String(target.version),
    id: parsed.id ?? requestId,
    outputs: tensors.map(({ name, datatype, shape, data }) => (raw ? { name, datatype, shape } : { name, datatype, shape, contents: typedContents({ name, datatype, shape, data }) })),
    raw_output_contents: raw ? tensors.map(encodeTensor) : [],
  };
}

/** An output's InferTensorContents: the field of its datatype. */
function typedContents(t: AnswerTensor): Record<string, unknown[]> {
  if (t.datatype === 'FP32') return { fp32_contents: Array.from(t.data as Float32Array) };
  if (t.datatype === 'INT64') return { int64_contents: t.data as number[] };
  return { bytes_contents: (t.data as string[]).map((s) => Buffer.from(s, 'utf8')) };
}
