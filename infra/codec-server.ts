import http from 'node:http';
import type { Payload } from '@temporalio/common';
import { z } from 'zod';
import { AesGcmPayloadCodec, type CodecKeyRing } from './codec';
import { HttpError, bearerToken, closeServer, listen, parseJsonBody, readJsonBody, send, tokenMatches } from './http';
import type { Logger } from './log';

/**
 * The remote codec the Temporal CLI (`temporal workflow show --codec-endpoint … --codec-auth
 * 'Bearer …'`) and the Temporal Web UI call to show sealed payloads: POST /encode and /decode
 * with `{ payloads: [{ metadata: { k: base64 }, data: base64 }] }`, behind a bearer token, with
 * CORS for the Web UI's origins.
 */

export const MIN_CODEC_TOKEN_LENGTH = 16;
const MAX_BODY_BYTES = 16 * 1024 * 1024;

const b64 = z.string().regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'must be base64');
const body = z.object({ payloads: z.array(z.object({ metadata: z.record(z.string(), b64).optional(), data: b64.optional() })).max(10_000) });

type JsonPayload = { metadata?: Record<string, string>; data?: string };

const fromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});

const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')])),
  data: Buffer.from(p.data ?? []).toString('base64'),
});

export interface RunningCodecServer {
  url: string;
  close(): Promise<void>;
}

export async function startCodecServer(opts: { keys: CodecKeyRing; token: string; port: number; host: string; corsOrigins: string[]; log: Logger }): Promise<RunningCodecServer> {
  if (opts.token.length < MIN_CODEC_TOKEN_LENGTH) throw new HttpError(`the codec server's token must be at least ${MIN_CODEC_TOKEN_LENGTH} characters`);
  const codec = new AesGcmPayloadCodec(opts.keys);
  const server = http.createServer((req, res) => {
    const origin = req.headers.origin;
    const cors: Record<string, string> =
      origin && opts.corsOrigins.includes(origin)
        ? { 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', 'access-control-allow-headers': 'content-type, authorization, x-namespace', 'access-control-allow-methods': 'POST, OPTIONS', vary: 'origin' }
        : {};
    const path = new URL(req.url ?? '/', 'http://codec').pathname;
    if (req.method === 'OPTIONS') return void res.writeHead(204, cors).end();
    (async () => {
      if (req.method !== 'POST' || (path !== '/encode' && path !== '/decode')) throw new HttpError('only POST /encode and POST /decode here', 404);
      if (!tokenMatches(bearerToken(req), opts.token)) throw new HttpError('missing or wrong bearer token', 401);
      const { payloads } = parseJsonBody(body, await readJsonBody(req, MAX_BODY_BYTES), `${path.slice(1)} request`);
      const given = payloads.map(fromJson);
      const out = path === '/encode' ? await codec.encode(given) : await codec.decode(given);
      send(res, 200, { payloads: out.map(toJson) }, cors);
    })().catch((err: unknown) => {
      if (err instanceof HttpError) return send(res, err.status, { error: err.message }, cors);
      // A payload that does not open (unknown key, altered) is the caller's to see, by name.
      const message = err instanceof Error ? err.message : String(err);
      opts.log.warn(`codec ${path}: ${message}`);
      send(res, 422, { error: message }, cors);
    });
  });
  const url = await listen(server, opts.port, opts.host);
  opts.log.info(`codec server at ${url} (keys ${[...opts.keys.keys.keys()].join(', ')}; sealing with ${opts.keys.current}); CORS for ${opts.corsOrigins.join(', ') || 'no origin'}`);
  return {
    url,
    close: () => closeServer(server),
  };
}
