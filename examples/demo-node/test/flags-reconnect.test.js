'use strict';
// The demo's flagd in-process provider (src/flags.js) against a stand-in flagd sync server on loopback: when
// the instance it streams from goes away (kill -9: the stream ends UNAVAILABLE), it must stream again at
// once, not after a long throttle. The provider waits `retryBackoffMaxMs` after a stream error before it
// reconnects, so a 2 s setting kept a kill made meanwhile from the app for 2 s (the chaos test's bound).
const test = require('node:test');
const assert = require('node:assert/strict');
const grpc = require('@grpc/grpc-js');
const { openFlags } = require('../src/flags');

const RECONNECT_WITHIN_MS = 1000;

// flagd.sync.v1.SyncFlagsResponse { string flag_configuration = 1; } written by hand: one length-delimited field
function syncResponse(json) {
  const body = Buffer.from(json);
  const len = [];
  for (let n = body.length; ; n >>>= 7) {
    if (n < 0x80) { len.push(n); break; }
    len.push((n & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from([0x0a, ...len]), body]);
}

const config = (on) => JSON.stringify({
  flags: { gamification: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: on ? 'on' : 'off' } },
});

const SYNC = {
  SyncFlags: {
    path: '/flagd.sync.v1.FlagSyncService/SyncFlags', requestStream: false, responseStream: true,
    requestDeserialize: (b) => b, responseSerialize: (b) => b,
  },
};

async function until(check, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

test('a dropped sync stream is opened again within 1 s, and a change made meanwhile is served', async (t) => {
  const streams = [];
  let droppedAt = 0;
  const server = new grpc.Server();
  server.addService(SYNC, {
    SyncFlags(call) {
      streams.push(Date.now());
      if (streams.length === 1) {
        call.write(syncResponse(config(true)));
        return;  // held open until the test drops it
      }
      call.write(syncResponse(config(false)));  // the kill, made while the first instance was gone
    },
  });
  const port = await new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0',
    grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const flags = await openFlags({ flagsProvider: 'flagd', flagsSyncHost: '127.0.0.1', flagsSyncPort: port },
    { waitMs: 5000 });
  t.after(async () => { await flags.close(); server.forceShutdown(); });

  assert.ok(await until(async () => (await flags.enabled('gamification', 'u1')) === true, 5000),
    'the provider never served the first configuration');
  droppedAt = Date.now();
  server.forceShutdown();  // every stream ends at once, as when the instance is killed
  // the instance's place is taken at once (HAProxy sends the reconnect to the other flags instance)
  const again = new grpc.Server();
  again.addService(SYNC, { SyncFlags(call) { streams.push(Date.now()); call.write(syncResponse(config(false))); } });
  await new Promise((resolve, reject) => again.bindAsync(`127.0.0.1:${port}`,
    grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  t.after(() => again.forceShutdown());

  const served = await until(async () => (await flags.enabled('gamification', 'u1')) === false, 5000);
  const waited = Date.now() - droppedAt;
  assert.ok(served, 'the provider never served the change after its stream was dropped');
  assert.ok(waited < RECONNECT_WITHIN_MS,
    `the change was served ${waited} ms after the stream was dropped (expected under ${RECONNECT_WITHIN_MS} ms)`);
});
