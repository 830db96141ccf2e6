//! Jaeger's Thrift `Batch` (jaeger.thrift, field ids from the published IDL)
//! mapped into the span model, the way Jaeger maps its own model to OTLP:
//! the process is the resource, typed tags are attributes, `span.kind`,
//! `error`, `otel.status_*`, `w3c.tracestate` and `otel.scope.*` tags move
//! into their fields, logs become events (named by their `event` field), the
//! parent comes from `parentSpanId` or the first `CHILD_OF` reference in the
//! same trace, and every other reference becomes a link.

use std::sync::Arc;

use waymark_model::{
    AnyValue, Event, KeyValue, Link, Resource, SERVICE_NAME, Scope, Span, SpanId, SpanKind, Status,
    StatusCode, TraceId,
};

use super::thrift::TValue;
use crate::Limits;
use crate::otlp::{DecodeError, Decoded};

type Fields = [(i16, TValue)];

fn field(f: &Fields, id: i16) -> Option<&TValue> {
    f.iter().find(|(i, _)| *i == id).map(|(_, v)| v)
}

fn i64_of(f: &Fields, id: i16) -> Option<i64> {
    match field(f, id)? {
        TValue::I64(v) => Some(*v),
        TValue::I32(v) => Some(*v as i64),
        _ => None,
    }
}

