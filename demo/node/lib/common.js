'use strict';
// Small HTTP helpers shared by the Node demo services. Require this module
// after tracing.start(): it loads node:http, which the instrumentation patches.

const http = require('node:http');
const { SpanStatusCode, trace } = require('@opentelemetry/api');
const { envNumber, envPort } = require('./env');

const BIND_HOST = process.env.DEMO_BIND_HOST || '127.0.0.1';

// One connection per call: the Python services speak HTTP/1.0 and close the
// connection anyway, and it avoids reusing a socket the server is closing.
const agent = new http.Agent({ keepAlive: false });

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Latency and failures of one service, from <PREFIX>_DELAY_MS (added to every
// request), <PREFIX>_SLOW_RATE and <PREFIX>_SLOW_MS (that share of requests
// takes that much longer) and <PREFIX>_ERROR_RATE (that share fails).
function behaviour(prefix, defaults = {}) {
  const config = {
    delayMs: envNumber(`${prefix}_DELAY_MS`, defaults.delayMs ?? 0),
    slowRate: envNumber(`${prefix}_SLOW_RATE`, defaults.slowRate ?? 0),
    slowMs: envNumber(`${prefix}_SLOW_MS`, defaults.slowMs ?? 0),
    errorRate: envNumber(`${prefix}_ERROR_RATE`, defaults.errorRate ?? 0),
  };
  return {
    config,
    // Milliseconds this request should take on top of its real work.
    latencyMs() {
      return config.delayMs + (Math.random() < config.slowRate ? config.slowMs : 0);
    },
    shouldFail() {
      return Math.random() < config.errorRate;
    },
  };
}

// Marks a span failed the way the OpenTelemetry conventions describe: an
// "exception" event plus the ERROR status.
function recordError(span, err) {
  span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
}

// Calls another service and parses its JSON answer. The HTTP instrumentation
// makes a client span and injects the W3C traceparent header.
function callJson(baseUrl, path, { method = 'GET', body, timeoutMs = 10000 } = {}) {
  const url = new URL(path, baseUrl);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method,
        agent,
        timeout: timeoutMs,
        headers: payload
          ? { 'content-type': 'application/json', 'content-length': payload.length }
          : {},
      },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let data = null;
          try {
            data = text ? JSON.parse(text) : null;
          } catch {
            data = { raw: text };
          }
          resolve({ status: res.statusCode, data });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

// Like callJson, but a non-2xx answer is an error.
async function callOk(baseUrl, path, options) {
  const res = await callJson(baseUrl, path, options);
  if (res.status < 200 || res.status > 299) {
    const detail = res.data && res.data.error ? `: ${res.data.error}` : '';
    throw new HttpError(502, `${options?.method || 'GET'} ${new URL(path, baseUrl)} answered ${res.status}${detail}`);
  }
  return res.data;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (!text) return resolve(null);
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new HttpError(400, 'request body is not JSON'));
      }
    });
  });
}

function sendJson(res, status, data) {
  const body = Buffer.from(JSON.stringify(data) + '\n');
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

// Starts an HTTP server. routes maps 'METHOD /path' to an async handler
// ({ url, body, span }) => ({ status?, body }). The server span of each
// request is renamed 'METHOD /path' (Jaeger's operation) and gets http.route.
// A handler that throws answers 500 (or err.status) with the span marked failed.
function serve(serviceName, port, routes) {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const route = `${req.method} ${url.pathname}`;
    const handler = routes[route];
    const span = trace.getActiveSpan();
    if (!handler) {
      sendJson(res, 404, { error: `no route ${route}` });
      return;
    }
    if (span) {
      span.updateName(route);
      span.setAttribute('http.route', url.pathname);
    }
    try {
      const body = req.method === 'GET' ? null : await readBody(req);
      const result = await handler({ url, body, span });
      sendJson(res, result.status || 200, result.body);
    } catch (err) {
      const status = err.status || 500;
      if (span && status >= 500) recordError(span, err);
      sendJson(res, status, { error: err.message, service: serviceName });
    }
  });
  server.listen(port, BIND_HOST, () => {
    console.log(`${serviceName} listening on http://${BIND_HOST}:${server.address().port}`);
  });
  return server;
}

module.exports = {
  HttpError,
  behaviour,
  callJson,
  callOk,
  envNumber,
  envPort,
  recordError,
  serve,
  sleep,
};
