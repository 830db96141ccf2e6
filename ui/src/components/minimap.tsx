// The whole trace in a strip above the timeline: every span as a thin line
// (time across, tree order down). Dragging across it picks the time window
// the timeline shows; the arrow keys move and resize the window.

import { useEffect, useRef, useState } from 'preact/hooks';
import { serviceColor } from '../colors';
import { formatDuration } from '../format';
import type { TraceModel } from '../trace';
import { useWidth } from './common';

const HEIGHT = 44;

export function Minimap({
  model,
  window: win,
  onWindow,
}: {
  model: TraceModel;
  window: [number, number];
  onWindow: (w: [number, number]) => void;
}) {
  const [wrap, width] = useWidth<HTMLDivElement>(1000);
  const canvas = useRef<HTMLCanvasElement>(null);
  const [drag, setDrag] = useState<{ from: number; to: number } | null>(null);
  const total = model.duration || 1;

  useEffect(() => {
    const c = canvas.current;
    if (!c || width <= 0) return;
    const ratio = globalThis.devicePixelRatio || 1;
    c.width = Math.round(width * ratio);
    c.height = Math.round(HEIGHT * ratio);
    const ctx = c.getContext('2d');
    if (!ctx) return;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, HEIGHT);
    const spans = model.spans;
    const n = spans.length || 1;
    const rowH = Math.max(HEIGHT / n, 0.5);
    let color = '';
    for (let i = 0; i < spans.length; i++) {
      const s = spans[i];
      const c2 = s.error ? '#d92d20' : serviceColor(s.service);
      if (c2 !== color) ctx.fillStyle = color = c2;
      ctx.fillRect((s.offset / total) * width, (i / n) * HEIGHT, Math.max(1, (s.duration / total) * width), Math.max(1, rowH));
    }
  }, [model, width]);

  const toUs = (clientX: number) => {
    const r = wrap.current!.getBoundingClientRect();
    return Math.max(0, Math.min(1, (clientX - r.left) / r.width)) * total;
  };
  const full = win[0] <= 0 && win[1] >= model.duration;
  const shown = drag ? [Math.min(drag.from, drag.to), Math.max(drag.from, drag.to)] : win;
  const x = (us: number) => `${(us / total) * 100}%`;

  const onKeyDown = (e: KeyboardEvent) => {
    const len = win[1] - win[0];
    const stepUs = len * 0.1;
    let next: [number, number] | null = null;
    if (e.key === 'ArrowLeft') next = [Math.max(0, win[0] - stepUs), Math.max(0, win[0] - stepUs) + len];
    else if (e.key === 'ArrowRight') next = [Math.min(total, win[1] + stepUs) - len, Math.min(total, win[1] + stepUs)];
    else if (e.key === '+' || e.key === '=') next = [win[0] + len * 0.1, win[1] - len * 0.1];
    else if (e.key === '-') next = [Math.max(0, win[0] - len * 0.125), Math.min(total, win[1] + len * 0.125)];
    else if (e.key === 'Escape' || e.key === '0') next = [0, model.duration];
    if (next) {
      e.preventDefault();
      onWindow(next);
    }
  };

  return (
    <div class="minimap-row">
      <div
        class="minimap"
        ref={wrap}
        tabIndex={0}
        role="slider"
        aria-label="Visible time window: drag to choose; arrow keys move it, + and - zoom, 0 shows everything"
        aria-valuemin={0}
        aria-valuemax={Math.round(total)}
        aria-valuenow={Math.round(win[0])}
        aria-valuetext={`${formatDuration(win[0])} to ${formatDuration(win[1])}`}
        data-testid="minimap"
        onKeyDown={onKeyDown}
        onPointerDown={(e) => {
          if (e.button !== 0) return;
          (e.currentTarget as HTMLElement).setPointerCapture(e.pointerId);
          const at = toUs(e.clientX);
          setDrag({ from: at, to: at });
        }}
        onPointerMove={(e) => drag && setDrag({ from: drag.from, to: toUs(e.clientX) })}
        onPointerUp={(e) => {
          if (!drag) return;
          const a = Math.min(drag.from, toUs(e.clientX));
          const b = Math.max(drag.from, toUs(e.clientX));
          setDrag(null);
          // a click (no real drag) shows everything again
          if ((b - a) / total < 0.005) onWindow([0, model.duration]);
          else onWindow([a, b]);
        }}
        onPointerCancel={() => setDrag(null)}
      >
        <canvas ref={canvas} style={{ width: '100%', height: `${HEIGHT}px` }} aria-hidden="true" />
        {(!full || drag) && (
          <>
            <div class="minimap-shade" style={{ left: 0, width: x(shown[0]) }} />
            <div class="minimap-shade" style={{ left: x(shown[1]), right: 0 }} />
            <div class="minimap-window" style={{ left: x(shown[0]), width: x(shown[1] - shown[0]) }} />
          </>
        )}
      </div>
      <button type="button" class="btn btn-small" disabled={full} onClick={() => onWindow([0, model.duration])}>
        Reset zoom
      </button>
    </div>
  );
}
