//! The span model rendered as Jaeger's JSON trace shape, the way Jaeger
//! renders OTLP spans: typed tags, `processes` keyed `p1`, `p2`…, parent as
//! a `CHILD_OF` reference and links as `FOLLOWS_FROM`, events as logs, and
//! the synthetic tags `span.kind`, `otel.status_code`,
//! `otel.status_description`, `error`, `otel.scope.*` and `w3c.tracestate`.

use base64::Engine;
use serde_json::{Map, Value, json};
use waymark_model::{AnyValue, KeyValue, Resource, Span};
// The mapping itself is shared with every other Jaeger-shaped output.
pub use waymark_model::jaeger::{jaeger_tags, log_fields, process_tags, trace_id_hex};
use waymark_query::AdjustedTrace;

/// Largest integer a JSON number carries exactly in JavaScript.
const MAX_SAFE_INT: i64 = (1 << 53) - 1;

/// One Jaeger tag (`{"key","type","value"}`).
pub fn tag(key: &str, v: &AnyValue) -> Value {
    let (ty, value) = match v {
        AnyValue::Empty => ("string", json!("")),
        AnyValue::String(s) => ("string", json!(s)),
        AnyValue::Bool(b) => ("bool", json!(b)),
        AnyValue::Int(i) if (-MAX_SAFE_INT..=MAX_SAFE_INT).contains(i) => ("int64", json!(i)),
        AnyValue::Int(i) => ("int64", json!(i.to_string())),
        AnyValue::Double(d) if d.is_finite() => ("float64", json!(d)),
        AnyValue::Double(d) => ("float64", json!(d.to_string())),
        AnyValue::Bytes(b) => (
            "binary",
            json!(base64::engine::general_purpose::STANDARD.encode(b)),
        ),
        AnyValue::Array(_) | AnyValue::KvList(_) => ("string", json!(v.to_tag_string())),
    };
    json!({"key": key, "type": ty, "value": value})
}

fn tags(kvs: &[KeyValue]) -> Vec<Value> {
    kvs.iter().map(|kv| tag(&kv.key, &kv.value)).collect()
}

fn us(ns: u64) -> u64 {
    ns / 1_000
}

/// The process tags of a resource: everything but `service.name`.
fn process(r: &Resource) -> Value {
    let tags: Vec<Value> = process_tags(r).map(|kv| tag(&kv.key, &kv.value)).collect();
    json!({"serviceName": r.service_name(), "tags": tags})
}

fn span_tags(s: &Span) -> Vec<Value> {
    tags(&jaeger_tags(s))
}

/// A trace in Jaeger's JSON shape.
pub fn trace(t: &AdjustedTrace) -> Value {
    let mut processes: Vec<(&Resource, String)> = Vec::new();
    let mut spans = Vec::with_capacity(t.trace.spans.len());
    for s in &t.trace.spans {
        let pid = match processes.iter().find(|(r, _)| *r == s.resource.as_ref()) {
            Some((_, id)) => id.clone(),
            None => {
                let id = format!("p{}", processes.len() + 1);
                processes.push((s.resource.as_ref(), id.clone()));
                id
            }
        };
        let mut refs = Vec::new();
        if let Some(p) = s.parent_span_id {
            refs.push(json!({"refType": "CHILD_OF", "traceID": trace_id_hex(&s.trace_id), "spanID": p.to_hex()}));
        }
        for l in &s.links {
            refs.push(json!({"refType": "FOLLOWS_FROM", "traceID": trace_id_hex(&l.trace_id), "spanID": l.span_id.to_hex()}));
        }
        let logs: Vec<Value> = s
            .events
            .iter()
            .map(|e| json!({"timestamp": us(e.time_unix_nano), "fields": tags(&log_fields(e))}))
            .collect();
        let warnings = t
            .warnings
            .get(&s.span_id)
            .map(|w| json!(w))
            .unwrap_or(Value::Null);
        let mut span = json!({
            "traceID": trace_id_hex(&s.trace_id),
            "spanID": s.span_id.to_hex(),
            "operationName": s.name,
            "references": refs,
            "startTime": us(s.start_time_unix_nano),
            "duration": us(s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano)),
            "tags": span_tags(s),
            "logs": logs,
            "processID": pid,
            "warnings": warnings,
        });
        // Jaeger's flags are the W3C trace flags (sampled = 1); OTLP keeps
        // more bits above them (such as "parent is remote").
        if s.flags & 0xff != 0 {
            span["flags"] = json!(s.flags & 0xff);
        }
        spans.push(span);
    }
    let mut procs = Map::new();
    for (r, id) in processes {
        procs.insert(id, process(r));
    }
    json!({
        "traceID": trace_id_hex(&t.trace.trace_id),
        "spans": spans,
        "processes": procs,
        "warnings": Value::Null,
    })
}
