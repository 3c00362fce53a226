import type http from 'node:http';
import { SpanKind, SpanStatusCode, context, trace, type Attributes, type Tracer } from '@opentelemetry/api';
import { ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE, ATTR_SERVER_PORT, ATTR_URL_PATH, ATTR_URL_SCHEME } from '@opentelemetry/semantic-conventions';
import { carriesTrace, contextFromHeaders } from '../../infra/trace-context';

/**
 * Server spans of the model server. Which requests: every call of the token-guarded API
 * (`/admin/…` and label feedback), each an operator's or a pipeline's change worth seeing in a
 * trace; any other request only when its caller traces it (it sends a traceparent: the
 * promotion's contract test does). Untraced inference, the hot path, costs a header lookup.
 */

const GUARDED = /^\/(?:admin(?:[/?]|$)|v2\/models\/[^/?]+\/feedback(?:\?|$))/;
const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const ADMIN_ACTIONS = new Set(['load', 'traffic', 'unload']);
const MODEL_ACTIONS = new Set(['infer', 'ready', 'feedback']);

export type Serve = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** The request's route template (`/v2/models/{name}/…`, so span names stay few) and the model and version it named, as attributes. */
export function routeOf(pathname: string): { route?: string; attributes: Attributes } {
  const p = pathname.split('/').filter(Boolean);
  let name: string | undefined;
  try {
    name = p[2] !== undefined ? decodeURIComponent(p[2]) : undefined;
  } catch {
    name = undefined;
  }
  const model: Attributes = name && NAME.test(name) ? { 'mlops.model': name } : {};
  if (p[0] === 'admin' && p[1] === 'models') {
    if (p.length === 2) return { route: '/admin/models', attributes: {} };
    if (p.length === 4 && ADMIN_ACTIONS.has(p[3]!)) return { route: `/admin/models/{name}/${p[3]}`, attributes: model };
    return { attributes: model };
  }
  if (p[0] === 'v2' && p[1] === 'models' && p[2]) {
    const versioned = p[3] === 'versions' && /^[1-9][0-9]{0,8}$/.test(p[4] ?? '');
    const base = versioned ? '/v2/models/{name}/versions/{version}' : '/v2/models/{name}';
    const rest = p.slice(versioned ? 5 : 3);
    const attributes = { ...model, ...(versioned ? { 'mlops.model.version': Number(p[4]) } : {}) };
    if (rest.length === 0) return { route: base, attributes };
    if (rest.length === 1 && MODEL_ACTIONS.has(rest[0]!)) return { route: `${base}/${rest[0]}`, attributes };
    return { attributes };
  }
  if (['/v2', '/v2/health/live', '/v2/health/ready', '/metrics'].includes(pathname)) return { route: pathname, attributes: {} };
  return { attributes: {} };
}

/** `serve`, with a server span around the requests that get one (see above) when a tracer is given. */
export function tracedServe(tracer: Tracer | undefined, port: () => number, serve: Serve): Serve {
  if (!tracer) return serve;
  return (req, res) => {
    const target = req.url ?? '/';
    if (!carriesTrace(req.headers) && !GUARDED.test(target)) return serve(req, res);
    const method = req.method ?? 'GET';
    const pathname = new URL(target, 'http://localhost').pathname;
    const { route, attributes } = routeOf(pathname);
    const parent = contextFromHeaders(req.headers);
    const span = tracer.startSpan(
      route ? `${method} ${route}` : method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          [ATTR_HTTP_REQUEST_METHOD]: method,
          [ATTR_URL_PATH]: pathname,
          [ATTR_URL_SCHEME]: 'http',
          [ATTR_SERVER_PORT]: port(),
          ...(route ? { [ATTR_HTTP_ROUTE]: route } : {}),
          ...attributes,
        },
      },
      parent,
    );
    res.once('close', () => {
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.statusCode);
      if (!res.writableFinished) {
        span.setAttribute(ATTR_ERROR_TYPE, 'aborted');
        span.setStatus({ code: SpanStatusCode.ERROR, message: 'the connection closed before the response was sent' });
      } else if (res.statusCode >= 500) {
        // 4xx is the caller's mistake, not a failed server span (HTTP semantic conventions).
        span.setAttribute(ATTR_ERROR_TYPE, String(res.statusCode));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    });
    context.with(trace.setSpan(parent, span), () => serve(req, res));
  };
}
