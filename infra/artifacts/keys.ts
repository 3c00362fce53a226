import { UserFacingError } from '../errors';

export class ArtifactKeyError extends UserFacingError {}

const MAX_KEY_BYTES = 900;

/**
 * Checks that a key (relative to the store's root/prefix) cannot escape it: no absolute paths,
 * no `.`/`..` segments, no backslashes, no NUL or control characters, no empty segments, and
 * the same after percent-decoding (so `%2e%2e%2f` is caught too). Returns the key unchanged.
 */
export function validateArtifactKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0) throw new ArtifactKeyError('artifact key must be a non-empty string');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new ArtifactKeyError(`artifact key is longer than ${MAX_KEY_BYTES} bytes`);
  let current = key;
  // Decode repeatedly so double-encoded traversal (%252e) is seen as well.
  for (let round = 0; round < 4; round++) {
    checkLiteral(current, key);
    let decoded: string;
    try {
      decoded = decodeURIComponent(current);
    } catch {
      throw new ArtifactKeyError(`artifact key ${JSON.stringify(key)} has a malformed percent-encoding`);
    }
    if (decoded === current) return key;
    current = decoded;
  }
  throw new ArtifactKeyError(`artifact key ${JSON.stringify(key)} is encoded too many times`);
}

function checkLiteral(candidate: string, original: string): void {
  const bad = (why: string) => new ArtifactKeyError(`artifact key ${JSON.stringify(original)} is not allowed: ${why}`);
  if (/[\u0000-\u001f\u007f]/.test(candidate)) throw bad('control characters or NUL');
  if (candidate.includes('\\')) throw bad('backslash');
  if (candidate.startsWith('/') || /^[a-zA-Z]:/.test(candidate)) throw bad('absolute path');
  for (const segment of candidate.split('/')) {
    if (segment === '..' || segment === '.') throw bad(`'${segment}' segment`);
    if (segment === '') throw bad('empty path segment');
  }
}

/** Joins validated segments with `/`. Each part may itself contain `/`. */
export function joinKey(...parts: string[]): string {
  return validateArtifactKey(parts.filter((p) => p !== '').join('/'));
}
