// The official Node OFREP provider against Safeguard's /ofrep (the front door): evaluates a flag,
// kills it through the flags API, evaluates again. env: BASE_URL, ADMIN_TOKEN, FLAG_KEY. Prints one JSON line.
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const { BASE_URL, ADMIN_TOKEN, FLAG_KEY } = process.env;
const ctx = { targetingKey: 'u1', email: 'a@beta.example' };

await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl: BASE_URL }));
const client = OpenFeature.getClient();
const details = async () => {
  const d = await client.getBooleanDetails(FLAG_KEY, true, ctx);
  return { value: d.value, variant: d.variant ?? null, reason: d.reason, errorCode: d.errorCode ?? null };
};
const before = await details();
const kill = await fetch(`${BASE_URL}/api/flags/${FLAG_KEY}/kill`, {
  method: 'POST', body: '{"reason": "node ofrep provider test"}',
  headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' } });
const after = await details();
const missing = await client.getBooleanDetails(`${FLAG_KEY}-absent`, true, ctx);
console.log(JSON.stringify({ before, killStatus: kill.status, after,
                             missing: { value: missing.value, errorCode: missing.errorCode ?? null } }));
await OpenFeature.close();
process.exit(0);
