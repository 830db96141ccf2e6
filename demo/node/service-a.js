'use strict';
// Service A: the entry point of the small two-service demo.
//   GET /healthy      200, no downstream call
//   GET /serviceB     calls Service B (W3C trace context propagated) and returns its answer
//   GET /serverError  500; the server span gets an exception event and the ERROR status
//
// Env: SERVICE_A_PORT (8081), SERVICE_B_URL (http://127.0.0.1:$SERVICE_B_PORT, 8082),
// DEMO_BIND_HOST (127.0.0.1), OTEL_EXPORTER_OTLP_ENDPOINT (http://localhost:4318).

const tracer = require('./lib/tracing').start('service-a');
const { callOk, envPort, recordError, serve } = require('./lib/common');

const PORT = envPort('SERVICE_A_PORT', 8081);
const SERVICE_B_URL =
  process.env.SERVICE_B_URL || `http://127.0.0.1:${envPort('SERVICE_B_PORT', 8082)}`;

serve('service-a', PORT, {
  'GET /healthy': async () => ({ body: { status: 'ok', service: 'service-a' } }),

  'GET /serviceB': async () => {
    const answer = await callOk(SERVICE_B_URL, '/data');
    return { body: { service: 'service-a', fromServiceB: answer } };
  },

  'GET /serverError': async () => {
    // A child span shows where the failure happened; serve() records the
    // exception on the server span too and answers 500.
    return tracer.startActiveSpan('validate request', (span) => {
      try {
        throw new Error('simulated failure in service-a: /serverError always fails');
      } catch (err) {
        recordError(span, err);
        throw err;
      } finally {
        span.end();
      }
    });
  },
});
