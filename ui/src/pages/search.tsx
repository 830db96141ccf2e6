import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, getOperations, getServices, searchTraces } from '../api';
import { Notice, ServiceBadge, useTitle } from '../components/common';
import { ScatterPlot } from '../components/scatter';
import {
  LOOKBACKS,
  formatDateTime,
  formatDuration,
  formatRelative,
  fromLocalInput,
  lookbackMs,
  parseDuration,
  plural,
  toLocalInput,
} from '../format';
import { parseLogfmt } from '../logfmt';
import { Link, navigate, qs } from '../router';
import { summarize, type TraceSummary } from '../trace';
import type { Operation } from '../types';

const LAST_SERVICE = 'waymark.lastService';
const SORTS = [
  { value: 'recent', label: 'Most recent' },
  { value: 'longest', label: 'Longest first' },
  { value: 'shortest', label: 'Shortest first' },
  { value: 'spans', label: 'Most spans' },
] as const;

type Async<T> = { state: 'loading' } | { state: 'error'; message: string } | { state: 'ok'; data: T };

function errorMessage(e: unknown): string {
  return e instanceof ApiError || e instanceof Error ? e.message : String(e);
}

/** The search as it stands in the URL. */
interface Params {
  service: string;
  operation: string;
  tags: string;
  lookback: string; // a LOOKBACKS value or "custom"
  start: string; // µs, for custom
  end: string; // µs, for custom
  minDuration: string;
  maxDuration: string;
  limit: string;
}

function readParams(q: URLSearchParams): Params {
  return {
    service: q.get('service') ?? '',
    operation: q.get('operation') ?? '',
    tags: q.get('tags') ?? '',
    lookback: q.get('lookback') ?? '1h',
    start: q.get('start') ?? '',
    end: q.get('end') ?? '',
    minDuration: q.get('minDuration') ?? '',
    maxDuration: q.get('maxDuration') ?? '',
    limit: q.get('limit') ?? '20',
  };
}

function searchUrl(p: Params, sort?: string | null): string {
  const custom = p.lookback === 'custom';
  return `/search${qs({
    service: p.service,
    operation: p.operation,
    tags: p.tags.trim(),
    lookback: p.lookback,
    start: custom ? p.start : null,
    end: custom ? p.end : null,
    minDuration: p.minDuration.trim(),
    maxDuration: p.maxDuration.trim(),
    limit: p.limit,
    sort: sort && sort !== 'recent' ? sort : null,
  })}`;
}

function validate(p: Params): string | null {
  const tags = parseLogfmt(p.tags);
  if (!tags.ok) return `Tags: ${tags.error}.`;
  for (const [name, v] of [
    ['Min duration', p.minDuration],
    ['Max duration', p.maxDuration],
  ] as const) {
    if (v.trim() && parseDuration(v) === null) return `${name}: write a number and a unit, such as 1.2ms, 500us or 2s.`;
  }
  const min = parseDuration(p.minDuration);
  const max = parseDuration(p.maxDuration);
  if (min !== null && max !== null && min > max) return 'Min duration is larger than max duration.';
  const limit = Number(p.limit);
  if (!Number.isInteger(limit) || limit < 1) return 'Limit: write a whole number of at least 1.';
  if (p.lookback === 'custom') {
    const s = Number(p.start);
    const e = Number(p.end);
    if (!p.start || !p.end || !Number.isFinite(s) || !Number.isFinite(e)) return 'Custom range: set both the start and the end.';
    if (s >= e) return 'Custom range: the start must be before the end.';
  } else if (lookbackMs(p.lookback) === null) return `Lookback "${p.lookback}" is not one of the choices.`;
  return null;
}

