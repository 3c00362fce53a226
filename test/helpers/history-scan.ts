/**
 * What a history must never hold: secrets (keys, tokens, passwords in URLs) and dataset rows.
 * Payloads carry references (`s3://…`, ids, hashes); a payload that grows into a table of rows
 * is a dataset travelling through Temporal. Works on a history as JSON (the CLI's and our
 * fixtures' form, payload data in base64) or as the SDK returns it (bytes).
 */

export interface Finding {
  where: string;
  what: string;
}

const SECRET_PATTERNS: Array<[RegExp, string]> = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a private key'],
  [/\b(?:postgres|postgresql|mysql|mongodb):\/\/[^\s:/@"]+:[^\s@/"]+@/, 'a database URL with a password'],
  [/\bAKIA[0-9A-Z]{16}\b/, 'an AWS access key id'],
  [/\baws_secret_access_key\b|"secretKey"\s*:\s*"[^"]+"|"secretAccessKey"\s*:\s*"[^"]+"/i, 'an S3 secret key'],
  [/\bBearer\s+[A-Za-z0-9._~+/-]{16,}/, 'a bearer token'],
];

/** Largest payload we expect: specs, metrics and figures, never data. */
const MAX_PAYLOAD_BYTES = 64 * 1024;
/** Records in one array past which a payload is a table, not a reference. */
const MAX_RECORDS = 200;

function* payloads(node: unknown, where: string): Generator<{ where: string; bytes: Buffer }> {
  if (node instanceof Uint8Array) return;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) yield* payloads(node[i], `${where}[${i}]`);
    return;
  }
  if (!node || typeof node !== 'object') return;
  const o = node as Record<string, unknown>;
  if ('metadata' in o && 'data' in o && (typeof o.data === 'string' || o.data instanceof Uint8Array || o.data === null)) {
    yield { where, bytes: typeof o.data === 'string' ? Buffer.from(o.data, 'base64') : Buffer.from((o.data as Uint8Array | null) ?? []) };
    return;
  }
  for (const [k, v] of Object.entries(o)) yield* payloads(v, `${where}.${k}`);
}

function largestRecordArray(v: unknown): number {
  if (Array.isArray(v)) {
    const here = v.filter((x) => x && typeof x === 'object' && !Array.isArray(x)).length;
    return Math.max(here, ...v.map(largestRecordArray));
  }
  if (v && typeof v === 'object') return Math.max(0, ...Object.values(v).map(largestRecordArray));
  return 0;
}

/** Every finding in a history; `secrets`: values that must not appear anywhere (a test's tokens and keys). */
export function scanHistory(history: unknown, name: string, secrets: string[] = []): Finding[] {
  const found: Finding[] = [];
  const whole = JSON.stringify(history, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v));
  for (const s of secrets) if (s && whole.includes(s)) found.push({ where: name, what: `the secret ${s.slice(0, 4)}…` });
  for (const p of payloads(history, name)) {
    const text = p.bytes.toString('utf8');
    for (const s of secrets) if (s && text.includes(s)) found.push({ where: p.where, what: `the secret ${s.slice(0, 4)}…` });
    for (const [re, what] of SECRET_PATTERNS) if (re.test(text)) found.push({ where: p.where, what });
    if (p.bytes.length > MAX_PAYLOAD_BYTES) found.push({ where: p.where, what: `a ${p.bytes.length}-byte payload (data, not a reference)` });
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      continue;
    }
    const records = largestRecordArray(parsed);
    if (records > MAX_RECORDS) found.push({ where: p.where, what: `an array of ${records} records (dataset rows)` });
  }
  return found;
}
