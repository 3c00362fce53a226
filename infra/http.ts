import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { z } from 'zod';

/**
 * What the project's HTTP servers (the model server, the webhook) share: an error that is an
 * answer, JSON replies, bounded JSON bodies checked with zod, and a constant-time token check.
 */

/** An error the client caused: answered with its status (and headers), never logged as a crash. */
export class HttpError extends Error {
  constructor(
    message: string,
    readonly status = 400,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** JSON, or text for a string body (`content-type` in `headers` overrides). */
export function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** The request body as bytes, at most `limit` (413 past it, before reading when the length is declared). */
export function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return Promise.reject(new HttpError(`request body of ${declared} bytes is over the limit of ${limit}`, 413));
  // Listeners rather than `for await`: the async iterator costs several promise hops per chunk,
  // a measurable share of a small inference request. Same outcomes: an over-limit body destroys
  // the request (as leaving the loop did), an error or a close before the end rejects.
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        done();
        req.destroy();
        reject(new HttpError(`request body is over the limit of ${limit} bytes`, 413));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    const onClose = () => {
      done();
      reject(Object.assign(new Error('the request closed before its body ended'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** JSON text, a 400 when empty or not JSON. */
export function parseJsonText(bytes: Buffer): unknown {
  if (bytes.length === 0) throw new HttpError('request body is empty; expected JSON');
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new HttpError('request body is not valid JSON');
  }
}

/** The request body as JSON, at most `limit` bytes (413 past it, before reading when the length is declared). */
export async function readJsonBody(req: http.IncomingMessage, limit: number): Promise<unknown> {
  return parseJsonText(await readBody(req, limit));
}

/** Checks a parsed body with zod; a bad one is a 400 naming every field at fault. */
export function parseJsonBody<S extends z.ZodType>(schema: S, body: unknown, what: string): z.output<S> {
  const r = schema.safeParse(body);
  if (!r.success) throw new HttpError(`invalid ${what}: ${r.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (!given) return false;
  // Hashing first makes both sides the same length, so the comparison time says nothing about the token.
  return timingSafeEqual(createHash('sha256').update(given).digest(), createHash('sha256').update(expected).digest());
}

/** The token of an `Authorization: Bearer <token>` header, if any. */
export function bearerToken(req: http.IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  return auth && /^bearer /i.test(auth) ? auth.slice(7).trim() : undefined;
}

/** Listens and answers with the server's base URL (port 0: a free port). */
export async function listen(server: http.Server, port: number, host: string): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return `http://${host}:${(server.address() as AddressInfo).port}`;
}

/** Stops accepting, drops open connections (keep-alive ones too) and resolves once closed. */
export function closeServer(server: http.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
