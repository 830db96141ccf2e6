// The trace page's other views: statistics per service and operation, a
// flamegraph (icicle) of the span tree, and the raw JSON.

import { useEffect, useMemo, useState } from 'preact/hooks';
import { icicleRows, selfTimes, spanStats, type StatRow } from '../analysis';
import { getOtlpTrace } from '../api';
import { serviceColor } from '../colors';
import { formatDuration, plural } from '../format';
import type { Span, TraceModel } from '../trace';
import type { JaegerTrace } from '../types';
import { Notice, ServiceDot, useWidth } from './common';

// ---- Statistics -----------------------------------------------------------

const COLUMNS: { key: keyof StatRow; label: string; num: boolean; duration?: boolean }[] = [
  { key: 'service', label: 'Service', num: false },
  { key: 'operation', label: 'Operation', num: false },
  { key: 'count', label: 'Count', num: true },
  { key: 'errors', label: 'Errors', num: true },
  { key: 'total', label: 'Total', num: true, duration: true },
  { key: 'avg', label: 'Avg', num: true, duration: true },
  { key: 'min', label: 'Min', num: true, duration: true },
  { key: 'max', label: 'Max', num: true, duration: true },
  { key: 'self', label: 'Self time', num: true, duration: true },
  { key: 'selfShare', label: 'Self %', num: true },
];

