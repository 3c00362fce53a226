import { ArtifactKeyError, joinKey, validateArtifactKey } from '../../infra/artifacts/keys';

describe('validateArtifactKey', () => {
  test.each([
    'datasets/flights/2001-01.parquet',
    'cas/sha256/ab/abcdef',
    'models/flights-delay/v1/model.onnx',
    'a..b/c', // dots inside a name are fine
    'x%20y',
  ])('accepts %j', (key) => {
    expect(validateArtifactKey(key)).toBe(key);
  });

  test.each([
    ['', /non-empty/],
    ['../etc/passwd', /'\.\.' segment/],
    ['a/../../b', /'\.\.' segment/],
    ['a/..', /'\.\.' segment/],
    ['./a', /'\.' segment/],
    ['/abs/path', /absolute path/],
    ['C:/windows', /absolute path/],
    ['a\\..\\b', /backslash/],
    ['a\u0000b', /NUL/],
    ['a\nb', /control/],
    ['a//b', /empty path segment/],
    ['a/', /empty path segment/],
    ['%2e%2e/secret', /'\.\.' segment/],
    ['a/%2E%2E/b', /'\.\.' segment/],
    ['%252e%252e%252fsecret', /'\.\.' segment/],
    ['a%2f..%2fb', /'\.\.' segment/],
    ['%2fetc', /absolute path/],
    ['a%5cb', /backslash/],
    ['a%00b', /NUL/],
    ['%E0%A4%A', /malformed percent-encoding/],
    ['x'.repeat(901), /longer than/],
  ])('rejects %j', (key, why) => {
    expect(() => validateArtifactKey(key)).toThrow(ArtifactKeyError);
    expect(() => validateArtifactKey(key)).toThrow(why);
  });

  test('joinKey validates the joined key', () => {
    expect(joinKey('models', 'm', 'v1')).toBe('models/m/v1');
    expect(() => joinKey('models', '..', 'x')).toThrow(ArtifactKeyError);
  });
});
