import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ApplicationFailure, type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import { ConfigError } from './errors';

/**
 * Encrypted payloads: every payload our workers, clients, CLI and webhook send through Temporal
 * (workflow inputs and results, activity arguments, heartbeats, queries, signals, and with the
 * failure converter below the failure messages too) is sealed with AES-256-GCM before it leaves
 * the process, so the server's histories hold ciphertext. Keys are named: a payload records the
 * id of its key, so after a rotation the old keys still open old histories while new payloads use
 * the current one. A payload that is not ours passes through untouched (histories from before
 * encryption still replay).
 */

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const CIPHER_METADATA = 'encryption-cipher';
const CIPHER = 'AES-256-GCM';
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface CodecKeyRing {
  /** The key new payloads are sealed with. */
  current: string;
  keys: ReadonlyMap<string, Buffer>;
}

/**
 * Keys as `id:base64,id:base64` (commas or new lines; the first one is current), each 32 bytes
 * once decoded (`openssl rand -base64 32`). `source` names the variable or file in errors.
 */
export function parseKeyRing(text: string, source: string): CodecKeyRing {
  const entries = text
    .split(/[,\n]/)
    .map((e) => e.trim())
    .filter((e) => e && !e.startsWith('#'));
  if (!entries.length) throw new ConfigError(`${source}: no key; give id:base64key (32 bytes, e.g. openssl rand -base64 32), the current key first`);
  const keys = new Map<string, Buffer>();
  for (const entry of entries) {
    const at = entry.indexOf(':');
    const id = at < 0 ? '' : entry.slice(0, at);
    if (!KEY_ID.test(id)) throw new ConfigError(`${source}: "${entry.slice(0, 12)}…" is not id:base64key (the id: letters, digits, . _ -)`);
    const b64 = entry.slice(at + 1);
    const key = Buffer.from(b64, 'base64');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || key.length !== 32) throw new ConfigError(`${source}: key ${id} is not 32 bytes of base64 (got ${key.length} bytes)`);
    if (keys.has(id)) throw new ConfigError(`${source}: key ${id} is given twice`);
    keys.set(id, key);
  }
  return { current: entries[0]!.slice(0, entries[0]!.indexOf(':')), keys };
}

