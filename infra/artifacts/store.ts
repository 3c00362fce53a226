import type { Readable } from 'node:stream';

export interface PutResult {
  /** Full address of the object: `s3://bucket/prefix/key` or `file:///…/key`. */
  uri: string;
  key: string;
  sha256: string;
  bytes: number;
  mediaType: string;
}

export interface ObjectInfo {
  uri: string;
  key: string;
  bytes: number;
  sha256?: string;
  mediaType?: string;
}

/**
 * Content and named artifacts. Keys are relative to the store's root and validated with
 * `validateArtifactKey`; content-addressed objects live under `cas/sha256/<hash>`.
 */
export interface ArtifactStore {
  /** Root URI (`s3://bucket/prefix` or `file:///dir`). */
  readonly root: string;
  /** Makes sure the bucket/folder exists. Idempotent. */
  ensureReady(): Promise<void>;
  put(key: string, body: Readable | Buffer | string, opts?: { mediaType?: string }): Promise<PutResult>;
  /** Stores content under its own sha256; storing the same bytes twice is a no-op. */
  putContent(body: Readable | Buffer | string, opts?: { mediaType?: string }): Promise<PutResult>;
  get(key: string): Promise<Readable>;
  stat(key: string): Promise<ObjectInfo | undefined>;
  /** Key of the content-addressed object with this hash. */
  contentKey(sha256: string): string;
  uriFor(key: string): string;
  /** Inverse of uriFor: the key of a URI under this store's root, or an error. */
  keyFromUri(uri: string): string;
  delete(key: string): Promise<void>;
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;

export function casKey(sha256: string): string {
  if (!SHA256_HEX.test(sha256)) throw new Error(`not a sha256 hex digest: ${JSON.stringify(sha256)}`);
  return `cas/sha256/${sha256.slice(0, 2)}/${sha256}`;
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}

export class ArtifactNotFoundError extends Error {
  constructor(uri: string) {
    super(`artifact not found: ${uri}`);
    this.name = 'ArtifactNotFoundError';
  }
}
