import { useCallback, useEffect, useLayoutEffect, useMemo, useState } from 'preact/hooks';
import { criticalPath, pathBySpan, searchSpans } from '../analysis';
import { ApiError, getTrace } from '../api';
import { CopyButton, Notice, ServiceBadge, useTitle } from '../components/common';
import { SpanDetail } from '../components/detail';
import { Minimap } from '../components/minimap';
import { Timeline } from '../components/timeline';
import { Flamegraph, JsonView, StatsView } from '../components/views';
import { formatDateTime, formatDuration, plural } from '../format';
import { Link, navigate } from '../router';
import { buildTrace, visibleSpans, type Span, type TraceModel } from '../trace';
import type { JaegerTrace } from '../types';

type Load = { state: 'loading' } | { state: 'error'; status: number; message: string } | { state: 'ok'; trace: JaegerTrace };

export function TracePage({ id, query }: { id: string; query: URLSearchParams }) {
  const [load, setLoad] = useState<Load>({ state: 'loading' });
  useEffect(() => {
    const ac = new AbortController();
    performance.clearMarks('trace-data');
    performance.clearMarks('trace-rendered');
    performance.clearMarks('trace-painted');
    performance.clearMeasures('trace-render');
    performance.clearMeasures('trace-paint');
    getTrace(id, ac.signal).then(
      (trace) => setLoad({ state: 'ok', trace }),
      (e) => {
        if (ac.signal.aborted) return;
        setLoad({ state: 'error', status: e instanceof ApiError ? e.status : 0, message: (e as Error).message });
      },
    );
    return () => ac.abort();
  }, [id]);

  const model = useMemo(() => (load.state === 'ok' ? buildTrace(load.trace) : null), [load]);
  useTitle(model ? `${model.rootService}: ${model.rootOperation}` : `Trace ${id.slice(0, 7)}`);

  if (load.state === 'loading')
    return (
      <main class="page">
        <Notice kind="loading" title="Loading trace…" />
      </main>
    );
  if (load.state === 'error') {
    const notFound = load.status === 404;
    return (
      <main class="page">
        {notFound ? (
          <Notice kind="empty" title="Trace not found" testid="trace-not-found">
            <p>
              No trace with ID <code>{id}</code> is stored. It may be older than the retention period, its spans may
              not have arrived yet, or the ID may be mistyped.
            </p>
            <p>
              <Link href="/search">Search for traces</Link> instead.
            </p>
          </Notice>
        ) : (
          <Notice kind="error" title="Could not load the trace" testid="api-error">
            <p>The server said: {load.message}</p>
            <p>
              Check the trace ID <code>{id}</code>, or <Link href="/search">search for traces</Link>.
            </p>
          </Notice>
        )}
      </main>
    );
  }
  return <TraceView model={model!} trace={load.trace} query={query} basePath={`/trace/${model!.traceID}`} stored />;
}

export const VIEWS = [
  { value: 'timeline', label: 'Timeline' },
  { value: 'stats', label: 'Statistics' },
  { value: 'flamegraph', label: 'Flamegraph' },
  { value: 'json', label: 'JSON' },
] as const;
type View = (typeof VIEWS)[number]['value'];

export interface TraceViewProps {
  model: TraceModel;
  trace: JaegerTrace;
  query: URLSearchParams;
  /** the page's path; the view state goes in its query string */
  basePath: string;
  /** stored on the server (OTLP JSON available from /api/v3), or uploaded */
  stored: boolean;
  /** for an uploaded OTLP file: its text */
  otlpText?: string;
  /** query parameters of the page that are not the trace view's (upload: trace) */
  keep?: Record<string, string>;
}

