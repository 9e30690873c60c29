'use strict';
// The demo shop in Node (plain node:http): the same routes as the Python demo (examples/demo/api.py).
// Flags through OpenFeature (src/flags.js), metrics through OpenTelemetry (src/telemetry.js, loaded
// first with --require). No Safeguard code in here.
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const { Pool } = require('pg');
const { settings } = require('./settings');
const { openFlags } = require('./flags');
const { Faults, FaultError, parseUpdate } = require('./faults');
const { isTrustedLoopback, hasAdminToken } = require('./access');
const { homePage } = require('./page');

const ROOT = path.resolve(__dirname, '..');
const STATIC = {
  '/static/vitals.js': path.join(ROOT, 'public', 'vitals.js'),
  '/vendor/web-vitals.js': path.join(ROOT, 'node_modules', 'web-vitals', 'dist', 'web-vitals.js'),
};

class HttpError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

function send(res, status, body, type = 'application/json') {
  if (status === 204) { res.writeHead(204); res.end(); return; }
  const text = type === 'application/json' ? JSON.stringify(body) : body;
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req, limit = 16 * 1024) {
  let size = 0;
  const chunks = [];
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, `body larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
  } catch (err) {
    throw new HttpError(422, `body is not JSON: ${err.message}`);
  }
}

function makeApp({ s, db, flags, faults }) {
  async function faulty() {
    if (faults.latency_ms) await new Promise((r) => setTimeout(r, faults.latency_ms));
    if (faults.shouldFail()) throw new HttpError(500, 'injected failure');
  }

  async function query(sql) {
    try {
      return (await db.query(sql)).rows;
    } catch (err) {
      if (err.code && /^[0-9A-Z]{5}$/.test(err.code)) throw err; // an SQL error is a bug: 500
      throw new HttpError(503, `database unavailable (${err.code || err.message})`);
    }
  }

  const items = () => query('SELECT id, name, points FROM demo.items ORDER BY id LIMIT 50');

  function requireAdmin(req) {
    if (hasAdminToken(req, s.adminToken) || (s.trustLoopback && isTrustedLoopback(req))) return;
    throw new HttpError(401, 'admin token required (trusted loopback is off or the caller is not local)');
  }

  const routes = {
    'GET /healthz': async () => [200, {
      status: 'pass', service: s.service, instance: s.instance, version: s.release,
      flags: { provider: flags.kind, status: flags.status() },
    }],
    'GET /': async (req, url) => {
      await faulty();
      const user = url.searchParams.get('user') || 'guest';
      const gamification = await flags.enabled('gamification', user);
      if ((req.headers.accept || '').includes('text/html')) {
        return [200, homePage({ s, user, gamification, items: await items() }), 'text/html'];
      }
      return [200, { app: 'demo-node', color: s.color, version: s.release, user, gamification }];
    },
    'GET /api/items': async () => { await faulty(); return [200, await items()]; },
    'GET /api/gamification/leaderboard': async (req, url) => {
      await faulty();
      const user = url.searchParams.get('user') || 'guest';
      if (!(await flags.enabled('gamification', user))) throw new HttpError(404, 'gamification is not enabled');
      const leaders = await query('SELECT name, points FROM demo.items ORDER BY points DESC LIMIT 5');
      return [200, { source: 'db', leaders }];
    },
    'GET /favicon.ico': async () => [204, ''],
    'GET /api/faults': async () => [200, faults.describe()],
    'PUT /api/faults': async (req) => {
      requireAdmin(req);
      faults.apply(parseUpdate(await readJson(req)));
      console.warn(JSON.stringify({ msg: 'faults changed', audit: true, faults: faults.describe() }));
      return [200, faults.describe()];
    },
    'DELETE /api/faults': async (req) => {
      requireAdmin(req);
      faults.reset();
      console.warn(JSON.stringify({ msg: 'faults reset', audit: true }));
      return [200, faults.describe()];
    },
  };

  return async function handle(req, res) {
    const url = new URL(req.url, 'http://localhost');
    const file = req.method === 'GET' && STATIC[url.pathname];
    if (file) {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'max-age=300' });
      fs.createReadStream(file).pipe(res);
      return;
    }
    const route = routes[`${req.method} ${url.pathname}`];
    try {
      if (!route) throw new HttpError(404, `no route ${req.method} ${url.pathname}`);
      const [status, body, type] = await route(req, url);
      send(res, status, body, type);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : err instanceof FaultError ? 422 : 500;
      if (status === 500 && !(err instanceof HttpError)) console.error(err);
      send(res, status, { detail: err.message });
    }
  };
}

async function main() {
  const s = settings();
  const db = new Pool({ connectionString: s.postgresDsn, max: 5, connectionTimeoutMillis: 2000 });
  db.on('error', (err) => console.error(`postgres: ${err.message}`)); // an idle client lost: the pool replaces it
  const flags = await openFlags(s);
  const server = http.createServer(makeApp({ s, db, flags, faults: new Faults() }));
  server.keepAliveTimeout = 65000; // longer than HAProxy's keep-alive, so it never reuses a closing socket
  server.listen(s.port, s.host, () => console.log(
    `demo-node ${s.instance} ${s.release} on http://${s.host}:${s.port} (flags: ${flags.kind})`));
  const stop = async () => {
    server.close();
    const { shutdownTelemetry } = require('./telemetry');
    await Promise.allSettled([flags.close(), db.end(), shutdownTelemetry()]);
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (require.main === module) {
  main().catch((err) => { console.error(err); process.exit(1); });
}

module.exports = { makeApp };
