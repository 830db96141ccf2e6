// End-to-end: a real waymark server with generated and hand-made traces, the
// built UI, and headless Chromium. See harness.mjs for the environment.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
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
  UI_DIR,
  waitForTrace,
} from './harness.mjs';

const T1 = 'e2e00000000000000000000000000001';
const T2 = 'e2e00000000000000000000000000002';
const BIG = 'e2e000000000000000000000000000b1';
const BIG_SPANS = 5000;
// parallel children: the critical path is root, work, db-write (see the unit test)
const FORK = 'e2e000000000000000000000000000f1';
// two versions of one request for the compare view
const CMP_A = 'e2e000000000000000000000000000ca';
const CMP_B = 'e2e000000000000000000000000000cb';
// a trace that only ever exists in an uploaded file
const UPLOADED = 'e2e000000000000000000000000000d1';
// the browser's zone: five and a half hours from UTC, no daylight saving
const ZONE = 'Asia/Kolkata';

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
  const f = (id, parent, name, s, e, extra = {}) => ({ traceId: FORK, spanId: `00000000000f00${id}`, parentSpanId: parent && `00000000000f00${parent}`, name, start: now + BigInt(s) * ms, end: now + BigInt(e) * ms, ...extra });
  await postOtlp(
    server,
    otlpRequest({
      'fork-gw': [f('01', null, 'GET /fork', 0, 100)],
      'fork-worker': [
        f('02', '01', 'auth', 10, 40, { attributes: { 'app.user': 'alice' } }),
        f('03', '02', 'db-read', 15, 35),
        f('04', '01', 'work', 20, 90),
        f('05', '04', 'db-read', 30, 60),
        f('06', '04', 'db-write', 50, 80),
      ],
    }),
  );
  const c = (trace, id, parent, name, s, e) => ({ traceId: trace, spanId: `${trace.slice(-2)}000000000000${id}`, parentSpanId: parent && `${trace.slice(-2)}000000000000${parent}`, name, start: now + BigInt(s) * ms, end: now + BigInt(e) * ms });
  await postOtlp(
    server,
    otlpRequest({
      'cmp-web': [c(CMP_A, '01', null, 'GET /cart', 0, 40), c(CMP_B, '01', null, 'GET /cart', 0, 60)],
      'cmp-api': [c(CMP_A, '02', '01', 'load cart', 5, 30), c(CMP_B, '02', '01', 'load cart', 5, 50)],
      'cmp-db': [c(CMP_A, '03', '02', 'SELECT', 6, 20), c(CMP_B, '03', '02', 'SELECT', 6, 20), c(CMP_B, '04', '02', 'SELECT', 21, 40)],
      'cmp-cache': [c(CMP_A, '05', '01', 'get', 31, 35)],
      'cmp-auth': [c(CMP_B, '05', '01', 'check', 51, 55)],
    }),
  );
  await waitForTrace(server, T1, 5);
  await waitForTrace(server, BIG, BIG_SPANS);
  await waitForTrace(server, FORK, 6);
  await waitForTrace(server, CMP_A, 4);
  await waitForTrace(server, CMP_B, 5);
  browser = await launchBrowser({ timezoneId: ZONE });
});

after(async () => {
  await browser?.close();
  await ui?.stop();
  await server?.stop();
});

// Every page a test opens is photographed as it closes, into
// ui/test-results/ (kept as CI artifacts, and for people to look at).
const SHOTS = join(UI_DIR, 'test-results');
mkdirSync(SHOTS, { recursive: true });
let shotCount = 0;

