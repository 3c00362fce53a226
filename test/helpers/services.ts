import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client as PgClient } from 'pg';
import type { RunningModelServer } from '../../workers/serving/server';
import type { WorkerRuntime } from '../../workers/runtime';
import { createTemporalEnv, independentPg, openTestRuntime } from './real';
import { serveForTest } from './serving';
import { workflowBundle } from './workers';

export interface ServingServices {
  env: TestWorkflowEnvironment;
  runtime: WorkerRuntime;
  /** A connection of its own, for asserting on what the services wrote. */
  pg: PgClient;
  server: RunningModelServer;
}

/**
 * Real Temporal, PostgreSQL, the S3 store (`bucket`) and the model server over loopback for one
 * test file: started before its tests (its own beforeAll hooks run after this one) and closed after them.
 */
export function useServingServices(bucket: string, adminToken: string): ServingServices {
  const s = {} as ServingServices;
  beforeAll(async () => {
    [s.env, s.runtime] = await Promise.all([createTemporalEnv(), openTestRuntime(bucket)]);
    s.pg = await independentPg();
    await workflowBundle();
    s.server = await serveForTest(s.runtime, adminToken);
  }, 300_000);
  afterAll(async () => {
    await s.server?.close();
    await s.pg?.end();
    await s.runtime?.close();
    await s.env?.teardown();
  });
  return s;
}
