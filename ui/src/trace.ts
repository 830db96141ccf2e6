// The trace model the pages render: a span tree in display order, built in
// one pass over the spans (10,000 spans take a few milliseconds).

import type { JaegerProcess, JaegerSpan, JaegerTrace, KeyValue } from './types';

export interface Span {
  id: string;
  raw: JaegerSpan;
  service: string;
  process: JaegerProcess;
  operation: string;
  kind: string;
  parent: Span | null;
  children: Span[];
  depth: number;
  /** µs from the trace start */
  offset: number;
  duration: number;
  error: boolean;
  /** index in TraceModel.spans (depth-first order) */
  index: number;
  /** number of descendants */
  descendants: number;
}

export interface ServiceCount {
  name: string;
  count: number;
  errors: number;
}

export interface TraceModel {
  traceID: string;
  /** depth-first order, children by start time */
  spans: Span[];
  byId: Map<string, Span>;
  roots: Span[];
  /** µs since the epoch */
  start: number;
  duration: number;
  services: ServiceCount[];
  depth: number;
  errors: number;
  rootService: string;
  rootOperation: string;
  warnings: string[];
}

const EMPTY_PROCESS: JaegerProcess = { serviceName: 'unknown', tags: [] };

export function tagValue(tags: KeyValue[] | null | undefined, key: string): unknown {
  if (!tags) return undefined;
  for (const t of tags) if (t.key === key) return t.value;
  return undefined;
}

export function isErrorSpan(span: JaegerSpan): boolean {
  const tags = span.tags;
  if (!tags) return false;
  for (const t of tags) {
    if (t.key === 'error' && (t.value === true || t.value === 'true')) return true;
    if (t.key === 'otel.status_code' && t.value === 'ERROR') return true;
  }
  return false;
}

/** The in-trace parent's span id: the first CHILD_OF, else the first FOLLOWS_FROM, that is present. */
function parentId(span: JaegerSpan, present: Map<string, unknown>): string | null {
  const refs = span.references;
  if (!refs || refs.length === 0) return null;
  let follows: string | null = null;
  for (const r of refs) {
    if (r.traceID !== span.traceID || r.spanID === span.spanID || !present.has(r.spanID)) continue;
    if (r.refType === 'CHILD_OF') return r.spanID;
    if (follows === null) follows = r.spanID;
  }
  return follows;
}

const byStart = (a: Span, b: Span) => a.offset - b.offset || a.index - b.index;

