import { context, propagation, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, ExportResultCode, SDK_INFO, W3CBaggagePropagator, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { OpenTelemetryPlugin } from '@temporalio/interceptors-opentelemetry';
import type { TracingProtocol } from './config';
import { createLogger, type Logger } from './log';

/**
 * OpenTelemetry tracing for one process part (a plugin's workers and clients, the CLI, the model
 * server): its own tracer provider exporting OTLP over HTTP through a batch processor. Nothing
 * here runs unless tracing is on (see `tracingFromEnv`); trace-context.ts carries the context
 * across our own HTTP calls.
 */

export interface Tracing {
  readonly tracer: Tracer;
  readonly resource: Resource;
  readonly spanProcessor: SpanProcessor;
  readonly serviceName: string;
  readonly url: string;
  /** Exports what is buffered (e.g. when a worker stops). Never rejects: a failed export is logged. */
  flush(): Promise<void>;
  /** Exports what is buffered and stops; later spans are dropped. Idempotent; never rejects. */
  shutdown(): Promise<void>;
}

/** Where spans go (a parsed TracingSettings is one): the OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces. */
export interface TracingOptions {
  url: string;
  protocol?: TracingProtocol;
  serviceName?: string;
  resourceAttributes?: Record<string, string>;
}

const TRACER_NAME = 'temporal-mlops';
const started = new Set<Tracing>();

let globalsChecked = false;

/**
 * The Temporal interceptors and our fetches read the active context and the propagator from
 * the OpenTelemetry API's globals. A process that already registered its own (a NodeSDK) keeps
 * them; otherwise we register AsyncLocalStorage and W3C trace context + baggage, once.
 */
function ensureGlobals(): void {
  if (globalsChecked) return;
  globalsChecked = true;
  const manager = new AsyncLocalStorageContextManager();
  // false: one was registered before us, and stays. Ours, once in, lives as long as the process.
  if (!context.setGlobalContextManager(manager.enable())) manager.disable();
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
}

/**
 * Says once when the collector cannot be reached (and once when it can again) instead of the
 * SDK's silence: its errors go to the API's diag logger, which is a no-op unless configured.
 */
class ReportingExporter implements SpanExporter {
  failing = false;
  constructor(
    private readonly inner: SpanExporter,
    private readonly url: string,
    private readonly log: Logger,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code === ExportResultCode.FAILED && !this.failing) {
        this.failing = true;
        this.log.warn(`tracing: cannot export ${spans.length} span(s) to ${this.url}: ${result.error?.message ?? 'failed'} (dropped; said once until it works again)`);
      } else if (result.code === ExportResultCode.SUCCESS && this.failing) {
        this.failing = false;
        this.log.info(`tracing: exporting to ${this.url} again`);
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/**
 * Starts tracing with these settings. `defaultServiceName` names the entry point when neither
 * the settings nor OTEL_RESOURCE_ATTRIBUTES do. OTLP headers, timeout and compression
 * (OTEL_EXPORTER_OTLP_HEADERS, …), the batch processor's limits (OTEL_BSP_*) and the sampler
 * (OTEL_TRACES_SAMPLER) are read from the process environment by the OpenTelemetry SDK itself.
 */
export function startTracing(settings: TracingOptions, opts: { defaultServiceName: string; log?: Logger }): Tracing {
  ensureGlobals();
  const attributes = settings.resourceAttributes ?? {};
  const serviceName = settings.serviceName ?? attributes[ATTR_SERVICE_NAME] ?? opts.defaultServiceName;
  const resource = new Resource({ ...SDK_INFO, ...attributes, [ATTR_SERVICE_NAME]: serviceName });
  const protocol = settings.protocol ?? 'http/protobuf';
  const exporter = protocol === 'http/json' ? new OtlpJsonExporter({ url: settings.url }) : new OtlpProtoExporter({ url: settings.url });
  const log = opts.log ?? createLogger('otel');
  const reporting = new ReportingExporter(exporter, settings.url, log);
  const spanProcessor = new BatchSpanProcessor(reporting);
  const provider = new BasicTracerProvider({ resource, spanProcessors: [spanProcessor] });
  // Spans that cannot be exported are lost, never the caller's work: a worker stopping or the
  // CLI exiting goes on. An export failure was said already; anything else (a timeout) is said here.
  const settle = (what: string, p: Promise<void>) =>
    p.catch((err: unknown) => {
      if (!reporting.failing) log.warn(`tracing: ${what}: ${err instanceof Error ? err.message : String(err)}`);
    });
  let stopped: Promise<void> | undefined;
  const tracing: Tracing = {
    tracer: provider.getTracer(TRACER_NAME),
    resource,
    spanProcessor,
    serviceName,
    url: settings.url,
    flush: () => stopped ?? settle('flush', provider.forceFlush()),
    shutdown: () => {
      started.delete(tracing);
      stopped ??= settle('shutdown', provider.shutdown());
      return stopped;
    },
  };
  started.add(tracing);
  return tracing;
}

/** Shuts down every tracing this process started, exporting what is buffered: for entry points on their way out. */
export async function shutdownTracing(): Promise<void> {
  await Promise.all([...started].map((t) => t.shutdown()));
}

/**
 * The SDK's own plugin for these spans: the client interceptor (StartWorkflow, SignalWorkflow,
 * …), the workflow interceptor module and its span-exporting sink, the activity interceptors.
 */
export function temporalTracingPlugin(tracing: Tracing): OpenTelemetryPlugin {
  return new OpenTelemetryPlugin({ resource: tracing.resource, spanProcessor: tracing.spanProcessor, tracer: tracing.tracer });
}
