'use strict';
// Load driver: a steady mix of requests to the shop's frontend and to Service A.
// It is not traced itself, so each request starts a new trace in the service
// it calls.
//
// Env:
//   LOAD_RPS           requests per second (5)
//   LOAD_DURATION_S    stop after this many seconds; 0 runs until SIGINT/SIGTERM (0)
//   LOAD_MIX           weights of the request kinds (checkout=6,serviceB=2,healthy=1,serverError=1);
//                      every cycle of sum(weights) requests has each kind that many times, shuffled
//   LOAD_TIMEOUT_MS    per-request timeout (10000)
//   LOAD_MAX_INFLIGHT  requests allowed in flight; a tick beyond it is skipped and counted (50)
//   LOAD_REPORT_S      seconds between progress lines; 0 for none (10)
//   FRONTEND_URL       (http://127.0.0.1:$FRONTEND_PORT, 8080)
//   SERVICE_A_URL      (http://127.0.0.1:$SERVICE_A_PORT, 8081)
// On exit it prints one JSON line: {"summary": {kind: {status: count}}, "sent", "skipped"}.

const { envNumber, envPort } = require('./lib/env');

const FRONTEND_URL =
  process.env.FRONTEND_URL || `http://127.0.0.1:${envPort('FRONTEND_PORT', 8080)}`;
const SERVICE_A_URL =
  process.env.SERVICE_A_URL || `http://127.0.0.1:${envPort('SERVICE_A_PORT', 8081)}`;
const RPS = envNumber('LOAD_RPS', 5);
const DURATION_S = envNumber('LOAD_DURATION_S', 0);
const TIMEOUT_MS = envNumber('LOAD_TIMEOUT_MS', 10000);
const MAX_INFLIGHT = envNumber('LOAD_MAX_INFLIGHT', 50);
const REPORT_S = envNumber('LOAD_REPORT_S', 10);

const TARGETS = {
  checkout: () => `${FRONTEND_URL}/checkout`,
  serviceB: () => `${SERVICE_A_URL}/serviceB`,
  healthy: () => `${SERVICE_A_URL}/healthy`,
  serverError: () => `${SERVICE_A_URL}/serverError`,
};

function parseMix(raw) {
  const mix = [];
  for (const part of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [kind, weight] = part.split('=').map((s) => s.trim());
    const n = Number(weight);
    if (!TARGETS[kind] || !Number.isInteger(n) || n < 0) {
      throw new Error(`LOAD_MIX: bad entry ${JSON.stringify(part)} (kinds: ${Object.keys(TARGETS).join(', ')})`);
    }
    for (let i = 0; i < n; i++) mix.push(kind);
  }
  if (mix.length === 0) throw new Error('LOAD_MIX has no request with a positive weight');
  return mix;
}

const MIX = parseMix(process.env.LOAD_MIX || 'checkout=6,serviceB=2,healthy=1,serverError=1');
if (!(RPS > 0)) throw new Error('LOAD_RPS must be positive');

let cycle = [];
function nextKind() {
  if (cycle.length === 0) {
    cycle = [...MIX];
    for (let i = cycle.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [cycle[i], cycle[j]] = [cycle[j], cycle[i]];
    }
  }
  return cycle.pop();
}

const counts = {};
let sent = 0;
let skipped = 0;
let inflight = 0;

function count(kind, outcome) {
  counts[kind] ??= {};
  counts[kind][outcome] = (counts[kind][outcome] || 0) + 1;
}

async function fire() {
  if (inflight >= MAX_INFLIGHT) {
    skipped++;
    return;
  }
  const kind = nextKind();
  inflight++;
  sent++;
  try {
    const res = await fetch(TARGETS[kind](), { signal: AbortSignal.timeout(TIMEOUT_MS) });
    await res.arrayBuffer();
    count(kind, String(res.status));
  } catch (err) {
    count(kind, err.name === 'TimeoutError' ? 'timeout' : 'network-error');
  } finally {
    inflight--;
  }
}

function report(label) {
  console.log(`loadgen ${label}: sent ${sent}, in flight ${inflight}, skipped ${skipped}, ${JSON.stringify(counts)}`);
}

const started = Date.now();
console.log(
  `loadgen: ${RPS} req/s for ${DURATION_S > 0 ? `${DURATION_S} s` : 'ever'}, mix ${process.env.LOAD_MIX || 'default'}, ` +
    `frontend ${FRONTEND_URL}, service-a ${SERVICE_A_URL}`,
);

// Ticks on a fixed schedule (not setInterval's drift), one request per tick.
const intervalMs = 1000 / RPS;
let ticks = 0;
let timer = null;
function schedule() {
  const due = started + ticks * intervalMs;
  timer = setTimeout(() => {
    if (DURATION_S > 0 && Date.now() - started >= DURATION_S * 1000) {
      finish();
      return;
    }
    ticks++;
    fire();
    schedule();
  }, Math.max(0, due - Date.now()));
}

const reporter = REPORT_S > 0 ? setInterval(() => report('progress'), REPORT_S * 1000) : null;

let finishing = false;
async function finish() {
  if (finishing) return;
  finishing = true;
  clearTimeout(timer);
  if (reporter) clearInterval(reporter);
  // Let the requests in flight complete (bounded by their timeout).
  const deadline = Date.now() + TIMEOUT_MS;
  while (inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  report('done');
  console.log(JSON.stringify({ summary: counts, sent, skipped }));
  process.exit(0);
}

process.on('SIGINT', finish);
process.on('SIGTERM', finish);
schedule();
