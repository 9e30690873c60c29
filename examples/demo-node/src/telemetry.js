'use strict';
// OpenTelemetry metrics and traces, loaded before the app (`node --require ./src/telemetry.js`) so the
// http auto-instrumentation patches node:http first. Standard OTel only: any OTLP receiver takes the
// metrics; the traces go to Zipkin (the trace view, docs/tracing.md) when OTEL_EXPORTER_ZIPKIN_ENDPOINT
// is set, one server span per request, continuing the caller's traceparent.
//   http.server.request.duration  histogram (s), attribute http.response.status_code (instrumentation-http)
//   process.memory.usage          gauge (By), the resident set size
//   process.memory.limit          gauge (By), DEMO_MEMORY_LIMIT_MB (what "memory > 90 %" is measured against)
const { metrics, ValueType } = require('@opentelemetry/api');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { OTLPMetricExporter } = require('@opentelemetry/exporter-metrics-otlp-proto');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');
const { BatchSpanProcessor, NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { ZipkinExporter } = require('@opentelemetry/exporter-zipkin');
const { settings } = require('./settings');

const s = settings();
const resource = resourceFromAttributes({
  'service.name': s.service,
  'service.instance.id': s.instance,
  'service.version': s.release,
  'process.pid': process.pid,
});
const provider = new MeterProvider({
  resource,
  readers: [new PeriodicExportingMetricReader({
    exporter: new OTLPMetricExporter({ url: s.otlpMetricsUrl, timeoutMillis: Math.min(2000, s.exportIntervalMs) }),
    exportIntervalMillis: s.exportIntervalMs,
    exportTimeoutMillis: Math.min(2000, s.exportIntervalMs),
  })],
});
metrics.setGlobalMeterProvider(provider);

// the OpenTelemetry standard variable, e.g. http://127.0.0.1:9411/api/v2/spans (.stack/env, docker-compose.yml)
const zipkinUrl = process.env.OTEL_EXPORTER_ZIPKIN_ENDPOINT;
const tracerProvider = zipkinUrl ? new NodeTracerProvider({
  resource,
  spanProcessors: [new BatchSpanProcessor(new ZipkinExporter({ url: zipkinUrl }))],
}) : undefined;
tracerProvider?.register(); // the global tracer, the async-hooks context and the W3C traceparent propagator

registerInstrumentations({
  meterProvider: provider,
  tracerProvider,
  instrumentations: [new HttpInstrumentation({
    // HAProxy's health checks are not traffic; the exporter's own calls are not either
    ignoreIncomingRequestHook: (req) => req.url === '/healthz',
    ignoreOutgoingRequestHook: () => true,
  })],
});

const meter = provider.getMeter('demo-node');
meter.createObservableGauge('process.memory.usage', {
  unit: 'By', valueType: ValueType.INT, description: 'Resident set size of the process.',
}).addCallback((r) => r.observe(process.memoryUsage().rss));
meter.createObservableGauge('process.memory.limit', {
  unit: 'By', valueType: ValueType.INT, description: 'Memory the process may use.',
}).addCallback((r) => r.observe(s.memoryLimitMb * 1024 * 1024));

async function shutdownTelemetry() {
  // last export on the way out; an absent receiver is no reason to hang
  await Promise.allSettled([provider.shutdown(), tracerProvider?.shutdown()]);
}

module.exports = { shutdownTelemetry };