export function StatsView({ model }: { model: TraceModel }) {
  const [by, setBy] = useState<'operation' | 'service'>('operation');
  const [sort, setSort] = useState<{ key: keyof StatRow; desc: boolean }>({ key: 'self', desc: true });
  const rows = useMemo(() => spanStats(model, by), [model, by]);
  const sorted = useMemo(() => {
    const k = sort.key;
    const out = rows.slice().sort((a, b) => {
      const x = a[k];
      const y = b[k];
      const c = typeof x === 'number' ? x - (y as number) : String(x).localeCompare(String(y));
      return c || a.key.localeCompare(b.key);
    });
    return sort.desc ? out.reverse() : out;
  }, [rows, sort]);
  const cols = by === 'service' ? COLUMNS.filter((c) => c.key !== 'operation') : COLUMNS;
  const totalSelf = rows.reduce((s, r) => s + r.self, 0);

  return (
    <section class="view-panel stats-view" aria-label="Span statistics">
      <div class="view-toolbar">
        <span class="muted">Group by</span>
        <div class="segmented" role="group" aria-label="Group by">
          {(['operation', 'service'] as const).map((g) => (
            <button key={g} type="button" class="btn btn-small" aria-pressed={by === g} onClick={() => setBy(g)}>
              {g === 'operation' ? 'Service and operation' : 'Service'}
            </button>
          ))}
        </div>
        <span class="muted view-note">
          Self time: a span's duration minus the time covered by its children. Click a heading to sort.
        </span>
      </div>
      <div class="table-scroll">
        <table class="stats-table" data-testid="stats-table">
          <thead>
            <tr>
              {cols.map((c) => (
                <th
                  key={c.key}
                  scope="col"
                  class={c.num ? 'num' : undefined}
                  aria-sort={sort.key === c.key ? (sort.desc ? 'descending' : 'ascending') : undefined}
                >
                  <button
                    type="button"
                    class="sort-button"
                    data-col={c.key}
                    onClick={() =>
                      setSort((s) => (s.key === c.key ? { key: c.key, desc: !s.desc } : { key: c.key, desc: c.num }))
                    }
                  >
                    {c.label}
                    <span aria-hidden="true">{sort.key === c.key ? (sort.desc ? ' ▾' : ' ▴') : ''}</span>
                  </button>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {sorted.map((r) => (
              <tr key={r.key} data-service={r.service} data-operation={r.operation}>
                {cols.map((c) => {
                  const v = r[c.key];
                  if (c.key === 'service')
                    return (
                      <td key={c.key}>
                        <ServiceDot name={r.service} /> {r.service}
                      </td>
                    );
                  if (!c.num) return <td key={c.key}>{v}</td>;
                  const n = v as number;
                  return (
                    <td key={c.key} class={`num${c.key === 'errors' && n ? ' error-text' : ''}`} data-col={c.key} data-value={n}>
                      {c.duration ? formatDuration(n) : c.key === 'selfShare' ? `${(n * 100).toFixed(1)}%` : n}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
          <tfoot>
            <tr>
              <th scope="row" colSpan={by === 'service' ? 1 : 2}>
                All spans
              </th>
              <td class="num" data-testid="stats-total-count">
                {model.spans.length}
              </td>
              <td class="num">{model.errors}</td>
              <td colSpan={4} />
              <td class="num">{formatDuration(totalSelf)}</td>
              <td />
            </tr>
          </tfoot>
        </table>
      </div>
    </section>
  );
}

// ---- Flamegraph -----------------------------------------------------------

const ROW = 22;

/**
 * An icicle chart: one rectangle per span, time across, depth down. Clicking
 * a span zooms to it: its interval fills the width, its subtree is drawn
 * below it and its ancestors above; everything else is left out.
 */
export function Flamegraph({
  model,
  zoom,
  onZoom,
  onShow,
}: {
  model: TraceModel;
  zoom: Span | null;
  onZoom: (s: Span | null) => void;
  onShow: (s: Span) => void;
}) {
  const [wrap, width] = useWidth<HTMLDivElement>(1000);
  const self = useMemo(() => selfTimes(model), [model]);
  const w0 = zoom ? zoom.offset : 0;
  const len = (zoom ? zoom.duration : model.duration) || 1;
  const layout = useMemo(() => icicleRows(model, zoom), [model, zoom]);
  const shown: Span[] = [];
  const ancestors = zoom ? zoom.depth : 0;
  if (zoom) {
    for (let p = zoom.parent; p; p = p.parent) shown.push(p);
    shown.reverse();
    for (let i = zoom.index; i <= zoom.index + zoom.descendants; i++) shown.push(model.spans[i]);
  } else shown.push(...model.spans);
  // ancestors one row each above the zoomed span; the rest in lanes
  const yOf = (s: Span) => (zoom && s.depth < zoom.depth ? s.depth : ancestors + layout.row[s.index]) * ROW;
  const height = (ancestors + layout.rows) * ROW;
  const W = Math.max(width, 100);

  return (
    <section class="view-panel flame-view" aria-label="Flamegraph">
      <div class="view-toolbar">
        {zoom ? (
          <>
            <button type="button" class="btn btn-small" onClick={() => onZoom(zoom.parent)}>
              Zoom out
            </button>
            <button type="button" class="btn btn-small" onClick={() => onZoom(null)}>
              Reset zoom
            </button>
            <span data-testid="flame-zoom">
              {zoom.service}: {zoom.operation} ({formatDuration(zoom.duration)})
            </span>
            <button type="button" class="link-button" onClick={() => onShow(zoom)}>
              Show in timeline
            </button>
          </>
        ) : (
          <span class="muted">
            Click a span to zoom to it. Width is time; each rectangle is one span, with its children below it
            (concurrent children side by side in lanes).
          </span>
        )}
        <span class="muted view-note">{plural(shown.length, 'span')} shown</span>
      </div>
      <div class="flame-scroll" ref={wrap}>
        <svg width={W} height={height} data-testid="flamegraph" role="img" aria-label="Flamegraph of the span tree">
          {shown.map((s) => {
            const ancestor = zoom !== null && s.depth < zoom.depth;
            const x0 = ancestor ? 0 : ((s.offset - w0) / len) * W;
            const x1 = ancestor ? W : ((s.offset + s.duration - w0) / len) * W;
            const x = Math.max(0, x0);
            const w = Math.max(0.5, Math.min(W, x1) - x);
            const label = `${s.service}: ${s.operation}`;
            return (
              <g
                key={s.id + s.index}
                class={`flame-node${ancestor ? ' flame-ancestor' : ''}${s.error ? ' flame-error' : ''}`}
                data-span-id={s.id}
                onClick={() => onZoom(s === zoom ? s.parent : s)}
              >
                <rect
                  class="flame-rect"
                  x={x}
                  y={yOf(s)}
                  width={w}
                  height={ROW - 2}
                  rx={2}
                  fill={serviceColor(s.service)}
                  data-span-id={s.id}
                />
                {w > 40 && (
                  <text x={x + 4} y={yOf(s) + 14} class="flame-label">
                    {fit(label, w - 8)}
                  </text>
                )}
                <title>
                  {label}
                  {'\n'}
                  {formatDuration(s.duration)} (self {formatDuration(self[s.index])})
                </title>
              </g>
            );
          })}
        </svg>
      </div>
    </section>
  );
}

/** Cuts a label to roughly fit a width (7 px per character). */
function fit(text: string, px: number): string {
  const n = Math.floor(px / 7);
  return text.length <= n ? text : n > 1 ? `${text.slice(0, n - 1)}…` : '';
}

// ---- Raw JSON -------------------------------------------------------------

const SHOW_LIMIT = 1_000_000; // characters shown on the page; the download has all

function download(name: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function JsonView({ trace, stored, otlpText }: { trace: JaegerTrace; stored: boolean; otlpText?: string }) {
  const [format, setFormat] = useState<'jaeger' | 'otlp'>('jaeger');
  const [otlp, setOtlp] = useState<{ state: 'idle' | 'loading' } | { state: 'error'; message: string } | { state: 'ok'; text: string }>(
    otlpText ? { state: 'ok', text: otlpText } : { state: 'idle' },
  );
  const jaeger = useMemo(() => JSON.stringify({ data: [trace] }, null, 2), [trace]);
  const otlpAvailable = stored || otlpText !== undefined;

  useEffect(() => {
    if (format !== 'otlp' || otlp.state !== 'idle' || !stored) return;
    const ac = new AbortController();
    setOtlp({ state: 'loading' });
    getOtlpTrace(trace.traceID, ac.signal).then(
      (text) => setOtlp({ state: 'ok', text }),
      (e) => ac.signal.aborted || setOtlp({ state: 'error', message: (e as Error).message }),
    );
    return () => ac.abort();
  }, [format]);

  const text = format === 'jaeger' ? jaeger : otlp.state === 'ok' ? otlp.text : null;
  const file = format === 'jaeger' ? `trace-${trace.traceID}.json` : `trace-${trace.traceID}.otlp.json`;
  return (
    <section class="view-panel json-view" aria-label="Raw JSON">
      <div class="view-toolbar">
        <div class="segmented" role="group" aria-label="Format">
          <button type="button" class="btn btn-small" aria-pressed={format === 'jaeger'} onClick={() => setFormat('jaeger')}>
            Jaeger JSON
          </button>
          <button
            type="button"
            class="btn btn-small"
            aria-pressed={format === 'otlp'}
            disabled={!otlpAvailable}
            title={otlpAvailable ? undefined : 'An uploaded Jaeger file has no OTLP form'}
            onClick={() => setFormat('otlp')}
          >
            OTLP JSON
          </button>
        </div>
        <button
          type="button"
          class="btn btn-small"
          disabled={text === null}
          data-testid="json-download"
          onClick={() => text !== null && download(file, text)}
        >
          Download {file}
        </button>
        {text !== null && <span class="muted view-note">{(text.length / 1024).toFixed(1)} kB</span>}
      </div>
      {format === 'otlp' && otlp.state === 'loading' && <Notice kind="loading" title="Loading OTLP JSON…" />}
      {format === 'otlp' && otlp.state === 'error' && (
        <Notice kind="error" title="Could not load the OTLP JSON" testid="api-error">
          <p>The server said: {otlp.message}</p>
        </Notice>
      )}
      {text !== null && (
        <pre class="json-text" data-testid="json-text" data-format={format} tabIndex={0}>
          {text.length > SHOW_LIMIT ? `${text.slice(0, SHOW_LIMIT)}\n… (cut at 1 MB: download for the rest)` : text}
        </pre>
      )}
    </section>
  );
}
