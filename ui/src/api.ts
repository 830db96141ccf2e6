// Calls to Waymark's Jaeger-compatible query API.

import type { DependencyLink, JaegerTrace, Operation } from './types';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function request<T>(path: string, signal?: AbortSignal, onBody?: () => void): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, { headers: { Accept: 'application/json' }, signal });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, `cannot reach the Waymark server (${(e as Error).message})`);
  }
  const text = await res.text();
  onBody?.();
  let body: { data?: T; errors?: { code?: number; msg?: string }[] | null };
  try {
    body = JSON.parse(text);
  } catch {
    const snippet = text.trim().slice(0, 160);
    throw new ApiError(res.status, `HTTP ${res.status} ${res.statusText}${snippet ? `: ${snippet}` : ''}`);
  }
  const err = body.errors?.[0];
  if (!res.ok || err) throw new ApiError(err?.code ?? res.status, err?.msg ?? `HTTP ${res.status} ${res.statusText}`);
  return body.data as T;
}

export const getServices = (signal?: AbortSignal) =>
  request<string[] | null>('/api/services', signal).then((d) => (d ?? []).slice().sort());

export const getOperations = (service: string, signal?: AbortSignal) =>
  request<Operation[] | null>(`/api/operations?service=${encodeURIComponent(service)}&spanKind=`, signal).then(
    (d) => d ?? [],
  );

export interface TraceQuery {
  service: string;
  operation?: string;
  tags?: Record<string, string>;
  start: number; // µs
  end: number; // µs
  minDuration?: string;
  maxDuration?: string;
  limit: number;
}

export function searchTraces(q: TraceQuery, signal?: AbortSignal): Promise<JaegerTrace[]> {
  const p = new URLSearchParams();
  p.set('service', q.service);
  if (q.operation) p.set('operation', q.operation);
  if (q.tags && Object.keys(q.tags).length) p.set('tags', JSON.stringify(q.tags));
  p.set('start', String(Math.floor(q.start)));
  p.set('end', String(Math.ceil(q.end)));
  if (q.minDuration) p.set('minDuration', q.minDuration);
  if (q.maxDuration) p.set('maxDuration', q.maxDuration);
  p.set('limit', String(q.limit));
  return request<JaegerTrace[] | null>(`/api/traces?${p}`, signal).then((d) => d ?? []);
}

/** One trace; marks `trace-data` when the response body has arrived. */
export function getTrace(id: string, signal?: AbortSignal): Promise<JaegerTrace> {
  return request<JaegerTrace[] | null>(`/api/traces/${encodeURIComponent(id)}`, signal, () =>
    performance.mark('trace-data'),
  ).then((d) => {
    if (!d || d.length === 0) throw new ApiError(404, 'trace not found');
    return d[0];
  });
}

export const getDependencies = (endTs: number, lookback: number, signal?: AbortSignal) =>
  request<DependencyLink[] | null>(`/api/dependencies?endTs=${endTs}&lookback=${lookback}`, signal).then(
    (d) => d ?? [],
  );

/** The trace as OTLP JSON from the api_v3 gateway, as served (pretty-printed). */
export async function getOtlpTrace(id: string, signal?: AbortSignal): Promise<string> {
  let res: Response;
  try {
    res = await fetch(`/api/v3/traces/${encodeURIComponent(id)}`, { headers: { Accept: 'application/json' }, signal });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, `cannot reach the Waymark server (${(e as Error).message})`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(res.status, `HTTP ${res.status} ${res.statusText}`);
  }
  if (!res.ok) {
    const b = body as { error?: { message?: string }; errors?: { msg?: string }[] };
    throw new ApiError(res.status, b.error?.message ?? b.errors?.[0]?.msg ?? `HTTP ${res.status} ${res.statusText}`);
  }
  return JSON.stringify(body, null, 2);
}

/** OTLP JSON in, Jaeger traces out; the server stores nothing. */
export async function transformOtlp(body: string, signal?: AbortSignal): Promise<JaegerTrace[]> {
  let res: Response;
  try {
    res = await fetch('/api/transform', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body,
      signal,
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, `cannot reach the Waymark server (${(e as Error).message})`);
  }
  let parsed: { data?: JaegerTrace[] | null; errors?: { code?: number; msg?: string }[] | null };
  const text = await res.text();
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ApiError(res.status, `HTTP ${res.status} ${res.statusText}`);
  }
  const err = parsed.errors?.[0];
  if (!res.ok || err) throw new ApiError(err?.code ?? res.status, err?.msg ?? `HTTP ${res.status} ${res.statusText}`);
  return parsed.data ?? [];
}
