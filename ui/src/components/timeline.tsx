// The span tree against a time axis. Only the rows in view are in the DOM,
// so a trace of tens of thousands of spans scrolls as smoothly as a small one.

import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { serviceColor } from '../colors';
import { formatDuration } from '../format';
import type { PathSegment } from '../analysis';
import type { Span, TraceModel } from '../trace';

export const ROW_HEIGHT = 26;
const OVERSCAN = 12;
const INDENT = 14;
const MAX_INDENT_LEVELS = 24;

interface Props {
  model: TraceModel;
  rows: Span[];
  collapsed: Set<string>;
  selected: Span | null;
  /** the visible time window, µs from the trace start */
  window: [number, number];
  /** critical-path segments per span id, or null when hidden */
  path: Map<string, PathSegment[]> | null;
  /** ids of the spans matching the in-trace search, or null */
  matches: Set<string> | null;
  onSelect: (span: Span | null) => void;
  onToggle: (span: Span) => void;
  onExpandAll: () => void;
  onCollapseAll: () => void;
}

export function Timeline(props: Props) {
  const { rows, collapsed, selected, path, matches, onSelect, onToggle, onExpandAll, onCollapseAll } = props;
  const [w0, w1] = props.window;
  const body = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  // Until measured, assume the body fills the window, so the very first
  // render already has the rows in view.
  const [viewHeight, setViewHeight] = useState(() => window.innerHeight);

  useEffect(() => {
    const el = body.current!;
    setViewHeight(el.clientHeight);
    const ro = new ResizeObserver(() => setViewHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const selectedRow = useMemo(() => (selected ? rows.indexOf(selected) : -1), [rows, selected]);

  // Keep the selected row in view when the selection changes.
  useLayoutEffect(() => {
    const el = body.current;
    if (!el || selectedRow < 0) return;
    const top = selectedRow * ROW_HEIGHT;
    const height = el.clientHeight || viewHeight;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + ROW_HEIGHT > el.scrollTop + height) el.scrollTop = top + ROW_HEIGHT - height;
    setScrollTop(el.scrollTop);
  }, [selected?.id]);

  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((scrollTop + viewHeight) / ROW_HEIGHT) + OVERSCAN);
  const span = w1 - w0 || 1;
  const pct = (us: number) => ((us - w0) / span) * 100;

  const onKeyDown = (e: KeyboardEvent) => {
    const at = selectedRow;
    const go = (i: number) => {
      e.preventDefault();
      if (rows.length) onSelect(rows[Math.max(0, Math.min(rows.length - 1, i))]);
    };
    switch (e.key) {
      case 'ArrowDown':
        return go(at < 0 ? 0 : at + 1);
      case 'ArrowUp':
        return go(at < 0 ? 0 : at - 1);
      case 'Home':
        return go(0);
      case 'End':
        return go(rows.length - 1);
      case 'PageDown':
        return go(at + Math.floor(viewHeight / ROW_HEIGHT));
      case 'PageUp':
        return go(at - Math.floor(viewHeight / ROW_HEIGHT));
      case 'ArrowRight':
        if (!selected) return go(0);
        e.preventDefault();
        if (selected.children.length && collapsed.has(selected.id)) onToggle(selected);
        else if (selected.children.length) onSelect(rows[at + 1]);
        return;
      case 'ArrowLeft':
        if (!selected) return;
        e.preventDefault();
        if (selected.children.length && !collapsed.has(selected.id)) onToggle(selected);
        else if (selected.parent) onSelect(selected.parent);
        return;
      case 'Enter':
      case ' ':
        if (selected && selected.children.length) {
          e.preventDefault();
          onToggle(selected);
        }
        return;
      case 'Escape':
        if (selected) {
          e.preventDefault();
          onSelect(null);
        }
        return;
    }
  };

  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const items = [];
  for (let i = first; i < last; i++) {
    const s = rows[i];
    const left = pct(s.offset);
    const width = (s.duration / span) * 100;
    const segs = path?.get(s.id);
    const color = serviceColor(s.service);
    const isCollapsed = collapsed.has(s.id);
    const labelRight = left + width < 75;
    items.push(
      <div
        key={s.index}
        id={`span-${s.id}`}
        class={`tl-row${s === selected ? ' selected' : ''}${s.error ? ' error' : ''}${segs ? ' critical' : ''}${
          matches?.has(s.id) ? ' match' : ''
        }`}
        style={{ top: `${i * ROW_HEIGHT}px` }}
        role="treeitem"
        aria-level={s.depth + 1}
        aria-expanded={s.children.length ? !isCollapsed : undefined}
        aria-selected={s === selected}
        aria-posinset={i + 1}
        aria-setsize={rows.length}
        data-span-id={s.id}
        onClick={() => onSelect(s === selected ? null : s)}
      >
        <div class="tl-name" style={{ paddingLeft: `${6 + Math.min(s.depth, MAX_INDENT_LEVELS) * INDENT}px` }}>
          {s.children.length ? (
            <span
              class="tl-toggle"
              aria-hidden="true"
              title={isCollapsed ? `Expand (${s.descendants} spans)` : 'Collapse'}
              onClick={(e) => {
                e.stopPropagation();
                onToggle(s);
              }}
            >
              {isCollapsed ? '▸' : '▾'}
            </span>
          ) : (
            <span class="tl-toggle-space" />
          )}
          <span class="tl-service-mark" style={{ background: color }} />
          {s.error && (
            <span class="tl-error-icon" title="Error">
              !
            </span>
          )}
          <span class="tl-service">{s.service}</span>
          <span class="tl-op">{s.operation}</span>
          {isCollapsed && <span class="tl-hidden-count">+{s.descendants}</span>}
          {s.raw.warnings?.length ? (
            <span class="tl-warning" title={s.raw.warnings.join('\n')}>
              ⚠
            </span>
          ) : null}
        </div>
        <div class="tl-bars">
          <div
            class="tl-bar"
            style={{ left: `${left}%`, width: `max(2px, ${width}%)`, background: color }}
          />
          {segs?.map((g, k) => (
            <div
              key={k}
              class="tl-cp"
              style={{ left: `${pct(g.start)}%`, width: `max(2px, ${((g.end - g.start) / span) * 100}%)` }}
            />
          ))}
          <span
            class="tl-bar-label"
            style={
              left + width <= 0
                ? { left: '4px' }
                : left >= 100
                  ? { right: '4px' }
                  : labelRight
                    ? { left: `calc(${left + width}% + 4px)` }
                    : left > 20
                      ? { right: `calc(${100 - left}% + 4px)` }
                      : { left: `calc(${Math.max(0, left)}% + 4px)`, color: '#fff' }
            }
          >
            {left + width <= 0 ? '◂ ' : ''}
            {formatDuration(s.duration)}
            {left >= 100 ? ' ▸' : ''}
          </span>
        </div>
      </div>,
    );
  }

  return (
    <div class="timeline">
      <div class="tl-header">
        <div class="tl-name tl-head-name">
          <span class="tl-head-label">Spans</span>
          <button type="button" class="btn btn-small" onClick={onExpandAll} disabled={collapsed.size === 0}>
            Expand all
          </button>
          <button type="button" class="btn btn-small" onClick={onCollapseAll}>
            Collapse all
          </button>
        </div>
        <div class="tl-bars tl-axis" aria-hidden="true" data-testid="timeline-axis">
          {ticks.map((t) => (
            <span
              key={t}
              class="tl-tick"
              style={t === 1 ? { right: 0 } : { left: `${t * 100}%` }}
            >
              {formatDuration(w0 + span * t)}
            </span>
          ))}
        </div>
      </div>
      <div
        class="tl-body"
        ref={body}
        tabIndex={0}
        role="tree"
        aria-label={`Spans of the trace; ${rows.length} shown. Arrow keys move, Left and Right collapse and expand.`}
        aria-activedescendant={selected && selectedRow >= first && selectedRow < last ? `span-${selected.id}` : undefined}
        onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}
        onKeyDown={onKeyDown}
        data-testid="timeline"
      >
        <div class="tl-canvas" style={{ height: `${rows.length * ROW_HEIGHT}px` }}>
          {items}
        </div>
      </div>
    </div>
  );
}