fn str_of(f: &Fields, id: i16) -> Option<String> {
    match field(f, id)? {
        TValue::Binary(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

fn list_of(f: &Fields, id: i16) -> &[TValue] {
    match field(f, id) {
        Some(TValue::List(v)) => v,
        _ => &[],
    }
}

fn structs(list: &[TValue]) -> impl Iterator<Item = &Vec<(i16, TValue)>> {
    list.iter().filter_map(|v| match v {
        TValue::Struct(s) => Some(s),
        _ => None,
    })
}

/// A Jaeger `Tag` as a typed attribute.
fn tag(t: &Fields) -> Option<KeyValue> {
    let key = str_of(t, 1)?;
    let ty = i64_of(t, 2).unwrap_or(0);
    let value = match ty {
        1 => match field(t, 4) {
            Some(TValue::Double(d)) => AnyValue::Double(*d),
            _ => AnyValue::Double(0.0),
        },
        2 => AnyValue::Bool(matches!(field(t, 5), Some(TValue::Bool(true)))),
        3 => AnyValue::Int(i64_of(t, 6).unwrap_or(0)),
        4 => match field(t, 7) {
            Some(TValue::Binary(b)) => AnyValue::Bytes(b.clone()),
            _ => AnyValue::Bytes(Vec::new()),
        },
        _ => AnyValue::String(str_of(t, 3).unwrap_or_default()),
    };
    Some(KeyValue { key, value })
}

fn tags(list: &[TValue]) -> Vec<KeyValue> {
    structs(list).filter_map(|t| tag(t)).collect()
}

fn trace_id(high: i64, low: i64) -> Result<TraceId, String> {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&high.to_be_bytes());
    b[8..].copy_from_slice(&low.to_be_bytes());
    TraceId::from_bytes(&b).map_err(|e| format!("trace id: {e}"))
}

fn text(v: &AnyValue) -> String {
    match v {
        AnyValue::String(s) => s.clone(),
        other => other.to_tag_string(),
    }
}

/// Converts a decoded `Batch` struct.
pub fn batch_to_model(batch: &Fields, limits: &Limits) -> Result<Decoded, DecodeError> {
    let bad = |m: &str| DecodeError::Protobuf(format!("not a Jaeger Batch: {m}"));
    let process = match field(batch, 1) {
        Some(TValue::Struct(p)) => p,
        _ => return Err(bad("process (field 1) missing")),
    };
    let spans = match field(batch, 2) {
        Some(TValue::List(s)) => s,
        _ => return Err(bad("spans (field 2) missing")),
    };
    if spans.len() > limits.max_spans_per_request {
        return Err(DecodeError::TooManySpans {
            got: spans.len(),
            limit: limits.max_spans_per_request,
        });
    }
    let service = str_of(process, 1).unwrap_or_default();
    let mut res_attrs = vec![KeyValue::new(
        SERVICE_NAME,
        AnyValue::String(if service.is_empty() {
            waymark_model::UNKNOWN_SERVICE.into()
        } else {
            service
        }),
    )];
    res_attrs.extend(tags(list_of(process, 2)));
    let resource = Arc::new(Resource {
        attributes: res_attrs,
        dropped_attributes_count: 0,
    });
    let mut scopes: Vec<Arc<Scope>> = vec![Arc::new(Scope::default())];
    let mut out = Decoded::default();
    for (i, s) in spans.iter().enumerate() {
        let TValue::Struct(s) = s else {
            out.reject(format!("span {i}: not a struct"));
            continue;
        };
        let name = str_of(s, 5).unwrap_or_default();
        match span(s, &resource, &mut scopes, limits) {
            Ok(span) => out.spans.push(span),
            Err(why) => out.reject(format!("span {i} ({name:?}): {why}")),
        }
    }
    Ok(out)
}

fn span(
    s: &Fields,
    resource: &Arc<Resource>,
    scopes: &mut Vec<Arc<Scope>>,
    limits: &Limits,
) -> Result<Span, String> {
    let tid = trace_id(i64_of(s, 2).unwrap_or(0), i64_of(s, 1).unwrap_or(0))?;
    let span_id = SpanId::from_bytes(&i64_of(s, 3).unwrap_or(0).to_be_bytes())
        .map_err(|e| format!("span id: {e}"))?;
    let mut parent = match i64_of(s, 4).unwrap_or(0) {
        0 => None,
        p => Some(SpanId(p.to_be_bytes())),
    };
    let mut links = Vec::new();
    for r in structs(list_of(s, 6)) {
        let kind = i64_of(r, 1).unwrap_or(0);
        let Ok(rt) = trace_id(i64_of(r, 3).unwrap_or(0), i64_of(r, 2).unwrap_or(0)) else {
            continue;
        };
        let Ok(rs) = SpanId::from_bytes(&i64_of(r, 4).unwrap_or(0).to_be_bytes()) else {
            continue;
        };
        if kind == 0 && rt == tid && (parent.is_none() || parent == Some(rs)) {
            parent = Some(rs);
            continue;
        }
        links.push(Link {
            trace_id: rt,
            span_id: rs,
            attributes: vec![KeyValue::new(
                "opentracing.ref_type",
                AnyValue::String(
                    if kind == 0 {
                        "child_of"
                    } else {
                        "follows_from"
                    }
                    .into(),
                ),
            )],
            ..Default::default()
        });
    }

    let mut kind = SpanKind::Unspecified;
    let mut status = Status::default();
    let mut trace_state = String::new();
    let (mut scope_name, mut scope_version) = (String::new(), String::new());
    let mut attributes = Vec::new();
    for kv in tags(list_of(s, 10)) {
        match kv.key.as_str() {
            "span.kind" => {
                kind = SpanKind::from_jaeger_name(&text(&kv.value)).unwrap_or(SpanKind::Unspecified)
            }
            "error" => {
                if matches!(&kv.value, AnyValue::Bool(true))
                    || matches!(&kv.value, AnyValue::String(v) if v == "true")
                {
                    status.code = StatusCode::Error;
                }
            }
            "otel.status_code" => match text(&kv.value).as_str() {
                "ERROR" => status.code = StatusCode::Error,
                "OK" => status.code = StatusCode::Ok,
                _ => {}
            },
            "otel.status_description" => status.message = text(&kv.value),
            "w3c.tracestate" => trace_state = text(&kv.value),
            "otel.scope.name" | "otel.library.name" => scope_name = text(&kv.value),
            "otel.scope.version" | "otel.library.version" => scope_version = text(&kv.value),
            _ => attributes.push(kv),
        }
    }
    let scope = match scopes
        .iter()
        .find(|sc| sc.name == scope_name && sc.version == scope_version)
    {
        Some(sc) => sc.clone(),
        None => {
            let sc = Arc::new(Scope {
                name: scope_name,
                version: scope_version,
                ..Default::default()
            });
            scopes.push(sc.clone());
            sc
        }
    };
    let events = structs(list_of(s, 11))
        .map(|l| {
            let mut fields = tags(list_of(l, 2));
            let name = match fields.iter().position(|kv| kv.key == "event") {
                Some(i) => text(&fields.remove(i).value),
                None => String::new(),
            };
            Event {
                time_unix_nano: (i64_of(l, 1).unwrap_or(0).max(0) as u64).saturating_mul(1_000),
                name,
                attributes: fields,
                dropped_attributes_count: 0,
            }
        })
        .collect();
    let start = (i64_of(s, 8).unwrap_or(0).max(0) as u64).saturating_mul(1_000);
    let duration = (i64_of(s, 9).unwrap_or(0).max(0) as u64).saturating_mul(1_000);
    let span = Span {
        trace_id: tid,
        span_id,
        parent_span_id: parent,
        trace_state,
        flags: (i64_of(s, 7).unwrap_or(0) as u32) & 0xff,
        name: str_of(s, 5).unwrap_or_default(),
        kind,
        start_time_unix_nano: start,
        end_time_unix_nano: start + duration,
        attributes,
        dropped_attributes_count: 0,
        events,
        dropped_events_count: 0,
        links,
        dropped_links_count: 0,
        status,
        resource: resource.clone(),
        scope,
    };
    crate::otlp::convert::check_limits(&span, limits)?;
    Ok(span)
}
