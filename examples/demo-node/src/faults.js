'use strict';
// Fault injection, as in the Python demo: error_rate (0..1) of requests answer 500, latency_ms added
// to every business request. Changed with PUT /api/faults (admin token or loopback), DELETE resets.

const LIMITS = { error_rate: [0, 1], latency_ms: [0, 60000] };

class FaultError extends Error {}

function parseUpdate(body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new FaultError('body: expected a JSON object like {"error_rate": 0.3, "latency_ms": 0}');
  }
  const update = {};
  for (const [key, value] of Object.entries(body)) {
    const range = LIMITS[key];
    if (!range) throw new FaultError(`${key}: unknown fault (known: ${Object.keys(LIMITS).join(', ')})`);
    if (value === null) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < range[0] || value > range[1]) {
      throw new FaultError(`${key}: expected a number from ${range[0]} to ${range[1]}, got ${JSON.stringify(value)}`);
    }
    update[key] = value;
  }
  return update;
}

class Faults {
  constructor() { this.reset(); }
  reset() { this.error_rate = 0; this.latency_ms = 0; }
  apply(update) { Object.assign(this, update); }
  shouldFail() { return this.error_rate > 0 && Math.random() < this.error_rate; }
  describe() { return { error_rate: this.error_rate, latency_ms: this.latency_ms }; }
}

module.exports = { Faults, FaultError, parseUpdate };
