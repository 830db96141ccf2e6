import assert from 'node:assert/strict';
import { test } from 'node:test';
import { criticalPath, diffTraces, flattenDiff, icicleRows, searchSpans, selfTimes, spanStats } from '../../src/analysis';
import { buildTrace } from '../../src/trace';
import type { JaegerSpan, JaegerTrace } from '../../src/types';

const TID = 'bb'.repeat(16);
function span(id: string, parent: string | null, start: number, end: number, op = `op-${id}`, proc = 'p1', tags: JaegerSpan['tags'] = []): JaegerSpan {
  return {
    traceID: TID,
    spanID: id,
    operationName: op,
    references: parent ? [{ refType: 'CHILD_OF', traceID: TID, spanID: parent }] : [],
    startTime: start,
    duration: end - start,
    tags,
    logs: [],
    processID: proc,
    warnings: null,
  };
}
const processes = { p1: { serviceName: 'front', tags: [] }, p2: { serviceName: 'back', tags: [{ key: 'host.name', type: 'string', value: 'h1' }] } };

// root 0-100; A 10-40 (E 15-35 inside); B 20-90 (C 30-60, D 50-80 inside)
const fork: JaegerTrace = {
  traceID: TID,
  processes,
  spans: [
    span('r', null, 0, 100, 'GET /'),
    span('a', 'r', 10, 40, 'auth', 'p2', [{ key: 'user', type: 'string', value: 'alice' }]),
    span('e', 'a', 15, 35, 'db', 'p2'),
    span('b', 'r', 20, 90, 'work', 'p2'),
    span('c', 'b', 30, 60, 'db', 'p2'),
    span('d', 'b', 50, 80, 'db', 'p2', [{ key: 'error', type: 'bool', value: true }]),
  ],
};

test('self time: duration minus the union of the children', () => {
  const m = buildTrace(fork);
  const self = selfTimes(m);
  const of = (id: string) => self[m.byId.get(id)!.index];
  assert.equal(of('r'), 100 - 80); // children cover 10..90
  assert.equal(of('b'), 70 - 50); // 30..80
  assert.equal(of('a'), 30 - 20);
  assert.equal(of('d'), 30);
});

test('statistics per operation and per service', () => {
  const m = buildTrace(fork);
  const rows = spanStats(m, 'operation');
  assert.equal(rows.reduce((s, r) => s + r.count, 0), 6);
  const db = rows.find((r) => r.service === 'back' && r.operation === 'db')!;
  assert.equal(db.count, 3);
  assert.equal(db.total, 20 + 30 + 30);
  assert.equal(db.min, 20);
  assert.equal(db.max, 30);
  assert.equal(db.errors, 1);
  assert.equal(db.self, 80);
  const bySvc = spanStats(m, 'service');
  assert.deepEqual(bySvc.map((r) => [r.service, r.count]).sort(), [['back', 5], ['front', 1]]);
});

test('critical path: descends into the last-finishing child, skips overlapped siblings', () => {
  const m = buildTrace(fork);
  const path = criticalPath(m);
  assert.deepEqual(
    path.map((s) => `${s.span.id}:${s.start}-${s.end}`),
    ['r:0-20', 'b:20-50', 'd:50-80', 'b:80-90', 'r:90-100'],
  );
  // the segments tile the trace
  assert.equal(path.reduce((t, s) => t + s.end - s.start, 0), 100);
});

test('critical path: a child running past its parent is clipped; a deep chain does not overflow', () => {
  const m = buildTrace({ traceID: TID, processes, spans: [span('r', null, 0, 10), span('x', 'r', 5, 50)] });
  assert.deepEqual(criticalPath(m).map((s) => `${s.span.id}:${s.start}-${s.end}`), ['r:0-5', 'x:5-10']);
  const spans: JaegerSpan[] = [];
  for (let i = 0; i < 20000; i++) spans.push(span(`c${i}`, i ? `c${i - 1}` : null, i, 40000 - i));
  const deep = criticalPath(buildTrace({ traceID: TID, processes, spans }));
  assert.equal(new Set(deep.map((s) => s.span.id)).size, 20000);
});

