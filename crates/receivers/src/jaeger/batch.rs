//! Jaeger spans, from Thrift `Batch`es (jaeger.thrift, field ids from the
//! published IDL) or api_v2 protobuf, mapped into the span model, the way Jaeger maps its own model to OTLP:
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

use super::JaegerError;
use crate::thrift::TValue;
use crate::{Decoded, Limits};

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

fn text(v: &AnyValue) -> String {
    match v {
        AnyValue::String(s) => s.clone(),
        other => other.to_tag_string(),
    }
}

/// A Jaeger span, whatever the encoding (Thrift or api_v2 protobuf), before
/// it is mapped into the span model by [`to_model`].
#[derive(Clone, Debug, Default)]
pub struct JaegerSpan {
    pub trace_id: [u8; 16],
    pub span_id: u64,
    pub parent_span_id: u64,
    /// (0 = CHILD_OF, 1 = FOLLOWS_FROM, trace id, span id)
    pub references: Vec<(i64, [u8; 16], u64)>,
    pub operation_name: String,
    pub flags: u32,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub tags: Vec<KeyValue>,
    /// (timestamp ns, fields)
    pub logs: Vec<(u64, Vec<KeyValue>)>,
}

/// A Jaeger process: the service name and its tags.
#[derive(Clone, Debug, Default)]
pub struct JaegerProcess {
    pub service_name: String,
    pub tags: Vec<KeyValue>,
}

fn ids(high: i64, low: i64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&high.to_be_bytes());
    b[8..].copy_from_slice(&low.to_be_bytes());
    b
}

/// Converts a decoded Thrift `Batch` struct.
pub fn batch_to_model(batch: &Fields, limits: &Limits) -> Result<Decoded, JaegerError> {
    let bad = |m: &str| JaegerError::Thrift(format!("not a Jaeger Batch: {m}"));
    let process = match field(batch, 1) {
        Some(TValue::Struct(p)) => p,
        _ => return Err(bad("process (field 1) missing")),
    };
    let spans = match field(batch, 2) {
        Some(TValue::List(s)) => s,
        _ => return Err(bad("spans (field 2) missing")),
    };
    let process = JaegerProcess {
        service_name: str_of(process, 1).unwrap_or_default(),
        tags: tags(list_of(process, 2)),
    };
    let mut out = Decoded::new(limits);
    out.expect(spans.len())?;
    let mut converted = Vec::with_capacity(spans.len());
    for s in spans {
        let TValue::Struct(s) = s else {
            out.reject("", "not a struct");
            continue;
        };
        converted.push((
            None,
            JaegerSpan {
                trace_id: ids(i64_of(s, 2).unwrap_or(0), i64_of(s, 1).unwrap_or(0)),
                span_id: i64_of(s, 3).unwrap_or(0) as u64,
                parent_span_id: i64_of(s, 4).unwrap_or(0) as u64,
                references: structs(list_of(s, 6))
                    .map(|r| {
                        (
                            i64_of(r, 1).unwrap_or(0),
                            ids(i64_of(r, 3).unwrap_or(0), i64_of(r, 2).unwrap_or(0)),
                            i64_of(r, 4).unwrap_or(0) as u64,
                        )
                    })
                    .collect(),
                operation_name: str_of(s, 5).unwrap_or_default(),
                flags: i64_of(s, 7).unwrap_or(0) as u32,
                start_ns: (i64_of(s, 8).unwrap_or(0).max(0) as u64).saturating_mul(1_000),
                duration_ns: (i64_of(s, 9).unwrap_or(0).max(0) as u64).saturating_mul(1_000),
                tags: tags(list_of(s, 10)),
                logs: structs(list_of(s, 11))
                    .map(|l| {
                        (
                            (i64_of(l, 1).unwrap_or(0).max(0) as u64).saturating_mul(1_000),
                            tags(list_of(l, 2)),
                        )
                    })
                    .collect(),
            },
        ));
    }
    to_model(&process, converted, out)
}

/// Maps Jaeger spans (each with its own process, or the batch's) into the
/// span model, validating each one.
pub fn to_model(
    batch_process: &JaegerProcess,
    spans: Vec<(Option<JaegerProcess>, JaegerSpan)>,
    mut out: Decoded,
) -> Result<Decoded, JaegerError> {
    out.expect(spans.len())?;
    let mut resources: Vec<Arc<Resource>> = Vec::new();
    let mut scopes: Vec<Arc<Scope>> = vec![Arc::new(Scope::default())];
    let process_attrs = |p: &JaegerProcess| {
        let mut attrs = vec![KeyValue::new(
            SERVICE_NAME,
            AnyValue::String(if p.service_name.is_empty() {
                waymark_model::UNKNOWN_SERVICE.into()
            } else {
                p.service_name.clone()
            }),
        )];
        attrs.extend(p.tags.iter().cloned());
        attrs
    };
    // The batch's process is built once; only spans with a process of
    // their own (api_v2) pay for another lookup.
    let batch_resource = crate::intern_resource(&mut resources, process_attrs(batch_process));
    for (process, s) in spans {
        let resource = match &process {
            Some(p) => crate::intern_resource(&mut resources, process_attrs(p)),
            None => batch_resource.clone(),
        };
        let name = s.operation_name.clone();
        match span(s, &resource, &mut scopes) {
            Ok(span) => out.push(span),
            Err(why) => out.reject(&name, why),
        }
    }
    Ok(out.finish()?)
}

fn span(
    s: JaegerSpan,
    resource: &Arc<Resource>,
    scopes: &mut Vec<Arc<Scope>>,
) -> Result<Span, String> {
    let tid = TraceId::from_bytes(&s.trace_id).map_err(|e| format!("trace id: {e}"))?;
    let span_id =
        SpanId::from_bytes(&s.span_id.to_be_bytes()).map_err(|e| format!("span id: {e}"))?;
    let mut parent = match s.parent_span_id {
        0 => None,
        p => Some(SpanId(p.to_be_bytes())),
    };
    let mut links = Vec::new();
    for (kind, rt, rs) in s.references {
        let Ok(rt) = TraceId::from_bytes(&rt) else {
            continue;
        };
        let Ok(rs) = SpanId::from_bytes(&rs.to_be_bytes()) else {
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
    for kv in s.tags {
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
    let events = s
        .logs
        .into_iter()
        .map(|(ts, mut fields)| {
            let name = match fields.iter().position(|kv| kv.key == "event") {
                Some(i) => text(&fields.remove(i).value),
                None => String::new(),
            };
            Event {
                time_unix_nano: ts,
                name,
                attributes: fields,
                dropped_attributes_count: 0,
            }
        })
        .collect();
    let span = Span {
        trace_id: tid,
        span_id,
        parent_span_id: parent,
        trace_state,
        flags: s.flags & 0xff,
        name: s.operation_name,
        kind,
        start_time_unix_nano: s.start_ns,
        end_time_unix_nano: s.start_ns.saturating_add(s.duration_ns),
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
    Ok(span)
}
