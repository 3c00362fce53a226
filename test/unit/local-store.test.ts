import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ArtifactKeyError, ArtifactNotFoundError, LocalArtifactStore, readAll } from '../../infra/artifacts';

let dir: string;
let store: LocalArtifactStore;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mlops-local-store-'));
  store = new LocalArtifactStore(path.join(dir, 'root'));
  await store.ensureReady();
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

test('streams in, hashes while writing, reads back the same bytes', async () => {
  const chunks = Array.from({ length: 64 }, (_, i) => Buffer.alloc(16 * 1024, i));
  const expected = createHash('sha256');
  chunks.forEach((c) => expected.update(c));
  const put = await store.put('datasets/a.bin', Readable.from(chunks), { mediaType: 'application/x-test' });
  expect(put.sha256).toBe(expected.digest('hex'));
  expect(put.bytes).toBe(64 * 16 * 1024);
  expect(put.uri).toBe(`file://${dir}/root/datasets/a.bin`);
  const back = await readAll(await store.get('datasets/a.bin'));
  expect(back.equals(Buffer.concat(chunks))).toBe(true);
  expect(await store.stat('datasets/a.bin')).toMatchObject({ bytes: put.bytes });
  expect(store.keyFromUri(put.uri)).toBe('datasets/a.bin');
});

test('content-addressed puts are idempotent and leave no temp files', async () => {
  const a = await store.putContent('same bytes');
  const b = await store.putContent(Readable.from([Buffer.from('same '), Buffer.from('bytes')]));
  expect(b).toEqual(a);
  expect(a.key).toBe(`cas/sha256/${a.sha256.slice(0, 2)}/${a.sha256}`);
  expect(await fs.readdir(path.join(dir, 'root', '.tmp'))).toEqual([]);
});

test('missing objects and escaping keys', async () => {
  await expect(store.get('nope/x')).rejects.toBeInstanceOf(ArtifactNotFoundError);
  expect(await store.stat('nope/x')).toBeUndefined();
  for (const key of ['../outside', 'a/../../outside', '/etc/passwd', '%2e%2e/outside']) {
    await expect(store.put(key, 'x')).rejects.toBeInstanceOf(ArtifactKeyError);
  }
  expect(await fs.readdir(dir)).toEqual(['root']);
  expect(() => store.keyFromUri('file:///etc/passwd')).toThrow(ArtifactKeyError);
});

test('a failing source stream leaves nothing behind', async () => {
  const broken = new Readable({
    read() {
      this.destroy(new Error('source broke'));
    },
  });
  await expect(store.put('x/y', broken)).rejects.toThrow('source broke');
  expect(await store.stat('x/y')).toBeUndefined();
  expect(await fs.readdir(path.join(dir, 'root', '.tmp'))).toEqual([]);
});
