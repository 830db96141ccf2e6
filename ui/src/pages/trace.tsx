import { useCallback, useEffect, useLayoutEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, getTrace } from '../api';
import { CopyButton, Notice, ServiceBadge, useTitle } from '../components/common';
import { SpanDetail } from '../components/detail';
import { Timeline } from '../components/timeline';
import { formatDateTime, formatDuration } from '../format';
import { Link, navigate } from '../router';
import { buildTrace, visibleSpans, type Span, type TraceModel } from '../trace';
import type { JaegerTrace } from '../types';

type Load = { state: 'loading' } | { state: 'error'; status: number; message: string } | { state: 'ok'; trace: JaegerTrace };

export function TracePage({ id, spanParam }: { id: string; spanParam: string | null }) {
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
  return <TraceView model={model!} spanParam={spanParam} />;
}

function TraceView({ model, spanParam }: { model: TraceModel; spanParam: string | null }) {
  const selected = (spanParam && model.byId.get(spanParam)) || null;
  const [collapsed, setCollapsed] = useState<Set<string>>(() => new Set());

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
  const rows = useMemo(() => visibleSpans(model, effectiveCollapsed), [model, effectiveCollapsed]);

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

  const select = useCallback(
    (s: Span | null) => {
      navigate(`/trace/${model.traceID}${s ? `?span=${s.id}` : ''}`, { replace: true });
    },
    [model],
  );
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

  return (
    <main class="page trace-page">
      <TraceHeader model={model} />
      {spanParam && !selected && (
        <p class="inline-warning" role="status">
          Span <code>{spanParam}</code> is not in this trace.
        </p>
      )}
      <div class={`trace-body${selected ? ' with-detail' : ''}`}>
        <Timeline
          model={model}
          rows={rows}
          collapsed={effectiveCollapsed}
          selected={selected}
          onSelect={select}
          onToggle={toggle}
          onExpandAll={() => setCollapsed(new Set())}
          onCollapseAll={collapseAll}
        />
        {selected && <SpanDetail model={model} span={selected} onSelect={select} onClose={() => select(null)} />}
      </div>
    </main>
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
          <dd>{formatDateTime(model.start)}</dd>
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
