//! The mapping between the span model and Jaeger's span shape (typed tags,
//! a process, logs and references), in both directions, shared by every
//! place that speaks Jaeger: the query API's JSON and gRPC renderings and
//! the Elasticsearch document.
//!
//! Model to Jaeger, the way Jaeger renders OTLP spans: the instrumentation
//! scope becomes `otel.scope.name`/`otel.scope.version` tags, the kind a
//! `span.kind` tag, the status `otel.status_code` (plus `error: true`) and
//! `otel.status_description`, the trace state `w3c.tracestate`, events
//! become logs whose `event` field carries the event name, and the resource
//! is the process (`service.name` is its service name, the rest its tags).
//!
//! Jaeger to model reverses it with [`SpanTags::from_jaeger`] and
//! [`event_from_log`]. Tags that do not carry one of those meanings (an
//! `error: false`, a `span.kind` that names no kind) stay attributes, so a
//! span survives model → Jaeger → model with every field Jaeger can carry.

use crate::{
    AnyValue, Event, KeyValue, Resource, SERVICE_NAME, Span, SpanKind, Status, StatusCode, TraceId,
};

/// The link attribute that records a Jaeger reference type.
pub const REF_TYPE_ATTR: &str = "opentracing.ref_type";
/// [`REF_TYPE_ATTR`] value of a `CHILD_OF` reference.
pub const REF_TYPE_CHILD_OF: &str = "child_of";
/// [`REF_TYPE_ATTR`] value of a `FOLLOWS_FROM` reference.
pub const REF_TYPE_FOLLOWS_FROM: &str = "follows_from";

/// Span tags in Jaeger's order: scope, attributes, then the synthetic tags
/// (`span.kind`, `otel.status_code`, `error`, `otel.status_description`,
/// `w3c.tracestate`). Dropped counts are not rendered (Jaeger does not
/// either).
pub fn jaeger_tags(s: &Span) -> Vec<KeyValue> {
    let st = |k: &str, v: &str| KeyValue::new(k, AnyValue::String(v.to_string()));
    let mut out = Vec::with_capacity(s.attributes.len() + 6);
    if !s.scope.name.is_empty() {
        out.push(st("otel.scope.name", &s.scope.name));
    }
    if !s.scope.version.is_empty() {
        out.push(st("otel.scope.version", &s.scope.version));
    }
    out.extend(s.attributes.iter().cloned());
    if s.kind != SpanKind::Unspecified {
        out.push(st("span.kind", s.kind.jaeger_name()));
    }
    match s.status.code {
        StatusCode::Ok => out.push(st("otel.status_code", "OK")),
        StatusCode::Error => {
            out.push(st("otel.status_code", "ERROR"));
            out.push(KeyValue::new("error", AnyValue::Bool(true)));
        }
        StatusCode::Unset => {}
    }
    if !s.status.message.is_empty() {
        out.push(st("otel.status_description", &s.status.message));
    }
    if !s.trace_state.is_empty() {
        out.push(st("w3c.tracestate", &s.trace_state));
    }
    out
}

/// The fields of a log made from an event: `event` (the name) first, unless
/// the event is unnamed or already has an `event` attribute.
pub fn log_fields(e: &Event) -> Vec<KeyValue> {
    let mut fields = Vec::with_capacity(e.attributes.len() + 1);
    if !e.name.is_empty() && !e.attributes.iter().any(|kv| kv.key == "event") {
        fields.push(KeyValue::new("event", AnyValue::String(e.name.clone())));
    }
    fields.extend(e.attributes.iter().cloned());
    fields
}

/// Process tags: the resource attributes except `service.name`.
pub fn process_tags(r: &Resource) -> impl Iterator<Item = &KeyValue> {
    r.attributes.iter().filter(|kv| kv.key != SERVICE_NAME)
}

/// A trace id as Jaeger's query API prints it: 16 hex digits when the high
/// half is zero (a 64-bit id), 32 otherwise.
pub fn trace_id_hex(id: &TraceId) -> String {
    let hex = id.to_hex();
    if id.0[..8].iter().all(|b| *b == 0) {
        hex[16..].to_string()
    } else {
        hex
    }
}

/// A Jaeger span's tags taken apart into the span model's fields: the
/// reverse of [`jaeger_tags`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpanTags {
    pub kind: SpanKind,
    pub status: Status,
    pub trace_state: String,
    pub scope_name: String,
    pub scope_version: String,
    /// Every tag that is not one of the above, in order.
    pub attributes: Vec<KeyValue>,
}