export function buildTrace(trace: JaegerTrace): TraceModel {
  const raw = trace.spans ?? [];
  let start = Infinity;
  let end = -Infinity;
  for (const s of raw) {
    if (s.startTime < start) start = s.startTime;
    if (s.startTime + s.duration > end) end = s.startTime + s.duration;
  }
  if (!Number.isFinite(start)) {
    start = 0;
    end = 0;
  }

  const byId = new Map<string, Span>();
  const all: Span[] = new Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const s = raw[i];
    const process = trace.processes?.[s.processID] ?? EMPTY_PROCESS;
    const kind = tagValue(s.tags, 'span.kind');
    const span: Span = {
      id: s.spanID,
      raw: s,
      service: process.serviceName,
      process,
      operation: s.operationName,
      kind: typeof kind === 'string' ? kind : '',
      parent: null,
      children: [],
      depth: 0,
      offset: s.startTime - start,
      duration: s.duration,
      error: isErrorSpan(s),
      index: i, // input order until sorted
      descendants: 0,
    };
    all[i] = span;
    if (!byId.has(s.spanID)) byId.set(s.spanID, span);
  }

  const roots: Span[] = [];
  for (const span of all) {
    const pid = parentId(span.raw, byId);
    const parent = pid === null ? undefined : byId.get(pid);
    if (parent && parent !== span) {
      span.parent = parent;
      parent.children.push(span);
    } else {
      roots.push(span);
    }
  }

  // Depth-first order without recursion (chains can be thousands deep).
  // Spans on a reference cycle are unreachable from the roots; they become
  // roots themselves, cut from their parent.
  const ordered: Span[] = [];
  const visited = new Uint8Array(all.length);
  const walk = (root: Span) => {
    const stack: Span[] = [root];
    while (stack.length) {
      const s = stack.pop()!;
      if (visited[s.index]) continue;
      visited[s.index] = 1;
      s.depth = s.parent ? s.parent.depth + 1 : 0;
      ordered.push(s);
      if (s.children.length > 1) s.children.sort(byStart);
      for (let c = s.children.length - 1; c >= 0; c--) stack.push(s.children[c]);
    }
  };
  roots.sort(byStart);
  for (const r of roots) walk(r);
  if (ordered.length < all.length) {
    for (const s of all) {
      if (!visited[s.index]) {
        if (s.parent) s.parent.children = s.parent.children.filter((c) => c !== s);
        s.parent = null;
        roots.push(s);
        walk(s);
      }
    }
  }

  let depth = 0;
  let errors = 0;
  const services = new Map<string, ServiceCount>();
  for (let i = 0; i < ordered.length; i++) {
    const s = ordered[i];
    s.index = i;
    if (s.depth + 1 > depth) depth = s.depth + 1;
    if (s.error) errors++;
    let sc = services.get(s.service);
    if (!sc) services.set(s.service, (sc = { name: s.service, count: 0, errors: 0 }));
    sc.count++;
    if (s.error) sc.errors++;
  }
  for (let i = ordered.length - 1; i >= 0; i--) {
    const s = ordered[i];
    if (s.parent) s.parent.descendants += s.descendants + 1;
  }

  const root = roots[0];
  const warnings: string[] = [...(trace.warnings ?? [])];
  return {
    traceID: trace.traceID,
    spans: ordered,
    byId,
    roots,
    start,
    duration: end - start,
    services: [...services.values()].sort((a, b) => b.count - a.count || a.name.localeCompare(b.name)),
    depth,
    errors,
    rootService: root?.service ?? '',
    rootOperation: root?.operation ?? '',
    warnings,
  };
}

/** The spans shown when the spans in `collapsed` have their subtrees hidden. */
export function visibleSpans(model: TraceModel, collapsed: Set<string>): Span[] {
  if (collapsed.size === 0) return model.spans;
  const out: Span[] = [];
  const spans = model.spans;
  for (let i = 0; i < spans.length; i++) {
    const s = spans[i];
    out.push(s);
    if (collapsed.has(s.id) && s.descendants > 0) i += s.descendants;
  }
  return out;
}

/** What the search result list shows for one trace, without building a tree. */
export interface TraceSummary {
  traceID: string;
  name: string;
  rootService: string;
  rootOperation: string;
  start: number;
  duration: number;
  spanCount: number;
  errors: number;
  services: ServiceCount[];
}

export function summarize(trace: JaegerTrace): TraceSummary {
  const spans = trace.spans ?? [];
  const ids = new Map<string, true>();
  for (const s of spans) ids.set(s.spanID, true);
  let start = Infinity;
  let end = -Infinity;
  let root: JaegerSpan | null = null;
  let errors = 0;
  const services = new Map<string, ServiceCount>();
  for (const s of spans) {
    if (s.startTime < start) start = s.startTime;
    if (s.startTime + s.duration > end) end = s.startTime + s.duration;
    const isRoot = parentId(s, ids) === null;
    if (isRoot && (!root || s.startTime < root.startTime)) root = s;
    const err = isErrorSpan(s);
    if (err) errors++;
    const name = trace.processes?.[s.processID]?.serviceName ?? 'unknown';
    let sc = services.get(name);
    if (!sc) services.set(name, (sc = { name, count: 0, errors: 0 }));
    sc.count++;
    if (err) sc.errors++;
  }
  const rootService = root ? (trace.processes?.[root.processID]?.serviceName ?? 'unknown') : '';
  const rootOperation = root?.operationName ?? '';
  return {
    traceID: trace.traceID,
    name: root ? `${rootService}: ${rootOperation}` : '(no spans)',
    rootService,
    rootOperation,
    start: Number.isFinite(start) ? start : 0,
    duration: Number.isFinite(end - start) ? end - start : 0,
    spanCount: spans.length,
    errors,
    services: [...services.values()].sort((a, b) => b.count - a.count || a.name.localeCompare(b.name)),
  };
}
