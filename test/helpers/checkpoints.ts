import type { WorkflowHandle } from '@temporalio/client';

/**
 * Waits until the server holds a heartbeat of the running `train` activity that names a stored
 * checkpoint at round ≥ `minRound`, and returns that round: the state a crash test needs before
 * it kills the worker.
 */
export async function waitForCheckpoint(handle: WorkflowHandle, minRound: number, context: () => string, timeoutMs = 150_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const d = await handle.describe();
    const pending = d.raw.pendingActivities?.find((a) => a.activityType?.name === 'train');
    const payload = pending?.heartbeatDetails?.payloads?.[0];
    if (payload?.data) {
      const details = JSON.parse(Buffer.from(payload.data).toString('utf8')) as { round: number; checkpoint?: { round: number } };
      if ((details.checkpoint?.round ?? 0) >= minRound) return details.checkpoint!.round;
    }
    if (d.status.name !== 'RUNNING') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no checkpoint heartbeat at round ≥ ${minRound} seen; status: ${JSON.stringify(await handle.query('status')).slice(0, 1500)}; ${context()}`);
}
