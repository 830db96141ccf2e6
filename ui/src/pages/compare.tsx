// Two traces side by side as one tree, keyed by the path of service and
// operation names from the root: what only A has, what only B has, and for
// what both have, how the span count and the summed duration changed.

import { useEffect, useMemo, useState } from 'preact/hooks';
import { diffTraces, flattenDiff, type DiffNode } from '../analysis';
import { getTrace } from '../api';
import { Notice, ServiceDot, useTitle } from '../components/common';
import { formatDuration, plural } from '../format';
import { Link, navigate } from '../router';
import { buildTrace, type TraceModel } from '../trace';

type Load = { state: 'loading' } | { state: 'error'; message: string } | { state: 'ok'; a: TraceModel; b: TraceModel };

export function ComparePage({ a, b }: { a: string; b: string }) {
  useTitle('Compare traces');
  const [load, setLoad] = useState<Load>({ state: 'loading' });
  useEffect(() => {
    if (!a || !b) return;
    const ac = new AbortController();
    setLoad({ state: 'loading' });
    const one = (id: string, side: string) =>
      getTrace(id, ac.signal).catch((e) => {
        throw new Error(`trace ${side} (${id}): ${(e as Error).message}`);
      });
    Promise.all([one(a, 'A'), one(b, 'B')]).then(
      ([ta, tb]) => setLoad({ state: 'ok', a: buildTrace(ta), b: buildTrace(tb) }),
      (e) => ac.signal.aborted || setLoad({ state: 'error', message: (e as Error).message }),
    );
    return () => ac.abort();
  }, [a, b]);

  return (
    <main class="page compare-page">
      <h1 class="page-title">Compare traces</h1>
      <CompareForm a={a} b={b} />
      {!a || !b ? (
        <Notice kind="info" title="Choose two traces">
          <p>
            Enter two trace IDs above, or tick two results on the <Link href="/search">search page</Link> and press
            Compare.
          </p>
        </Notice>
      ) : load.state === 'loading' ? (
        <Notice kind="loading" title="Loading both traces…" />
      ) : load.state === 'error' ? (
        <Notice kind="error" title="Could not load the traces" testid="api-error">
          <p>{load.message}</p>
        </Notice>
      ) : (
        <DiffView a={load.a} b={load.b} />
      )}
    </main>
  );
}

function CompareForm({ a, b }: { a: string; b: string }) {
  const [ia, setA] = useState(a);
  const [ib, setB] = useState(b);
  return (
    <form
      class="compare-form"
      onSubmit={(e) => {
        e.preventDefault();
        const x = ia.trim().toLowerCase();
        const y = ib.trim().toLowerCase();
        if (x && y) navigate(`/trace/${encodeURIComponent(x)}...${encodeURIComponent(y)}`);
      }}
    >
      <label>
        <span class="cmp-side cmp-side-a">A</span>
        <input type="text" value={ia} onInput={(e) => setA(e.currentTarget.value)} placeholder="Trace ID" spellcheck={false} aria-label="Trace A" />
      </label>
      <label>
        <span class="cmp-side cmp-side-b">B</span>
        <input type="text" value={ib} onInput={(e) => setB(e.currentTarget.value)} placeholder="Trace ID" spellcheck={false} aria-label="Trace B" />
      </label>
      <button type="submit" class="btn">
        Compare
      </button>
      <button type="button" class="btn" onClick={() => ia && ib && navigate(`/trace/${ib}...${ia}`)} disabled={!ia || !ib}>
        Swap
      </button>
    </form>
  );
}

function delta(n: number, fmt: (n: number) => string): string {
  return n === 0 ? '±0' : `${n > 0 ? '+' : '−'}${fmt(Math.abs(n))}`;
}

