import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HashingStream, toReadable } from './hashing';
import { ArtifactKeyError, validateArtifactKey } from './keys';
import { ArtifactNotFoundError, casKey, type ArtifactStore, type ObjectInfo, type PutResult } from './store';

const DEFAULT_MEDIA_TYPE = 'application/octet-stream';

/** Artifact store on a local folder; writes go to a temp file and are renamed into place. */
export class LocalArtifactStore implements ArtifactStore {
  readonly root: string;

  constructor(private readonly dir: string) {
    this.dir = path.resolve(dir);
    this.root = pathToFileURL(this.dir).href;
  }

  async ensureReady(): Promise<void> {
    await fs.mkdir(path.join(this.dir, '.tmp'), { recursive: true });
  }

  private pathFor(key: string): string {
    validateArtifactKey(key);
    const full = path.resolve(this.dir, key);
    // Defence in depth: validation already forbids every way out of the folder.
    if (!full.startsWith(this.dir + path.sep)) throw new ArtifactKeyError(`artifact key ${JSON.stringify(key)} escapes the store`);
    return full;
  }

  private async spool(body: Readable | Buffer | string): Promise<{ tmp: string; sha256: string; bytes: number }> {
    await this.ensureReady();
    const tmp = path.join(this.dir, '.tmp', randomUUID());
    const hasher = new HashingStream();
    try {
      await pipeline(toReadable(body), hasher, createWriteStream(tmp));
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
    return { tmp, sha256: hasher.digest(), bytes: hasher.bytes };
  }

  async put(key: string, body: Readable | Buffer | string, opts: { mediaType?: string } = {}): Promise<PutResult> {
    const target = this.pathFor(key);
    const { tmp, sha256, bytes } = await this.spool(body);
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.rename(tmp, target);
    return { uri: this.uriFor(key), key, sha256, bytes, mediaType: opts.mediaType ?? DEFAULT_MEDIA_TYPE };
  }

  async putContent(body: Readable | Buffer | string, opts: { mediaType?: string } = {}): Promise<PutResult> {
    const { tmp, sha256, bytes } = await this.spool(body);
    const key = casKey(sha256);
    const target = this.pathFor(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    // Same name means same bytes, so replacing an existing copy is harmless and atomic.
    await fs.rename(tmp, target);
    return { uri: this.uriFor(key), key, sha256, bytes, mediaType: opts.mediaType ?? DEFAULT_MEDIA_TYPE };
  }

  async get(key: string): Promise<Readable> {
    const file = this.pathFor(key);
    await fs.access(file).catch(() => {
      throw new ArtifactNotFoundError(this.uriFor(key));
    });
    return createReadStream(file);
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const st = await fs.stat(this.pathFor(key));
      return { uri: this.uriFor(key), key, bytes: st.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  contentKey(sha256: string): string {
    return casKey(sha256);
  }

  uriFor(key: string): string {
    validateArtifactKey(key);
    return `${this.root}/${key.split('/').map(encodeURIComponent).join('/')}`;
  }

  keyFromUri(uri: string): string {
    if (!uri.startsWith(this.root + '/')) throw new ArtifactKeyError(`${uri} is not under ${this.root}`);
    const rel = path.relative(this.dir, fileURLToPath(uri)).split(path.sep).join('/');
    return validateArtifactKey(rel);
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.pathFor(key), { force: true });
  }
}
