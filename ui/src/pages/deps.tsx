import { useEffect, useMemo, useState } from 'preact/hooks';
import { getDependencies } from '../api';
import { Notice, useTitle } from '../components/common';
import { serviceColor } from '../colors';
import { layoutDag, type PlacedEdge } from '../dag';
import { LOOKBACKS, lookbackMs, plural } from '../format';
import { Link, navigate, qs } from '../router';
import type { DependencyLink } from '../types';

type Load = { state: 'loading' } | { state: 'error'; message: string } | { state: 'ok'; links: DependencyLink[] };

const NODE_H = 40;
const CHAR_W = 7.6;

export function DependenciesPage({ query }: { query: URLSearchParams }) {
  useTitle('Dependencies');
  const lookback = lookbackMs(query.get('lookback') ?? '') ? query.get('lookback')! : '24h';
  const [load, setLoad] = useState<Load>({ state: 'loading' });
  const [reload, setReload] = useState(0);
  useEffect(() => {
    const ac = new AbortController();
    setLoad({ state: 'loading' });
    getDependencies(Date.now(), lookbackMs(lookback)!, ac.signal).then(
      (links) => setLoad({ state: 'ok', links }),
      (e) => ac.signal.aborted || setLoad({ state: 'error', message: (e as Error).message }),
    );
    return () => ac.abort();
  }, [lookback, reload]);

  return (
    <main class="page deps-page">
      <div class="deps-toolbar">
        <h1>Service dependencies</h1>
        <label for="d-lookback">Time window</label>
        <select
          id="d-lookback"
          value={lookback}
          onChange={(e) => navigate(`/dependencies${qs({ lookback: e.currentTarget.value })}`, { replace: true })}
        >
          {LOOKBACKS.map((l) => (
            <option key={l.value} value={l.value}>
              {l.label}
            </option>
          ))}
        </select>
        <button type="button" class="btn" onClick={() => setReload((r) => r + 1)}>
          Refresh
        </button>
      </div>
      {load.state === 'loading' && <Notice kind="loading" title="Loading dependencies…" />}
      {load.state === 'error' && (
        <Notice kind="error" title="Could not load the dependencies" testid="api-error">
          <p>The server said: {load.message}</p>
        </Notice>
      )}
      {load.state === 'ok' && load.links.length === 0 && (
        <Notice kind="empty" title="No dependencies in this time window" testid="no-deps">
          <p>
            Calls between services appear here once traces span more than one service. Choose a longer time window, or
            send traces over OTLP to port 4317 (gRPC) or 4318 (HTTP).
          </p>
        </Notice>
      )}
      {load.state === 'ok' && load.links.length > 0 && <DependencyGraph links={load.links} lookback={lookback} />}
    </main>
  );
}

function edgePath(e: PlacedEdge): string {
  const pts = e.points;
  if (e.self) {
    const { x, y } = pts[0];
    return `M ${x - 12} ${y} C ${x - 20} ${y - 34}, ${x + 20} ${y - 34}, ${x + 12} ${y}`;
  }
  let d = `M ${pts[0].x} ${pts[0].y}`;
  for (let i = 1; i < pts.length; i++) {
    const a = pts[i - 1];
    const b = pts[i];
    const mx = (a.x + b.x) / 2;
    d += ` C ${mx} ${a.y}, ${mx} ${b.y}, ${b.x} ${b.y}`;
  }
  return d;
}

/** A point on the last segment, near the target, where fanned-out edges are apart. */
function labelPoint(e: PlacedEdge): { x: number; y: number } {
  const pts = e.points;
  if (e.self) return { x: pts[0].x, y: pts[0].y - 30 };
  const a = pts[pts.length - 2];
  const b = pts[pts.length - 1];
  // cubic Bézier a → b with horizontal tangents, at t = 0.72
  const t = 0.72;
  const mx = (a.x + b.x) / 2;
  const u = 1 - t;
  const x = u * u * u * a.x + 3 * u * u * t * mx + 3 * u * t * t * mx + t * t * t * b.x;
  const y = u * u * u * a.y + 3 * u * u * t * a.y + 3 * u * t * t * b.y + t * t * t * b.y;
  return { x, y };
}

