// End-to-end: a real waymark server with generated and hand-made traces, the
// built UI, and headless Chromium. See harness.mjs for the environment.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  api,
  largeTrace,
  launchBrowser,
  otlpRequest,
  postOtlp,
  startUi,
  startWaymark,
  tracegen,
  waitForTrace,
} from './harness.mjs';

const T1 = 'e2e00000000000000000000000000001';
const T2 = 'e2e00000000000000000000000000002';
const BIG = 'e2e000000000000000000000000000b1';
const BIG_SPANS = 5000;

let server;
let ui;
let browser;

before(async () => {
  server = await startWaymark();
  ui = await startUi(server);
  await tracegen(server);
  const now = BigInt(Date.now() - 5000) * 1_000_000n;
  const ms = 1_000_000n;
  await postOtlp(
    server,
    otlpRequest({
      'shop-web': [
        { traceId: T1, spanId: '0000000000000a01', name: 'GET /home', kind: 2, start: now, end: now + 50n * ms, attributes: { 'http.route': '/home', 'http.response.status_code': 200 } },
        { traceId: T1, spanId: '0000000000000a03', parentSpanId: '0000000000000a01', name: 'call api', kind: 3, start: now + 1n * ms, end: now + 31n * ms },
        { traceId: T2, spanId: '0000000000000b01', name: 'nightly job', kind: 1, start: now - 1000n * ms, end: now - 900n * ms },
      ],
      'shop-api': [
        {
          traceId: T1,
          spanId: '0000000000000a02',
          parentSpanId: '0000000000000a03',
          name: 'Load',
          kind: 2,
          start: now + 2n * ms,
          end: now + 30n * ms,
          error: 'db timeout',
          attributes: { 'app.customer': 'c-42' },
          events: [{ time: now + 3n * ms, name: 'retry', attributes: { attempt: 2 } }],
          links: [{ traceId: T2, spanId: '0000000000000b01' }],
        },
        { traceId: T1, spanId: '0000000000000a04', parentSpanId: '0000000000000a02', name: 'query', kind: 3, start: now + 4n * ms, end: now + 20n * ms },
      ],
      'shop-db': [
        { traceId: T1, spanId: '0000000000000a05', parentSpanId: '0000000000000a04', name: 'SELECT', kind: 2, start: now + 5n * ms, end: now + 19n * ms },
      ],
    }),
  );
  await postOtlp(server, largeTrace(BIG, BIG_SPANS));
  await waitForTrace(server, T1, 5);
  await waitForTrace(server, BIG, BIG_SPANS);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await ui?.stop();
  await server?.stop();
});

async function open(path, { colorScheme = 'light' } = {}) {
  const page = await browser.context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.errors = errors;
  await page.emulateMedia({ colorScheme });
  await page.goto(ui.url + path);
  return page;
}

const endUs = () => Date.now() * 1000 + 60e6;