async function open(path, { colorScheme = 'light' } = {}) {
  const page = await browser.context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.errors = errors;
  await page.emulateMedia({ colorScheme });
  await page.goto(ui.url + path);
  const close = page.close.bind(page);
  page.close = async (...args) => {
    const slug = path.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').slice(0, 60) || 'root';
    shotCount += 1;
    await page
      .screenshot({ path: join(SHOTS, `${String(shotCount).padStart(2, '0')}-${slug}.png`) })
      .catch(() => {});
    return close(...args);
  };
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

/** µs from a formatted duration ("1.5ms", "120µs", "2s"). */
function us(text) {
  const m = /(-?[\d.]+)(µs|ms|s)/.exec(text);
  return Number(m[1]) * { 'µs': 1, ms: 1e3, s: 1e6 }[m[2]];
}

describe('trace views', () => {
  test('statistics: counts per operation match the trace, total is the span count, sortable', async () => {
    const { body } = await api(server, `/api/traces/${FORK}`);
    const t = body.data[0];
    const expected = {};
    for (const sp of t.spans) {
      const k = `${t.processes[sp.processID].serviceName}|${sp.operationName}`;
      expected[k] = (expected[k] ?? 0) + 1;
    }
    const page = await open(`/trace/${FORK}`);
    await page.getByRole('tab', { name: 'Statistics' }).click();
    await page.waitForURL(/view=stats/);
    const table = page.getByTestId('stats-table');
    await table.waitFor();
    const got = await table.locator('tbody tr').evaluateAll((rows) =>
      Object.fromEntries(rows.map((r) => [`${r.dataset.service}|${r.dataset.operation}`, Number(r.querySelector('[data-col=count]').dataset.value)])),
    );
    assert.deepEqual(got, expected);
    assert.equal(got['fork-worker|db-read'], 2);
    assert.equal(await page.getByTestId('stats-total-count').textContent(), '6');
    // db-read: 20ms + 30ms; self time of the root: 100 - 80 ms
    const cell = (svc, op, col) => table.locator(`tr[data-service="${svc}"][data-operation="${op}"] td[data-col=${col}]`).getAttribute('data-value');
    assert.equal(Number(await cell('fork-worker', 'db-read', 'total')), 50_000);
    assert.equal(Number(await cell('fork-worker', 'db-read', 'min')), 20_000);
    assert.equal(Number(await cell('fork-worker', 'db-read', 'max')), 30_000);
    assert.equal(Number(await cell('fork-gw', 'GET /fork', 'self')), 20_000);

    // sort by count, descending then ascending
    await table.locator('button[data-col=count]').click();
    const counts = async () => (await table.locator('tbody td[data-col=count]').allTextContents()).map(Number);
    assert.deepEqual(await counts(), [...(await counts())].sort((a, b) => b - a));
    assert.equal((await counts())[0], 2);
    await table.locator('button[data-col=count]').click();
    assert.equal((await counts())[0], 1);
    assert.equal(await table.locator('th[aria-sort=ascending]').count(), 1);

    // per service
    await page.getByRole('group', { name: 'Group by' }).getByRole('button', { name: 'Service', exact: true }).click();
    assert.equal(await table.locator('tbody tr').count(), 2);

    // the big trace: the rows add up to the span count
    await page.goto(`${ui.url}/trace/${BIG}?view=stats`);
    await page.getByTestId('stats-table').waitFor();
    const sum = (await page.locator('tbody td[data-col=count]').allTextContents()).reduce((a, b) => a + Number(b), 0);
    assert.equal(sum, BIG_SPANS);
    assert.equal(await page.getByTestId('stats-total-count').textContent(), String(BIG_SPANS));
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('flamegraph: one rectangle per span, click zooms to the subtree', async () => {
    const page = await open(`/trace/${FORK}?view=flamegraph`);
    const svg = page.getByTestId('flamegraph');
    await svg.waitFor();
    assert.equal(await svg.locator('rect.flame-rect').count(), 6);
    const width = Number(await svg.getAttribute('width'));
    const rectWidth = async (id) => Number(await svg.locator(`rect[data-span-id="00000000000f00${id}"]`).getAttribute('width'));
    assert.ok(Math.abs((await rectWidth('01')) - width) < 1, 'the root spans the width');
    assert.ok(Math.abs((await rectWidth('02')) - width * 0.3) < 1, 'auth is 30% of the trace');

    await svg.locator('g[data-span-id="00000000000f0004"]').click();
    await page.waitForURL(/zoom=00000000000f0004/);
    // the root (ancestor), work, and its two children
    assert.equal(await svg.locator('rect.flame-rect').count(), 4);
    assert.ok(Math.abs((await rectWidth('04')) - width) < 1, 'the zoomed span fills the width');
    assert.ok(Math.abs((await rectWidth('06')) - (width * 30) / 70) < 1);
    assert.match(await page.getByTestId('flame-zoom').textContent(), /work/);

    await page.getByRole('button', { name: 'Reset zoom' }).click();
    await page.waitForURL((u) => !u.search.includes('zoom='));
    assert.equal(await svg.locator('rect.flame-rect').count(), 6);
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('raw JSON: Jaeger and OTLP, each downloadable', async () => {
    const page = await open(`/trace/${T1}?view=json`);
    const pre = page.getByTestId('json-text');
    await pre.waitFor();
    assert.match(await pre.textContent(), new RegExp(T1));
    const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('json-download').click()]);
    assert.equal(dl.suggestedFilename(), `trace-${T1}.json`);
    const file = JSON.parse(await readFile(await dl.path(), 'utf8'));
    assert.equal(file.data[0].traceID, T1);
    assert.equal(file.data[0].spans.length, 5);

    await page.getByRole('button', { name: 'OTLP JSON' }).click();
    await page.locator('[data-testid=json-text][data-format=otlp]').waitFor();
    const { body: v3 } = await api(server, `/api/v3/traces/${T1}`);
    const otlpText = await pre.textContent();
    assert.deepEqual(JSON.parse(otlpText), v3);
    const [dl2] = await Promise.all([page.waitForEvent('download'), page.getByTestId('json-download').click()]);
    assert.equal(dl2.suggestedFilename(), `trace-${T1}.otlp.json`);
    const otlp = JSON.parse(await readFile(await dl2.path(), 'utf8'));
    assert.equal(otlp.result.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)).length, 5);
    assert.deepEqual(page.errors, []);
    await page.close();
  });
});

describe('timeline tools', () => {
  const critical = (page) => page.locator('.tl-row.critical').evaluateAll((rows) => rows.map((r) => r.dataset.spanId).sort());

  test('critical path: root, the last-finishing child, and its last-finishing child', async () => {
    const page = await open(`/trace/${FORK}`);
    await page.getByTestId('timeline').waitFor();
    assert.deepEqual(await critical(page), ['00000000000f0001', '00000000000f0004', '00000000000f0006']);
    // the path's segments are drawn on the bars
    assert.ok((await page.locator('.tl-cp').count()) >= 5);
    await page.getByLabel('Critical path').uncheck();
    await page.waitForURL(/cp=0/);
    assert.deepEqual(await critical(page), []);

    // a generated trace: the root is on the path and the path reaches the span that ends last
    const { body } = await api(server, `/api/traces/${T1}`);
    const spans = body.data[0].spans;
    const last = spans.reduce((a, b) => (a.startTime + a.duration >= b.startTime + b.duration ? a : b));
    await page.goto(`${ui.url}/trace/${T1}`);
    await page.getByTestId('timeline').waitFor();
    const path = await critical(page);
    assert.ok(path.includes('0000000000000a01'));
    assert.ok(path.includes(last.spanID));
    await page.close();
  });

  test('minimap: dragging narrows the time axis; reset restores it', async () => {
    const page = await open(`/trace/${FORK}`);
    const map = page.getByTestId('minimap');
    await map.waitFor();
    const ticks = () => page.locator('[data-testid=timeline-axis] .tl-tick').allTextContents();
    const before = await ticks();
    assert.equal(us(before[0]), 0);
    assert.equal(us(before[before.length - 1]), 100_000);
    const box = await map.boundingBox();
    await page.mouse.move(box.x + box.width * 0.2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.35, box.y + box.height / 2, { steps: 4 });
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, { steps: 4 });
    await page.mouse.up();
    const after = await ticks();
    const [a, b] = [us(after[0]), us(after[after.length - 1])];
    assert.ok(Math.abs(a - 20_000) < 1500 && Math.abs(b - 50_000) < 1500, `window ${after[0]}..${after[after.length - 1]}`);
    // a bar outside the window is pushed out of view: the root now overflows on both sides
    const left = await page.locator('.tl-row[data-span-id="00000000000f0001"] .tl-bar').evaluate((el) => parseFloat(el.style.left));
    assert.ok(left < 0);
    await page.getByRole('button', { name: 'Reset zoom' }).click();
    assert.deepEqual(await ticks(), before);
    await page.close();
  });

  test('find in the trace: a tag value highlights its span; only-matches filters the rows', async () => {
    const page = await open(`/trace/${T1}`);
    await page.getByTestId('timeline').waitFor();
    await page.getByLabel('Find in trace').fill('app.customer=c-42');
    await page.waitForURL(/find=app.customer/);
    assert.equal(await page.getByTestId('find-count').textContent(), '1 match');
    assert.deepEqual(await page.locator('.tl-row.match').evaluateAll((r) => r.map((x) => x.dataset.spanId)), ['0000000000000a02']);
    await page.getByLabel('Find in trace').press('Enter');
    await page.waitForURL(/span=0000000000000a02/);

    await page.getByLabel('Find in trace').fill('shop-api');
    assert.equal(await page.getByTestId('find-count').textContent(), '2 matches');
    assert.equal(await page.locator('.tl-row').count(), 5);
    await page.getByLabel('Only matches').check();
    await page.waitForURL(/only=1/);
    assert.equal(await page.locator('.tl-row').count(), 2);
    assert.equal(await page.locator('.tl-row.match').count(), 2);
    // the URL reproduces the filtered view
    await page.reload();
    await page.getByTestId('timeline').waitFor();
    assert.equal(await page.locator('.tl-row').count(), 2);
    await page.close();
  });

  test('UTC or local time: the toggle changes every time shown and is remembered', async () => {
    const { body } = await api(server, `/api/traces/${FORK}`);
    const startUs = Math.min(...body.data[0].spans.map((s) => s.startTime));
    const d = new Date(startUs / 1000);
    const p = (n, w = 2) => String(n).padStart(w, '0');
    const utc = `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds(), 3)} UTC`;
    const k = new Date(startUs / 1000 + 5.5 * 3600e3); // Asia/Kolkata
    const local = `${k.getUTCFullYear()}-${p(k.getUTCMonth() + 1)}-${p(k.getUTCDate())} ${p(k.getUTCHours())}:${p(k.getUTCMinutes())}:${p(k.getUTCSeconds())}.${p(k.getUTCMilliseconds(), 3)}`;

    const page = await open(`/trace/${FORK}`);
    const start = page.getByTestId('trace-start');
    await start.waitFor();
    assert.equal(await start.textContent(), local);
    await page.getByTestId('tz-toggle').click();
    assert.equal(await start.textContent(), utc);
    await page.reload();
    await start.waitFor();
    assert.equal(await start.textContent(), utc, 'kept across reloads');
    // the search page's times follow too
    await page.goto(`${ui.url}/search?service=fork-gw&lookback=1h`);
    await page.locator('.result-time').first().waitFor();
    assert.match(await page.locator('.result-time').first().getAttribute('title'), / UTC$/);
    await page.getByTestId('tz-toggle').click();
    assert.doesNotMatch(await page.locator('.result-time').first().getAttribute('title'), /UTC/);
    await page.close();
  });
});

