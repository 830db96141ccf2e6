import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { serviceColor } from '../colors';

/** An empty, error or loading state that tells the user what to do. */
export function Notice(props: {
  kind: 'empty' | 'error' | 'loading' | 'info';
  title: string;
  children?: ComponentChildren;
  testid?: string;
}) {
  return (
    <div
      class={`notice notice-${props.kind}`}
      role={props.kind === 'error' ? 'alert' : 'status'}
      data-testid={props.testid}
    >
      <p class="notice-title">{props.title}</p>
      {props.children && <div class="notice-body">{props.children}</div>}
    </div>
  );
}

export function ServiceDot({ name }: { name: string }) {
  return <span class="service-dot" style={{ background: serviceColor(name) }} aria-hidden="true" />;
}

export function ServiceBadge({ name, count, errors }: { name: string; count?: number; errors?: number }) {
  return (
    <span class="service-badge" data-service={name}>
      <ServiceDot name={name} />
      {name}
      {count !== undefined && <span class="service-badge-count">{count}</span>}
      {errors ? <span class="sr-only">, {errors} with errors</span> : null}
    </span>
  );
}

function copyText(text: string): Promise<void> {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  // http:// on another host: no clipboard API; fall back to a selection copy.
  const ta = document.createElement('textarea');
  ta.value = text;
  ta.setAttribute('readonly', '');
  ta.style.position = 'fixed';
  ta.style.opacity = '0';
  document.body.appendChild(ta);
  ta.select();
  const ok = document.execCommand('copy');
  ta.remove();
  return ok ? Promise.resolve() : Promise.reject(new Error('copy failed'));
}

export function CopyButton({ text, label }: { text: string; label: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  const timer = useRef<number | undefined>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);
  return (
    <button
      type="button"
      class="btn btn-small"
      title={text}
      onClick={() => {
        copyText(text).then(
          () => setState('copied'),
          () => setState('failed'),
        );
        clearTimeout(timer.current);
        timer.current = window.setTimeout(() => setState('idle'), 1500);
      }}
    >
      {state === 'copied' ? 'Copied' : state === 'failed' ? 'Copy failed' : label}
      <span class="sr-only" aria-live="polite">
        {state === 'copied' ? ' copied to the clipboard' : ''}
      </span>
    </button>
  );
}

/** Width of an element, kept up to date. */
export function useWidth<T extends HTMLElement>(initial = 800) {
  const ref = useRef<T>(null);
  const [width, setWidth] = useState(initial);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    setWidth(el.clientWidth);
    const ro = new ResizeObserver(() => setWidth(el.clientWidth));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  return [ref, width] as const;
}

export function useTitle(title: string) {
  useEffect(() => {
    document.title = title ? `${title} · Waymark` : 'Waymark';
  }, [title]);
}
