// Shared by the end-to-end tests and the benchmark: a real waymark server,
// the UI (served from ui/dist by a small static server that proxies /api to
// waymark, or straight from waymark once it embeds the UI), and headless
// Chromium driven by playwright-core.
//
// Environment:
//   WAYMARK_BIN     waymark binary (default ../target/debug/waymark from ui/)
//   WAYMARK_UI_URL  unset: serve ui/dist here and proxy /api to waymark;
//                   "waymark": load the UI from the started waymark's query port;
//                   http://host:port: a server already running (with data);
//                   then OTLP goes to WAYMARK_OTLP_GRPC / WAYMARK_OTLP_HTTP.
//   CHROMIUM        browser binary (default /usr/bin/chromium)

import { spawn, execFile } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, isAbsolute, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const UI_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DIST = join(UI_DIR, 'dist');

export function waymarkBin() {
  const bin = process.env.WAYMARK_BIN || '../target/debug/waymark';
  return isAbsolute(bin) ? bin : resolve(UI_DIR, bin);
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/** Starts waymark all-in-one on free loopback ports with a fresh data dir. */
export async function startWaymark() {
  const external = process.env.WAYMARK_UI_URL;
  if (external && external !== 'waymark') {
    const base = external.replace(/\/$/, '');
    return {
      queryUrl: base,
      grpc: process.env.WAYMARK_OTLP_GRPC || '127.0.0.1:4317',
      otlpHttp: process.env.WAYMARK_OTLP_HTTP || 'http://127.0.0.1:4318',
      bin: waymarkBin(),
      stop: async () => {},
    };
  }
  const bin = waymarkBin();
  if (!existsSync(bin)) throw new Error(`waymark binary not found at ${bin}: build it (cargo build -p waymark) or set WAYMARK_BIN`);
  // Every listener the binary has (OTLP, query, admin, and any added later,
  // such as Zipkin) gets its own free loopback port.
  const { stdout: help } = await promisify(execFile)(bin, ['--help']);
  const listeners = [...new Set([...help.matchAll(/--([a-z0-9-]+-listen)\b/g)].map((m) => m[1]))];
  const ports = {};
  for (const l of listeners) ports[l] = await freePort();
  for (const need of ['otlp-grpc-listen', 'otlp-http-listen', 'query-listen'])
    if (!ports[need]) throw new Error(`${bin} --help lists no --${need}`);
  const [grpc, httpPort, query] = [ports['otlp-grpc-listen'], ports['otlp-http-listen'], ports['query-listen']];
  const dataDir = mkdtempSync(join(tmpdir(), 'waymark-ui-'));
  const proc = spawn(
    bin,
    [
      '--data-dir', dataDir,
      ...listeners.flatMap((l) => [`--${l}`, `127.0.0.1:${ports[l]}`]),
      '--log-level', 'warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr = (stderr + d).slice(0, 4000)));
  let exited = false;
  proc.on('exit', () => (exited = true));
  const queryUrl = `http://127.0.0.1:${query}`;
  await waitFor('waymark to listen', async () => {
    if (exited) throw new Error(`waymark exited: ${stderr}`);
    const r = await fetch(`${queryUrl}/api/services`);
    return r.ok;
  });
  return {
    queryUrl,
    grpc: `127.0.0.1:${grpc}`,
    otlpHttp: `http://127.0.0.1:${httpPort}`,
    bin,
    stop: async () => {
      if (!exited) {
        proc.kill('SIGTERM');
        await Promise.race([new Promise((r) => proc.on('exit', r)), sleep(5000)]);
        if (!exited) proc.kill('SIGKILL');
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs `waymark tracegen` against the server. */
export async function tracegen(server, args = ['--traces', '200', '--rate', '0', '--duration', '30s']) {
  const { stdout } = await promisify(execFile)(server.bin, ['tracegen', '--endpoint', server.grpc, ...args]);
  return stdout;
}

/** POSTs an OTLP JSON export request to /v1/traces. */
export async function postOtlp(server, body) {
  const r = await fetch(`${server.otlpHttp}/v1/traces`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`OTLP POST failed: HTTP ${r.status} ${await r.text()}`);
}

export async function api(server, path) {
  const r = await fetch(`${server.queryUrl}${path}`);
  return { status: r.status, body: await r.json() };
}

export async function waitForTrace(server, traceId, spanCount) {
  return waitFor(`trace ${traceId}`, async () => {
    const { status, body } = await api(server, `/api/traces/${traceId}`);
    return status === 200 && body.data?.[0]?.spans?.length === spanCount && body.data[0];
  });
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * Serves ui/dist the way the waymark binary will: /assets/* as files, every
 * other path as index.html (client-side routes), /api/* proxied to waymark.
 */
export async function startUi(server) {
  if (process.env.WAYMARK_UI_URL) return { url: server.queryUrl, stop: async () => {} };
  if (!existsSync(join(DIST, 'index.html'))) throw new Error('ui/dist is missing: run npm run build');
  const target = new URL(server.queryUrl);
  const srv = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname.startsWith('/api/')) {
      const up = http.request(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, host: target.host } },
        (ur) => {
          res.writeHead(ur.statusCode, ur.headers);
          ur.pipe(res);
        },
      );
      up.on('error', (e) => {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ data: null, errors: [{ code: 502, msg: `proxy: ${e.message}` }] }));
      });
      req.pipe(up);
      return;
    }
    let file = join(DIST, 'index.html');
    if (url.pathname.startsWith('/assets/')) {
      file = normalize(join(DIST, decodeURIComponent(url.pathname)));
      if (!file.startsWith(DIST) || !existsSync(file) || !statSync(file).isFile()) {
        res.writeHead(404).end('not found');
        return;
      }
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' });
    createReadStream(file).pipe(res);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    stop: () => new Promise((r) => srv.close(r)),
  };
}

/**
 * Headless Debian Chromium with a fresh profile. `timezoneId` (an IANA zone)
 * makes "local time" differ from UTC whatever the machine's zone.
 */
export async function launchBrowser({ timezoneId } = {}) {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'waymark-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    viewport: { width: 1280, height: 720 },
    acceptDownloads: true,
    ...(timezoneId ? { timezoneId } : {}),
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// ---- OTLP JSON fixtures ---------------------------------------------------

export const hex = (n, width) => n.toString(16).padStart(width, '0');

const attr = (key, value) => ({
  key,
  value:
    typeof value === 'boolean'
      ? { boolValue: value }
      : typeof value === 'number'
        ? Number.isInteger(value)
          ? { intValue: String(value) }
          : { doubleValue: value }
        : { stringValue: String(value) },
});
export const attrs = (obj) => Object.entries(obj).map(([k, v]) => attr(k, v));

/**
 * An OTLP export request. `services` maps a service name to its spans; each
 * span: { traceId, spanId, parentSpanId?, name, kind?, start (ns), end (ns),
 * attributes?, events?, links?, error? }.
 */
export function otlpRequest(services) {
  return {
    resourceSpans: Object.entries(services).map(([service, spans]) => ({
      resource: { attributes: attrs({ 'service.name': service, 'host.name': 'test-host' }) },
      scopeSpans: [
        {
          scope: { name: 'waymark-ui-tests', version: '1.0.0' },
          spans: spans.map((s) => ({
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId ?? '',
            name: s.name,
            kind: s.kind ?? 1,
            startTimeUnixNano: String(s.start),
            endTimeUnixNano: String(s.end),
            attributes: attrs(s.attributes ?? {}),
            events: (s.events ?? []).map((e) => ({
              timeUnixNano: String(e.time),
              name: e.name,
              attributes: attrs(e.attributes ?? {}),
            })),
            links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
            status: s.error ? { code: 2, message: s.error } : { code: 0 },
          })),
        },
      ],
    })),
  };
}

/**
 * A trace of `count` spans for the benchmark: a few services, a bushy tree
 * (each span has up to 8 children) with some errors.
 */
export function largeTrace(traceId, count, startNs = BigInt(Date.now() - 60_000) * 1_000_000n) {
  const services = ['gateway', 'orders', 'inventory', 'pricing', 'db-proxy', 'cache'];
  const byService = Object.fromEntries(services.map((s) => [s, []]));
  const spans = [];
  for (let i = 0; i < count; i++) {
    const parent = i === 0 ? null : spans[Math.floor((i - 1) / 8)];
    const depth = parent ? parent.depth + 1 : 0;
    const start = parent ? parent.start + BigInt(((i % 8) + 1) * 1000) : startNs;
    const dur = BigInt(Math.floor(Math.max(2000, 2_000_000_000 / (depth + 1) ** 3 - (i % 97) * 1000)));
    const span = {
      traceId,
      spanId: hex(i + 1, 16),
      parentSpanId: parent?.spanId,
      name: `op-${i % 50}`,
      kind: i === 0 ? 2 : 3,
      start,
      end: start + dur,
      depth,
      attributes: { 'http.route': `/r/${i % 50}`, 'db.rows': i % 1000 },
      error: i % 499 === 7 ? 'boom' : undefined,
    };
    spans.push(span);
    byService[services[i === 0 ? 0 : (i % (services.length - 1)) + 1]].push(span);
  }
  return otlpRequest(byService);
}
