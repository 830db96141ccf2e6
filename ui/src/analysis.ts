// Derived views of a trace: self times, per-operation statistics, the
// critical path, in-trace search, and the structural diff of two traces.
// All iterative: span chains can be thousands deep.

import type { Span, TraceModel } from './trace';

/**
 * Self time of every span (indexed like model.spans): its duration minus the
 * union of its children's intervals, clipped to the span.
 */
export function selfTimes(model: TraceModel): Float64Array {
  const out = new Float64Array(model.spans.length);
  for (const s of model.spans) {
    const start = s.offset;
    const end = s.offset + s.duration;
    let covered = 0;
    let reach = start; // children are sorted by start
    for (const c of s.children) {
      const cs = Math.max(c.offset, reach);
      const ce = Math.min(c.offset + c.duration, end);
      if (ce > cs) {
        covered += ce - cs;
        reach = ce;
      }
    }
    out[s.index] = Math.max(0, s.duration - covered);
  }
  return out;
}

export interface StatRow {
  key: string;
  service: string;
  /** empty when grouped by service only */
  operation: string;
  count: number;
  errors: number;
  total: number;
  min: number;
  max: number;
  avg: number;
  self: number;
  /** self time as a share of the trace duration, 0..1 */
  selfShare: number;
}

export function spanStats(model: TraceModel, by: 'operation' | 'service'): StatRow[] {
  const self = selfTimes(model);
  const rows = new Map<string, StatRow>();
  for (const s of model.spans) {
    const op = by === 'operation' ? s.operation : '';
    const key = `${s.service}\u0000${op}`;
    let r = rows.get(key);
    if (!r) {
      r = { key, service: s.service, operation: op, count: 0, errors: 0, total: 0, min: Infinity, max: -Infinity, avg: 0, self: 0, selfShare: 0 };
      rows.set(key, r);
    }
    r.count++;
    if (s.error) r.errors++;
    r.total += s.duration;
    if (s.duration < r.min) r.min = s.duration;
    if (s.duration > r.max) r.max = s.duration;
    r.self += self[s.index];
  }
  const whole = model.duration || 1;
  for (const r of rows.values()) {
    r.avg = r.total / r.count;
    r.selfShare = r.self / whole;
  }
  return [...rows.values()];
}

export interface PathSegment {
  span: Span;
  /** µs from the trace start */
  start: number;
  end: number;
}

/**
 * The critical path: the chain of work that determines when the trace ends.
 * From the root that ends last, walk back from its end: the child that
 * finishes last (before the point reached) is on the path, then the parent's
 * own time before that child, and so on. Children are clipped to their
 * parent; a child that overlaps one already on the path is skipped.
 * Segments come in time order.
 */
export function criticalPath(model: TraceModel): PathSegment[] {
  let root: Span | null = null;
  for (const r of model.roots) if (!root || r.offset + r.duration > root.offset + root.duration) root = r;
  if (!root) return [];
  const out: PathSegment[] = [];
  type Frame = { span: Span; kids: Span[]; i: number; cursor: number };
  const frame = (span: Span, until: number): Frame => {
    const end = span.offset + span.duration;
    const kids = span.children.length > 1 ? span.children.slice() : span.children;
    const clip = (c: Span) => Math.min(c.offset + c.duration, end);
    if (kids.length > 1) kids.sort((a, b) => clip(b) - clip(a) || b.offset - a.offset);
    return { span, kids, i: 0, cursor: Math.min(until, end) };
  };
  const stack: Frame[] = [frame(root, Infinity)];
  while (stack.length) {
    const f = stack[stack.length - 1];
    const s = f.span;
    const end = s.offset + s.duration;
    let next: Span | null = null;
    while (f.i < f.kids.length) {
      const c = f.kids[f.i++];
      const ce = Math.min(c.offset + c.duration, end);
      if (ce > f.cursor || c.offset >= f.cursor || ce <= s.offset) continue;
      next = c;
      if (ce < f.cursor) out.push({ span: s, start: ce, end: f.cursor });
      f.cursor = Math.max(c.offset, s.offset);
      stack.push(frame(c, ce));
      break;
    }
    if (next) continue;
    if (f.cursor > s.offset || s.duration === 0) out.push({ span: s, start: s.offset, end: f.cursor });
    stack.pop();
  }
  // collected end to start, by the walk order
  out.sort((a, b) => a.start - b.start || a.end - b.end);
  return out;
}

/** Segments per span id. */
export function pathBySpan(segments: PathSegment[]): Map<string, PathSegment[]> {
  const m = new Map<string, PathSegment[]>();
  for (const seg of segments) {
    const l = m.get(seg.span.id);
    if (l) l.push(seg);
    else m.set(seg.span.id, [seg]);
  }
  return m;
}

/**
 * Spans matching a query: every whitespace-separated term must occur
 * (case-insensitive) in the service, operation, span ID, a tag or process tag
 * key or value, or `key=value`.
 */
