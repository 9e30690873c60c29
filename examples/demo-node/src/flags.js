'use strict';
// The app's flags through OpenFeature. Default: the flagd provider in IN-PROCESS mode, which syncs
// every flag over flagd's sync gRPC and evaluates locally (changes are streamed in). Alternative:
// OFREP, one HTTP evaluation per call (DEMO_FLAGS_PROVIDER=ofrep).
// retryBackoffMaxMs is also how long the provider waits after its stream ends with an error (the flags
// instance it streamed from died) before it streams again: 500 ms, so a kill made meanwhile reaches the
// app well inside the runbook's seconds (test/flags-reconnect.test.js; it was 2 s, the chaos test's bound).
const { OpenFeature } = require('@openfeature/server-sdk');
const { FlagdProvider } = require('@openfeature/flagd-provider');
const { OFREPProvider } = require('@openfeature/ofrep-provider');

function makeProvider(s) {
  if (s.flagsProvider === 'flagd') {
    return new FlagdProvider({
      resolverType: 'in-process', host: s.flagsSyncHost, port: s.flagsSyncPort,
      retryBackoffMs: 250, retryBackoffMaxMs: 500,
    });
  }
  if (s.flagsProvider === 'ofrep') return new OFREPProvider({ baseUrl: s.flagsUrl, timeoutMs: 1000 });
  throw new Error(`DEMO_FLAGS_PROVIDER=${s.flagsProvider}: expected flagd or ofrep`);
}

/** Sets the provider; resolves once it is ready, or after `waitMs` (flags then answer their default). */
async function openFlags(s, { waitMs = 5000 } = {}) {
  const provider = makeProvider(s);
  const ready = OpenFeature.setProviderAndWait(provider);
  const timer = new Promise((resolve) => setTimeout(resolve, waitMs).unref());
  await Promise.race([ready.catch((err) => console.error(`flags: provider not ready: ${err.message}`)), timer]);
  const client = OpenFeature.getClient();
  return {
    kind: s.flagsProvider,
    status: () => client.providerStatus,
    enabled: (key, user) => client.getBooleanValue(key, false, { targetingKey: user }),
    close: () => OpenFeature.close(),
  };
}

module.exports = { openFlags };