function DependencyGraph({ links, lookback }: { links: DependencyLink[]; lookback: string }) {
  const graph = useMemo(() => {
    const names = [...new Set(links.flatMap((l) => [l.parent, l.child]))];
    const longest = names.reduce((m, n) => Math.max(m, n.length), 0);
    const nodeWidth = Math.min(240, Math.max(110, longest * CHAR_W + 40));
    const layout = layoutDag(
      names,
      links.map((l) => ({ from: l.parent, to: l.child })),
      { nodeWidth, nodeHeight: NODE_H, layerGap: 150, rowGap: 40, margin: 40 },
    );
    const byPair = new Map(links.map((l) => [`${l.parent}\u0000${l.child}`, l]));
    return { layout, nodeWidth, byPair };
  }, [links]);
  const { layout, nodeWidth, byPair } = graph;
  const maxCalls = links.reduce((m, l) => Math.max(m, l.callCount), 1);
  const sorted = [...links].sort((a, b) => a.parent.localeCompare(b.parent) || a.child.localeCompare(b.child));
  const searchHref = (service: string) => `/search${qs({ service, lookback })}`;

  return (
    <>
      <div class="deps-graph" data-testid="deps-graph">
        <svg
          width={layout.width}
          height={layout.height}
          viewBox={`0 0 ${layout.width} ${layout.height}`}
          role="group"
          aria-label={`Dependency graph: ${plural(layout.nodes.length, 'service')}, ${plural(links.length, 'call path')}`}
        >
          <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto">
              <path d="M 0 0 L 10 5 L 0 10 z" class="arrow-head" />
            </marker>
            <marker id="arrow-error" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto">
              <path d="M 0 0 L 10 5 L 0 10 z" class="arrow-head-error" />
            </marker>
          </defs>
          {layout.edges.map((e) => {
            const link = byPair.get(`${e.from}\u0000${e.to}`)!;
            const hasErrors = (link.errorCount ?? 0) > 0;
            // the line turns red only when errors are a notable share of the calls
            const errorRate = (link.errorCount ?? 0) / Math.max(1, link.callCount);
            const lp = labelPoint(e);
            return (
              <g
                key={`${e.from}->${e.to}`}
                class={`edge${hasErrors ? ' has-errors' : ''}${errorRate >= 0.05 ? ' edge-error' : ''}`}
                data-parent={e.from}
                data-child={e.to}
              >
                <path
                  d={edgePath(e)}
                  stroke-width={1.25 + 2.5 * Math.sqrt(link.callCount / maxCalls)}
                  marker-end={errorRate >= 0.05 ? 'url(#arrow-error)' : 'url(#arrow)'}
                >
                  <title>{`${e.from} → ${e.to}: ${plural(link.callCount, 'call')}, ${plural(link.errorCount ?? 0, 'error')}`}</title>
                </path>
                <text x={lp.x} y={lp.y - 6} text-anchor="middle" class="edge-label">
                  {link.callCount.toLocaleString('en-US')}
                  {hasErrors && <tspan class="edge-label-error">{` · ${link.errorCount} err`}</tspan>}
                </text>
              </g>
            );
          })}
          {layout.nodes.map((n) => (
            <a
              key={n.id}
              href={searchHref(n.id)}
              class="node"
              data-service={n.id}
              aria-label={`${n.id}: search its traces`}
              onClick={(e: MouseEvent) => {
                if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
                e.preventDefault();
                navigate(searchHref(n.id));
              }}
            >
              <rect x={n.x} y={n.y - NODE_H / 2} width={nodeWidth} height={NODE_H} rx={8} />
              <rect x={n.x} y={n.y - NODE_H / 2} width={6} height={NODE_H} rx={3} fill={serviceColor(n.id)} />
              <text x={n.x + nodeWidth / 2 + 3} y={n.y + 5} text-anchor="middle">
                {n.id}
              </text>
            </a>
          ))}
        </svg>
      </div>
      <table class="deps-table" data-testid="deps-table">
        <caption>Calls between services</caption>
        <thead>
          <tr>
            <th scope="col">Caller</th>
            <th scope="col">Callee</th>
            <th scope="col" class="num">
              Calls
            </th>
            <th scope="col" class="num">
              Errors
            </th>
          </tr>
        </thead>
        <tbody>
          {sorted.map((l) => (
            <tr key={`${l.parent}->${l.child}`} data-parent={l.parent} data-child={l.child}>
              <td>
                <Link href={searchHref(l.parent)}>{l.parent}</Link>
              </td>
              <td>
                <Link href={searchHref(l.child)}>{l.child}</Link>
              </td>
              <td class="num">{l.callCount.toLocaleString('en-US')}</td>
              <td class={`num${l.errorCount ? ' error-text' : ''}`}>{(l.errorCount ?? 0).toLocaleString('en-US')}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
