import assert from 'node:assert/strict';
import { test } from 'node:test';
import { registerServices, serviceColor } from '../../src/colors';
import { layoutDag } from '../../src/dag';
import { formatDuration, parseDuration } from '../../src/format';
import { parseLogfmt, toLogfmt } from '../../src/logfmt';
import { buildTrace, summarize, visibleSpans } from '../../src/trace';
import type { JaegerSpan, JaegerTrace } from '../../src/types';

test('logfmt: pairs, quotes, escapes and errors', () => {
  assert.deepEqual(parseLogfmt('error=true http.status_code=500'), {
    ok: true,
    tags: { error: 'true', 'http.status_code': '500' },
  });
  assert.deepEqual(parseLogfmt('  msg="a b \\"c\\"" x= '), { ok: true, tags: { msg: 'a b "c"', x: '' } });
  assert.equal(parseLogfmt('').ok, true);
  assert.equal(parseLogfmt('novalue').ok, false);
  assert.equal(parseLogfmt('a="open').ok, false);
  assert.equal(parseLogfmt('=v').ok, false);
  const tags = { a: 'x y', b: '1', c: '' };
  const round = parseLogfmt(toLogfmt(tags));
  assert.deepEqual(round, { ok: true, tags });
});

test('durations: parse and format', () => {
  assert.equal(parseDuration('1.2ms'), 1200);
  assert.equal(parseDuration('500us'), 500);
  assert.equal(parseDuration('2s'), 2e6);
  assert.equal(parseDuration('2'), null);
  assert.equal(parseDuration('ms'), null);
  assert.equal(formatDuration(512), '512µs');
  assert.equal(formatDuration(1234), '1.23ms');
  assert.equal(formatDuration(57_100), '57.1ms');
  assert.equal(formatDuration(2_500_000), '2.5s');
  assert.equal(formatDuration(125_000_000), '2m 5s');
});

const TID = 'aa'.repeat(16);
function span(id: string, parent: string | null, start: number, duration: number, extra: Partial<JaegerSpan> = {}): JaegerSpan {
  return {
    traceID: TID,
    spanID: id,
    operationName: `op-${id}`,
    references: parent ? [{ refType: 'CHILD_OF', traceID: TID, spanID: parent }] : [],
    startTime: start,
    duration,
    tags: [],
    logs: [],
    processID: id.startsWith('b') ? 'p2' : 'p1',
    warnings: null,
    ...extra,
  };
}
const processes = { p1: { serviceName: 'front', tags: [] }, p2: { serviceName: 'back', tags: [] } };

test('trace model: tree order, depth, services, errors, orphans and cycles', () => {
  const trace: JaegerTrace = {
    traceID: TID,
    processes,
    spans: [
      span('a2', 'a1', 1030, 10),
      span('b1', 'a1', 1010, 50, { tags: [{ key: 'error', type: 'bool', value: true }] }),
      span('a1', null, 1000, 100),
      span('b2', 'b1', 1020, 5, { tags: [{ key: 'otel.status_code', type: 'string', value: 'ERROR' }] }),
      span('a9', 'missing', 1200, 10), // orphan: its parent never arrived
      span('c1', 'c2', 1300, 1), // c1 and c2 refer to each other
      span('c2', 'c1', 1301, 1),
    ],
  };
  const m = buildTrace(trace);
  assert.deepEqual(
    m.spans.map((s) => s.id),
    ['a1', 'b1', 'b2', 'a2', 'a9', 'c1', 'c2'],
  );
  assert.deepEqual(
    m.spans.map((s) => s.depth),
    [0, 1, 2, 1, 0, 0, 1],
  );
  assert.equal(m.rootService, 'front');
  assert.equal(m.rootOperation, 'op-a1');
  assert.equal(m.start, 1000);
  assert.equal(m.duration, 302);
  assert.equal(m.depth, 3);
  assert.equal(m.errors, 2);
  assert.deepEqual(m.services, [
    { name: 'front', count: 5, errors: 0 },
    { name: 'back', count: 2, errors: 2 },
  ]);
  assert.equal(m.byId.get('a1')!.descendants, 3);
  assert.deepEqual(
    visibleSpans(m, new Set(['b1'])).map((s) => s.id),
    ['a1', 'b1', 'a2', 'a9', 'c1', 'c2'],
  );
  assert.deepEqual(
    visibleSpans(m, new Set(['a1', 'c1'])).map((s) => s.id),
    ['a1', 'a9', 'c1'],
  );

  const s = summarize(trace);
  assert.equal(s.name, 'front: op-a1');
  assert.equal(s.spanCount, 7);
  assert.equal(s.errors, 2);
  assert.equal(s.duration, 302);
});

test('trace model: a 20,000-deep chain does not overflow the stack', () => {
  const spans: JaegerSpan[] = [];
  for (let i = 0; i < 20000; i++) spans.push(span(`a${i}`, i ? `a${i - 1}` : null, 1000 + i, 20000 - i));
  const m = buildTrace({ traceID: TID, processes, spans });
  assert.equal(m.depth, 20000);
  assert.equal(m.spans[19999].id, 'a19999');
});

test('dag layout: layers left to right, cycles and self calls', () => {
  const l = layoutDag(
    [],
    [
      { from: 'frontend', to: 'cart' },
      { from: 'frontend', to: 'auth' },
      { from: 'cart', to: 'db' },
      { from: 'frontend', to: 'db' }, // spans two layers: routed through a dummy node
      { from: 'db', to: 'cart' }, // a cycle
      { from: 'auth', to: 'auth' }, // a self call
    ],
  );
  const at = Object.fromEntries(l.nodes.map((n) => [n.id, n]));
  assert.equal(at.frontend.layer, 0);
  assert.ok(at.cart.layer > at.frontend.layer);
  assert.ok(at.db.layer > at.cart.layer);
  assert.equal(l.edges.length, 6);
  const long = l.edges.find((e) => e.from === 'frontend' && e.to === 'db')!;
  assert.equal(long.points.length, 3);
  assert.ok(l.edges.find((e) => e.from === 'auth' && e.to === 'auth')!.self);
  // every node inside the drawing, no two nodes on one spot
  const spots = new Set(l.nodes.map((n) => `${n.x},${n.y}`));
  assert.equal(spots.size, l.nodes.length);
  for (const n of l.nodes) assert.ok(n.x >= 0 && n.y >= 0 && n.x < l.width && n.y < l.height);
});

test('dag layout: ordering removes avoidable crossings', () => {
  const l = layoutDag(
    ['a', 'b'],
    [
      { from: 'a', to: 'z' },
      { from: 'b', to: 'y' },
    ],
  );
  const y = Object.fromEntries(l.nodes.map((n) => [n.id, n.y]));
  assert.equal(y.a < y.b, y.z < y.y);
});

test('service colours: known services get distinct colours, stable by name', () => {
  const names = ['fork-gw', 'fork-worker', 'cart', 'auth', 'payment', 'catalog'];
  registerServices(names);
  const colours = names.map(serviceColor);
  assert.equal(new Set(colours).size, names.length);
  registerServices([...names].reverse());
  assert.deepEqual(names.map(serviceColor), colours, 'order of the list does not matter');
  assert.match(serviceColor('uploaded-only'), /^hsl\(/);
  assert.equal(serviceColor('uploaded-only'), serviceColor('uploaded-only'));
});
