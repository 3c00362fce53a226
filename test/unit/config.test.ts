import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../infra/paths';
import { ConfigError } from '../../infra/errors';
import { CONFIG_DOCS, loadConfig, parseArtifactRoot, taskQueuesFromEnv } from '../../infra/config';

describe('loadConfig', () => {
  test('defaults: local artifacts under the state folder, local PostgreSQL probe', () => {
    const c = loadConfig({ MLOPS_STATE_DIR: '/tmp/st' });
    expect(c.artifactRoot).toEqual({ kind: 'local', dir: '/tmp/st/artifacts', uri: 'file:///tmp/st/artifacts' });
    expect(c.localPostgresUrl).toBe('postgres://postgres@127.0.0.1:5432/postgres');
    expect(c.databaseName).toBe('mlops');
    expect(c.databaseSchema).toBe('mlops');
    expect(c.s3).toBeUndefined();
    expect(c.allowCpu).toBe(false);
  });

  test('s3 root with endpoint and credentials', () => {
    const c = loadConfig({
      ARTIFACT_ROOT: 's3://mlops-artifacts/team-a',
      S3_ENDPOINT: 'http://127.0.0.1:9000',
      AWS_ACCESS_KEY_ID: 'k',
      AWS_SECRET_ACCESS_KEY: 's',
    });
    expect(c.artifactRoot).toEqual({ kind: 's3', bucket: 'mlops-artifacts', prefix: 'team-a', uri: 's3://mlops-artifacts/team-a' });
    expect(c.s3).toEqual({ endPoint: '127.0.0.1', port: 9000, useSSL: false, accessKey: 'k', secretKey: 's', region: 'us-east-1' });
  });

  test.each([
    [{ ARTIFACT_ROOT: 's3://bucket-x' }, /ARTIFACT_ROOT is s3:\/\/bucket-x but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set/],
    [{ ARTIFACT_ROOT: 's3://bucket-x', AWS_ACCESS_KEY_ID: 'k' }, /but AWS_SECRET_ACCESS_KEY is not set/],
    [{ ARTIFACT_ROOT: 's3://Bad_Bucket' }, /ARTIFACT_ROOT: "Bad_Bucket" is not a valid S3 bucket name/],
    [{ ARTIFACT_ROOT: 's3://bucket-x/a/../b' }, /ARTIFACT_ROOT: prefix "a\/..\/b" is not allowed/],
    [{ ARTIFACT_ROOT: '/data/../etc' }, /ARTIFACT_ROOT: .* must not contain '\.\.'/],
    [{ ARTIFACT_ROOT: 'gs://bucket' }, /ARTIFACT_ROOT: unsupported scheme/],
    [{ DATABASE_URL: 'mysql://localhost/x' }, /DATABASE_URL: must be a postgres/],
    [{ S3_ENDPOINT: 'localhost:9000' }, /S3_ENDPOINT: must look like http/],
    [{ MLOPS_ALLOW_CPU: 'maybe' }, /MLOPS_ALLOW_CPU: expected true\/false/],
    [{ MLOPS_GPU_CLASS: 'H100 PCIe' }, /MLOPS_GPU_CLASS: must be lowercase/],
    [{ MLOPS_DATABASE_NAME: 'drop table' }, /MLOPS_DATABASE_NAME: must be a lowercase SQL identifier/],
    [{ MLOPS_DB_SCHEMA: 'Bad-Name' }, /MLOPS_DB_SCHEMA: must be a lowercase SQL identifier/],
    [{ MLOPS_DB_SCHEMA: '1st' }, /MLOPS_DB_SCHEMA: must be a lowercase SQL identifier/],
    [{ MLOPS_DB_SCHEMA: 'mlops"; drop schema public; --' }, /MLOPS_DB_SCHEMA: must be a lowercase SQL identifier/],
    [{ MLOPS_DB_SCHEMA: 'a'.repeat(64) }, /MLOPS_DB_SCHEMA: must be a lowercase SQL identifier/],
    [{ MLOPS_LOCAL_POSTGRES: 'localhost' }, /MLOPS_LOCAL_POSTGRES: must be a postgres:\/\/ URL or `off`/],
  ])('%j → one clear error', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
    try {
      loadConfig(env);
    } catch (err) {
      expect((err as Error).message).not.toContain('\n');
    }
  });

  test('MLOPS_DB_SCHEMA: the schema our tables live in, `mlops` when unset or empty', () => {
    expect(loadConfig({ MLOPS_DB_SCHEMA: 'team_a' }).databaseSchema).toBe('team_a');
    expect(loadConfig({ MLOPS_DB_SCHEMA: ' _x9 ' }).databaseSchema).toBe('_x9');
    expect(loadConfig({ MLOPS_DB_SCHEMA: 'a'.repeat(63) }).databaseSchema).toBe('a'.repeat(63));
    expect(loadConfig({ MLOPS_DB_SCHEMA: '' }).databaseSchema).toBe('mlops');
    expect(CONFIG_DOCS.find((d) => d.name === 'MLOPS_DB_SCHEMA')?.default).toBe('mlops');
  });

  test('file:// roots resolve to absolute folders', () => {
    expect(parseArtifactRoot('file:///var/lib/mlops')).toMatchObject({ kind: 'local', dir: '/var/lib/mlops' });
    expect(parseArtifactRoot('rel/dir')).toMatchObject({ kind: 'local', dir: path.resolve('rel/dir') });
  });

  test('the README documents every configuration variable', () => {
    const readme = readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
    for (const name of CONFIG_DOCS.flatMap((d) => d.name.split(' / ').map((n) => n.trim()))) {
      expect(readme).toContain(`\`${name}\``);
    }
  });

  test('every variable the code reads is documented', () => {
    const documented = CONFIG_DOCS.flatMap((d) => d.name.split(' / ').map((n) => n.trim()));
    for (const name of ['DATABASE_URL', 'ARTIFACT_ROOT', 'S3_ENDPOINT', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'TEMPORAL_ADDRESS', 'TEMPORAL_CLI_PATH', 'MINIO_SERVER_PATH', 'MLOPS_STATE_DIR', 'MLOPS_ALLOW_CPU', 'MLOPS_GPU_CLASS']) {
      expect(documented).toContain(name);
    }
  });

  test('MLOPS_TASK_QUEUE_PREFIX names our three queues; a bad prefix names the variable', () => {
    expect(loadConfig({}).taskQueues).toEqual({ control: 'mlops-control', cpu: 'mlops-cpu', gpu: 'mlops-gpu' });
    expect(loadConfig({ MLOPS_TASK_QUEUE_PREFIX: 'acme-ml' }).taskQueues).toEqual({ control: 'acme-ml-control', cpu: 'acme-ml-cpu', gpu: 'acme-ml-gpu' });
    expect(() => loadConfig({ MLOPS_TASK_QUEUE_PREFIX: 'acme ml' })).toThrow(/MLOPS_TASK_QUEUE_PREFIX: must be letters, digits/);
    // Clients read the queue names alone: an unrelated bad variable does not stop them.
    expect(taskQueuesFromEnv({ MLOPS_TASK_QUEUE_PREFIX: 'acme-ml', ARTIFACT_ROOT: 's3://bucket' }).control).toBe('acme-ml-control');
    expect(() => taskQueuesFromEnv({ MLOPS_TASK_QUEUE_PREFIX: 'acme ml' })).toThrow(/MLOPS_TASK_QUEUE_PREFIX: must be letters, digits/);
  });

  test('MLOPS_WORKER_DEPLOYMENT versions the workers; without it they are unversioned; a bad name names the variable', () => {
    expect(loadConfig({}).workerDeployment).toBeUndefined();
    expect(loadConfig({ MLOPS_WORKER_DEPLOYMENT: 'mlops' }).workerDeployment).toEqual({ name: 'mlops', buildId: undefined });
    expect(loadConfig({ MLOPS_WORKER_DEPLOYMENT: 'mlops', MLOPS_WORKER_BUILD_ID: '1.5.0+abc' }).workerDeployment).toEqual({ name: 'mlops', buildId: '1.5.0+abc' });
    expect(() => loadConfig({ MLOPS_WORKER_DEPLOYMENT: 'ml.ops' })).toThrow(/MLOPS_WORKER_DEPLOYMENT: must be letters, digits, _ and - \(no dots\)/);
    expect(() => loadConfig({ MLOPS_WORKER_DEPLOYMENT: 'mlops', MLOPS_WORKER_BUILD_ID: 'a b' })).toThrow(/MLOPS_WORKER_BUILD_ID: must be/);
  });
});
