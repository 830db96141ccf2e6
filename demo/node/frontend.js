'use strict';
// frontend (Node): the shop's entry point.
//   GET /checkout[?user=alice&items=1,2,3]
//     1. POST login/login       (Python)  -> session token
//     2. GET  catalog/product   (Python, SQLite) once per item, all in parallel (fan-out)
//     3. POST payment/charge    (Node)    -> may be slow or fail
//   Answers 200 with the order, or 502 when a downstream service failed.
//
// Env: FRONTEND_PORT (8080), LOGIN_URL / CATALOG_URL / PAYMENT_URL (default
// http://127.0.0.1:$LOGIN_PORT / $CATALOG_PORT / $PAYMENT_PORT = 8091 / 8092 / 8093),
// FRONTEND_DELAY_MS / _SLOW_RATE / _SLOW_MS / _ERROR_RATE (0), DEMO_BIND_HOST,
// OTEL_EXPORTER_OTLP_ENDPOINT.

const tracer = require('./lib/tracing').start('frontend');
const { randomUUID } = require('node:crypto');
const { HttpError, behaviour, callOk, envPort, serve, sleep } = require('./lib/common');

const PORT = envPort('FRONTEND_PORT', 8080);
const url = (name, port) =>
  process.env[`${name}_URL`] || `http://127.0.0.1:${envPort(`${name}_PORT`, port)}`;
const LOGIN_URL = url('LOGIN', 8091);
const CATALOG_URL = url('CATALOG', 8092);
const PAYMENT_URL = url('PAYMENT', 8093);
const sim = behaviour('FRONTEND');

const USERS = ['alice', 'bob', 'carol', 'dave'];
const PRODUCT_IDS = [1, 2, 3, 4, 5, 6, 7, 8];

function pick(list) {
  return list[Math.floor(Math.random() * list.length)];
}

function parseItems(raw) {
  if (!raw) {
    // 2 to 4 distinct random products
    const count = 2 + Math.floor(Math.random() * 3);
    return [...PRODUCT_IDS].sort(() => Math.random() - 0.5).slice(0, count);
  }
  const ids = raw.split(',').map((s) => Number(s.trim()));
  if (ids.length === 0 || ids.some((id) => !Number.isInteger(id) || id <= 0)) {
    throw new HttpError(400, 'items must be a comma-separated list of product ids');
  }
  return ids;
}

serve('frontend', PORT, {
  'GET /checkout': async ({ url: reqUrl, span }) => {
    const user = reqUrl.searchParams.get('user') || pick(USERS);
    const items = parseItems(reqUrl.searchParams.get('items'));
    const orderId = randomUUID();
    span?.setAttributes({ 'app.user': user, 'app.order_id': orderId, 'app.items': items.length });

    await sleep(sim.latencyMs());
    if (sim.shouldFail()) throw new Error('simulated frontend failure');

    const session = await callOk(LOGIN_URL, '/login', { method: 'POST', body: { user } });

    // Fan-out: one catalog lookup per item, concurrently.
    const products = await Promise.all(
      items.map((id) => callOk(CATALOG_URL, `/product?id=${id}`)),
    );

    const amountCents = tracer.startActiveSpan('compute total', (child) => {
      const total = products.reduce((sum, p) => sum + p.price_cents, 0);
      child.setAttribute('app.amount_cents', total);
      child.end();
      return total;
    });

    const payment = await callOk(PAYMENT_URL, '/charge', {
      method: 'POST',
      body: { user, order_id: orderId, amount_cents: amountCents, token: session.token },
    });

    return {
      body: {
        order_id: orderId,
        user,
        items: products.map((p) => ({ id: p.id, name: p.name, price_cents: p.price_cents })),
        amount_cents: amountCents,
        payment_id: payment.payment_id,
      },
    };
  },
});
