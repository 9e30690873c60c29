// Records the OTLP/HTTP metrics exports of the Node OpenTelemetry SDK, as an instrumented node:http app
// sends them: the first (forced) one into tests/contract/otlp/node-sdk-1.<ext>, the SDK's next (final, at
// shutdown) one into node-sdk-2.<ext>: cumulative, so it holds the first one's counts plus that export's POST.
//   cd tests/node-otlp && npm ci && npm run record     (node record.js proto|json: one encoding)
// proto: @opentelemetry/exporter-metrics-otlp-proto (.binpb); json: @opentelemetry/exporter-metrics-otlp-http (.json).
// The app: @opentelemetry/instrumentation-http (stable `http.server.request.duration`, via
// OTEL_SEMCONV_STABILITY_OPT_IN=http) serving 8 x 200, 3 x 404, 2 x 500, 1 x 503; host-metrics
// for `process.memory.usage`. The receiver is a node:http server on a free loopback port.
process.env.OTEL_SEMCONV_STABILITY_OPT_IN = 'http';
const fs = require('node:fs');
const path = require('node:path');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');
const ENCODING = process.argv[2] || 'proto';
const { OTLPMetricExporter } = require(ENCODING === 'json'
  ? '@opentelemetry/exporter-metrics-otlp-http' : '@opentelemetry/exporter-metrics-otlp-proto');
const EXT = ENCODING === 'json' ? 'json' : 'binpb';
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { HostMetrics } = require('@opentelemetry/host-metrics');

const OUT = path.resolve(__dirname, '..', 'contract', 'otlp');

function listen(server, port = 0) {
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server.address().port)));
}

async function main() {
  // the exporter needs the receiver's port before node:http may be loaded (the instrumentation patches it
  // when it is required, with the meter provider set before): take a free port with node:net first
  const probe = require('node:net').createServer();
  const receiverPort = await listen(probe);
  await new Promise((resolve) => probe.close(resolve));

  const exporter = new OTLPMetricExporter({ url: `http://127.0.0.1:${receiverPort}/v1/metrics` });
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3600000 });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({
      'service.name': 'shop-node', 'service.instance.id': 'shop-node-1', 'host.name': 'recorder', 'process.pid': process.pid,
    }),
    readers: [reader],
  });
  require('@opentelemetry/api').metrics.setGlobalMeterProvider(provider);
  registerInstrumentations({ instrumentations: [new HttpInstrumentation()], meterProvider: provider });
  new HostMetrics({ meterProvider: provider, name: 'host-metrics' }).start();
  const http = require('node:http');
  const captured = [];
  const receiver = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      captured.push({ path: req.url, contentType: req.headers['content-type'], body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': req.headers['content-type'] });
      res.end(ENCODING === 'json' ? '{}' : '');
    });
  });
  await listen(receiver, receiverPort);

  const plan = [...Array(8).fill(200), 404, 404, 404, 500, 500, 503];
  const app = http.createServer((req, res) => {
    const status = Number(req.url.slice(1));
    setTimeout(() => { res.writeHead(status); res.end('x'); }, status === 503 ? 30 : 2);
  });
  const appPort = await listen(app);
  for (const status of plan) {
    await new Promise((resolve, reject) => {
      http.get(`http://127.0.0.1:${appPort}/${status}`, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject);
    });
  }
  await reader.forceFlush();
  await provider.shutdown();
  app.close(); receiver.close();
  if (captured.length !== 2) throw new Error(`expected 2 exports, the receiver got ${captured.length}`);
  fs.mkdirSync(OUT, { recursive: true });
  captured.forEach((c, i) => fs.writeFileSync(path.join(OUT, `node-sdk-${i + 1}.${EXT}`), c.body));
  fs.writeFileSync(path.join(OUT, `node-sdk.${EXT}.meta.json`), JSON.stringify({
    sdk: '@opentelemetry/sdk-metrics', exporter: ENCODING === 'json'
      ? '@opentelemetry/exporter-metrics-otlp-http' : '@opentelemetry/exporter-metrics-otlp-proto',
    contentType: captured[0].contentType, path: captured[0].path, node: process.version,
    plan: { ok: 8, notFound: 3, serverErrors: 3 },
  }, null, 2) + '\n');
  console.log(`recorded ${captured.length} exports (${captured[0].contentType}) to ${OUT}`);
}

main().catch((err) => { console.error(err); process.exit(1); });
