#!/usr/bin/env node
// The runbook's Step 3, verbatim from the repository root: `node scripts/auto-recovery.js`.
// Runs the one-shot recovery (POST /api/recovery/run through the front door) and prints what it did.
// Exit codes as `safeguard recover`: 0 ok, 1 an action failed/was skipped or refused, 2 no token, 3 unreachable.
// Settings: SAFEGUARD_FRONT_URL, SAFEGUARD_ADMIN_TOKEN (else .stack/env, .stack/admin-token under
// $SAFEGUARD_HOME or this checkout), SAFEGUARD_SERVICE (default demo).
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const home = process.env.SAFEGUARD_HOME || path.resolve(__dirname, "..");
const read = (file) => { try { return fs.readFileSync(path.join(home, ".stack", file), "utf8"); } catch { return ""; } };
const stackEnv = Object.fromEntries(read("env").split("\n").map((l) => l.trim())
  .filter((l) => l && !l.startsWith("#") && l.includes("="))
  .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
const front = (process.env.SAFEGUARD_FRONT_URL || stackEnv.SAFEGUARD_FRONT_URL || "http://127.0.0.1:3000").replace(/\/+$/, "");
const token = process.env.SAFEGUARD_ADMIN_TOKEN || stackEnv.SAFEGUARD_ADMIN_TOKEN || read("admin-token").trim();
const service = process.env.SAFEGUARD_SERVICE || "demo";

async function main() {
  if (!token) {
    console.error("auto-recovery: no admin token (set SAFEGUARD_ADMIN_TOKEN or run `make up` in this checkout)");
    return 2;
  }
  let resp;
  try {
    resp = await fetch(`${front}/api/recovery/run`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}`, "X-Safeguard-Actor": "auto-recovery.js" },
      body: JSON.stringify({ service, reason: "runbook step 3: node scripts/auto-recovery.js" }),
      signal: AbortSignal.timeout(30000),
    });
  } catch (err) {
    console.error(`auto-recovery: ${front} does not answer (${err.cause?.code || err.cause?.message || err.message})`);
    return 3;
  }
  const text = await resp.text();
  if (!resp.ok) {
    console.error(`auto-recovery: HTTP ${resp.status}: ${text.slice(0, 500)}`);
    return [502, 503, 504].includes(resp.status) ? 3 : 1;
  }
  const actions = JSON.parse(text);
  if (actions.length === 0) console.log(`${service}: no active trigger, nothing to do`);
  for (const a of actions) {
    console.log(`${a.service}: ${a.action} [${a.status}] ${a.detail}` + (a.trigger ? ` (trigger ${a.trigger}, episode ${a.episode_id})` : ""));
  }
  return actions.some((a) => a.status === "failed" || a.status === "skipped") ? 1 : 0;
}

main().then((code) => { process.exitCode = code; });
