'use strict';
// payment (Node): charges an order. Sometimes slow, sometimes failing.
//   POST /charge  {"user","amount_cents","order_id"} -> {"payment_id","status":"captured"}
//
// Env: PAYMENT_PORT (8093), PAYMENT_DELAY_MS (20: added to every charge),
// PAYMENT_SLOW_RATE (0.2) and PAYMENT_SLOW_MS (800: that share of charges takes
// that much longer), PAYMENT_ERROR_RATE (0.1: that share is declined with a 500),
// DEMO_BIND_HOST, OTEL_EXPORTER_OTLP_ENDPOINT.

const tracer = require('./lib/tracing').start('payment');
const { randomUUID } = require('node:crypto');
const { HttpError, behaviour, envPort, recordError, serve, sleep } = require('./lib/common');

const PORT = envPort('PAYMENT_PORT', 8093);
const sim = behaviour('PAYMENT', { delayMs: 20, slowRate: 0.2, slowMs: 800, errorRate: 0.1 });

async function authorize(order) {
  // The card network round trip: where the slowness and the failures happen.
  return tracer.startActiveSpan('authorize card', async (span) => {
    try {
      const latency = sim.latencyMs();
      span.setAttributes({
        'payment.amount_cents': order.amount_cents,
        'payment.simulated_latency_ms': latency,
      });
      await sleep(latency);
      if (sim.shouldFail()) {
        throw new Error(`card declined by issuer for order ${order.order_id} (simulated)`);
      }
      return randomUUID();
    } catch (err) {
      recordError(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

serve('payment', PORT, {
  'POST /charge': async ({ body, span }) => {
    if (!body || !Number.isInteger(body.amount_cents) || body.amount_cents <= 0) {
      throw new HttpError(400, 'amount_cents must be a positive integer');
    }
    span?.setAttributes({ 'app.user': String(body.user), 'app.order_id': String(body.order_id) });
    const paymentId = await authorize(body);
    return { body: { payment_id: paymentId, status: 'captured', amount_cents: body.amount_cents } };
  },
});
