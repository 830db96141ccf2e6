//! OTLP protobuf messages → span model, with validation against [`Limits`].

use std::sync::Arc;

use prost::Message;
use waymark_model::{
    AnyValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode,
    TraceId,
};
use waymark_proto::otlp::{collector::ExportTraceServiceRequest, common, trace};

use crate::Limits;

/// A request that cannot be used at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("request body is not a valid OTLP protobuf message: {0}")]
    Protobuf(String),
    #[error("request body is not valid OTLP JSON: {0}")]
    Json(String),
    #[error("request body is not valid Jaeger Thrift: {0}")]
    Thrift(String),
    #[error(
        "request holds {got} spans, more than the limit of {limit} (limits.max_spans_per_request)"
    )]
    TooManySpans { got: usize, limit: usize },
}

/// The usable spans of a request and what was rejected.
#[derive(Debug, Default)]
pub struct Decoded {
    pub spans: Vec<Span>,
    pub rejected: usize,
    /// The first few rejection reasons, for the partial-success message.
    pub errors: Vec<String>,
}

const MAX_REPORTED_ERRORS: usize = 5;

impl Decoded {
    pub fn reject(&mut self, reason: String) {
        self.rejected += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(reason);
        }
    }

    /// The partial-success message, empty when nothing was rejected.
    pub fn error_message(&self) -> String {
        if self.rejected == 0 {
            return String::new();
        }
        let more = self.rejected.saturating_sub(self.errors.len());
        let mut msg = format!(
            "rejected {} of {} spans: {}",
            self.rejected,
            self.rejected + self.spans.len(),
            self.errors.join("; ")
        );
        if more > 0 {
            msg.push_str(&format!("; and {more} more"));
        }
        msg
    }
}

/// Decodes an `ExportTraceServiceRequest` from protobuf bytes.
pub fn decode_protobuf(bytes: &[u8], limits: &Limits) -> Result<Decoded, DecodeError> {
    let req = ExportTraceServiceRequest::decode(bytes)
        .map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    from_request(req, limits)
}

/// Converts a decoded request, validating every span.
pub fn from_request(
    req: ExportTraceServiceRequest,
    limits: &Limits,
) -> Result<Decoded, DecodeError> {
    let mut out = Decoded::default();
    from_request_into(req, limits, &mut out)?;
    Ok(out)
}

pub(crate) fn from_request_into(
    req: ExportTraceServiceRequest,
    limits: &Limits,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    let total: usize = req
        .resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter())
        .map(|ss| ss.spans.len())
        .sum();
    if total + out.rejected > limits.max_spans_per_request {
        return Err(DecodeError::TooManySpans {
            got: total + out.rejected,
            limit: limits.max_spans_per_request,
        });
    }
    out.spans.reserve(total);
    let mut index = out.rejected;
    for rs in req.resource_spans {
        let resource = rs.resource.unwrap_or_default();
        let resource = Arc::new(Resource {
            attributes: attrs(resource.attributes),
            dropped_attributes_count: resource.dropped_attributes_count,
        });
        for ss in rs.scope_spans {
            let scope = ss.scope.unwrap_or_default();
            let scope = Arc::new(Scope {
                name: scope.name,
                version: scope.version,
                attributes: attrs(scope.attributes),
                dropped_attributes_count: scope.dropped_attributes_count,
            });
            for s in ss.spans {
                let name = s.name.clone();
                match span(s, &resource, &scope, limits) {
                    Ok(span) => out.spans.push(span),
                    Err(why) => out.reject(format!("span {index} ({name:?}): {why}")),
                }
                index += 1;
            }
        }
    }
    Ok(())
}

fn span(
    s: trace::Span,
    resource: &Arc<Resource>,
    scope: &Arc<Scope>,
    limits: &Limits,
) -> Result<Span, String> {
    let trace_id = TraceId::from_bytes(&s.trace_id).map_err(|e| format!("trace_id: {e}"))?;
    let span_id = SpanId::from_bytes(&s.span_id).map_err(|e| format!("span_id: {e}"))?;
    let parent_span_id = match s.parent_span_id.len() {
        0 => None,
        _ if s.parent_span_id.iter().all(|b| *b == 0) => None,
        _ => Some(
            SpanId::from_bytes(&s.parent_span_id).map_err(|e| format!("parent_span_id: {e}"))?,
        ),
    };
    let span = Span {
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
    };
    check_limits(&span, limits)?;
    Ok(span)
}

