'use strict';
// Service B: answers Service A with a small JSON document, after a simulated
// database call that shows up as a child span of its own.
//   GET /data  {"service":"service-b","items":[...]}
//
// Env: SERVICE_B_PORT (8082), SERVICE_B_DB_DELAY_MS (15: duration of the
// simulated query), SERVICE_B_DELAY_MS / _SLOW_RATE / _SLOW_MS / _ERROR_RATE (0),
// DEMO_BIND_HOST, OTEL_EXPORTER_OTLP_ENDPOINT.

const tracer = require('./lib/tracing').start('service-b');
const { SpanKind } = require('@opentelemetry/api');
const { behaviour, envNumber, envPort, recordError, serve, sleep } = require('./lib/common');

const PORT = envPort('SERVICE_B_PORT', 8082);
const DB_DELAY_MS = envNumber('SERVICE_B_DB_DELAY_MS', 15);
const sim = behaviour('SERVICE_B');

const ITEMS = [
  { id: 1, name: 'alpha' },
  { id: 2, name: 'beta' },
  { id: 3, name: 'gamma' },
];

// Stands in for a query to a database server: a CLIENT span with the
// database semantic-convention attributes.
async function queryItems() {
  return tracer.startActiveSpan(
    'SELECT demo.items',
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'db.system.name': 'postgresql',
        'db.namespace': 'demo',
        'db.collection.name': 'items',
        'db.operation.name': 'SELECT',
        'db.query.text': 'SELECT id, name FROM items ORDER BY id LIMIT 3',
        'server.address': 'db.service-b.internal',
        'server.port': 5432,
      },
    },
    async (span) => {
      try {
        await sleep(DB_DELAY_MS + Math.random() * DB_DELAY_MS);
        if (sim.shouldFail()) throw new Error('simulated database error: connection reset');
        span.setAttribute('db.response.returned_rows', ITEMS.length);
        return ITEMS;
      } catch (err) {
        recordError(span, err);
        throw err;
      } finally {
        span.end();
      }
    },
  );
}

serve('service-b', PORT, {
  'GET /data': async () => {
    await sleep(sim.latencyMs());
    const items = await queryItems();
    return { body: { service: 'service-b', items } };
  },
});