describe('search page', () => {
  test('lists the services the API reports', async () => {
    const { body } = await api(server, '/api/services');
    const page = await open('/search');
    await page.locator('#f-service option').first().waitFor({ state: 'attached' });
    const options = await page.locator('#f-service option').allTextContents();
    assert.deepEqual(options, [...body.data].sort());
    assert.ok(options.includes('frontend') && options.includes('shop-api'));
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('a search from the form returns as many traces as the API, with the query in the URL', async () => {
    const page = await open('/search');
    await page.locator('#f-service').selectOption('frontend');
    await page.getByLabel('Lookback').selectOption('2h');
    await page.getByLabel('Limit results').fill('50');
    await page.getByRole('button', { name: 'Find Traces' }).click();
    await page.getByTestId('result-count').waitFor();
    const url = new URL(page.url());
    assert.equal(url.pathname, '/search');
    assert.equal(url.searchParams.get('service'), 'frontend');
    assert.equal(url.searchParams.get('lookback'), '2h');
    assert.equal(url.searchParams.get('limit'), '50');
    const { body } = await api(server, `/api/traces?service=frontend&limit=50&start=${endUs() - 7200e6}&end=${endUs()}`);
    const n = body.data.length;
    assert.ok(n > 0);
    assert.equal(await page.getByTestId('result-count').textContent(), `${n} traces`);
    assert.equal(await page.locator('.result').count(), n);
    assert.equal(await page.locator('[data-testid=scatter] circle').count(), n);

    // the URL alone reproduces the search
    await page.reload();
    await page.getByTestId('result-count').waitFor();
    assert.equal(await page.getByTestId('result-count').textContent(), `${n} traces`);
    assert.equal(await page.locator('#f-service').inputValue(), 'frontend');
    await page.close();
  });

  test('logfmt tags become the tags query; sorting reorders', async () => {
    const page = await open('/search?service=frontend&lookback=2h&limit=100&tags=error%3Dtrue');
    await page.getByTestId('result-count').waitFor();
    const tags = encodeURIComponent(JSON.stringify({ error: 'true' }));
    const { body } = await api(server, `/api/traces?service=frontend&limit=100&tags=${tags}&start=${endUs() - 7200e6}&end=${endUs()}`);
    assert.ok(body.data.length > 0, 'tracegen makes some error traces');
    assert.equal(await page.getByTestId('result-count').textContent(), `${body.data.length} traces`);
    assert.equal(await page.locator('#f-tags').inputValue(), 'error=true');
    assert.equal(await page.locator('.result .error-badge').count(), body.data.length);
    assert.equal(await page.locator('circle.point-error').count(), body.data.length);

    await page.getByLabel('Sort').selectOption('spans');
    await page.waitForURL(/sort=spans/);
    const counts = (await page.getByTestId('span-count').allTextContents()).map((t) => parseInt(t, 10));
    assert.deepEqual(counts, [...counts].sort((a, b) => b - a));
    await page.close();
  });

  test('a custom time range is kept in the URL and used for the query', async () => {
    const end = Date.now() * 1000 + 60e6;
    const start = end - 3600e6;
    const page = await open(`/search?service=frontend&lookback=custom&start=${start}&end=${end}&limit=7`);
    await page.getByTestId('result-count').waitFor();
    assert.equal(await page.getByLabel('Lookback').inputValue(), 'custom');
    assert.ok((await page.locator('#f-start').inputValue()).length > 0);
    const { body } = await api(server, `/api/traces?service=frontend&limit=7&start=${start}&end=${end}`);
    assert.equal(await page.getByTestId('result-count').textContent(), `${body.data.length} traces`);
    await page.close();
  });

  test('a bad tags field is explained and not sent', async () => {
    const page = await open('/search?service=frontend');
    await page.locator('#f-tags').fill('error');
    await page.getByRole('button', { name: 'Find Traces' }).click();
    await page.getByRole('alert').filter({ hasText: 'Tags:' }).waitFor();
    assert.equal(new URL(page.url()).searchParams.get('tags'), null);
    await page.close();
  });

  test('clicking a result opens the trace with the right span count', async () => {
    const page = await open('/search?service=shop-web&lookback=1h');
    const link = page.locator(`.result[data-trace-id="${T1}"] a`);
    await link.click();
    await page.waitForURL(`**/trace/${T1}`);
    await page.getByTestId('trace-header').waitFor();
    assert.equal(await page.getByTestId('trace-span-count').textContent(), '5');
    assert.equal(await page.getByTestId('trace-services').textContent(), '3');
    assert.equal(await page.getByTestId('trace-depth').textContent(), '5');
    assert.equal(await page.getByTestId('trace-errors').textContent(), '1');
    assert.match(await page.locator('.trace-name').textContent(), /shop-web: GET \/home/);
    await page.close();
  });

  test('no services yet, and an API error, say what to do', async () => {
    const page = await browser.context.newPage();
    await page.route('**/api/services', (r) => r.fulfill({ contentType: 'application/json', body: '{"data":[],"total":0}' }));
    await page.goto(`${ui.url}/search`);
    const empty = page.getByTestId('no-services');
    await empty.waitFor();
    assert.match(await empty.textContent(), /4317/);
    assert.match(await empty.textContent(), /4318/);
    await page.unroute('**/api/services');
    await page.route('**/api/services', (r) =>
      r.fulfill({ status: 500, contentType: 'application/json', body: '{"data":null,"errors":[{"code":500,"msg":"storage is on fire"}]}' }),
    );
    await page.reload();
    await page.getByTestId('api-error').waitFor();
    assert.match(await page.getByTestId('api-error').textContent(), /storage is on fire/);
    await page.close();
  });
});

describe('trace page', () => {
  test('selecting a span shows its tags, process, logs and references', async () => {
    const page = await open(`/trace/${T1}`);
    await page.locator('.tl-row[data-span-id="0000000000000a02"]').click();
    await page.waitForURL(/span=0000000000000a02/);
    const detail = page.getByTestId('span-detail');
    await detail.waitFor();
    const { body } = await api(server, `/api/traces/${T1}`);
    const apiSpan = body.data[0].spans.find((s) => s.spanID === '0000000000000a02');
    const keys = await detail.locator('[data-testid=span-tags] tr').evaluateAll((rows) => rows.map((r) => r.dataset.key));
    assert.deepEqual(keys, apiSpan.tags.map((t) => t.key));
    assert.equal(await detail.locator('[data-testid=span-tags] tr[data-key="app.customer"] td').textContent(), 'c-42');
    assert.match(await detail.textContent(), /db timeout/);
    assert.match(await detail.getByTestId('span-process').textContent(), /shop-api/);
    assert.match(await detail.getByTestId('span-logs').textContent(), /retry/);
    assert.match(await detail.getByTestId('span-logs').textContent(), /\+3ms/);

    // parent in this trace: selects it; link to another trace: opens it at the span
    await detail.getByRole('button', { name: /call api/ }).click();
    await page.waitForURL(/span=0000000000000a03/);
    await page.locator('.tl-row[data-span-id="0000000000000a02"]').click();
    await page.getByTestId('span-detail').getByRole('link', { name: new RegExp(T2) }).click();
    await page.waitForURL(`**/trace/${T2}?span=0000000000000b01`);
    await page.getByTestId('span-detail').waitFor();
    assert.match(await page.locator('.trace-name').textContent(), /nightly job/);
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('keyboard: arrows move the selection, left collapses, escape closes', async () => {
    const page = await open(`/trace/${T1}`);
    await page.getByTestId('timeline').focus();
    await page.keyboard.press('ArrowDown');
    await page.waitForURL(/span=0000000000000a01/);
    await page.keyboard.press('ArrowDown');
    await page.waitForURL(/span=0000000000000a03/);
    await page.keyboard.press('ArrowLeft'); // collapse "call api"
    await page.waitForFunction(() => document.querySelectorAll('.tl-row').length === 2);
    await page.keyboard.press('ArrowRight');
    await page.waitForFunction(() => document.querySelectorAll('.tl-row').length === 5);
    await page.keyboard.press('Escape');
    await page.waitForURL((u) => !u.search.includes('span='));
    assert.equal(await page.getByTestId('span-detail').count(), 0);
    await page.close();
  });

  test(`a ${BIG_SPANS}-span trace renders only the rows in view`, async () => {
    const page = await open(`/trace/${BIG}`);
    await page.getByTestId('trace-header').waitFor();
    assert.equal(await page.getByTestId('trace-span-count').textContent(), String(BIG_SPANS));
    const rows = await page.locator('.tl-row').count();
    assert.ok(rows > 10 && rows < 150, `${rows} rows in the DOM`);
    await page.getByTestId('timeline').evaluate((el) => (el.scrollTop = el.scrollHeight));
    await page.waitForFunction((n) => [...document.querySelectorAll('.tl-row')].some((r) => r.getAttribute('aria-posinset') === String(n)), BIG_SPANS);
    const measure = await page.evaluate(() => performance.getEntriesByName('trace-render')[0]?.duration);
    assert.ok(measure > 0, 'the app records the trace-render measure');
    await page.close();
  });

  test('a missing trace shows the not-found state', async () => {
    const page = await open('/trace/0123456789abcdef0123456789abcdef');
    await page.getByTestId('trace-not-found').waitFor();
    assert.match(await page.getByTestId('trace-not-found').textContent(), /0123456789abcdef0123456789abcdef/);
    await page.close();
  });

  test('a malformed trace id shows the API message', async () => {
    const page = await open('/trace/not-hex');
    await page.getByTestId('api-error').waitFor();
    const { body } = await api(server, '/api/traces/not-hex');
    assert.match(await page.getByTestId('api-error').textContent(), new RegExp(body.errors[0].msg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    await page.close();
  });
});

describe('dependencies page', () => {
  test('shows the edges the API reports, and a node opens its search', async () => {
    const { body } = await api(server, `/api/dependencies?endTs=${Date.now()}&lookback=86400000`);
    const expected = body.data.map((d) => `${d.parent}->${d.child}:${d.callCount}`).sort();
    for (const e of ['shop-web->shop-api:1', 'shop-api->shop-db:1']) assert.ok(expected.includes(e), `API has ${e}`);
    assert.ok(expected.some((e) => e.startsWith('frontend->cart:')));

    const page = await open('/dependencies');
    await page.getByTestId('deps-graph').waitFor();
    const edges = await page.locator('g.edge').evaluateAll((gs) =>
      gs.map((g) => `${g.dataset.parent}->${g.dataset.child}:${g.querySelector('text').textContent.split(' ')[0].replace(/,/g, '')}`),
    );
    assert.deepEqual(edges.sort(), expected);
    const rows = await page.locator('[data-testid=deps-table] tbody tr').count();
    assert.equal(rows, body.data.length);

    // left to right: callers left of callees
    const x = async (s) => Number(await page.locator(`a.node[data-service="${s}"] rect`).first().getAttribute('x'));
    assert.ok((await x('shop-web')) < (await x('shop-api')));
    assert.ok((await x('shop-api')) < (await x('shop-db')));

    await page.locator('a.node[data-service="shop-api"]').click();
    await page.waitForURL(/\/search\?service=shop-api/);
    await page.getByTestId('result-count').waitFor();
    assert.equal(await page.getByTestId('result-count').textContent(), '1 trace');
    await page.close();
  });

  test('renders in the dark theme too', async () => {
    const page = await open('/dependencies', { colorScheme: 'dark' });
    await page.getByTestId('deps-graph').waitFor();
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(bg, 'rgb(18, 21, 27)');
    await page.close();
  });
});
