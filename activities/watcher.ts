import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import { createS3Client, readAll, type ArtifactStore } from '../infra/artifacts';
import type { Config } from '../infra/config';
import { datasetUri } from '../workflows/contracts/training-spec';
import { allowedLocalPath, insideDataRoots } from './data/sources';

/**
 * The dataset watcher's activities: list the data files under a prefix that are newer than a
 * cursor, and keep that cursor in the artifact store so that a watcher started again (after a
 * terminate, or by a new deployment) does not announce old files a second time.
 */

export type WatcherDeps = { config: Pick<Config, 'dataRoots' | 's3'>; artifacts: ArtifactStore };

/** Files the watcher reports; anything else under the prefix (markers, temp files) is not data. */
export const DATA_FILE = /\.(parquet|csv)$/i;

export interface ListedObject {
  uri: string;
  size: number;
  /** ISO timestamp, millisecond precision (S3 LastModified or the file's mtime). */
  lastModified: string;
  etag?: string;
}

/**
 * Everything up to `lastModified` has been announced, plus the objects listed in `uris` that
 * carry exactly that timestamp (several uploads can share one millisecond).
 */
export interface WatcherCursor {
  lastModified: string;
  uris: string[];
  /** Set when more than MAX_CURSOR_URIS files share `lastModified`: at that instant, every URI up to this one (in sort order) has been announced. */
  afterUri?: string;
}

export interface ListNewObjectsInput {
  prefix: string;
  cursor?: WatcherCursor;
  /** At most this many objects, the oldest first, so a batch never outgrows a signal. */
  limit: number;
  /** Objects younger than this are left for the next poll (a file may still be being written). */
  minAgeSeconds?: number;
}

export interface ListNewObjectsResult {
  objects: ListedObject[];
  /** More new objects than `limit`: poll again without waiting. */
  truncated: boolean;
  scanned: number;
  /** Data files left out (bad name, outside the allowed roots), with why; at most 20. */
  skipped: string[];
  /** The cursor once `objects` are announced. */
  cursor?: WatcherCursor;
  /** The newest object seen at all, for `start: "now"` (start from here, announce nothing). */
  newest?: WatcherCursor;
}

export interface CursorRef {
  model: string;
  prefix: string;
}

/** URIs at one instant a cursor lists; beyond that it switches to `afterUri`, so it stays far below Temporal's payload limit. */
export const MAX_CURSOR_URIS = 200;

function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, 'InvalidInput');
}

export function parseS3Prefix(prefix: string): { bucket: string; keyPrefix: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,62})\/(.*)$/.exec(prefix);
  if (!m) throw invalid(`prefix ${prefix}: not an s3://bucket/prefix/ URI`);
  return { bucket: m[1]!, keyPrefix: m[2]! };
}

export function isNewer(o: { uri: string; lastModified: string }, cursor: WatcherCursor | undefined): boolean {
  if (!cursor) return true;
  if (o.lastModified !== cursor.lastModified) return o.lastModified > cursor.lastModified;
  if (cursor.afterUri !== undefined && o.uri <= cursor.afterUri) return false;
  return !cursor.uris.includes(o.uri);
}

/** Adds one object to a cursor in place (objects come oldest first, then by URI). */
function extend(cursor: WatcherCursor | undefined, o: { uri: string; lastModified: string }): WatcherCursor {
  if (!cursor || o.lastModified > cursor.lastModified) return { lastModified: o.lastModified, uris: [o.uri] };
  if (o.lastModified < cursor.lastModified || cursor.uris.includes(o.uri)) return cursor;
  cursor.uris.push(o.uri);
  if (cursor.uris.length > MAX_CURSOR_URIS) {
    // Too many files share one instant to name them all; listings are sorted by URI within an
    // instant, so "everything up to the largest URI" says the same in one string.
    const max = cursor.uris.reduce((m, u) => (u > m ? u : m), cursor.afterUri ?? '');
    return { lastModified: cursor.lastModified, uris: [], afterUri: max };
  }
  return cursor;
}

/** The cursor after announcing `objects` (sorted oldest first, then by URI). */
export function advanceCursor(cursor: WatcherCursor | undefined, objects: ListedObject[]): WatcherCursor | undefined {
  let next = cursor ? { ...cursor, uris: [...cursor.uris] } : undefined;
  for (const o of objects) next = extend(next, o);
  return next;
}

function byAge(a: ListedObject, b: ListedObject): number {
  return a.lastModified < b.lastModified ? -1 : a.lastModified > b.lastModified ? 1 : a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0;
}

/** Keeps the `limit` oldest new objects without holding the whole listing. */
class OldestFirst {
  readonly items: ListedObject[] = [];
  total = 0;
  constructor(private readonly limit: number) {}
  add(o: ListedObject): void {
    this.total++;
    this.items.push(o);
    if (this.items.length >= this.limit * 4) this.trim();
  }
  trim(): ListedObject[] {
    this.items.sort(byAge);
    this.items.length = Math.min(this.items.length, this.limit);
    return this.items;
  }
}