export function TraceView(props: TraceViewProps) {
  const { model, query, basePath } = props;
  const viewParam = query.get('view') ?? 'timeline';
  const view: View = VIEWS.some((v) => v.value === viewParam) ? (viewParam as View) : 'timeline';

  /** Replaces some query parameters, keeping the rest. */
  const go = useCallback(
    (patch: Record<string, string | null>, replace = true) => {
      const p = new URLSearchParams(location.search);
      for (const [k, v] of Object.entries(patch)) {
        if (v === null || v === '') p.delete(k);
        else p.set(k, v);
      }
      const s = p.toString();
      navigate(`${basePath}${s ? `?${s}` : ''}`, { replace });
    },
    [basePath],
  );

  useLayoutEffect(() => {
    // The header and the first rows are in the DOM now.
    if (performance.getEntriesByName('trace-data').length && !performance.getEntriesByName('trace-rendered').length) {
      performance.mark('trace-rendered');
      performance.measure('trace-render', 'trace-data', 'trace-rendered');
      // ...and on screen once the frame after them has been produced
      requestAnimationFrame(() =>
        setTimeout(() => {
          performance.mark('trace-painted');
          performance.measure('trace-paint', 'trace-data', 'trace-painted');
        }),
      );
    }
  }, [model]);

  return (
    <main class="page trace-page">
      <TraceHeader model={model} />
      <div class="view-tabs" role="tablist" aria-label="Trace views">
        {VIEWS.map((v) => (
          <button
            key={v.value}
            type="button"
            role="tab"
            class="view-tab"
            aria-selected={v.value === view}
            data-view={v.value}
            onClick={() => go({ view: v.value === 'timeline' ? null : v.value, zoom: null }, false)}
          >
            {v.label}
          </button>
        ))}
      </div>
      {view === 'timeline' && <TimelineView {...props} go={go} />}
      {view === 'stats' && <StatsView model={model} />}
      {view === 'flamegraph' && (
        <Flamegraph
          model={model}
          zoom={model.byId.get(query.get('zoom') ?? '') ?? null}
          onZoom={(s) => go({ zoom: s ? s.id : null })}
          onShow={(s) => go({ view: null, zoom: null, span: s.id }, false)}
        />
      )}
      {view === 'json' && (
        <JsonView trace={props.trace} stored={props.stored} otlpText={props.otlpText} />
      )}
    </main>
  );
}

