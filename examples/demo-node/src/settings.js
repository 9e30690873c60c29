'use strict';
// Everything the app reads from its environment, in one place (read at start, never at import).

function int(env, name, fallback) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${raw}: expected a whole number >= 0`);
  return n;
}

function settings(env = process.env) {
  const color = env.DEMO_COLOR || 'blue';
  const service = env.OTEL_SERVICE_NAME || 'demo-node';
  const otlp = (env.OTEL_EXPORTER_OTLP_ENDPOINT || `http://127.0.0.1:${env.OTLP_HTTP_PORT || 4318}`).replace(/\/$/, '');
  return {
    color,
    service,
    instance: `${service}-${color}`,
    release: env.DEMO_RELEASE || 'v1',
    host: env.HOST || '127.0.0.1',
    port: int(env, 'PORT', 8201),
    postgresDsn: env.POSTGRES_DSN || 'postgresql://safeguard@127.0.0.1:5432/safeguard',
    // flagd in-process sync (the default), or OFREP against the flags service
    flagsProvider: env.DEMO_FLAGS_PROVIDER || 'flagd',
    flagsSyncHost: env.FLAGS_SYNC_HOST || '127.0.0.1',
    flagsSyncPort: int(env, 'FLAGS_SYNC_PORT', 8015),
    flagsUrl: env.DEMO_FLAGS_URL || `http://127.0.0.1:${env.FLAGS_PORT || 8001}`,
    otlpMetricsUrl: env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT || `${otlp}/v1/metrics`,
    exportIntervalMs: int(env, 'DEMO_METRICS_INTERVAL_MS', 1000),
    memoryLimitMb: int(env, 'DEMO_MEMORY_LIMIT_MB', 512),
    beaconUrl: env.DEMO_BEACON_URL || `http://127.0.0.1:${env.FRONT_PORT || 3000}/api/beacon`,
    adminToken: env.DEMO_ADMIN_TOKEN || env.SAFEGUARD_ADMIN_TOKEN || '',
    trustLoopback: (env.DEMO_TRUST_LOOPBACK || (env.SAFEGUARD_ENV === 'local' ? '1' : '0')) === '1',
  };
}

module.exports = { settings };