export function searchSpans(model: TraceModel, query: string): Set<string> {
  const terms = query.toLowerCase().split(/\s+/).filter(Boolean);
  const hits = new Set<string>();
  if (!terms.length) return hits;
  for (const s of model.spans) {
    const hay: string[] = [s.service.toLowerCase(), s.operation.toLowerCase(), s.id];
    for (const list of [s.raw.tags, s.process.tags]) {
      if (!list) continue;
      for (const t of list) {
        const v = typeof t.value === 'string' ? t.value : JSON.stringify(t.value);
        hay.push(`${t.key}=${v}`.toLowerCase());
      }
    }
    if (terms.every((term) => hay.some((h) => h.includes(term)))) hits.add(s.id);
  }
  return hits;
}

// ---- Compare --------------------------------------------------------------

export type DiffStatus = 'both' | 'a' | 'b';

export interface DiffNode {
  key: string;
  service: string;
  operation: string;
  depth: number;
  countA: number;
  countB: number;
  /** summed durations, µs */
  durationA: number;
  durationB: number;
  status: DiffStatus;
  children: DiffNode[];
  errorsA: number;
  errorsB: number;
}

/**
 * Merges two traces into one tree keyed by the path of service and operation
 * names from the root. Spans with the same path are counted together.
 * Returns the top-level nodes; children in first-seen order (A before B).
 */
export function diffTraces(a: TraceModel, b: TraceModel): DiffNode[] {
  const top: DiffNode[] = [];
  const nodes = new Map<string, DiffNode>();
  const add = (model: TraceModel, side: 'A' | 'B') => {
    const keyOf = new Map<Span, string>();
    for (const s of model.spans) {
      // depth-first order: the parent's key is known
      const parentKey = s.parent ? keyOf.get(s.parent)! : '';
      const key = `${parentKey}\u0001${s.service}\u0000${s.operation}`;
      keyOf.set(s, key);
      let n = nodes.get(key);
      if (!n) {
        n = {
          key,
          service: s.service,
          operation: s.operation,
          depth: s.depth,
          countA: 0,
          countB: 0,
          durationA: 0,
          durationB: 0,
          status: 'both',
          children: [],
          errorsA: 0,
          errorsB: 0,
        };
        nodes.set(key, n);
        if (s.parent) nodes.get(parentKey)!.children.push(n);
        else top.push(n);
      }
      if (side === 'A') {
        n.countA++;
        n.durationA += s.duration;
        if (s.error) n.errorsA++;
      } else {
        n.countB++;
        n.durationB += s.duration;
        if (s.error) n.errorsB++;
      }
    }
  };
  add(a, 'A');
  add(b, 'B');
  for (const n of nodes.values()) n.status = n.countA && n.countB ? 'both' : n.countA ? 'a' : 'b';
  return top;
}

/** The diff tree flattened depth-first. */
export function flattenDiff(top: DiffNode[]): DiffNode[] {
  const out: DiffNode[] = [];
  const stack = [...top].reverse();
  while (stack.length) {
    const n = stack.pop()!;
    out.push(n);
    for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]);
  }
  return out;
}

/**
 * Rows for a time-based icicle chart in which concurrent siblings do not
 * overlap: each span's children are packed greedily into lanes (a child goes
 * in the first lane that is free at its start), and lanes stack their
 * subtrees below the parent. Returns the row of every span in the subtree of
 * `top` (indexed like model.spans; -1 outside it), relative to `top`, and the
 * number of rows used.
 */
export function icicleRows(model: TraceModel, top: Span | null): { row: Int32Array; rows: number } {
  const spans = model.spans;
  const row = new Int32Array(spans.length).fill(-1);
  const first = top ? top.index : 0;
  const last = top ? top.index + top.descendants : spans.length - 1;
  const height = new Int32Array(spans.length);
  // lane offsets of each child below its parent
  const laneOffset = new Int32Array(spans.length);
  // bottom-up: children come after their parent in depth-first order
  for (let i = last; i >= first; i--) {
    const s = spans[i];
    if (!s.children.length) {
      height[i] = 1;
      continue;
    }
    const laneEnd: number[] = [];
    const laneHeight: number[] = [];
    const laneOf: number[] = [];
    for (const c of s.children) {
      let l = 0;
      while (l < laneEnd.length && laneEnd[l] > c.offset) l++;
      if (l === laneEnd.length) {
        laneEnd.push(0);
        laneHeight.push(0);
      }
      laneEnd[l] = c.offset + c.duration;
      laneHeight[l] = Math.max(laneHeight[l], height[c.index]);
      laneOf.push(l);
    }
    const offsets: number[] = [];
    let sum = 0;
    for (const h of laneHeight) {
      offsets.push(sum);
      sum += h;
    }
    s.children.forEach((c, k) => (laneOffset[c.index] = 1 + offsets[laneOf[k]]));
    height[i] = 1 + sum;
  }
  // top-down
  let rows = 0;
  let base = 0;
  for (let i = first; i <= last; i++) {
    const s = spans[i];
    if (top ? s === top : !s.parent) {
      row[i] = base;
      base += height[i];
    } else row[i] = row[s.parent!.index] + laneOffset[i];
    if (row[i] + 1 > rows) rows = row[i] + 1;
  }
  return { row, rows };
}