function DiffView({ a, b }: { a: TraceModel; b: TraceModel }) {
  const rows = useMemo(() => flattenDiff(diffTraces(a, b)), [a, b]);
  const [collapsed, setCollapsed] = useState<Set<string>>(() => new Set());
  const [changedOnly, setChangedOnly] = useState(false);
  const counts = { a: 0, b: 0, both: 0 };
  for (const r of rows) counts[r.status === 'both' ? 'both' : r.status]++;

  // hide the subtrees of collapsed nodes (rows are depth-first)
  const visible: DiffNode[] = [];
  let skipDepth = Infinity;
  for (const r of rows) {
    if (r.depth > skipDepth) continue;
    skipDepth = Infinity;
    const changed = r.status !== 'both' || r.countA !== r.countB || r.durationA !== r.durationB;
    if (!changedOnly || changed) visible.push(r);
    if (collapsed.has(r.key)) skipDepth = r.depth;
  }
  const toggle = (k: string) =>
    setCollapsed((c) => {
      const n = new Set(c);
      if (n.has(k)) n.delete(k);
      else n.add(k);
      return n;
    });

  return (
    <>
      <div class="compare-heads">
        {[
          ['A', a],
          ['B', b],
        ].map(([side, m]) => {
          const model = m as TraceModel;
          return (
            <div class={`compare-head compare-head-${(side as string).toLowerCase()}`} key={side as string}>
              <span class={`cmp-side cmp-side-${(side as string).toLowerCase()}`}>{side as string}</span>
              <Link href={`/trace/${model.traceID}`}>
                {model.rootService}: {model.rootOperation}
              </Link>{' '}
              <code class="trace-id">{model.traceID}</code>
              <span class="muted">
                {' '}
                · {formatDuration(model.duration)} · {plural(model.spans.length, 'span')}
              </span>
            </div>
          );
        })}
      </div>
      <div class="view-toolbar compare-legend">
        <span class="cmp-chip cmp-chip-a" data-testid="count-a-only">
          Only in A: {counts.a}
        </span>
        <span class="cmp-chip cmp-chip-b" data-testid="count-b-only">
          Only in B: {counts.b}
        </span>
        <span class="cmp-chip cmp-chip-both" data-testid="count-both">
          In both: {counts.both}
        </span>
        <label class="check">
          <input type="checkbox" checked={changedOnly} onChange={(e) => setChangedOnly(e.currentTarget.checked)} />
          Only changes
        </label>
        <span class="muted view-note">Spans with the same path of service and operation names are counted together; durations are summed. Δ is B − A.</span>
      </div>
      <div class="table-scroll">
        <table class="compare-table" data-testid="compare-table">
          <thead>
            <tr>
              <th scope="col">Span path</th>
              <th scope="col" class="num">Count A</th>
              <th scope="col" class="num">Count B</th>
              <th scope="col" class="num">Δ count</th>
              <th scope="col" class="num">Duration A</th>
              <th scope="col" class="num">Duration B</th>
              <th scope="col" class="num">Δ duration</th>
            </tr>
          </thead>
          <tbody>
            {visible.map((r) => {
              const dc = r.countB - r.countA;
              const dd = r.durationB - r.durationA;
              const pct = r.durationA ? ` (${dd >= 0 ? '+' : '−'}${Math.abs((dd / r.durationA) * 100).toFixed(0)}%)` : '';
              return (
                <tr
                  key={r.key}
                  class={`cmp-row cmp-${r.status}`}
                  data-status={r.status === 'a' ? 'a-only' : r.status === 'b' ? 'b-only' : 'both'}
                  data-service={r.service}
                  data-operation={r.operation}
                  data-count-delta={dc}
                  data-duration-delta={dd}
                >
                  <td>
                    <div class="cmp-name" style={{ paddingLeft: `${Math.min(r.depth, 24) * 16}px` }}>
                    {r.children.length ? (
                      <button
                        type="button"
                        class="tl-toggle link-button"
                        aria-expanded={!collapsed.has(r.key)}
                        aria-label={collapsed.has(r.key) ? 'Expand' : 'Collapse'}
                        onClick={() => toggle(r.key)}
                      >
                        {collapsed.has(r.key) ? '▸' : '▾'}
                      </button>
                    ) : (
                      <span class="tl-toggle-space" />
                    )}
                    <span class="cmp-marker" title={r.status === 'a' ? 'only in A' : r.status === 'b' ? 'only in B' : 'in both'}>
                      {r.status === 'a' ? 'A' : r.status === 'b' ? 'B' : '='}
                    </span>
                      <ServiceDot name={r.service} /> <strong>{r.service}</strong> <span class="muted">{r.operation}</span>
                    </div>
                  </td>
                  <td class="num">{r.countA || '–'}</td>
                  <td class="num">{r.countB || '–'}</td>
                  <td class={`num ${dc > 0 ? 'up' : dc < 0 ? 'down' : ''}`}>{delta(dc, String)}</td>
                  <td class="num">{r.countA ? formatDuration(r.durationA) : '–'}</td>
                  <td class="num">{r.countB ? formatDuration(r.durationB) : '–'}</td>
                  <td class={`num ${dd > 0 ? 'up' : dd < 0 ? 'down' : ''}`}>
                    {r.status === 'both' ? `${delta(dd, formatDuration)}${pct}` : '–'}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </>
  );
}
