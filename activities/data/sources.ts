import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { createS3Client, type ArtifactStore } from '../../infra/artifacts';
import { HashingStream } from '../../infra/artifacts/hashing';
import type { Config } from '../../infra/config';
import { DATASET_FIX } from '../../workflows/contracts/step-fix';
import { dataError } from '../steps';

/**
 * Getting bytes onto local disk for DuckDB and onnxruntime: dataset URIs given by users
 * (checked against the allowed roots) and our own artifacts (checked against their sha256).
 */

export interface LocalFile {
  path: string;
  sha256: string;
  bytes: number;
}

export type SourceDeps = { config: Pick<Config, 'dataRoots' | 's3'>; artifacts: ArtifactStore };

async function streamToFile(body: Readable, file: string): Promise<LocalFile> {
  const hasher = new HashingStream();
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.part`;
  await fs.mkdir(path.dirname(file), { recursive: true });
  try {
    await pipeline(body, hasher, createWriteStream(tmp));
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  return { path: file, sha256: hasher.digest(), bytes: hasher.bytes };
}

export async function hashFile(file: string): Promise<LocalFile> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { path: file, sha256: hash.digest('hex'), bytes };
}

function isUnder(file: string, root: string): boolean {
  const rel = path.relative(root, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Whether a path already resolved through symlinks lies inside one of the data roots (resolved alike). */
export async function insideDataRoots(real: string, roots: string[]): Promise<boolean> {
  const realRoots = await Promise.all(roots.map((r) => fs.realpath(r).catch(() => r)));
  return realRoots.some((r) => isUnder(real, r));
}

/** A `file://` dataset path, resolved through symlinks and checked against MLOPS_DATA_ROOTS. */
export async function allowedLocalPath(uri: string, roots: string[]): Promise<string> {
  let file: string;
  try {
    file = fileURLToPath(uri);
  } catch (err) {
    throw dataError(`dataset ${uri}: ${(err as Error).message}`, DATASET_FIX);
  }
  let real: string;
  try {
    real = await fs.realpath(file);
  } catch {
    throw dataError(`dataset ${uri}: file not found`, DATASET_FIX);
  }
  if (!(await insideDataRoots(real, roots))) {
    throw dataError(`dataset ${uri}: outside the allowed data folders (MLOPS_DATA_ROOTS: ${roots.join(', ')})`, DATASET_FIX);
  }
  const st = await fs.stat(real);
  if (!st.isFile()) throw dataError(`dataset ${uri}: not a file`, DATASET_FIX);
  return real;
}

function parseS3(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m) throw dataError(`dataset ${uri}: not an s3://bucket/key URI`, DATASET_FIX);
  return { bucket: m[1]!, key: m[2]! };
}

/** Fetches a user-given dataset URI into `dir`, hashing as it goes. */
export async function fetchSource(uri: string, deps: SourceDeps, dir: string): Promise<LocalFile> {
  if (uri.startsWith('file://')) {
    const file = await allowedLocalPath(uri, deps.config.dataRoots);
    return hashFile(file);
  }
  const target = path.join(dir, `source-${Math.random().toString(36).slice(2)}${path.extname(uri)}`);
  if (uri.startsWith(`${deps.artifacts.root}/`)) {
    try {
      return await streamToFile(await deps.artifacts.get(deps.artifacts.keyFromUri(uri)), target);
    } catch (err) {
      if ((err as Error).name === 'ArtifactNotFoundError') throw dataError(`dataset ${uri}: object not found`, DATASET_FIX);
      throw err;
    }
  }
  if (!deps.config.s3) throw dataError(`dataset ${uri}: no S3 settings on this worker (S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)`, {
      overrides: ['dataset'],
      action: 'set S3_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY on the CPU workers and restart them',
    });
  const { bucket, key } = parseS3(uri);
  const client = createS3Client(deps.config.s3);
  let body: Readable;
  try {
    body = await client.getObject(bucket, key);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'NoSuchKey' || code === 'NoSuchBucket' || code === 'NotFound') throw dataError(`dataset ${uri}: object not found`, DATASET_FIX);
    throw err;
  }
  return streamToFile(body, target);
}

/** Local folder for copies of our own artifacts, shared by the steps of one worker. */
export function artifactCacheDir(): string {
  return path.join(os.tmpdir(), 'temporal-mlops-cache');
}

/**
 * A local copy of one of our artifacts, verified against its recorded sha256. Copies are kept
 * by hash, so the steps that read the same split (train, evaluate, validate) download it once.
 */
export async function localArtifact(artifacts: ArtifactStore, ref: { uri: string; sha256: string }, ext = ''): Promise<string> {
  const file = path.join(artifactCacheDir(), `${ref.sha256}${ext}`);
  try {
    await fs.access(file);
    return file;
  } catch {
    // not cached yet
  }
  const got = await streamToFile(await artifacts.get(artifacts.keyFromUri(ref.uri)), file);
  if (got.sha256 !== ref.sha256) {
    await fs.rm(file, { force: true });
    throw new Error(`artifact ${ref.uri}: sha256 ${got.sha256} does not match the recorded ${ref.sha256}`);
  }
  return file;
}

/** An artifact's bytes, checked against its recorded sha256 (through the local copy). */
export async function readVerified(artifacts: ArtifactStore, ref: { uri: string; sha256: string }): Promise<Buffer> {
  return fs.readFile(await localArtifact(artifacts, ref));
}

export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `mlops-${prefix}-`));
  try {
    return await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