test('in-trace search: service, operation, tag key, value and key=value, all terms', () => {
  const m = buildTrace(fork);
  const ids = (q: string) => [...searchSpans(m, q)].sort();
  assert.deepEqual(ids('alice'), ['a']);
  assert.deepEqual(ids('user=alice'), ['a']);
  assert.deepEqual(ids('DB'), ['c', 'd', 'e']);
  assert.deepEqual(ids('db error=true'), ['d']);
  assert.deepEqual(ids('host.name=h1').length, 5); // process tags
  assert.deepEqual(ids('front'), ['r']);
  assert.deepEqual(ids('  '), []);
});

test('compare: merged tree keyed by the path of service and operation', () => {
  const a = buildTrace(fork);
  const b = buildTrace({
    traceID: TID,
    processes,
    spans: [
      span('r', null, 0, 120, 'GET /'),
      span('b', 'r', 20, 90, 'work', 'p2'),
      span('c', 'b', 30, 60, 'db', 'p2'),
      span('c2', 'b', 60, 70, 'db', 'p2'),
      span('d', 'b', 70, 80, 'cache', 'p2'),
    ],
  });
  const rows = flattenDiff(diffTraces(a, b));
  const root = rows.find((r) => r.operation === 'GET /')!;
  assert.equal(root.status, 'both');
  assert.equal(root.durationB - root.durationA, 20);
  assert.equal(rows.find((r) => r.operation === 'auth')!.status, 'a');
  assert.equal(rows.find((r) => r.operation === 'db' && r.depth === 2 && r.key.includes('auth'))!.status, 'a');
  const db = rows.find((r) => r.operation === 'db' && r.key.includes('work'))!;
  assert.equal(db.status, 'both');
  assert.equal(db.countA, 2);
  assert.equal(db.countB, 2);
  assert.equal(rows.find((r) => r.operation === 'cache')!.status, 'b');
  // depth-first: each node follows its parent
  assert.deepEqual(rows.map((r) => r.depth), [0, 1, 2, 1, 2, 2]);
});

test('icicle rows: concurrent siblings get their own lanes, nothing overlaps on a row', () => {
  const m = buildTrace(fork);
  const { row, rows } = icicleRows(m, null);
  const at = (id: string) => row[m.byId.get(id)!.index];
  assert.deepEqual(['r', 'a', 'e', 'b', 'c', 'd'].map(at), [0, 1, 2, 3, 4, 5]);
  assert.equal(rows, 6);
  // zoomed to work: rows relative to it, others left out
  const z = icicleRows(m, m.byId.get('b')!);
  assert.deepEqual(['b', 'c', 'd', 'r', 'a'].map((id) => z.row[m.byId.get(id)!.index]), [0, 1, 2, -1, -1]);
  // sequential children share a row
  const seq = buildTrace({ traceID: TID, processes, spans: [span('r', null, 0, 10), span('x', 'r', 0, 5), span('y', 'r', 5, 10)] });
  const q = icicleRows(seq, null);
  assert.equal(q.rows, 2);
  // no overlap on any row, on a random bushy trace
  const spans: JaegerSpan[] = [span('s0', null, 0, 1000)];
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 1; i < 400; i++) {
    const p = spans[Math.floor(rnd() * spans.length)];
    const st = p.startTime + rnd() * p.duration;
    spans.push(span(`s${i}`, p.spanID, st, st + rnd() * (p.startTime + p.duration - st)));
  }
  const big = buildTrace({ traceID: TID, processes, spans });
  const ir = icicleRows(big, null);
  const byRow = new Map<number, [number, number][]>();
  for (const sp of big.spans) {
    const l = byRow.get(ir.row[sp.index]) ?? [];
    l.push([sp.offset, sp.offset + sp.duration]);
    byRow.set(ir.row[sp.index], l);
  }
  for (const l of byRow.values()) {
    l.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < l.length; i++) assert.ok(l[i][0] >= l[i - 1][1] - 1e-9, 'spans overlap on a row');
  }
});
