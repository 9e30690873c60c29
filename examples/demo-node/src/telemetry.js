'use strict';
// OpenTelemetry metrics, loaded before the app (`node --require ./src/telemetry.js`) so the http
// auto-instrumentation patches node:http first. Standard OTel only: any OTLP receiver takes these.
//   http.server.request.duration  histogram (s), attribute http.response.status_code (instrumentation-http)
//   process.memory.usage          gauge (By), the resident set size
//   process.memory.limit          gauge (By), DEMO_MEMORY_LIMIT_MB (what "memory > 90 %" is measured against)
const { metrics, ValueType } = require('@opentelemetry/api');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { OTLPMetricExporter } = require('@opentelemetry/exporter-metrics-otlp-proto');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');
const { settings } = require('./settings');

const s = settings();
const provider = new MeterProvider({
  resource: resourceFromAttributes({
    'service.name': s.service,
    'service.instance.id': s.instance,
    'service.version': s.release,
    'process.pid': process.pid,
  }),
  readers: [new PeriodicExportingMetricReader({
    exporter: new OTLPMetricExporter({ url: s.otlpMetricsUrl, timeoutMillis: Math.min(2000, s.exportIntervalMs) }),
    exportIntervalMillis: s.exportIntervalMs,
    exportTimeoutMillis: Math.min(2000, s.exportIntervalMs),
  })],
});
metrics.setGlobalMeterProvider(provider);

registerInstrumentations({
  meterProvider: provider,
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
  await provider.shutdown().catch(() => {}); // last export on the way out; an absent receiver is no reason to hang
}

module.exports = { shutdownTelemetry };
