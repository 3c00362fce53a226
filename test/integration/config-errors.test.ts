import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createTemporalEnv, testEnv } from '../helpers/real';
import { errorLines, runEntry } from '../helpers/run-entry';

/**
 * Each misconfiguration ends the process with exit code 2 and exactly one `error:` line that
 * names what to fix — no stack trace, no retry loop.
 */
let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await createTemporalEnv();
});
afterAll(async () => {
  await env?.teardown();
});

function base(): NodeJS.ProcessEnv {
  const { PATH, HOME } = process.env;
  return { PATH, HOME, ...testEnv(), TEMPORAL_ADDRESS: env.address, MLOPS_NVIDIA_SMI: '/nonexistent/nvidia-smi', MLOPS_LOG_LEVEL: 'WARN' };
}

async function expectOneLine(file: string, args: string[], overrides: NodeJS.ProcessEnv, pattern: RegExp): Promise<void> {
  const result = await runEntry(file, args, { ...base(), ...overrides });
  const lines = errorLines(result.stderr);
  expect({ code: result.code, lines }).toEqual({ code: 2, lines: [expect.stringMatching(pattern)] });
  expect(result.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
}

test('unreachable TEMPORAL_ADDRESS', async () => {
  await expectOneLine('workers/cpu.ts', [], { TEMPORAL_ADDRESS: '127.0.0.1:1' }, /^error: TEMPORAL_ADDRESS: cannot reach Temporal at 127\.0\.0\.1:1/);
});

test('wrong DATABASE_URL', async () => {
  const url = new URL(process.env.MLOPS_TEST_DATABASE_URL!);
  url.pathname = '/no_such_database_here';
  await expectOneLine('workers/cpu.ts', [], { DATABASE_URL: url.toString() }, /^error: DATABASE_URL: cannot connect to .*no_such_database_here.*does not exist/);
});

test('DATABASE_URL that is not a postgres URL', async () => {
  await expectOneLine('workers/cpu.ts', [], { DATABASE_URL: 'mysql://x' }, /^error: invalid configuration: DATABASE_URL: must be a postgres:\/\//);
});

test('S3 artifact root without credentials', async () => {
  await expectOneLine('workers/cpu.ts', [], { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' }, /^error: ARTIFACT_ROOT is s3:\/\/.* but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set/);
});

test('S3 credentials the server rejects', async () => {
  await expectOneLine('workers/cpu.ts', [], { AWS_SECRET_ACCESS_KEY: 'wrong-secret-key' }, /^error: S3: cannot use bucket .*(credentials|AccessDenied|SignatureDoesNotMatch)/i);
});

test('artifact root with ../', async () => {
  await expectOneLine('workers/cpu.ts', [], { ARTIFACT_ROOT: 's3://bucket-a/models/../../etc' }, /^error: ARTIFACT_ROOT: prefix .* is not allowed: .*'\.\.' segment/);
});

test('GPU worker without GPUs and without --allow-cpu', async () => {
  await expectOneLine('workers/gpu.ts', [], {}, /^error: GPU worker: no GPUs found \(\/nonexistent\/nvidia-smi not found\); pass --allow-cpu/);
});

test('unknown queue name', async () => {
  await expectOneLine('workers/dev.ts', ['--queues', 'control,tpu'], {}, /^error: --queues: unknown queue "tpu"/);
});
