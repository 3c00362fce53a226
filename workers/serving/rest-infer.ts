import type http from 'node:http';
import { parseJsonText, readBody } from '../../infra/http';
import { BadRequest } from './bad-request';
import type { InferResult } from './inference';
import { BINARY_CONTENT_TYPE, HEADER_LENGTH, encodeBinaryResponse, splitBinaryBody } from './oip-binary';
import type { RestInfer } from './oip';
import { answerTensors, encodeTensor, jsonData, type AnswerTensor } from './answer';

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
  const headers = { 'x-request-id': requestId, 'x-model-version': String(target.version) };
  const tensors = answerTensors(target, parsed.rows, probs, parsed.outputs);
  if (!parsed.binaryOutputs.length) {
    const text = jsonAnswer(head, tensors);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
    return;
  }
  const parts: Buffer[] = [];
  const outputs = tensors.map(({ data, ...t }) => {
    if (!parsed.binaryOutputs.includes(t.name)) return { ...t, data: Array.isArray(data) ? data : Array.from(data) };
    const bytes = encodeTensor({ ...t, data });
    parts.push(bytes);
    return { ...t, parameters: { binary_data_size: bytes.length } };
  });
  const { body, headerLength } = encodeBinaryResponse({ ...head, outputs }, parts);
  res.writeHead(200, { 'content-type': BINARY_CONTENT_TYPE, 'content-length': body.length, [HEADER_LENGTH]: String(headerLength), ...headers });
  res.end(body);
}

/**
 * The JSON answer as `JSON.stringify` writes `{ ...head, outputs: [{ name, datatype, shape, data }] }`,
 * without the copy of the scores into an array first and the walk over the object: most of the
 * answer is fixed text.
 */
export function jsonAnswer(head: { model_name: string; model_version: string; id: string }, tensors: AnswerTensor[]): string {
  const outputs = tensors.map((t) => `{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":[${t.shape.join(',')}],"data":${jsonData(t)}}`);
  return `{"model_name":${JSON.stringify(head.model_name)},"model_version":${JSON.stringify(head.model_version)},"id":${JSON.stringify(head.id)},"outputs":[${outputs.join(',')}]}`;
}
