import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalArtifactStore } from '../../infra/artifacts';
import { tokenMatches } from '../../infra/http';
import { alertmanagerPayload, retrainFromAlert } from '../../workers/triggers/webhook';
import { MAX_CURSOR_URIS, advanceCursor, createWatcherActivities, isNewer, type ListedObject } from '../../activities/watcher';
import { retrainRequest } from '../../workflows/contracts/lifecycle';

/** The trigger pieces that need no server: the watcher's file:// listing and cursor, the alert → retrain mapping. */

let dir: string;
let data: string;
let acts: ReturnType<typeof createWatcherActivities>;

async function write(rel: string, mtime: Date): Promise<string> {
  const file = path.join(data, rel);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, rel);
  await fs.utimes(file, mtime, mtime);
  return `file://${file}`;
}

beforeEach(async () => {
  dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'mlops-watch-')));
  data = path.join(dir, 'landing');
  await fs.mkdir(data);
  acts = createWatcherActivities({ config: { dataRoots: [data], s3: undefined }, artifacts: new LocalArtifactStore(path.join(dir, 'artifacts')) });
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('listNewDatasetObjects on file://', () => {
  test('only data files, oldest first, past the cursor, in bounded batches', async () => {
    const a = await write('2001-01/a.parquet', new Date('2026-01-01T00:00:00Z'));
    const b = await write('2001-01/b.csv', new Date('2026-01-02T00:00:00Z'));
    const c = await write('2001-02/c.parquet', new Date('2026-01-02T00:00:00Z'));
    await write('2001-02/_SUCCESS', new Date('2026-01-03T00:00:00Z'));
    await write('2001-02/c.parquet.part', new Date('2026-01-03T00:00:00Z'));
    const prefix = `file://${data}/`;

    const page1 = await acts.listNewDatasetObjects({ prefix, limit: 2 });
    expect(page1.objects.map((o) => o.uri)).toEqual([a, b]);
    expect(page1.truncated).toBe(true);
    expect(page1.objects[0]).toMatchObject({ size: '2001-01/a.parquet'.length, lastModified: '2026-01-01T00:00:00.000Z' });
    const cursor = advanceCursor(undefined, page1.objects);
    expect(cursor).toEqual({ lastModified: '2026-01-02T00:00:00.000Z', uris: [b] });

    // c shares b's instant: the cursor's URI list is what tells them apart.
    const page2 = await acts.listNewDatasetObjects({ prefix, cursor, limit: 2 });
    expect(page2.objects.map((o) => o.uri)).toEqual([c]);
    expect(page2.truncated).toBe(false);
    const cursor2 = advanceCursor(cursor, page2.objects);
    expect(cursor2).toEqual({ lastModified: '2026-01-02T00:00:00.000Z', uris: [b, c] });
    expect((await acts.listNewDatasetObjects({ prefix, cursor: cursor2, limit: 2 })).objects).toEqual([]);
    const newest = (await acts.listNewDatasetObjects({ prefix, limit: 10 })).newest!;
    expect({ ...newest, uris: [...newest.uris].sort() }).toEqual(cursor2);

    const d = await write('2001-03/d.parquet', new Date('2026-01-05T00:00:00Z'));
    expect((await acts.listNewDatasetObjects({ prefix, cursor: cursor2, limit: 2 })).objects.map((o: ListedObject) => o.uri)).toEqual([d]);
  });

  test('more files at one instant than a cursor names: it switches to "everything up to this URI", announcing each once', () => {
    const at = '2026-01-01T00:00:00.000Z';
    const all: ListedObject[] = Array.from({ length: MAX_CURSOR_URIS * 2 + 50 }, (_, i) => ({ uri: `s3://b/p/${String(i).padStart(4, '0')}.parquet`, size: 1, lastModified: at }));
    let cursor: ReturnType<typeof advanceCursor>;
    const announced: string[] = [];
    for (let round = 0; round < 10; round++) {
      const page = all.filter((o) => isNewer(o, cursor)).slice(0, 100);
      if (!page.length) break;
      announced.push(...page.map((o) => o.uri));
      cursor = advanceCursor(cursor, page);
      expect(JSON.stringify(cursor).length).toBeLessThan(MAX_CURSOR_URIS * 40);
    }
    expect(announced).toEqual(all.map((o) => o.uri));
    expect(cursor).toMatchObject({ lastModified: at });
    expect(isNewer({ uri: 's3://b/p/9999.parquet', lastModified: at }, cursor)).toBe(true);
    expect(isNewer({ uri: 's3://b/p/0001.parquet', lastModified: '2026-01-01T00:00:00.001Z' }, cursor)).toBe(true);
  });

  test('files younger than minAgeSeconds wait for a later poll', async () => {
    await write('old.parquet', new Date(Date.now() - 600_000));
    const young = await write('young.parquet', new Date());
    const r = await acts.listNewDatasetObjects({ prefix: `file://${data}/`, limit: 10, minAgeSeconds: 60 });
    expect(r.objects.map((o) => o.uri)).not.toContain(young);
    expect(r.objects).toHaveLength(1);
  });

  test('a prefix or a symlink outside MLOPS_DATA_ROOTS is refused', async () => {
    await expect(acts.listNewDatasetObjects({ prefix: `file://${dir}/`, limit: 10 })).rejects.toMatchObject({ type: 'InvalidInput', message: expect.stringMatching(/outside the allowed data folders \(MLOPS_DATA_ROOTS/) });
    await expect(acts.listNewDatasetObjects({ prefix: `file://${data}/missing/`, limit: 10 })).rejects.toMatchObject({ type: 'InvalidInput', message: expect.stringMatching(/folder not found/) });
    await expect(acts.listNewDatasetObjects({ prefix: 's3://bucket/x/', limit: 10 })).rejects.toMatchObject({ type: 'InvalidInput', message: expect.stringMatching(/no S3 settings/) });
    const outside = path.join(dir, 'secret.parquet');
    await fs.writeFile(outside, 'x');
    await fs.symlink(outside, path.join(data, 'link.parquet'));
    const r = await acts.listNewDatasetObjects({ prefix: `file://${data}/`, limit: 10 });
    expect(r.objects).toEqual([]);
    expect(r.skipped).toEqual([expect.stringMatching(/link\.parquet: outside the allowed data folders/)]);
  });

  test('the cursor survives in the artifact store, per model and prefix', async () => {
    const ref = { model: 'flights-delay', prefix: `file://${data}/` };
    expect(await acts.loadWatcherCursor(ref)).toBeNull();
    await acts.saveWatcherCursor({ ...ref, cursor: { lastModified: '2026-01-02T00:00:00.000Z', uris: ['file:///x.parquet'] } });
    await acts.saveWatcherCursor({ ...ref, cursor: { lastModified: '2026-01-03T00:00:00.000Z', uris: ['file:///y.parquet'] } });
    expect(await acts.loadWatcherCursor(ref)).toEqual({ lastModified: '2026-01-03T00:00:00.000Z', uris: ['file:///y.parquet'] });
    expect(await acts.loadWatcherCursor({ ...ref, prefix: `file://${data}/other/` })).toBeNull();
  });
});

describe('Alertmanager alert → retrain', () => {
  const payload = alertmanagerPayload.parse({
    version: '4',
    receiver: 'mlops',
    status: 'firing',
    alerts: [
      { status: 'firing', labels: { alertname: 'Drift', model: 'm' }, annotations: { summary: 'PSI 0.3', long: 'y'.repeat(5000) }, startsAt: '2026-11-23T05:00:00Z', fingerprint: 'abc' },
      { status: 'firing', labels: { model: 'm', b: '2', a: '1' }, startsAt: '2026-11-23T05:00:00Z' },
    ],
    commonLabels: { model: 'm' },
    someFutureField: { kept: true },
  });

  test('reason, dedupe key and small figures', () => {
    const r = retrainFromAlert(payload.alerts[0]!, payload);
    expect(r).toMatchObject({ reason: 'Drift: PSI 0.3', source: 'webhook', dedupeKey: 'alertmanager:abc:2026-11-23T05:00:00Z' });
    expect((r.figures!.annotations as Record<string, string>).long).toHaveLength(200);
    expect(retrainRequest.safeParse(r).success).toBe(true);
  });

  test('without a fingerprint the sorted label set names the alert', () => {
    const r = retrainFromAlert(payload.alerts[1]!, payload);
    const same = retrainFromAlert({ ...payload.alerts[1]!, labels: { a: '1', b: '2', model: 'm' } }, payload);
    expect(r.dedupeKey).toMatch(/^alertmanager:[0-9a-f]{16}:2026-11-23T05:00:00Z$/);
    expect(same.dedupeKey).toBe(r.dedupeKey);
    expect(r.reason).toBe('alert (no alertname) is firing');
  });

  test('tokens compare by value only', () => {
    expect(tokenMatches('a-token-of-16-chars', 'a-token-of-16-chars')).toBe(true);
    expect(tokenMatches('a-token-of-16-charz', 'a-token-of-16-chars')).toBe(false);
    expect(tokenMatches(undefined, 'a-token-of-16-chars')).toBe(false);
  });
});