pub(crate) fn check_limits(s: &Span, limits: &Limits) -> Result<(), String> {
    let max_attrs = limits.max_attributes_per_span;
    let lists = std::iter::once(&s.attributes)
        .chain(s.events.iter().map(|e| &e.attributes))
        .chain(s.links.iter().map(|l| &l.attributes));
    for list in lists {
        if list.len() > max_attrs {
            return Err(format!(
                "{} attributes exceed the limit of {max_attrs} (limits.max_attributes_per_span)",
                list.len()
            ));
        }
    }
    let max = limits.max_string_bytes;
    let too_long = |what: &str, len: usize| {
        format!("{what} is {len} bytes, longer than the limit of {max} (limits.max_string_bytes)")
    };
    if s.name.len() > max {
        return Err(too_long("name", s.name.len()));
    }
    let check_kvs = |kvs: &[KeyValue]| -> Result<(), String> {
        for kv in kvs {
            if kv.key.len() > max {
                return Err(too_long("an attribute key", kv.key.len()));
            }
            let len = longest_string(&kv.value);
            if len > max {
                return Err(too_long(&format!("attribute {:?}", kv.key), len));
            }
        }
        Ok(())
    };
    check_kvs(&s.attributes)?;
    for e in &s.events {
        if e.name.len() > max {
            return Err(too_long("an event name", e.name.len()));
        }
        check_kvs(&e.attributes)?;
    }
    for l in &s.links {
        check_kvs(&l.attributes)?;
    }
    Ok(())
}

fn longest_string(v: &AnyValue) -> usize {
    match v {
        AnyValue::String(s) => s.len(),
        AnyValue::Bytes(b) => b.len(),
        AnyValue::Array(items) => items.iter().map(longest_string).max().unwrap_or(0),
        AnyValue::KvList(kvs) => kvs
            .iter()
            .map(|kv| kv.key.len().max(longest_string(&kv.value)))
            .max()
            .unwrap_or(0),
        _ => 0,
    }
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

    #[test]
    fn model_roundtrips_through_protobuf() {
        let spans = waymark_testkit::fixture_trace(1_700_000_000_000_000_000);
        let bytes = to_request(&spans).encode_to_vec();
        let d = decode_protobuf(&bytes, &Limits::default()).unwrap();
        assert_eq!(d.rejected, 0);
        assert_eq!(d.spans, spans);
    }

    #[test]
    fn invalid_ids_are_rejected_per_span() {
        let spans = waymark_testkit::fixture_trace(1_700_000_000_000_000_000);
        let mut req = to_request(&spans);
        req.resource_spans[0].scope_spans[0].spans[0].trace_id = vec![1, 2, 3, 4, 5];
        let d = from_request(req, &Limits::default()).unwrap();
        assert_eq!(d.rejected, 1);
        assert_eq!(d.spans.len(), 1);
        assert!(
            d.error_message()
                .contains("trace_id: expected 16 bytes, got 5"),
            "{}",
            d.error_message()
        );
    }

    #[test]
    fn limits_are_enforced_with_names() {
        let spans = waymark_testkit::fixture_trace(1);
        let limits = Limits {
            max_attributes_per_span: 2,
            ..Limits::default()
        };
        let d = from_request(to_request(&spans), &limits).unwrap();
        assert_eq!(d.rejected, 1, "{}", d.error_message());
        assert!(d.error_message().contains("max_attributes_per_span"));
        let limits = Limits {
            max_spans_per_request: 1,
            ..Limits::default()
        };
        let e = from_request(to_request(&spans), &limits).unwrap_err();
        assert_eq!(e, DecodeError::TooManySpans { got: 2, limit: 1 });
        let limits = Limits {
            max_string_bytes: 5,
            ..Limits::default()
        };
        let d = from_request(to_request(&spans), &limits).unwrap();
        assert_eq!(d.rejected, 2);
        assert!(d.error_message().contains("max_string_bytes"));
    }

    /// Mutated and truncated requests must decode or fail, never panic.
    #[test]
    fn mutated_bytes_never_panic() {
        let good = to_request(&waymark_testkit::fixture_trace(1)).encode_to_vec();
        let json = super::super::spans_to_otlp_json(&waymark_testkit::fixture_trace(1))
            .to_string()
            .into_bytes();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let limits = Limits::default();
        for _ in 0..3000 {
            for base in [&good, &json] {
                let mut b = base.clone();
                for _ in 0..(next() % 4 + 1) {
                    let i = (next() as usize) % b.len();
                    b[i] = next() as u8;
                }
                b.truncate((next() as usize) % (b.len() + 1));
                let _ = decode_protobuf(&b, &limits);
                let _ = super::super::decode_json(&b, &limits);
            }
        }
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let e = decode_protobuf(&[0xff, 0xff, 0xff], &Limits::default()).unwrap_err();
        assert!(matches!(e, DecodeError::Protobuf(_)));
    }
}