function TimelineView({
  model,
  query,
  go,
}: TraceViewProps & { go: (patch: Record<string, string | null>, replace?: boolean) => void }) {
  const spanParam = query.get('span');
  const find = query.get('find') ?? '';
  const onlyMatches = query.get('only') === '1';
  const showPath = query.get('cp') !== '0';
  const selected = (spanParam && model.byId.get(spanParam)) || null;
  const [collapsed, setCollapsed] = useState<Set<string>>(() => new Set());
  const [win, setWin] = useState<[number, number]>(() => [0, model.duration]);

  const matches = useMemo(() => (find.trim() ? searchSpans(model, find) : null), [model, find]);
  const path = useMemo(() => (showPath ? pathBySpan(criticalPath(model)) : null), [model, showPath]);

  // A selected span is never hidden inside a collapsed parent.
  const effectiveCollapsed = useMemo(() => {
    if (!selected || collapsed.size === 0) return collapsed;
    let p = selected.parent;
    let copy: Set<string> | null = null;
    while (p) {
      if (collapsed.has(p.id)) (copy ??= new Set(collapsed)).delete(p.id);
      p = p.parent;
    }
    return copy ?? collapsed;
  }, [collapsed, selected]);
  const rows = useMemo(
    () =>
      matches && onlyMatches ? model.spans.filter((s) => matches.has(s.id)) : visibleSpans(model, effectiveCollapsed),
    [model, effectiveCollapsed, matches, onlyMatches],
  );

  const select = useCallback((s: Span | null) => go({ span: s ? s.id : null }), [go]);
  const toggle = useCallback(
    (s: Span) =>
      setCollapsed((c) => {
        const next = new Set(effectiveCollapsed === c ? c : effectiveCollapsed);
        if (next.has(s.id)) next.delete(s.id);
        else next.add(s.id);
        return next;
      }),
    [effectiveCollapsed],
  );
  const collapseAll = useCallback(() => {
    const all = new Set<string>();
    for (const s of model.spans) if (s.children.length) all.add(s.id);
    if (selected) select(null);
    setCollapsed(all);
  }, [model, selected]);

  /** Selects the next (or previous) match after the selection, in tree order. */
  const step = (dir: 1 | -1) => {
    if (!matches || matches.size === 0) return;
    const list = model.spans;
    const n = list.length;
    let i = selected ? selected.index : dir === 1 ? -1 : n;
    for (let k = 0; k < n; k++) {
      i = (i + dir + n) % n;
      if (matches.has(list[i].id)) {
        setCollapsed(new Set());
        return select(list[i]);
      }
    }
  };

  return (
    <>
      <div class="trace-toolbar">
        <div class="trace-find" role="search">
          <label class="sr-only" for="trace-find">
            Find in trace
          </label>
          <input
            id="trace-find"
            type="search"
            placeholder="Find: service, operation, tag key or value, key=value"
            value={find}
            spellcheck={false}
            autocomplete="off"
            onInput={(e) => go({ find: e.currentTarget.value })}
            onKeyDown={(e) => {
              if (e.key === 'Enter') {
                e.preventDefault();
                step(e.shiftKey ? -1 : 1);
              }
            }}
          />
          {matches && (
            <span class="find-count" data-testid="find-count" aria-live="polite">
              {plural(matches.size, 'match', 'matches')}
            </span>
          )}
          {matches && (
            <>
              <button type="button" class="btn btn-small" onClick={() => step(-1)} disabled={!matches.size} aria-label="Previous match">
                ↑
              </button>
              <button type="button" class="btn btn-small" onClick={() => step(1)} disabled={!matches.size} aria-label="Next match">
                ↓
              </button>
              <label class="check">
                <input type="checkbox" checked={onlyMatches} onChange={(e) => go({ only: e.currentTarget.checked ? '1' : null })} />
                Only matches
              </label>
            </>
          )}
        </div>
        <label class="check" title="The chain of spans that determines when the trace ends">
          <input type="checkbox" checked={showPath} onChange={(e) => go({ cp: e.currentTarget.checked ? null : '0' })} />
          <span class="cp-swatch" aria-hidden="true" /> Critical path
        </label>
      </div>
      {spanParam && !selected && (
        <p class="inline-warning" role="status">
          Span <code>{spanParam}</code> is not in this trace.
        </p>
      )}
      <Minimap model={model} window={win} onWindow={setWin} />
      <div class={`trace-body${selected ? ' with-detail' : ''}`}>
        <Timeline
          model={model}
          rows={rows}
          collapsed={effectiveCollapsed}
          selected={selected}
          window={win}
          path={path}
          matches={matches}
          onSelect={select}
          onToggle={toggle}
          onExpandAll={() => setCollapsed(new Set())}
          onCollapseAll={collapseAll}
        />
        {selected && <SpanDetail model={model} span={selected} onSelect={select} onClose={() => select(null)} />}
      </div>
    </>
  );
}

function TraceHeader({ model }: { model: TraceModel }) {
  return (
    <header class="trace-header" data-testid="trace-header">
      <div class="trace-title-row">
        <h1 class="trace-title">
          <span class="trace-name">
            {model.rootService ? `${model.rootService}: ${model.rootOperation}` : 'Trace without spans'}
          </span>{' '}
          <code class="trace-id">{model.traceID}</code>
        </h1>
        <CopyButton text={model.traceID} label="Copy trace ID" />
      </div>
      <dl class="trace-stats">
        <div>
          <dt>Start</dt>
          <dd data-testid="trace-start">{formatDateTime(model.start)}</dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd data-testid="trace-duration">{formatDuration(model.duration)}</dd>
        </div>
        <div>
          <dt>Services</dt>
          <dd data-testid="trace-services">{model.services.length}</dd>
        </div>
        <div>
          <dt>Depth</dt>
          <dd data-testid="trace-depth">{model.depth}</dd>
        </div>
        <div>
          <dt>Total spans</dt>
          <dd data-testid="trace-span-count">{model.spans.length}</dd>
        </div>
        <div>
          <dt>Errors</dt>
          <dd data-testid="trace-errors" class={model.errors ? 'error-text' : undefined}>
            {model.errors}
          </dd>
        </div>
      </dl>
      <div class="trace-services" aria-label="Spans per service">
        {model.services.map((s) => (
          <ServiceBadge key={s.name} name={s.name} count={s.count} errors={s.errors} />
        ))}
      </div>
      {model.warnings.length > 0 && (
        <ul class="inline-warning">
          {model.warnings.map((w, i) => (
            <li key={i}>{w}</li>
          ))}
        </ul>
      )}
    </header>
  );
}
