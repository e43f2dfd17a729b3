// OpenTelemetry spans, when configured (gateway.tracing.otlp, or the OTEL_EXPORTER_OTLP_*
// environment): one SERVER span per request, its parent the client's W3C `traceparent`, and
// under it one span per hop — function, instance, wait and run — built after the answer from the
// hop trace the descriptors carried, so tracing adds no work to any hop. Spans leave in batches
// through the OTLP/HTTP exporter (or any exporter given, e.g. the tests' in-memory one).
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context } from '@opentelemetry/api';
import { parseTraceParent } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { nowUs } from '../descriptor/index.ts';
import { CALL_TRACE_BIT, type HopTrace } from '../pool/index.ts';

export interface TracingSettings {
  /** OTLP/HTTP traces endpoint (e.g. http://127.0.0.1:4318/v1/traces); unset: the
   *  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT environment, else off. */
  otlp?: string;
  serviceName: string;
}

/** What the gateway knows of an answered request. */
export interface TracedRequest {
  requestId: number;
  method: string;
  route: string;
  url: string;
  status: number;
  /** The error code of an error answer. */
  error?: string;
  /** µs (nowUs) the gateway accepted it, and µs after that it had the answer. */
  tArrive: number;
  received: number;
  hops: HopTrace[];
  traceparent?: string;
}

export class Tracing {
  private readonly provider: BasicTracerProvider;
  private readonly tracer;
  /** ms to add to a nowUs() reading / 1000 to get epoch ms (the descriptors' clock is monotonic). */
  private readonly epochMs = performance.timeOrigin + performance.now() - nowUs() / 1000;

  /** Tracing to `settings.otlp` (unset: the exporter's OTEL_EXPORTER_OTLP_* environment), or
   *  to `exporter` (tests), which exports each span at once. */
  static open(settings: TracingSettings, exporter?: SpanExporter): Tracing {
    if (exporter) return new Tracing(settings.serviceName, new SimpleSpanProcessor(exporter));
    return new Tracing(settings.serviceName, new BatchSpanProcessor(new OTLPTraceExporter(settings.otlp ? { url: settings.otlp } : {})));
  }

  private constructor(serviceName: string, processor: SimpleSpanProcessor | BatchSpanProcessor) {
    this.provider = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': serviceName }), spanProcessors: [processor] });
    this.tracer = this.provider.getTracer('baton');
  }

  private at(us: number): number {
    return this.epochMs + us / 1000;
  }

  record(r: TracedRequest, fnName: (fnId: number) => string): void {
    const remote = r.traceparent ? parseTraceParent(r.traceparent) : null;
    const parent: Context = remote ? trace.setSpanContext(ROOT_CONTEXT, remote) : ROOT_CONTEXT;
    const root = this.tracer.startSpan(
      `${r.method} ${r.route}`,
      {
        kind: SpanKind.SERVER,
        startTime: this.at(r.tArrive),
        attributes: {
          'http.request.method': r.method, 'http.route': r.route, 'url.path': r.url.split('?')[0]!,
          'http.response.status_code': r.status, 'baton.request_id': r.requestId,
          ...(r.error ? { 'error.type': r.error } : {}),
        },
      },
      parent,
    );
    if (r.status >= 500) root.setStatus({ code: SpanStatusCode.ERROR, message: r.error });
    const inRoot = trace.setSpan(parent, root);
    for (const h of r.hops) {
      const nested = (h.key & CALL_TRACE_BIT) !== 0;
      const span = this.tracer.startSpan(
        `${nested ? 'call' : 'hop'} ${fnName(h.fnId)}`,
        {
          kind: SpanKind.INTERNAL,
          startTime: this.at(r.tArrive + h.sent),
          attributes: {
            'baton.function': fnName(h.fnId), 'baton.instance_key': h.key & ~CALL_TRACE_BIT, 'baton.nested_call': nested,
            'baton.wait_us': h.start - h.sent, 'baton.run_us': h.end - h.start,
          },
        },
        inRoot,
      );
      span.addEvent('handler start', this.at(r.tArrive + h.start));
      span.end(this.at(r.tArrive + h.end));
    }
    root.end(this.at(r.tArrive + r.received));
  }

  /** Sends what is batched. */
  flush(): Promise<void> {
    return this.provider.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}