impl SpanTags {
    /// Splits Jaeger span tags. `span.kind` (a known kind), `error: true`,
    /// `otel.status_code` (`OK`/`ERROR`), `otel.status_description`,
    /// `w3c.tracestate` and `otel.scope.*` (or the older
    /// `otel.library.*`) move into their fields; the rest stay attributes.
    pub fn from_jaeger(tags: Vec<KeyValue>) -> SpanTags {
        let mut out = SpanTags {
            attributes: Vec::with_capacity(tags.len()),
            ..Default::default()
        };
        for kv in tags {
            match kv.key.as_str() {
                "span.kind" => match SpanKind::from_jaeger_name(&text(&kv.value)) {
                    Some(kind) => out.kind = kind,
                    None => out.attributes.push(kv),
                },
                "error" if is_true(&kv.value) => out.status.code = StatusCode::Error,
                "otel.status_code" => match text(&kv.value).to_ascii_uppercase().as_str() {
                    "ERROR" => out.status.code = StatusCode::Error,
                    // `error: true` wins over a contradicting status code.
                    "OK" if out.status.code != StatusCode::Error => {
                        out.status.code = StatusCode::Ok
                    }
                    "OK" => {}
                    _ => out.attributes.push(kv),
                },
                "otel.status_description" => out.status.message = text(&kv.value),
                "w3c.tracestate" => out.trace_state = text(&kv.value),
                "otel.scope.name" | "otel.library.name" => out.scope_name = text(&kv.value),
                "otel.scope.version" | "otel.library.version" => {
                    out.scope_version = text(&kv.value)
                }
                _ => out.attributes.push(kv),
            }
        }
        out
    }
}

/// An event from a Jaeger log: a string `event` field names it and is
/// removed; every other field is an attribute.
pub fn event_from_log(time_unix_nano: u64, mut fields: Vec<KeyValue>) -> Event {
    let name = match fields
        .iter()
        .position(|kv| kv.key == "event" && matches!(kv.value, AnyValue::String(_)))
    {
        Some(i) => match fields.remove(i).value {
            AnyValue::String(s) => s,
            _ => unreachable!("checked above"),
        },
        None => String::new(),
    };
    Event {
        time_unix_nano,
        name,
        attributes: fields,
        dropped_attributes_count: 0,
    }
}

fn is_true(v: &AnyValue) -> bool {
    match v {
        AnyValue::Bool(b) => *b,
        AnyValue::String(s) => s == "true",
        _ => false,
    }
}

fn text(v: &AnyValue) -> String {
    match v {
        AnyValue::String(s) => s.clone(),
        other => other.to_tag_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scope;
    use std::sync::Arc;

    #[test]
    fn tags_round_trip() {
        let span = Span {
            kind: SpanKind::Client,
            status: Status {
                code: StatusCode::Error,
                message: "boom".into(),
            },
            trace_state: "k=v".into(),
            attributes: vec![
                KeyValue::new("error", AnyValue::Bool(false)),
                KeyValue::new("http.method", AnyValue::String("GET".into())),
            ],
            scope: Arc::new(Scope {
                name: "lib".into(),
                version: "1.0".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let back = SpanTags::from_jaeger(jaeger_tags(&span));
        assert_eq!(back.kind, span.kind);
        assert_eq!(back.status, span.status);
        assert_eq!(back.trace_state, span.trace_state);
        assert_eq!(
            (back.scope_name.as_str(), back.scope_version.as_str()),
            ("lib", "1.0")
        );
        assert_eq!(back.attributes, span.attributes);
    }

    #[test]
    fn unknown_kind_stays_an_attribute() {
        let tags = vec![KeyValue::new("span.kind", AnyValue::String("rpc".into()))];
        let t = SpanTags::from_jaeger(tags.clone());
        assert_eq!(t.kind, SpanKind::Unspecified);
        assert_eq!(t.attributes, tags);
    }

    #[test]
    fn log_event_name() {
        let e = Event {
            time_unix_nano: 5,
            name: "retry".into(),
            attributes: vec![KeyValue::new("n", AnyValue::Int(2))],
            dropped_attributes_count: 0,
        };
        assert_eq!(event_from_log(5, log_fields(&e)), e);
        // A non-string `event` field is an attribute, not a name.
        let f = vec![KeyValue::new("event", AnyValue::Int(1))];
        assert_eq!(event_from_log(1, f.clone()).attributes, f);
    }
}