/** MLOPS_CODEC_KEYS, or the file MLOPS_CODEC_KEYS_FILE names; undefined when neither is set. */
export function keyRingFromEnv(env: NodeJS.ProcessEnv): CodecKeyRing | undefined {
  if (env.MLOPS_CODEC_KEYS && env.MLOPS_CODEC_KEYS_FILE) throw new ConfigError('set MLOPS_CODEC_KEYS or MLOPS_CODEC_KEYS_FILE, not both');
  if (env.MLOPS_CODEC_KEYS) return parseKeyRing(env.MLOPS_CODEC_KEYS, 'MLOPS_CODEC_KEYS');
  if (env.MLOPS_CODEC_KEYS_FILE) {
    let text: string;
    try {
      text = readFileSync(env.MLOPS_CODEC_KEYS_FILE, 'utf8');
    } catch (err) {
      throw new ConfigError(`MLOPS_CODEC_KEYS_FILE: cannot read ${env.MLOPS_CODEC_KEYS_FILE}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return parseKeyRing(text, `MLOPS_CODEC_KEYS_FILE (${env.MLOPS_CODEC_KEYS_FILE})`);
  }
  return undefined;
}

export class AesGcmPayloadCodec implements PayloadCodec {
  constructor(private readonly ring: CodecKeyRing) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const id = this.ring.current;
    const key = this.ring.keys.get(id)!;
    return payloads.map((p) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      // The key id is bound to the ciphertext: a payload relabelled with another id fails to open.
      cipher.setAAD(Buffer.from(id));
      const sealed = Buffer.concat([iv, cipher.update(encodePayload(p)), cipher.final(), cipher.getAuthTag()]);
      return { metadata: { encoding: Buffer.from(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: Buffer.from(id), [CIPHER_METADATA]: Buffer.from(CIPHER) }, data: sealed };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      if (text(p.metadata?.encoding) !== ENCRYPTED_ENCODING) return p;
      const id = text(p.metadata?.[KEY_ID_METADATA]) ?? '';
      const key = this.ring.keys.get(id);
      if (!key) throw ApplicationFailure.nonRetryable(`payload sealed with key ${JSON.stringify(id)}, which this process does not hold (add it to MLOPS_CODEC_KEYS after the current key)`, 'CodecKeyMissing');
      const data = Buffer.from(p.data ?? []);
      if (data.length < IV_BYTES + TAG_BYTES) throw ApplicationFailure.nonRetryable('encrypted payload is truncated', 'CodecDecryptFailed');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
        decipher.setAAD(Buffer.from(id));
        decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
        return decodePayload(Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]));
      } catch {
        throw ApplicationFailure.nonRetryable(`payload sealed with key ${id} does not open with it: altered, or a different key under the same id`, 'CodecDecryptFailed');
      }
    });
  }
}

const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);

/** The failure converter module (for workers' sandboxes and clients): messages and stack traces as encoded attributes. */
export function encodedFailuresPath(): string {
  return require.resolve('../workflows/contracts/encoded-failures');
}

/** `base` with our codec after its own codecs, and failure messages carried as payloads (so they are sealed too). */
export function withEncryption<T extends DataConverter>(base: T | undefined, ring: CodecKeyRing): T {
  return {
    ...(base as T),
    payloadCodecs: [...(base?.payloadCodecs ?? []), new AesGcmPayloadCodec(ring)],
    failureConverterPath: base?.failureConverterPath ?? encodedFailuresPath(),
  };
}

// ---- Payload as protobuf (temporal.api.common.v1.Payload: map<string, bytes> metadata = 1; bytes data = 2) ----

function varint(n: number, out: number[]): void {
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
}

function field(tag: number, bytes: Uint8Array, out: Buffer[]): void {
  const head: number[] = [];
  varint((tag << 3) | 2, head);
  varint(bytes.length, head);
  out.push(Buffer.from(head), Buffer.from(bytes));
}

export function encodePayload(p: Payload): Buffer {
  const out: Buffer[] = [];
  for (const [k, v] of Object.entries(p.metadata ?? {})) {
    const entry: Buffer[] = [];
    field(1, Buffer.from(k), entry);
    field(2, v ?? new Uint8Array(), entry);
    field(1, Buffer.concat(entry), out);
  }
  if (p.data?.length) field(2, p.data, out);
  return Buffer.concat(out);
}

function fields(buf: Buffer): Array<{ tag: number; bytes: Buffer }> {
  const out: Array<{ tag: number; bytes: Buffer }> = [];
  let i = 0;
  const read = () => {
    let n = 0;
    let shift = 0;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated varint');
      const b = buf[i++]!;
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return n;
      shift += 7;
    }
  };
  while (i < buf.length) {
    const key = read();
    if ((key & 7) !== 2) throw new Error(`unexpected wire type ${key & 7}`);
    const len = read();
    if (i + len > buf.length) throw new Error('truncated field');
    out.push({ tag: key >>> 3, bytes: buf.subarray(i, i + len) });
    i += len;
  }
  return out;
}

export function decodePayload(buf: Buffer): Payload {
  const metadata: Record<string, Uint8Array> = {};
  let data: Uint8Array = new Uint8Array();
  for (const f of fields(buf)) {
    if (f.tag === 1) {
      let k = '';
      let v: Uint8Array = new Uint8Array();
      for (const e of fields(f.bytes)) {
        if (e.tag === 1) k = e.bytes.toString('utf8');
        else if (e.tag === 2) v = new Uint8Array(e.bytes);
      }
      metadata[k] = v;
    } else if (f.tag === 2) {
      data = new Uint8Array(f.bytes);
    }
  }
  return { metadata, data };
}
