// Open a trace from a file without storing it: Jaeger JSON (the /api/traces
// envelope, a bare trace or a list of traces) is read here; OTLP JSON is
// converted by the server's POST /api/transform, which stores nothing.
// Loaded traces live in this tab's memory only.

import { useMemo, useState } from 'preact/hooks';
import { transformOtlp } from '../api';
import { Notice, useTitle } from '../components/common';
import { formatDuration, plural } from '../format';
import { Link, navigate } from '../router';
import { buildTrace, summarize } from '../trace';
import type { JaegerTrace } from '../types';
import { TraceView } from './trace';

interface Loaded {
  trace: JaegerTrace;
  file: string;
  otlpText?: string;
}

// Kept across page changes within the tab (not across reloads).
const loaded = new Map<string, Loaded>();

function isTrace(t: unknown): t is JaegerTrace {
  const x = t as JaegerTrace;
  return !!x && typeof x === 'object' && typeof x.traceID === 'string' && Array.isArray(x.spans);
}

/** The traces in a file's text. */
export async function readTraceFile(text: string): Promise<{ traces: JaegerTrace[]; otlp: boolean }> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new Error(`the file is not JSON (${(e as Error).message})`);
  }
  const o = body as Record<string, unknown>;
  if (o && typeof o === 'object' && Array.isArray(o.resourceSpans)) {
    return { traces: await transformOtlp(text), otlp: true };
  }
  const list = Array.isArray(body) ? body : o && Array.isArray(o.data) ? o.data : isTrace(body) ? [body] : null;
  if (!list) {
    throw new Error(
      'this is neither Jaeger JSON (a trace with traceID and spans, or {"data": [traces]}) nor OTLP JSON ({"resourceSpans": [...]})',
    );
  }
  const traces = list.filter(isTrace).map((t) => ({ ...t, processes: t.processes ?? {} }));
  if (!traces.length) throw new Error('the file holds no traces');
  return { traces, otlp: false };
}

export function UploadPage({ query }: { query: URLSearchParams }) {
  const id = query.get('trace');
  const entry = id ? loaded.get(id) : undefined;
  const model = useMemo(() => (entry ? buildTrace(entry.trace) : null), [entry]);
  useTitle(model ? `${model.rootService}: ${model.rootOperation} (uploaded)` : 'Upload');
  if (entry && model)
    return (
      <TraceView
        model={model}
        trace={entry.trace}
        query={query}
        basePath="/upload"
        stored={false}
        otlpText={entry.otlpText}
      />
    );
  return <UploadForm missing={id} />;
}

function UploadForm({ missing }: { missing: string | null }) {
  const [state, setState] = useState<{ state: 'idle' | 'reading' } | { state: 'error'; message: string }>({ state: 'idle' });
  const [over, setOver] = useState(false);
  const [, setTick] = useState(0);

  const open = async (files: FileList | null) => {
    if (!files || !files.length) return;
    setState({ state: 'reading' });
    const ids: string[] = [];
    try {
      for (const f of Array.from(files)) {
        const text = await f.text();
        let result;
        try {
          result = await readTraceFile(text);
        } catch (e) {
          throw new Error(`${f.name}: ${(e as Error).message}`);
        }
        for (const t of result.traces) {
          loaded.set(t.traceID, { trace: t, file: f.name, otlpText: result.otlp ? text : undefined });
          ids.push(t.traceID);
        }
      }
    } catch (e) {
      setState({ state: 'error', message: (e as Error).message });
      return;
    }
    setState({ state: 'idle' });
    if (ids.length === 1) navigate(`/upload?trace=${encodeURIComponent(ids[0])}`);
    else setTick((t) => t + 1);
  };

  const list = [...loaded.values()];
  return (
    <main class="page upload-page">
      <h1 class="page-title">Open a trace file</h1>
      {missing && (
        <Notice kind="info" title="This uploaded trace is gone">
          <p>
            Trace <code>{missing}</code> was opened from a file; uploaded traces stay in this tab only, until it is
            reloaded. Open the file again.
          </p>
        </Notice>
      )}
      <label
        class={`dropzone${over ? ' over' : ''}`}
        data-testid="dropzone"
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          setOver(false);
          open(e.dataTransfer?.files ?? null);
        }}
      >
        <input
          type="file"
          accept=".json,application/json"
          multiple
          class="sr-only"
          data-testid="upload-input"
          onChange={(e) => {
            open(e.currentTarget.files);
            e.currentTarget.value = '';
          }}
        />
        <strong>Drop a JSON file here, or click to choose one.</strong>
        <span class="muted">
          Jaeger JSON (as downloaded from a trace page or <code>/api/traces</code>) or OTLP JSON (
          <code>{'{"resourceSpans": …}'}</code>). The trace is shown here and not stored on the server.
        </span>
      </label>
      {state.state === 'reading' && <Notice kind="loading" title="Reading…" />}
      {state.state === 'error' && (
        <Notice kind="error" title="Could not open the file" testid="upload-error">
          <p>{state.message}</p>
        </Notice>
      )}
      {list.length > 0 && (
        <section class="uploaded" aria-label="Opened traces">
          <h2>Opened in this tab</h2>
          <ul class="result-list" data-testid="uploaded-list">
            {list.map(({ trace, file }) => {
              const s = summarize(trace);
              return (
                <li key={trace.traceID} class="result">
                  <Link href={`/upload?trace=${encodeURIComponent(trace.traceID)}`} class="result-link">
                    <div class="result-head">
                      <span class="result-name">{s.name}</span>
                      <span class="result-id">{trace.traceID.slice(0, 7)}</span>
                      <span class="result-duration">{formatDuration(s.duration)}</span>
                    </div>
                    <div class="result-meta">
                      {plural(s.spanCount, 'span')} · from {file}
                    </div>
                  </Link>
                </li>
              );
            })}
          </ul>
        </section>
      )}
    </main>
  );
}