describe('compare', () => {
  test('two results ticked on the search page open a merged tree with A-only, B-only and shared nodes', async () => {
    const page = await open('/search?service=cmp-web&lookback=1h');
    await page.getByTestId('result-count').waitFor();
    await page.locator(`.result[data-trace-id="${CMP_A}"] .result-pick`).check();
    await page.locator(`.result[data-trace-id="${CMP_B}"] .result-pick`).check();
    await page.getByTestId('compare-bar').getByRole('button', { name: 'Compare' }).click();
    await page.waitForURL(`**/trace/${CMP_A}...${CMP_B}`);
    const table = page.getByTestId('compare-table');
    await table.waitFor();
    const rows = await table.locator('tbody tr').evaluateAll((trs) =>
      trs.map((r) => ({ op: r.dataset.operation, status: r.dataset.status, dc: Number(r.dataset.countDelta), dd: Number(r.dataset.durationDelta) })),
    );
    const by = Object.fromEntries(rows.map((r) => [r.op, r]));
    assert.equal(rows.length, 5);
    assert.equal(by.get.status, 'a-only');
    assert.equal(by.check.status, 'b-only');
    assert.equal(by['GET /cart'].status, 'both');
    assert.equal(by['GET /cart'].dd, 20_000);
    assert.equal(by['load cart'].status, 'both');
    assert.equal(by.SELECT.status, 'both');
    assert.equal(by.SELECT.dc, 1);
    assert.equal(await page.getByTestId('count-a-only').textContent(), 'Only in A: 1');
    assert.equal(await page.getByTestId('count-b-only').textContent(), 'Only in B: 1');
    assert.equal(await page.getByTestId('count-both').textContent(), 'In both: 3');
    // markers are visible: colour-coded rows
    const colors = await table.locator('tbody tr').evaluateAll((trs) => new Set(trs.map((r) => getComputedStyle(r).backgroundColor)).size);
    assert.ok(colors >= 3);
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('a missing trace in a comparison is reported', async () => {
    const page = await open(`/trace/${CMP_A}...0123456789abcdef0123456789abcdef`);
    await page.getByTestId('api-error').waitFor();
    assert.match(await page.getByTestId('api-error').textContent(), /trace B/);
    await page.close();
  });
});

describe('upload', () => {
  test('a Jaeger JSON file opens in the trace view, the envelope and a bare trace', async () => {
    const { body } = await api(server, `/api/traces/${FORK}`);
    const page = await open('/upload');
    await page.getByTestId('upload-input').setInputFiles({ name: 'fork.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(body)) });
    await page.waitForURL(`**/upload?trace=${FORK}`);
    await page.getByTestId('trace-header').waitFor();
    assert.equal(await page.getByTestId('trace-span-count').textContent(), '6');
    // the views work on an uploaded trace
    await page.getByRole('tab', { name: 'Statistics' }).click();
    await page.waitForURL(/upload\?trace=.*view=stats/);
    assert.equal(await page.getByTestId('stats-total-count').textContent(), '6');

    await page.goto(`${ui.url}/upload`);
    await page.getByTestId('upload-input').setInputFiles({ name: 't1.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify((await api(server, `/api/traces/${T1}`)).body.data[0])) });
    await page.waitForURL(`**/upload?trace=${T1}`);
    assert.equal(await page.getByTestId('trace-span-count').textContent(), '5');
    assert.deepEqual(page.errors, []);
    await page.close();
  });

  test('an OTLP JSON file is converted by the server, shown, and not stored', async () => {
    const now = BigInt(Date.now()) * 1_000_000n;
    const spans = Array.from({ length: 7 }, (_, i) => ({
      traceId: UPLOADED,
      spanId: `00000000000d00${String(i + 1).padStart(2, '0')}`,
      parentSpanId: i ? '00000000000d0001' : undefined,
      name: i ? `step ${i}` : 'upload root',
      start: now + BigInt(i) * 1_000_000n,
      end: now + BigInt(i + 10) * 1_000_000n,
    }));
    const file = JSON.stringify(otlpRequest({ 'file-svc': spans.slice(0, 3), 'file-db': spans.slice(3) }));
    const page = await open('/upload');
    await page.getByTestId('upload-input').setInputFiles({ name: 'otlp.json', mimeType: 'application/json', buffer: Buffer.from(file) });
    await page.waitForURL(`**/upload?trace=${UPLOADED}`);
    await page.getByTestId('trace-header').waitFor();
    assert.equal(await page.getByTestId('trace-span-count').textContent(), '7');
    assert.equal(await page.getByTestId('trace-services').textContent(), '2');
    assert.match(await page.locator('.trace-name').textContent(), /file-svc: upload root/);
    // the original OTLP is the JSON view's OTLP form
    await page.getByRole('tab', { name: 'JSON' }).click();
    await page.getByRole('button', { name: 'OTLP JSON' }).click();
    assert.deepEqual(JSON.parse(await page.locator('[data-testid=json-text][data-format=otlp]').textContent()), JSON.parse(file));
    const { status } = await api(server, `/api/traces/${UPLOADED}`);
    assert.equal(status, 404, 'the uploaded trace is not stored');

    // a file that is neither
    await page.goto(`${ui.url}/upload`);
    await page.getByTestId('upload-input').setInputFiles({ name: 'junk.json', mimeType: 'application/json', buffer: Buffer.from('{"hello":1}') });
    await page.getByTestId('upload-error').waitFor();
    assert.match(await page.getByTestId('upload-error').textContent(), /junk\.json: this is neither/);
    assert.deepEqual(page.errors, []);
    await page.close();
  });
});
