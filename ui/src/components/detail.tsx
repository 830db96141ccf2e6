// What one span carries: tags, process, logs, references, warnings.

import type { ComponentChildren } from 'preact';
import { formatDateTime, formatDuration, formatValue } from '../format';
import { Link } from '../router';
import type { Span, TraceModel } from '../trace';
import type { KeyValue } from '../types';
import { CopyButton, ServiceBadge } from './common';

function KeyValueTable({ items, label }: { items: KeyValue[]; label: string }) {
  if (items.length === 0) return <p class="muted">None.</p>;
  return (
    <table class="kv" aria-label={label}>
      <tbody>
        {items.map((kv, i) => (
          <tr key={`${kv.key}${i}`} data-key={kv.key}>
            <th scope="row">{kv.key}</th>
            <td class={`kv-${kv.type}`}>{formatValue(kv.value)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Section(props: { title: string; count?: number; children: ComponentChildren; open?: boolean; testid?: string }) {
  return (
    <details class="detail-section" open={props.open ?? true} data-testid={props.testid}>
      <summary>
        {props.title}
        {props.count !== undefined && <span class="count">{props.count}</span>}
      </summary>
      <div class="detail-section-body">{props.children}</div>
    </details>
  );
}

export function SpanDetail({
  model,
  span,
  onSelect,
  onClose,
}: {
  model: TraceModel;
  span: Span;
  onSelect: (s: Span) => void;
  onClose: () => void;
}) {
  const raw = span.raw;
  const tags = raw.tags ?? [];
  const logs = raw.logs ?? [];
  const refs = raw.references ?? [];
  const warnings = raw.warnings ?? [];
  const status = tags.find((t) => t.key === 'otel.status_description');
  return (
    <aside class="detail" aria-labelledby="detail-title" data-testid="span-detail" data-span-id={span.id}>
      <div class="detail-head">
        <h2 id="detail-title">
          {span.error && (
            <span class="error-badge" title="This span has an error">
              error
            </span>
          )}{' '}
          {span.operation}
        </h2>
        <button type="button" class="btn btn-icon" aria-label="Close span details" title="Close (Esc)" onClick={onClose}>
          ×
        </button>
      </div>
      <dl class="detail-summary">
        <div>
          <dt>Service</dt>
          <dd>
            <ServiceBadge name={span.service} />
          </dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd>{formatDuration(span.duration)}</dd>
        </div>
        <div>
          <dt>Start</dt>
          <dd title={formatDateTime(raw.startTime)}>+{formatDuration(span.offset)}</dd>
        </div>
        {span.kind && (
          <div>
            <dt>Kind</dt>
            <dd>{span.kind}</dd>
          </div>
        )}
        {status && (
          <div class="wide">
            <dt>Status</dt>
            <dd class="error-text">{formatValue(status.value)}</dd>
          </div>
        )}
        <div class="wide">
          <dt>Span ID</dt>
          <dd>
            <code>{span.id}</code>
          </dd>
        </div>
      </dl>
      <div class="detail-actions">
        <CopyButton text={span.id} label="Copy span ID" />
        <CopyButton text={model.traceID} label="Copy trace ID" />
        <CopyButton text={`${location.origin}/trace/${model.traceID}?span=${span.id}`} label="Copy link" />
      </div>

      <Section title="Tags" count={tags.length} testid="span-tags">
        <KeyValueTable items={tags} label="Span tags" />
      </Section>
      <Section title={`Process: ${span.process.serviceName}`} count={span.process.tags?.length ?? 0} testid="span-process">
        <KeyValueTable items={span.process.tags ?? []} label="Process tags" />
      </Section>
      <Section title="Logs" count={logs.length} open={logs.length > 0} testid="span-logs">
        {logs.length === 0 ? (
          <p class="muted">None.</p>
        ) : (
          <ol class="logs">
            {logs.map((l, i) => (
              <li key={i}>
                <p class="log-time" title={formatDateTime(l.timestamp)}>
                  +{formatDuration(l.timestamp - model.start)}
                  <span class="muted"> (span +{formatDuration(l.timestamp - raw.startTime)})</span>
                </p>
                <KeyValueTable items={l.fields ?? []} label={`Log ${i + 1} fields`} />
              </li>
            ))}
          </ol>
        )}
      </Section>
      <Section title="References" count={refs.length} open={refs.length > 0} testid="span-refs">
        {refs.length === 0 ? (
          <p class="muted">None: this is a root span.</p>
        ) : (
          <ul class="refs">
            {refs.map((r, i) => {
              const local = r.traceID === model.traceID ? model.byId.get(r.spanID) : undefined;
              return (
                <li key={i}>
                  <span class="ref-type">{r.refType === 'FOLLOWS_FROM' ? 'follows from' : 'child of'}</span>{' '}
                  {local ? (
                    <button type="button" class="link-button" onClick={() => onSelect(local)}>
                      {local.service}: {local.operation} <code>{r.spanID}</code>
                    </button>
                  ) : r.traceID !== model.traceID ? (
                    <Link href={`/trace/${r.traceID}?span=${r.spanID}`}>
                      span <code>{r.spanID}</code> in trace <code>{r.traceID}</code>
                    </Link>
                  ) : (
                    <span>
                      <code>{r.spanID}</code> <span class="muted">(not in this trace)</span>
                    </span>
                  )}
                </li>
              );
            })}
          </ul>
        )}
      </Section>
      {warnings.length > 0 && (
        <Section title="Warnings" count={warnings.length} testid="span-warnings">
          <ul class="warnings">
            {warnings.map((w, i) => (
              <li key={i}>{w}</li>
            ))}
          </ul>
        </Section>
      )}
    </aside>
  );
}
