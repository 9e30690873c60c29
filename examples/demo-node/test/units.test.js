'use strict';
// Unit tests of the Node demo's own logic (no network): `node --test test/` (run by tests/unit/test_demo_node.py).
const test = require('node:test');
const assert = require('node:assert/strict');
const { Faults, FaultError, parseUpdate } = require('../src/faults');
const { hasAdminToken, isTrustedLoopback } = require('../src/access');
const { settings } = require('../src/settings');

const req = (remoteAddress, headers = {}) => ({ socket: { remoteAddress }, headers });

test('a fault update takes known faults in range and names what is wrong otherwise', () => {
  assert.deepEqual(parseUpdate({ error_rate: 0.3, latency_ms: null }), { error_rate: 0.3 });
  assert.throws(() => parseUpdate({ error_rate: 1.5 }), (e) => e instanceof FaultError && /error_rate: expected a number from 0 to 1, got 1.5/.test(e.message));
  assert.throws(() => parseUpdate({ error_rate: '0.3' }), /error_rate: expected a number/);
  assert.throws(() => parseUpdate({ drop_db: true }), /drop_db: unknown fault/);
  assert.throws(() => parseUpdate([1]), /expected a JSON object/);
  assert.throws(() => parseUpdate(null), /expected a JSON object/);
});

test('faults fail that share of requests and reset to none', () => {
  const f = new Faults();
  assert.equal(Array.from({ length: 200 }, () => f.shouldFail()).filter(Boolean).length, 0);
  f.apply({ error_rate: 1 });
  assert.equal(f.shouldFail(), true);
  f.apply({ error_rate: 0.5 });
  const failed = Array.from({ length: 2000 }, () => f.shouldFail()).filter(Boolean).length;
  assert.ok(failed > 800 && failed < 1200, `${failed} of 2000`);
  f.reset();
  assert.deepEqual(f.describe(), { error_rate: 0, latency_ms: 0 });
});

test('loopback is trusted directly and through a local proxy for a local client only', () => {
  assert.equal(isTrustedLoopback(req('127.0.0.1')), true);
  assert.equal(isTrustedLoopback(req('::ffff:127.0.0.1', { 'x-forwarded-for': '127.0.0.1' })), true);
  assert.equal(isTrustedLoopback(req('127.0.0.1', { 'x-forwarded-for': '203.0.113.9' })), false);
  assert.equal(isTrustedLoopback(req('10.0.0.5')), false);
});

test('the admin token is compared exactly, and an empty one never matches', () => {
  assert.equal(hasAdminToken(req('10.0.0.5', { authorization: 'Bearer s3cret' }), 's3cret'), true);
  assert.equal(hasAdminToken(req('10.0.0.5', { 'x-api-key': 's3cret' }), 's3cret'), true);
  assert.equal(hasAdminToken(req('10.0.0.5', { authorization: 'Bearer s3cre' }), 's3cret'), false);
  assert.equal(hasAdminToken(req('10.0.0.5', { authorization: 'Bearer ' }), ''), false);
});

test('settings name the instance by colour and refuse a bad number', () => {
  const s = settings({ DEMO_COLOR: 'green', OTLP_HTTP_PORT: '4999' });
  assert.equal(s.instance, 'demo-node-green');
  assert.equal(s.otlpMetricsUrl, 'http://127.0.0.1:4999/v1/metrics');
  assert.equal(s.flagsProvider, 'flagd');
  assert.throws(() => settings({ PORT: 'eighty' }), /PORT=eighty: expected a whole number/);
});
