import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Client } from 'minio';
import { UserFacingError, describeError } from '../errors';
import type { S3Settings } from '../config';
import { HashingStream, toReadable } from './hashing';
import { ArtifactKeyError, validateArtifactKey } from './keys';
import { ArtifactNotFoundError, casKey, type ArtifactStore, type ObjectInfo, type PutResult } from './store';

const DEFAULT_MEDIA_TYPE = 'application/octet-stream';

export function createS3Client(s3: S3Settings): Client {
  return new Client({
    endPoint: s3.endPoint,
    port: s3.port,
    useSSL: s3.useSSL,
    accessKey: s3.accessKey,
    secretKey: s3.secretKey,
    region: s3.region,
    pathStyle: true,
  });
}

/** Artifact store on S3 (MinIO, AWS or any S3-compatible server) through the `minio` client. */
export class S3ArtifactStore implements ArtifactStore {
  readonly root: string;
  private ready?: Promise<void>;

  constructor(
    private readonly client: Client,
    private readonly bucket: string,
    private readonly prefix: string,
    private readonly region = 'us-east-1',
  ) {
    this.root = `s3://${bucket}${prefix ? `/${prefix}` : ''}`;
  }

  ensureReady(): Promise<void> {
    this.ready ??= this.createBucket().catch((err) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  private async createBucket(): Promise<void> {
    try {
      if (await this.client.bucketExists(this.bucket)) return;
      await this.client.makeBucket(this.bucket, this.region);
    } catch (err) {
      if ((err as { code?: string }).code === 'BucketAlreadyOwnedByYou') return;
      throw new UserFacingError(`S3: cannot use bucket ${this.bucket}: ${describeError(err)}`);
    }
  }

  private objectName(key: string): string {
    validateArtifactKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  async put(key: string, body: Readable | Buffer | string, opts: { mediaType?: string } = {}): Promise<PutResult> {
    await this.ensureReady();
    const mediaType = opts.mediaType ?? DEFAULT_MEDIA_TYPE;
    const hasher = new HashingStream();
    const source = toReadable(body);
    source.on('error', (err) => hasher.destroy(err));
    await this.client.putObject(this.bucket, this.objectName(key), source.pipe(hasher), undefined, { 'Content-Type': mediaType });
    return { uri: this.uriFor(key), key, sha256: hasher.digest(), bytes: hasher.bytes, mediaType };
  }

  async putContent(body: Readable | Buffer | string, opts: { mediaType?: string } = {}): Promise<PutResult> {
    // Upload under a temporary name while hashing, then copy server-side to the content key.
    const tmpKey = `.tmp/${randomUUID()}`;
    const staged = await this.put(tmpKey, body, opts);
    const key = casKey(staged.sha256);
    try {
      if (!(await this.stat(key))) {
        await this.client.copyObject(this.bucket, this.objectName(key), `/${this.bucket}/${this.objectName(tmpKey)}`);
      }
    } finally {
      await this.client.removeObject(this.bucket, this.objectName(tmpKey)).catch(() => undefined);
    }
    return { ...staged, key, uri: this.uriFor(key) };
  }

  async get(key: string): Promise<Readable> {
    try {
      return await this.client.getObject(this.bucket, this.objectName(key));
    } catch (err) {
      if ((err as { code?: string }).code === 'NoSuchKey') throw new ArtifactNotFoundError(this.uriFor(key));
      throw err;
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const st = await this.client.statObject(this.bucket, this.objectName(key));
      const meta = st.metaData as Record<string, string | undefined>;
      return { uri: this.uriFor(key), key, bytes: st.size, mediaType: meta['content-type'] };
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'NotFound' || code === 'NoSuchKey') return undefined;
      throw err;
    }
  }

  contentKey(sha256: string): string {
    return casKey(sha256);
  }

  uriFor(key: string): string {
    return `s3://${this.bucket}/${this.objectName(key)}`;
  }

  keyFromUri(uri: string): string {
    if (!uri.startsWith(this.root + '/')) throw new ArtifactKeyError(`${uri} is not under ${this.root}`);
    return validateArtifactKey(uri.slice(this.root.length + 1));
  }

  async delete(key: string): Promise<void> {
    await this.client.removeObject(this.bucket, this.objectName(key));
  }
}
