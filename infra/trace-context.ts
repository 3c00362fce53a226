import { ROOT_CONTEXT, context, propagation, type Context } from '@opentelemetry/api';

/**
 * The trace context across our own HTTP calls (activity → model server), through the
 * OpenTelemetry API's global propagator: W3C traceparent once tracing is on (infra/tracing.ts
 * registers it, unless the process has its own), a no-op otherwise. Only the API is imported
 * here: a process with tracing off loads no SDK on this path.
 */

type Headers = Record<string, string | string[] | undefined>;

/** Headers carrying the active span for an outgoing request; none when nothing is traced. */
export function traceHeaders(): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

/** Whether an incoming request carries a trace context, i.e. its caller traces it. */
export function carriesTrace(headers: Headers): boolean {
  return typeof headers.traceparent === 'string';
}

/** The caller's context from an incoming request's headers (ROOT_CONTEXT when it sent none). */
export function contextFromHeaders(headers: Headers): Context {
  return propagation.extract(ROOT_CONTEXT, headers);
}
