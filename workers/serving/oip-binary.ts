import { BadRequest } from './bad-request';

/**
 * The OIP binary tensor data extension (KServe/Triton `binary_data`) on REST: the body is a JSON
 * header of `Inference-Header-Content-Length` bytes followed by raw tensor bytes; each input
 * with `parameters.binary_data_size` takes that many of them, in the order of `inputs`. Answers
 * are laid out the same way when binary outputs are asked for. Pure functions, so the byte
 * accounting is tested apart from the server.
 */

export const HEADER_LENGTH = 'inference-header-content-length';
export const BINARY_CONTENT_TYPE = 'application/octet-stream';
/** The name servers advertise in their metadata's `extensions`. */
export const BINARY_EXTENSION = 'binary_tensor_data';

/** Splits a binary request's body into its JSON header and the tensor bytes after it. */
export function splitBinaryBody(body: Buffer, headerLength: string): { json: unknown; binary: Buffer } {
  if (!/^[0-9]{1,10}$/.test(headerLength.trim())) throw new BadRequest(`Inference-Header-Content-Length ${JSON.stringify(headerLength)} is not a byte count`);
  const n = Number(headerLength.trim());
  if (n === 0) throw new BadRequest('Inference-Header-Content-Length is 0; the JSON inference header is required');
  if (n > body.length) throw new BadRequest(`Inference-Header-Content-Length says the JSON header is ${n} bytes, but the body has only ${body.length}`);
  let json: unknown;
  try {
    json = JSON.parse(body.subarray(0, n).toString('utf8'));
  } catch {
    throw new BadRequest(`the inference header (the first ${n} bytes of the body, per Inference-Header-Content-Length) is not valid JSON`);
  }
  return { json, binary: body.subarray(n) };
}

export interface BinaryInputSpec {
  name: string;
  /** `parameters.binary_data_size`, when given. */
  size?: number;
  hasData: boolean;
}

/**
 * The bytes of each input that has `binary_data_size` (undefined for those with JSON `data`),
 * taken in order from `binary`, which they must use up exactly. `binary` is undefined for a
 * plain JSON request, where no input may ask for bytes.
 */
export function binaryInputs(inputs: BinaryInputSpec[], binary: Buffer | undefined): Array<Buffer | undefined> {
  let at = 0;
  const out = inputs.map((t) => {
    if (t.size === undefined) {
      if (!t.hasData) throw new BadRequest(`input ${t.name}: no data; give \`data\`, or \`parameters.binary_data_size\` with its bytes after the JSON header`);
      return undefined;
    }
    if (t.hasData) throw new BadRequest(`input ${t.name}: both \`data\` and \`parameters.binary_data_size\` are given; use one`);
    if (!binary) throw new BadRequest(`input ${t.name}: parameters.binary_data_size needs a binary request (an Inference-Header-Content-Length header, the tensor bytes after the JSON)`);
    if (at + t.size > binary.length) throw new BadRequest(`input ${t.name}: binary_data_size ${t.size} goes past the end of the body (${binary.length - at} bytes left after the JSON header and the inputs before it)`);
    const bytes = binary.subarray(at, at + t.size);
    at += t.size;
    return bytes;
  });
  if (binary && at !== binary.length) throw new BadRequest(`the body has ${binary.length} bytes after the JSON header, but the inputs' binary_data_size add up to ${at}`);
  return out;
}

/** A binary answer: the JSON header, then each binary output's bytes in the order of its outputs. */
export function encodeBinaryResponse(header: unknown, parts: Buffer[]): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  return { body: Buffer.concat([json, ...parts]), headerLength: json.length };
}
