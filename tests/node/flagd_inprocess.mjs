// The official flagd provider in in-process mode against Safeguard's flagd sync port: evaluates a
// gamification-like flag locally, kills it through the flags API, and reports when the kill is seen.
// env: SYNC_PORT, FLAGS_URL, ADMIN_TOKEN, FLAG_KEY. Prints one JSON line.
import { OpenFeature } from '@openfeature/server-sdk';
import { FlagdProvider } from '@openfeature/flagd-provider';

const { SYNC_PORT, FLAGS_URL, ADMIN_TOKEN, FLAG_KEY } = process.env;
const BOUND_MS = 5000;
const beta = { targetingKey: 'u1', email: 'a@beta.example' };
const other = { targetingKey: 'u2', email: 'b@x.io' };

const provider = new FlagdProvider({ resolverType: 'in-process', host: '127.0.0.1', port: Number(SYNC_PORT),
                                     deadlineMs: 5000 });
await OpenFeature.setProviderAndWait(provider);
const client = OpenFeature.getClient();
const before = { beta: await client.getBooleanValue(FLAG_KEY, false, beta),
                 other: await client.getBooleanValue(FLAG_KEY, true, other) };

const started = performance.now();
const kill = await fetch(`${FLAGS_URL}/api/flags/${FLAG_KEY}/kill`, {
  method: 'POST', body: '{"reason": "node flagd provider test"}',
  headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' } });
let killSeenMs = null;
while (performance.now() - started < BOUND_MS) {
  if ((await client.getBooleanValue(FLAG_KEY, true, beta)) === false) {
    killSeenMs = performance.now() - started;
    break;
  }
  await new Promise((resolve) => setTimeout(resolve, 2));
}
const after = await client.getBooleanDetails(FLAG_KEY, true, beta);
console.log(JSON.stringify({ before, killStatus: kill.status, killSeenMs,
                             after: { value: after.value, variant: after.variant, reason: after.reason } }));
await OpenFeature.close();
process.exit(0);