async function listS3(input: ListNewObjectsInput, deps: WatcherDeps, visit: (o: ListedObject) => void, skip: (why: string) => void): Promise<void> {
  const { bucket, keyPrefix } = parseS3Prefix(input.prefix);
  if (!deps.config.s3) throw invalid(`prefix ${input.prefix}: no S3 settings on this worker (S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)`);
  const client = createS3Client(deps.config.s3);
  // listObjectsV2 pages through the listing 1000 keys at a time; we only keep the oldest `limit` new ones.
  const stream = client.listObjectsV2(bucket, keyPrefix, true);
  try {
    for await (const item of stream as AsyncIterable<{ name?: string; size?: number; etag?: string; lastModified?: Date }>) {
      if (!item.name || !DATA_FILE.test(item.name) || !item.lastModified) continue;
      const uri = `s3://${bucket}/${item.name}`;
      if (!datasetUri.safeParse(uri).success) {
        skip(`${uri}: not a usable dataset URI`);
        continue;
      }
      visit({ uri, size: item.size ?? 0, lastModified: item.lastModified.toISOString(), ...(item.etag ? { etag: item.etag } : {}) });
    }
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'NoSuchBucket') throw invalid(`prefix ${input.prefix}: bucket ${bucket} does not exist`);
    throw err;
  }
}

async function listLocal(input: ListNewObjectsInput, deps: WatcherDeps, visit: (o: ListedObject) => void, skip: (why: string) => void): Promise<void> {
  let dir: string;
  try {
    dir = await fs.realpath(fileURLToPath(input.prefix));
  } catch (err) {
    throw invalid(`prefix ${input.prefix}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'folder not found' : (err as Error).message}`);
  }
  if (!(await insideDataRoots(dir, deps.config.dataRoots))) throw invalid(`prefix ${input.prefix}: outside the allowed data folders (MLOPS_DATA_ROOTS: ${deps.config.dataRoots.join(', ')})`);
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  for (const e of entries) {
    if (!(e.isFile() || e.isSymbolicLink()) || !DATA_FILE.test(e.name)) continue;
    const file = path.join(e.parentPath, e.name);
    let st;
    try {
      st = await fs.stat(file);
    } catch {
      continue; // removed (or a dangling link) since the readdir
    }
    if (!st.isFile()) continue;
    const uri = pathToFileURL(file).href;
    const o: ListedObject = { uri, size: st.size, lastModified: st.mtime.toISOString() };
    if (!isNewer(o, input.cursor)) {
      visit(o);
      continue;
    }
    // Only new files pay for the symlink-resolving check: the same one the snapshot step applies.
    try {
      await allowedLocalPath(uri, deps.config.dataRoots);
    } catch (err) {
      skip((err as Error).message);
      continue;
    }
    if (!datasetUri.safeParse(uri).success) {
      skip(`${uri}: not a usable dataset URI`);
      continue;
    }
    visit(o);
  }
}

export function createWatcherActivities(deps: WatcherDeps) {
  const cursorKey = (ref: CursorRef) => `watchers/${ref.model}/${createHash('sha256').update(ref.prefix).digest('hex').slice(0, 32)}.json`;
  return {
    /** Lists data files under `prefix` that the cursor has not covered, oldest first. Read-only, so safe to retry. */
    async listNewDatasetObjects(input: ListNewObjectsInput): Promise<ListNewObjectsResult> {
      const limit = Math.max(1, Math.min(input.limit, 1000));
      const cutoff = input.minAgeSeconds ? new Date(Date.now() - input.minAgeSeconds * 1000).toISOString() : undefined;
      const fresh = new OldestFirst(limit);
      const skipped: string[] = [];
      let scanned = 0;
      let newest: WatcherCursor | undefined;
      const visit = (o: ListedObject) => {
        scanned++;
        if (scanned % 1000 === 0) heartbeat({ scanned });
        if (cutoff && o.lastModified > cutoff) return;
        newest = extend(newest, o);
        if (isNewer(o, input.cursor)) fresh.add(o);
      };
      const skip = (why: string) => {
        if (skipped.length < 20) skipped.push(why);
      };
      if (input.prefix.startsWith('s3://')) await listS3(input, deps, visit, skip);
      else if (input.prefix.startsWith('file://')) await listLocal(input, deps, visit, skip);
      else throw invalid(`prefix ${input.prefix}: must be s3://bucket/prefix/ or file:///absolute/folder/`);
      const objects = fresh.trim();
      const cursor = advanceCursor(input.cursor, objects);
      return { objects, truncated: fresh.total > objects.length, scanned, skipped, ...(cursor ? { cursor } : {}), ...(newest ? { newest } : {}) };
    },

    async loadWatcherCursor(ref: CursorRef): Promise<WatcherCursor | null> {
      const key = cursorKey(ref);
      if (!(await deps.artifacts.stat(key))) return null;
      const saved = JSON.parse((await readAll(await deps.artifacts.get(key))).toString('utf8')) as { prefix?: string; cursor?: WatcherCursor };
      return saved.prefix === ref.prefix && saved.cursor ? saved.cursor : null;
    },

    /** Overwrites the one cursor object of this model and prefix: idempotent. */
    async saveWatcherCursor(input: CursorRef & { cursor: WatcherCursor }): Promise<void> {
      await deps.artifacts.put(cursorKey(input), JSON.stringify({ model: input.model, prefix: input.prefix, cursor: input.cursor, savedAt: new Date().toISOString() }), { mediaType: 'application/json' });
    },
  };
}

export type WatcherActivities = ReturnType<typeof createWatcherActivities>;
