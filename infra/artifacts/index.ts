import type { Config } from '../config';
import { LocalArtifactStore } from './local';
import { S3ArtifactStore, createS3Client } from './s3';
import type { ArtifactStore } from './store';

export * from './store';
export { validateArtifactKey, joinKey, ArtifactKeyError } from './keys';
export { LocalArtifactStore } from './local';
export { S3ArtifactStore, createS3Client } from './s3';

export function createArtifactStore(config: Pick<Config, 'artifactRoot' | 's3'>): ArtifactStore {
  const root = config.artifactRoot;
  if (root.kind === 'local') return new LocalArtifactStore(root.dir);
  if (!config.s3) throw new Error('S3 settings missing for an s3:// artifact root');
  return new S3ArtifactStore(createS3Client(config.s3), root.bucket, root.prefix, config.s3.region);
}
