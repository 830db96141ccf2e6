//! OTLP protobuf messages to and from the span model.

use std::sync::Arc;

use prost::Message;
use waymark_model::{
    AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode,
    TraceId,
};
use waymark_proto::otlp::{collector::ExportTraceServiceRequest, common, trace};

use crate::{InvalidSpan, SpanOutput};

/// Decodes an `ExportTraceServiceRequest` from protobuf bytes and converts
/// its spans into `out`.
pub fn decode_protobuf(bytes: &[u8], out: &mut impl SpanOutput) -> Result<(), prost::DecodeError> {
    let req = ExportTraceServiceRequest::decode(bytes)?;
    from_request(req, out);
    Ok(())
}

/// The number of spans a request holds, counted before converting any.
pub fn span_count(req: &ExportTraceServiceRequest) -> usize {
    req.resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter())
        .map(|ss| ss.spans.len())
        .sum()
}

/// Converts every span of a decoded request, in order.
pub fn from_request(req: ExportTraceServiceRequest, out: &mut impl SpanOutput) {
    out.reserve(span_count(&req));
    let mut index = 0;
    for rs in req.resource_spans {
        let resource = resource(rs.resource.unwrap_or_default());
        for ss in rs.scope_spans {
            let scope = scope(ss.scope.unwrap_or_default());
            for s in ss.spans {
                convert_into(s, index, &resource, &scope, out);
                index += 1;
            }
        }
    }
}

pub(crate) fn resource(r: waymark_proto::otlp::resource::Resource) -> Arc<Resource> {
    Arc::new(Resource {
        attributes: attrs(r.attributes),
        dropped_attributes_count: r.dropped_attributes_count,
    })
}

