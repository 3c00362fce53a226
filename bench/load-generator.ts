import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ensureDebianTool, type DebianTool } from '../infra/debian-tools';
import type { Logger } from '../infra/log';

const run = promisify(execFile);

export const WRK: DebianTool = { command: 'wrk', package: 'wrk', why: 'the serving bench drives the model server and a bare HTTP server from another process' };

export interface WrkFigures {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function latencyMs(text: string, percentile: string): number {
  const m = new RegExp(`^\\s*${percentile}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
  if (!m) throw new Error(`wrk printed no ${percentile}% latency:\n${text}`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** Parses `wrk --latency` output; any non-2xx answer or socket error makes the run void. */
export function parseWrk(text: string): WrkFigures {
  const bad = /Non-2xx or 3xx responses: (\d+)/.exec(text) ?? /Socket errors: (.*)/.exec(text);
  if (bad) throw new Error(`wrk saw failed requests (${bad[0]}):\n${text}`);
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  const total = /^\s*(\d+) requests in/m.exec(text);
  if (!rps || !total) throw new Error(`wrk printed no request rate:\n${text}`);
  return { requestsPerSecond: Number(rps[1]), p50Ms: latencyMs(text, '50'), p99Ms: latencyMs(text, '99'), requests: Number(total[1]) };
}

/**
 * Debian's wrk against `url` with one POST body for every request, from its own process, as
 * users measure a server; installs wrk when missing and we may.
 */
export async function wrkPost(opts: { url: string; body: string; contentType: string; connections: number; seconds: number; threads?: number; dir: string; log: Logger }): Promise<WrkFigures> {
  const wrk = ensureDebianTool(WRK, opts.log);
  const script = path.join(opts.dir, `wrk-${opts.connections}-${Buffer.byteLength(opts.body)}.lua`);
  // A Lua long string takes the body byte for byte (LuaJIT knows no \u escapes).
  if (opts.body.includes(']==]') || opts.contentType.includes(']==]')) throw new Error('body cannot be quoted for wrk');
  await fs.writeFile(script, `wrk.method = "POST"\nwrk.headers["Content-Type"] = [==[${opts.contentType}]==]\nwrk.body = [==[${opts.body}]==]\n`);
  const threads = Math.min(opts.threads ?? 1, opts.connections);
  const { stdout } = await run(wrk, ['-t', String(threads), '-c', String(opts.connections), '-d', `${opts.seconds}s`, '--latency', '-s', script, opts.url], { timeout: (opts.seconds + 30) * 1000, maxBuffer: 1 << 20 });
  return parseWrk(stdout);
}
