import type http from 'node:http';
import { parseJsonText, readBody } from '../../infra/http';
import { BadRequest } from './bad-request';
import type { InferResult } from './inference';
import { BINARY_CONTENT_TYPE, HEADER_LENGTH, encodeBinaryResponse, splitBinaryBody } from './oip-binary';
import { OUTPUT_DATATYPE, type RestInfer } from './oip';
import { encodeFp32 } from './raw-tensors';

/** The REST side of `POST …/infer`: reading a JSON or binary-extension body, and answering in kind. */

/** The JSON of the request, and with the binary extension the tensor bytes after it. */
export async function readInferBody(req: http.IncomingMessage, limit: number): Promise<{ json: unknown; binary?: Buffer }> {
  const headerLength = req.headers[HEADER_LENGTH];
  const body = await readBody(req, limit);
  if (typeof headerLength === 'string') return splitBinaryBody(body, headerLength);
  // Without the header the bytes cannot be told from the JSON: say what is missing rather than "not valid JSON".
  if ((req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase() === BINARY_CONTENT_TYPE) {
    throw new BadRequest(`a binary inference request (${BINARY_CONTENT_TYPE}) needs an Inference-Header-Content-Length header: the length of its JSON header`);
  }
  return { json: parseJsonText(body) };
}

export function sendInferAnswer(res: http.ServerResponse, name: string, result: InferResult<RestInfer>): void {
  const { target, parsed, requestId, probs } = result;
  const head = { model_name: name, model_version: String(target.version), id: parsed.id ?? requestId };
  const output = { name: target.output, datatype: OUTPUT_DATATYPE, shape: [parsed.rows, 1] };
  const headers = { 'x-request-id': requestId, 'x-model-version': String(target.version) };
  if (!parsed.binaryOutput) {
    const text = jsonAnswer(head, parsed.rows, probs, target.output);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
    return;
  }
  const bytes = encodeFp32(probs);
  const { body, headerLength } = encodeBinaryResponse({ ...head, outputs: [{ ...output, parameters: { binary_data_size: bytes.length } }] }, [bytes]);
  res.writeHead(200, { 'content-type': BINARY_CONTENT_TYPE, 'content-length': body.length, [HEADER_LENGTH]: String(headerLength), ...headers });
  res.end(body);
}

/**
 * The JSON answer as `JSON.stringify` writes `{ ...head, outputs: [{ name, datatype, shape, data }] }`
 * with `data` the scores as numbers, without the copy of the scores into an array first and the
 * walk over the object: most of the answer is fixed text.
 */
export function jsonAnswer(head: { model_name: string; model_version: string; id: string }, rows: number, probs: Float32Array, output: string): string {
  let data = '';
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i]!;
    // What JSON.stringify writes for a number: its shortest form, null when not finite.
    data += (i ? ',' : '') + (Number.isFinite(p) ? String(p) : 'null');
  }
  return `{"model_name":${JSON.stringify(head.model_name)},"model_version":${JSON.stringify(head.model_version)},"id":${JSON.stringify(head.id)},"outputs":[{"name":${JSON.stringify(output)},"datatype":"${OUTPUT_DATATYPE}","shape":[${rows},1],"data":[${data}]}]}`;
}
