import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
// Only to check our wire form against Temporal's own Payload message (a dependency of the SDK).
import { temporal } from '@temporalio/proto';
import { AesGcmPayloadCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA, decodePayload, encodePayload, keyRingFromEnv, parseKeyRing } from '../../infra/codec';
import { ConfigError } from '../../infra/errors';

/** The payload codec without a server: sealing, opening, rotation, tampering and the key formats. */

const key = () => randomBytes(32).toString('base64');
const k1 = key();
const k2 = key();
const MARKER = 'marker-7f3a-secret-spec-value';
const payload = (v: unknown): Payload => defaultPayloadConverter.toPayload(v);
const value = (p: Payload) => defaultPayloadConverter.fromPayload(p);

test('a sealed payload holds no plaintext, names its key, and opens to the same payload', async () => {
  const codec = new AesGcmPayloadCodec(parseKeyRing(`k1:${k1}`, 'test'));
  const original = payload({ spec: { dataset: { uris: [`s3://data/${MARKER}.parquet`] } } });
  const [sealed] = await codec.encode([original]);
  expect(Buffer.from(sealed!.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);
  expect(Buffer.from(sealed!.metadata![KEY_ID_METADATA]!).toString()).toBe('k1');
  expect(Buffer.from(sealed!.data!).toString('latin1')).not.toContain(MARKER);
  expect(Buffer.from(sealed!.data!).toString('base64')).not.toContain(Buffer.from(MARKER).toString('base64').slice(4, 20));
  const [opened] = await codec.decode([sealed!]);
  expect(value(opened!)).toEqual({ spec: { dataset: { uris: [`s3://data/${MARKER}.parquet`] } } });
  // Two seals of the same payload differ (a fresh IV each time).
  const [again] = await codec.encode([original]);
  expect(Buffer.from(again!.data!).equals(Buffer.from(sealed!.data!))).toBe(false);
});

test('after a rotation, new payloads use the new key and old ones still open; without the old key they fail by name', async () => {
  const before = new AesGcmPayloadCodec(parseKeyRing(`k1:${k1}`, 'test'));
  const [old] = await before.encode([payload('written before the rotation')]);
  const after = new AesGcmPayloadCodec(parseKeyRing(`k2:${k2},k1:${k1}`, 'test'));
  expect(value((await after.decode([old!]))[0]!)).toBe('written before the rotation');
  const [fresh] = await after.encode([payload('after')]);
  expect(Buffer.from(fresh!.metadata![KEY_ID_METADATA]!).toString()).toBe('k2');
  const onlyNew = new AesGcmPayloadCodec(parseKeyRing(`k2:${k2}`, 'test'));
  await expect(onlyNew.decode([old!])).rejects.toMatchObject({ type: 'CodecKeyMissing', message: expect.stringContaining('"k1"') });
});

test('an altered payload, or one relabelled with another key id, does not open', async () => {
  const ring = parseKeyRing(`k1:${k1},k2:${k2}`, 'test');
  const codec = new AesGcmPayloadCodec(ring);
  const [sealed] = await codec.encode([payload({ a: 1 })]);
  const flipped = Buffer.from(sealed!.data!);
  flipped[20] = flipped[20]! ^ 1;
  await expect(codec.decode([{ ...sealed!, data: flipped }])).rejects.toMatchObject({ type: 'CodecDecryptFailed' });
  await expect(codec.decode([{ ...sealed!, metadata: { ...sealed!.metadata, [KEY_ID_METADATA]: Buffer.from('k2') } }])).rejects.toMatchObject({ type: 'CodecDecryptFailed' });
  await expect(codec.decode([{ ...sealed!, data: Buffer.alloc(10) }])).rejects.toMatchObject({ type: 'CodecDecryptFailed' });
});

test('payloads that are not sealed pass through: histories from before encryption still replay', async () => {
  const codec = new AesGcmPayloadCodec(parseKeyRing(`k1:${k1}`, 'test'));
  const plain = payload({ plain: true });
  expect(await codec.decode([plain])).toEqual([plain]);
});

test('the payload wire form round-trips metadata and data of any size, empty ones included', () => {
  for (const p of [payload(null) as Payload, payload('x'.repeat(300_000)), { metadata: {}, data: new Uint8Array() }, { metadata: { encoding: Buffer.from('binary/plain'), e: new Uint8Array() }, data: randomBytes(1000) }] as Payload[]) {
    const back = decodePayload(encodePayload(p));
    expect(Object.keys(back.metadata!).sort()).toEqual(Object.keys(p.metadata ?? {}).sort());
    for (const k of Object.keys(p.metadata ?? {})) expect(Buffer.from(back.metadata![k]!).equals(Buffer.from(p.metadata![k]!))).toBe(true);
    expect(Buffer.from(back.data!).equals(Buffer.from(p.data ?? []))).toBe(true);
    // The same bytes Temporal's protobuf Payload reads: any codec server that speaks Payload can open ours.
    const theirs = temporal.api.common.v1.Payload.decode(encodePayload(p));
    expect(Buffer.from(theirs.data).equals(Buffer.from(p.data ?? []))).toBe(true);
    expect(Object.keys(theirs.metadata).sort()).toEqual(Object.keys(p.metadata ?? {}).sort());
    expect(decodePayload(Buffer.from(temporal.api.common.v1.Payload.encode(p).finish())).data).toEqual(new Uint8Array(p.data ?? []));
  }
});

test('key rings: the first key is current; bad keys are named with where they came from', () => {
  expect(parseKeyRing(`k2:${k2}\nk1:${k1}\n`, 'x').current).toBe('k2');
  expect(() => parseKeyRing('', 'MLOPS_CODEC_KEYS')).toThrow(/MLOPS_CODEC_KEYS: no key/);
  expect(() => parseKeyRing(`k1:${randomBytes(16).toString('base64')}`, 'MLOPS_CODEC_KEYS')).toThrow('MLOPS_CODEC_KEYS: key k1 is not 32 bytes of base64 (got 16 bytes)');
  expect(() => parseKeyRing(k1, 'MLOPS_CODEC_KEYS')).toThrow(/is not id:base64key/);
  expect(() => parseKeyRing(`k1:${k1},k1:${k2}`, 'MLOPS_CODEC_KEYS')).toThrow('MLOPS_CODEC_KEYS: key k1 is given twice');
  expect(() => parseKeyRing(`k1:${k1}`, 'x')).not.toThrow(ConfigError);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keys-'));
  writeFileSync(path.join(dir, 'keys'), `# rotated 2026-12-01\nk3:${k1}\nk2:${k2}\n`);
  expect(keyRingFromEnv({ MLOPS_CODEC_KEYS_FILE: path.join(dir, 'keys') })!.current).toBe('k3');
  expect(() => keyRingFromEnv({ MLOPS_CODEC_KEYS_FILE: path.join(dir, 'none') })).toThrow(/MLOPS_CODEC_KEYS_FILE: cannot read .*ENOENT/);
  expect(() => keyRingFromEnv({ MLOPS_CODEC_KEYS: `k1:${k1}`, MLOPS_CODEC_KEYS_FILE: 'x' })).toThrow(/not both/);
  expect(keyRingFromEnv({})).toBeUndefined();
});