export function SearchPage({ query }: { query: URLSearchParams }) {
  useTitle('Search');
  const [services, setServices] = useState<Async<string[]>>({ state: 'loading' });
  const [reload, setReload] = useState(0);
  useEffect(() => {
    const ac = new AbortController();
    setServices({ state: 'loading' });
    getServices(ac.signal).then(
      (data) => setServices({ state: 'ok', data }),
      (e) => ac.signal.aborted || setServices({ state: 'error', message: errorMessage(e) }),
    );
    return () => ac.abort();
  }, [reload]);

  const params = readParams(query);
  const sort = query.get('sort') ?? 'recent';
  const searchKey = searchUrl(params);

  return (
    <main class="page search-page">
      <h1 class="sr-only">Search traces</h1>
      <div class="search-layout">
        <aside class="search-side">
          {services.state === 'loading' && <Notice kind="loading" title="Loading services…" />}
          {services.state === 'error' && (
            <Notice kind="error" title="Could not load the services" testid="api-error">
              <p>The server said: {services.message}</p>
              <button class="btn" type="button" onClick={() => setReload((r) => r + 1)}>
                Try again
              </button>
            </Notice>
          )}
          {services.state === 'ok' && services.data.length === 0 && (
            <Notice kind="empty" title="No services yet" testid="no-services">
              <p>
                Waymark has not received any spans. Point your OpenTelemetry SDK or Collector at this server: OTLP/gRPC
                on port <strong>4317</strong> or OTLP/HTTP on port <strong>4318</strong> (<code>/v1/traces</code>), for
                example with <code>OTEL_EXPORTER_OTLP_ENDPOINT=http://{location.hostname}:4318</code>.
              </p>
              <p>
                For sample data run <code>waymark tracegen</code>.
              </p>
              <button class="btn" type="button" onClick={() => setReload((r) => r + 1)}>
                Check again
              </button>
            </Notice>
          )}
          {services.state === 'ok' && services.data.length > 0 && (
            <SearchForm key={searchKey} initial={params} services={services.data} sort={sort} />
          )}
        </aside>
        <section class="search-results" aria-label="Search results">
          {params.service ? (
            <Results key={searchKey} params={params} sort={sort} />
          ) : (
            services.state === 'ok' &&
            services.data.length > 0 && (
              <Notice kind="info" title="Find traces">
                <p>Choose a service and press Find Traces.</p>
              </Notice>
            )
          )}
        </section>
      </div>
    </main>
  );
}

