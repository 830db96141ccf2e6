// Duration over time, one point per trace; error traces marked.

import { useMemo } from 'preact/hooks';
import { formatClock, formatDuration } from '../format';
import type { TraceSummary } from '../trace';
import { useWidth } from './common';

const H = 200;
const PAD = { left: 64, right: 16, top: 12, bottom: 28 };

function niceTicks(max: number, count: number): number[] {
  if (max <= 0) return [0];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const ticks = [];
  for (let v = 0; v < max + step - 1e-9; v += step) ticks.push(v);
  return ticks;
}

export function ScatterPlot({ traces, onOpen }: { traces: TraceSummary[]; onOpen: (id: string) => void }) {
  const [ref, width] = useWidth<HTMLDivElement>();
  const geo = useMemo(() => {
    let t0 = Infinity;
    let t1 = -Infinity;
    let dMax = 0;
    let nMax = 1;
    for (const t of traces) {
      t0 = Math.min(t0, t.start);
      t1 = Math.max(t1, t.start);
      dMax = Math.max(dMax, t.duration);
      nMax = Math.max(nMax, t.spanCount);
    }
    if (t1 - t0 < 1000) {
      t0 -= 500_000;
      t1 += 500_000;
    }
    const yTicks = niceTicks(dMax * 1.05 || 1, 4);
    const yMax = yTicks[yTicks.length - 1] || 1;
    return { t0, t1, yMax, yTicks, nMax };
  }, [traces]);

  const plotW = Math.max(100, width - PAD.left - PAD.right);
  const plotH = H - PAD.top - PAD.bottom;
  const x = (t: number) => PAD.left + ((t - geo.t0) / (geo.t1 - geo.t0)) * plotW;
  const y = (d: number) => PAD.top + plotH - (d / geo.yMax) * plotH;
  const r = (n: number) => 3.5 + 5 * Math.sqrt(n / geo.nMax);
  const xTicks = Array.from({ length: 5 }, (_, i) => geo.t0 + ((geo.t1 - geo.t0) * i) / 4);
  const spanMs = (geo.t1 - geo.t0) / 1000;

  return (
    <div class="scatter" ref={ref}>
      <svg
        width={width}
        height={H}
        role="img"
        aria-label={`Scatter plot of the duration of ${traces.length} traces over time`}
        data-testid="scatter"
      >
        {geo.yTicks.map((v) => (
          <g key={`y${v}`}>
            <line class="grid" x1={PAD.left} x2={PAD.left + plotW} y1={y(v)} y2={y(v)} />
            <text class="axis-label" x={PAD.left - 8} y={y(v) + 4} text-anchor="end">
              {formatDuration(v)}
            </text>
          </g>
        ))}
        {xTicks.map((t, i) => (
          <text
            key={`x${i}`}
            class="axis-label"
            x={x(t)}
            y={H - 8}
            text-anchor={i === 0 ? 'start' : i === 4 ? 'end' : 'middle'}
          >
            {spanMs < 10e3 ? formatClock(t / 1000, true, true) : formatClock(t / 1000, spanMs < 4 * 3600e3)}
          </text>
        ))}
        {traces.map((t) => (
          <circle
            key={t.traceID}
            class={t.errors ? 'point point-error' : 'point'}
            cx={x(t.start)}
            cy={y(t.duration)}
            r={r(t.spanCount)}
            tabIndex={-1}
            onClick={() => onOpen(t.traceID)}
          >
            <title>
              {`${t.name}\n${formatDuration(t.duration)}, ${t.spanCount} spans${t.errors ? `, ${t.errors} errors` : ''}`}
            </title>
          </circle>
        ))}
      </svg>
    </div>
  );
}
