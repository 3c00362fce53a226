import { activityInfo, log, sleep } from '@temporalio/activity';

/**
 * Outages of the stores a step depends on (PostgreSQL restarting, MinIO down, a network cut) are
 * waited out inside the step instead of spending its few Temporal attempts in seconds: the
 * operation is tried again with backoff for up to two minutes (never past the attempt's own
 * start-to-close timeout), while the step keeps heartbeating. Only errors that say the service
 * could not be reached count; every other error fails the attempt at once, as before. Safe
 * because every operation retried here is idempotent (upserts, content-addressed objects).
 */

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);
// PostgreSQL: connection exceptions (08xxx), the server shutting down or not accepting yet (57P0x).
const PG_CODES = /^(08\d{3}|57P0[1-3])$/;
const MESSAGES = /Connection terminated|connection (?:timeout|is closed)|socket hang up|Client network socket disconnected|the database system is (?:starting up|shutting down)|XMinioServerNotInitialized|Server not initialized|SlowDown|ServiceUnavailable/i;

/** Whether `err` (or what caused it) says a service could not be reached, rather than refused the request. */
export function isDependencyOutage(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, message, statusCode } = e as { code?: unknown; message?: unknown; statusCode?: unknown };
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || PG_CODES.test(code))) return true;
    if (statusCode === 503) return true;
    if (typeof message === 'string' && MESSAGES.test(message)) return true;
    if (e instanceof AggregateError && e.errors.some(isDependencyOutage)) return true;
  }
  return false;
}

export const DEPENDENCY_WAIT_MS = 120_000;

/** Runs `fn`, again while it fails with a dependency outage, up to the wait budget. */
export async function waitingOutOutages<T>(what: string, fn: () => Promise<T>, opts: { budgetMs?: number; onWait?: () => void } = {}): Promise<T> {
  const budgetMs = opts.budgetMs ?? DEPENDENCY_WAIT_MS;
  const info = activityInfo();
  const started = Date.now();
  // Leave the attempt time to finish after the service is back.
  const left = info.startToCloseTimeoutMs > 0 ? info.startToCloseTimeoutMs - (started - info.currentAttemptScheduledTimestampMs) - 15_000 : budgetMs;
  const deadline = started + Math.min(budgetMs, Math.max(0, left));
  for (let wait = 500; ; wait = Math.min(wait * 2, 5_000)) {
    try {
      return await fn();
    } catch (err) {
      if (!isDependencyOutage(err) || Date.now() + wait > deadline) throw err;
      log.warn(`${what}: a store is unreachable (${err instanceof Error ? err.message : String(err)}); trying again in ${wait} ms (waiting up to ${Math.round((deadline - started) / 1000)} s)`);
      // A step that heartbeats by itself says it is alive while it waits.
      opts.onWait?.();
      // The activity's sleep ends early when the step is cancelled.
      await sleep(wait);
    }
  }
}