function SearchForm({ initial, services, sort }: { initial: Params; services: string[]; sort: string }) {
  const [p, setP] = useState<Params>(() => {
    if (initial.service) return initial;
    const last = localStorage.getItem(LAST_SERVICE);
    return { ...initial, service: last && services.includes(last) ? last : services[0] };
  });
  const [ops, setOps] = useState<Async<Operation[]>>({ state: 'loading' });
  const [error, setError] = useState<string | null>(null);
  const set = (patch: Partial<Params>) => setP((cur) => ({ ...cur, ...patch }));

  useEffect(() => {
    if (!p.service) return;
    const ac = new AbortController();
    setOps({ state: 'loading' });
    getOperations(p.service, ac.signal).then(
      (data) => setOps({ state: 'ok', data }),
      (e) => ac.signal.aborted || setOps({ state: 'error', message: errorMessage(e) }),
    );
    return () => ac.abort();
  }, [p.service]);

  // One entry per operation name; the kinds it is seen with go in the label.
  const opChoices = useMemo(() => {
    if (ops.state !== 'ok') return [];
    const kinds = new Map<string, string[]>();
    for (const o of ops.data) {
      const k = kinds.get(o.name) ?? [];
      if (o.spanKind && !k.includes(o.spanKind)) k.push(o.spanKind);
      kinds.set(o.name, k);
    }
    return [...kinds.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  }, [ops]);

  const custom = p.lookback === 'custom';
  const nowMs = Date.now();

  return (
    <form
      class="search-form"
      aria-label="Search traces"
      onSubmit={(e) => {
        e.preventDefault();
        const err = validate(p);
        setError(err);
        if (err) return;
        localStorage.setItem(LAST_SERVICE, p.service);
        navigate(searchUrl(p, sort));
      }}
    >
      <div class="field">
        <label for="f-service">Service</label>
        <select
          id="f-service"
          name="service"
          value={p.service}
          onChange={(e) => set({ service: e.currentTarget.value, operation: '' })}
        >
          {!services.includes(p.service) && p.service && <option value={p.service}>{p.service} (no data)</option>}
          {services.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="f-operation">Operation</label>
        <select
          id="f-operation"
          name="operation"
          value={p.operation}
          onChange={(e) => set({ operation: e.currentTarget.value })}
          aria-describedby={ops.state === 'error' ? 'f-operation-error' : undefined}
        >
          <option value="">All operations</option>
          {p.operation && !opChoices.some(([n]) => n === p.operation) && (
            <option value={p.operation}>{p.operation}</option>
          )}
          {opChoices.map(([name, kinds]) => (
            <option key={name} value={name}>
              {kinds.length ? `${name} (${kinds.join(', ')})` : name}
            </option>
          ))}
        </select>
        {ops.state === 'error' && (
          <p class="field-error" id="f-operation-error">
            Could not load operations: {ops.message}
          </p>
        )}
      </div>
      <div class="field">
        <label for="f-tags">Tags</label>
        <input
          id="f-tags"
          name="tags"
          type="text"
          value={p.tags}
          placeholder="error=true http.status_code=500"
          spellcheck={false}
          autocomplete="off"
          aria-describedby="f-tags-help"
          onInput={(e) => set({ tags: e.currentTarget.value })}
        />
        <p class="field-help" id="f-tags-help">
          logfmt: <code>key=value</code> pairs separated by spaces; quote values with spaces.
        </p>
      </div>
      <div class="field">
        <label for="f-lookback">Lookback</label>
        <select
          id="f-lookback"
          name="lookback"
          value={p.lookback}
          onChange={(e) => {
            const v = e.currentTarget.value;
            if (v === 'custom' && (!p.start || !p.end)) {
              const back = lookbackMs(p.lookback) ?? 3600e3;
              set({ lookback: v, start: String((nowMs - back) * 1000), end: String(nowMs * 1000) });
            } else set({ lookback: v });
          }}
        >
          {LOOKBACKS.map((l) => (
            <option key={l.value} value={l.value}>
              {l.label}
            </option>
          ))}
          <option value="custom">Custom range</option>
        </select>
      </div>
      {custom && (
        <div class="field-row">
          <div class="field">
            <label for="f-start">From</label>
            <input
              id="f-start"
              type="datetime-local"
              value={p.start ? toLocalInput(Number(p.start) / 1000) : ''}
              onInput={(e) => {
                const ms = fromLocalInput(e.currentTarget.value);
                set({ start: ms === null ? '' : String(ms * 1000) });
              }}
            />
          </div>
          <div class="field">
            <label for="f-end">To</label>
            <input
              id="f-end"
              type="datetime-local"
              value={p.end ? toLocalInput(Number(p.end) / 1000) : ''}
              onInput={(e) => {
                const ms = fromLocalInput(e.currentTarget.value);
                // the end of the chosen minute
                set({ end: ms === null ? '' : String(ms * 1000 + 59_999_999) });
              }}
            />
          </div>
        </div>
      )}
      <div class="field-row">
        <div class="field">
          <label for="f-min">Min duration</label>
          <input
            id="f-min"
            name="minDuration"
            type="text"
            value={p.minDuration}
            placeholder="e.g. 1.2ms"
            spellcheck={false}
            onInput={(e) => set({ minDuration: e.currentTarget.value })}
          />
        </div>
        <div class="field">
          <label for="f-max">Max duration</label>
          <input
            id="f-max"
            name="maxDuration"
            type="text"
            value={p.maxDuration}
            placeholder="e.g. 2s"
            spellcheck={false}
            onInput={(e) => set({ maxDuration: e.currentTarget.value })}
          />
        </div>
      </div>
      <div class="field">
        <label for="f-limit">Limit results</label>
        <input
          id="f-limit"
          name="limit"
          type="number"
          min={1}
          max={1500}
          value={p.limit}
          onInput={(e) => set({ limit: e.currentTarget.value })}
        />
      </div>
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      <button class="btn btn-primary" type="submit">
        Find Traces
      </button>
    </form>
  );
}

function sortTraces(traces: TraceSummary[], sort: string): TraceSummary[] {
  const out = traces.slice();
  switch (sort) {
    case 'longest':
      return out.sort((a, b) => b.duration - a.duration);
    case 'shortest':
      return out.sort((a, b) => a.duration - b.duration);
    case 'spans':
      return out.sort((a, b) => b.spanCount - a.spanCount || b.start - a.start);
    default:
      return out.sort((a, b) => b.start - a.start);
  }
}

function Results({ params, sort }: { params: Params; sort: string }) {
  const [res, setRes] = useState<Async<TraceSummary[]>>({ state: 'loading' });
  useEffect(() => {
    const err = validate(params);
    if (err) {
      setRes({ state: 'error', message: err });
      return;
    }
    let start: number;
    let end: number;
    if (params.lookback === 'custom') {
      start = Number(params.start);
      end = Number(params.end);
    } else {
      end = Date.now() * 1000;
      start = end - lookbackMs(params.lookback)! * 1000;
    }
    const tags = parseLogfmt(params.tags);
    const ac = new AbortController();
    searchTraces(
      {
        service: params.service,
        operation: params.operation,
        tags: tags.ok ? tags.tags : {},
        start,
        end,
        minDuration: params.minDuration.trim(),
        maxDuration: params.maxDuration.trim(),
        limit: Number(params.limit),
      },
      ac.signal,
    ).then(
      (data) => setRes({ state: 'ok', data: data.map(summarize) }),
      (e) => ac.signal.aborted || setRes({ state: 'error', message: errorMessage(e) }),
    );
    return () => ac.abort();
  }, []);

  const sorted = useMemo(() => (res.state === 'ok' ? sortTraces(res.data, sort) : []), [res, sort]);
  // Up to two traces ticked for comparison; ticking a third drops the oldest.
  const [picked, setPicked] = useState<string[]>([]);
  const pick = (id: string, on: boolean) =>
    setPicked((p) => (on ? [...p.filter((x) => x !== id), id].slice(-2) : p.filter((x) => x !== id)));

  if (res.state === 'loading') return <Notice kind="loading" title="Searching…" />;
  if (res.state === 'error')
    return (
      <Notice kind="error" title="The search failed" testid="api-error">
        <p>{res.message}</p>
        <p>Check the search fields and try again.</p>
      </Notice>
    );
  if (sorted.length === 0)
    return (
      <Notice kind="empty" title="No traces found" testid="no-results">
        <p>
          No trace of <strong>{params.service}</strong> matches in this time range. Try a longer lookback, fewer tags or
          another operation.
        </p>
      </Notice>
    );

  const maxDuration = sorted.reduce((m, t) => Math.max(m, t.duration), 0) || 1;
  const now = Date.now();
  return (
    <>
      <ScatterPlot traces={sorted} onOpen={(id) => navigate(`/trace/${id}`)} />
      <div class="results-bar">
        <h2 class="results-count" data-testid="result-count">
          {plural(sorted.length, 'trace')}
        </h2>
        <label for="f-sort">Sort</label>
        <select
          id="f-sort"
          value={sort}
          onChange={(e) => navigate(searchUrl(params, e.currentTarget.value), { replace: true })}
        >
          {SORTS.map((s) => (
            <option key={s.value} value={s.value}>
              {s.label}
            </option>
          ))}
        </select>
      </div>
      <div class="compare-bar" data-testid="compare-bar">
        <span class="muted">
          {picked.length === 0
            ? 'Tick two traces to compare them.'
            : picked.length === 1
              ? 'Tick one more trace to compare.'
              : `Compare ${picked[0].slice(0, 7)} (A) with ${picked[1].slice(0, 7)} (B).`}
        </span>
        <button
          type="button"
          class="btn btn-small"
          disabled={picked.length !== 2}
          onClick={() => navigate(`/trace/${picked[0]}...${picked[1]}`)}
        >
          Compare
        </button>
        {picked.length > 0 && (
          <button type="button" class="btn btn-small" onClick={() => setPicked([])}>
            Clear
          </button>
        )}
      </div>
      <ol class="result-list" data-testid="result-list">
        {sorted.map((t) => (
          <li key={t.traceID} class="result with-pick" data-trace-id={t.traceID}>
            <input
              type="checkbox"
              class="result-pick"
              checked={picked.includes(t.traceID)}
              aria-label={`Compare ${t.name} (${t.traceID.slice(0, 7)})`}
              onChange={(e) => pick(t.traceID, e.currentTarget.checked)}
            />
            <Link href={`/trace/${t.traceID}`} class="result-link">
              <div class="result-head">
                <span class="result-name">{t.name}</span>
                <span class="result-id">{t.traceID.slice(0, 7)}</span>
                <span class="result-duration">{formatDuration(t.duration)}</span>
              </div>
              <div class="result-bar-track" aria-hidden="true">
                <div class="result-bar" style={{ width: `${(t.duration / maxDuration) * 100}%` }} />
              </div>
              <div class="result-meta">
                <span class="result-spans" data-testid="span-count">
                  {plural(t.spanCount, 'span')}
                </span>
                {t.errors > 0 && <span class="error-badge">{plural(t.errors, 'error')}</span>}
                <span class="result-services">
                  {t.services.map((s) => (
                    <ServiceBadge key={s.name} name={s.name} count={s.count} errors={s.errors} />
                  ))}
                </span>
                <span class="result-time" title={formatDateTime(t.start)}>
                  {formatRelative(t.start, now)}
                </span>
              </div>
            </Link>
          </li>
        ))}
      </ol>
    </>
  );
}