pub(crate) fn scope(s: common::InstrumentationScope) -> Arc<Scope> {
    Arc::new(Scope {
        name: s.name,
        version: s.version,
        attributes: attrs(s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
    })
}

/// Converts span `index` of a request into `out`.
pub(crate) fn convert_into(
    s: trace::Span,
    index: usize,
    resource: &Arc<Resource>,
    scope: &Arc<Scope>,
    out: &mut impl SpanOutput,
) {
    let name = s.name.clone();
    match span(s, resource, scope) {
        Ok(span) => out.span(span),
        Err(reason) => out.invalid(InvalidSpan {
            index,
            name,
            reason,
        }),
    }
}

fn span(s: trace::Span, resource: &Arc<Resource>, scope: &Arc<Scope>) -> Result<Span, String> {
    let trace_id = TraceId::from_bytes(&s.trace_id).map_err(|e| format!("trace_id: {e}"))?;
    let span_id = SpanId::from_bytes(&s.span_id).map_err(|e| format!("span_id: {e}"))?;
    let parent_span_id = match s.parent_span_id.len() {
        0 => None,
        _ if s.parent_span_id.iter().all(|b| *b == 0) => None,
        _ => Some(
            SpanId::from_bytes(&s.parent_span_id).map_err(|e| format!("parent_span_id: {e}"))?,
        ),
    };
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: s.trace_state,
        flags: s.flags,
        name: s.name,
        kind: SpanKind::from_otlp(s.kind),
        start_time_unix_nano: s.start_time_unix_nano,
        end_time_unix_nano: s.end_time_unix_nano,
        attributes: attrs(s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        events: s
            .events
            .into_iter()
            .map(|e| Event {
                time_unix_nano: e.time_unix_nano,
                name: e.name,
                attributes: attrs(e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: s.dropped_events_count,
        links: s
            .links
            .into_iter()
            .map(|l| {
                Ok(Link {
                    trace_id: TraceId::from_bytes(&l.trace_id)
                        .map_err(|e| format!("link trace_id: {e}"))?,
                    span_id: SpanId::from_bytes(&l.span_id)
                        .map_err(|e| format!("link span_id: {e}"))?,
                    trace_state: l.trace_state,
                    attributes: attrs(l.attributes),
                    dropped_attributes_count: l.dropped_attributes_count,
                    flags: l.flags,
                })
            })
            .collect::<Result<_, String>>()?,
        dropped_links_count: s.dropped_links_count,
        status: s
            .status
            .map(|st| Status {
                code: StatusCode::from_otlp(st.code),
                message: st.message,
            })
            .unwrap_or_default(),
        resource: resource.clone(),
        scope: scope.clone(),
    })
}

pub(crate) fn attrs(kvs: Vec<common::KeyValue>) -> Vec<KeyValue> {
    kvs.into_iter()
        .map(|kv| KeyValue {
            key: kv.key,
            value: any_value(kv.value),
        })
        .collect()
}

fn any_value(v: Option<common::AnyValue>) -> AnyValue {
    use common::any_value::Value as V;
    match v.and_then(|v| v.value) {
        None => AnyValue::Empty,
        Some(V::StringValue(s)) => AnyValue::String(s),
        Some(V::BoolValue(b)) => AnyValue::Bool(b),
        Some(V::IntValue(i)) => AnyValue::Int(i),
        Some(V::DoubleValue(d)) => AnyValue::Double(d),
        Some(V::BytesValue(b)) => AnyValue::Bytes(b),
        Some(V::ArrayValue(a)) => {
            AnyValue::Array(a.values.into_iter().map(|v| any_value(Some(v))).collect())
        }
        Some(V::KvlistValue(l)) => AnyValue::KvList(attrs(l.values)),
    }
}

/// Span model → OTLP protobuf request (used by `waymark tracegen` and the
/// benchmark's client; the inverse of [`from_request`]).
pub fn to_request(spans: &[Span]) -> ExportTraceServiceRequest {
    use waymark_proto::otlp::{resource, trace::ResourceSpans, trace::ScopeSpans};
    let mut out: Vec<ResourceSpans> = Vec::new();
    for s in spans {
        let rs = match out.iter_mut().position(|rs| {
            rs.resource.as_ref().map(|r| &r.attributes) == Some(&to_kvs(&s.resource.attributes))
        }) {
            Some(i) => &mut out[i],
            None => {
                out.push(ResourceSpans {
                    resource: Some(resource::Resource {
                        attributes: to_kvs(&s.resource.attributes),
                        dropped_attributes_count: s.resource.dropped_attributes_count,
                    }),
                    scope_spans: Vec::new(),
                    schema_url: String::new(),
                });
                out.last_mut().unwrap()
            }
        };
        let ss = match rs.scope_spans.iter().position(|ss| {
            ss.scope
                .as_ref()
                .is_some_and(|sc| sc.name == s.scope.name && sc.version == s.scope.version)
        }) {
            Some(i) => &mut rs.scope_spans[i],
            None => {
                rs.scope_spans.push(ScopeSpans {
                    scope: Some(common::InstrumentationScope {
                        name: s.scope.name.clone(),
                        version: s.scope.version.clone(),
                        attributes: to_kvs(&s.scope.attributes),
                        dropped_attributes_count: s.scope.dropped_attributes_count,
                    }),
                    spans: Vec::new(),
                    schema_url: String::new(),
                });
                rs.scope_spans.last_mut().unwrap()
            }
        };
        ss.spans.push(trace::Span {
            trace_id: s.trace_id.0.to_vec(),
            span_id: s.span_id.0.to_vec(),
            trace_state: s.trace_state.clone(),
            parent_span_id: s.parent_span_id.map(|p| p.0.to_vec()).unwrap_or_default(),
            flags: s.flags,
            name: s.name.clone(),
            kind: s.kind.to_otlp(),
            start_time_unix_nano: s.start_time_unix_nano,
            end_time_unix_nano: s.end_time_unix_nano,
            attributes: to_kvs(&s.attributes),
            dropped_attributes_count: s.dropped_attributes_count,
            events: s
                .events
                .iter()
                .map(|e| trace::span::Event {
                    time_unix_nano: e.time_unix_nano,
                    name: e.name.clone(),
                    attributes: to_kvs(&e.attributes),
                    dropped_attributes_count: e.dropped_attributes_count,
                })
                .collect(),
            dropped_events_count: s.dropped_events_count,
            links: s
                .links
                .iter()
                .map(|l| trace::span::Link {
                    trace_id: l.trace_id.0.to_vec(),
                    span_id: l.span_id.0.to_vec(),
                    trace_state: l.trace_state.clone(),
                    attributes: to_kvs(&l.attributes),
                    dropped_attributes_count: l.dropped_attributes_count,
                    flags: l.flags,
                })
                .collect(),
            dropped_links_count: s.dropped_links_count,
            status: Some(trace::Status {
                message: s.status.message.clone(),
                code: s.status.code.to_otlp(),
            }),
        });
    }
    ExportTraceServiceRequest {
        resource_spans: out,
    }
}

fn to_kvs(kvs: &[KeyValue]) -> Vec<common::KeyValue> {
    kvs.iter()
        .map(|kv| common::KeyValue {
            key: kv.key.clone(),
            value: Some(to_any(&kv.value)),
        })
        .collect()
}

fn to_any(v: &AnyValue) -> common::AnyValue {
    use common::any_value::Value as V;
    common::AnyValue {
        value: match v {
            AnyValue::Empty => None,
            AnyValue::String(s) => Some(V::StringValue(s.clone())),
            AnyValue::Bool(b) => Some(V::BoolValue(*b)),
            AnyValue::Int(i) => Some(V::IntValue(*i)),
            AnyValue::Double(d) => Some(V::DoubleValue(*d)),
            AnyValue::Bytes(b) => Some(V::BytesValue(b.clone())),
            AnyValue::Array(items) => Some(V::ArrayValue(common::ArrayValue {
                values: items.iter().map(to_any).collect(),
            })),
            AnyValue::KvList(kvs) => Some(V::KvlistValue(common::KeyValueList {
                values: to_kvs(kvs),
            })),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Collected;

    #[test]
    fn model_roundtrips_through_protobuf() {
        let spans = waymark_testkit::fixture_trace(1_700_000_000_000_000_000);
        let bytes = to_request(&spans).encode_to_vec();
        let mut out = Collected::default();
        decode_protobuf(&bytes, &mut out).unwrap();
        assert!(out.invalid.is_empty());
        assert_eq!(out.spans, spans);
    }

    #[test]
    fn invalid_ids_are_reported_per_span() {
        let spans = waymark_testkit::fixture_trace(1_700_000_000_000_000_000);
        let mut req = to_request(&spans);
        req.resource_spans[0].scope_spans[0].spans[0].trace_id = vec![1, 2, 3, 4, 5];
        let mut out = Collected::default();
        from_request(req, &mut out);
        assert_eq!(out.spans.len(), 1);
        assert_eq!(out.invalid.len(), 1);
        assert_eq!(out.invalid[0].index, 0);
        assert!(
            out.invalid[0]
                .to_string()
                .contains("trace_id: expected 16 bytes, got 5"),
            "{}",
            out.invalid[0]
        );
    }

    /// Mutated and truncated requests must decode or fail, never panic.
    #[test]
    fn mutated_bytes_never_panic() {
        let good = to_request(&waymark_testkit::fixture_trace(1)).encode_to_vec();
        let json = crate::spans_to_otlp_json(&waymark_testkit::fixture_trace(1))
            .to_string()
            .into_bytes();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            for base in [&good, &json] {
                let mut b = base.clone();
                for _ in 0..(next() % 4 + 1) {
                    let i = (next() as usize) % b.len();
                    b[i] = next() as u8;
                }
                b.truncate((next() as usize) % (b.len() + 1));
                let _ = decode_protobuf(&b, &mut Collected::default());
                let _ = crate::decode_json(&b, &mut Collected::default());
            }
        }
    }

    #[test]
    fn garbage_is_a_decode_error() {
        assert!(decode_protobuf(&[0xff, 0xff, 0xff], &mut Collected::default()).is_err());
    }
}
