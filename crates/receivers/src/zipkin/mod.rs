//! Zipkin: `POST /api/v2/spans` (JSON and protobuf) and `POST /api/v1/spans`
//! (JSON and Thrift) on port 9411, gzip accepted.
//!
//! Every encoding is first read into Zipkin's v2 model ([`ZSpan`]); v1 spans
//! are converted the way Zipkin itself converts them (core annotations give
//! the kind and endpoints; a v1 span holding both client and server sides
//! becomes a client span and a shared server span). One function then maps
//! v2 spans into the span model, as Jaeger maps them: the local endpoint's
//! service is the resource, the remote endpoint becomes `peer.*` attributes,
//! annotations become events, `debug` sets the debug flag, and an `error`
//! tag sets the error status. A shared server span keeps its id; the query
//! side's span-id deduplication gives it one of its own.

pub mod http;
pub mod json;
pub mod proto;
pub mod v1;

use std::collections::BTreeMap;
use std::sync::Arc;

use waymark_model::{
    AnyValue, Event, KeyValue, Resource, SERVICE_NAME, Scope, Span, SpanId, SpanKind, Status,
    StatusCode, TraceId,
};

use crate::{Decoded, IngestError, TooManySpans};

/// A Zipkin request that cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum ZipkinError {
    #[error("request body is not valid Zipkin JSON: {0}")]
    Json(String),
    #[error("request body is not a valid Zipkin protobuf message: {0}")]
    Protobuf(String),
    #[error("request body is not valid Zipkin Thrift: {0}")]
    Thrift(String),
    #[error(transparent)]
    TooManySpans(#[from] TooManySpans),
}

impl From<ZipkinError> for IngestError {
    fn from(e: ZipkinError) -> IngestError {
        match e {
            ZipkinError::TooManySpans(t) => IngestError::TooManySpans(t),
            other => IngestError::malformed(other),
        }
    }
}

/// Metric label of spans received over Zipkin.
pub const PROTO_ZIPKIN: &str = "zipkin";

/// Zipkin's v2 span, the common form of every Zipkin encoding.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ZSpan {
    pub trace_id: Vec<u8>,
    pub parent_id: Option<Vec<u8>>,
    pub id: Vec<u8>,
    pub kind: Option<SpanKind>,
    pub name: String,
    /// Epoch µs; 0 when absent.
    pub timestamp: u64,
    /// µs; 0 when absent.
    pub duration: u64,
    pub local: Option<ZEndpoint>,
    pub remote: Option<ZEndpoint>,
    pub annotations: Vec<(u64, String)>,
    pub tags: BTreeMap<String, String>,
    pub debug: bool,
    pub shared: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ZEndpoint {
    pub service_name: String,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub port: Option<u16>,
}

/// Decodes hex ids: 16 or 32 digits for trace ids, 16 for span ids.
pub fn hex_bytes(what: &str, s: &str, max_len: usize) -> Result<Vec<u8>, String> {
    if s.is_empty() || s.len() > 2 * max_len || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{what} {s:?} is not a hex id of up to {} digits",
            2 * max_len
        ));
    }
    let padded = format!("{:0>width$}", s, width = 2 * max_len);
    hex::decode(padded).map_err(|e| format!("{what}: {e}"))
}

fn pad(bytes: &[u8], len: usize) -> Option<Vec<u8>> {
    (bytes.len() <= len).then(|| {
        let mut v = vec![0u8; len - bytes.len()];
        v.extend_from_slice(bytes);
        v
    })
}

/// Maps v2 spans into the span model, validating each.
pub fn to_model(spans: Vec<ZSpan>, mut out: Decoded) -> Result<Decoded, ZipkinError> {
    out.expect(spans.len())?;
    // Zipkin has no instrumentation scope; an empty one renders no tags.
    let scope = Arc::new(Scope::default());
    // Spans of one service instance share one resource.
    let mut resources: Vec<Arc<Resource>> = Vec::new();
    for z in spans {
        let name = z.name.clone();
        match span(z, &scope, &mut resources) {
            Ok(s) => out.push(s),
            Err(why) => out.reject(&name, why),
        }
    }
    Ok(out.finish()?)
}

fn span(z: ZSpan, scope: &Arc<Scope>, resources: &mut Vec<Arc<Resource>>) -> Result<Span, String> {
    let trace_id = pad(&z.trace_id, 16)
        .ok_or_else(|| format!("traceId must be 8 or 16 bytes, got {}", z.trace_id.len()))
        .and_then(|b| TraceId::from_bytes(&b).map_err(|e| format!("traceId: {e}")))?;
    let span_id = pad(&z.id, 8)
        .ok_or_else(|| format!("id must be 8 bytes, got {}", z.id.len()))
        .and_then(|b| SpanId::from_bytes(&b).map_err(|e| format!("id: {e}")))?;
    let parent_span_id = match &z.parent_id {
        Some(p) if !p.is_empty() && p.iter().any(|b| *b != 0) => Some(
            pad(p, 8)
                .ok_or_else(|| format!("parentId must be 8 bytes, got {}", p.len()))
                .and_then(|b| SpanId::from_bytes(&b).map_err(|e| format!("parentId: {e}")))?,
        ),
        _ => None,
    };

    let mut res_attrs = vec![KeyValue::new(
        SERVICE_NAME,
        AnyValue::String(
            z.local
                .as_ref()
                .map(|l| l.service_name.clone())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| waymark_model::UNKNOWN_SERVICE.to_string()),
        ),
    )];
    if let Some(l) = &z.local
        && let Some(ip) = l.ipv4.as_ref().or(l.ipv6.as_ref())
    {
        res_attrs.push(KeyValue::new("ip", AnyValue::String(ip.clone())));
    }
    let resource = crate::intern_resource(resources, res_attrs);

    let mut attributes = Vec::with_capacity(z.tags.len() + 4);
    let mut status = Status::default();
    for (k, v) in z.tags {
        match k.as_str() {
            "error" => {
                status.code = StatusCode::Error;
                if !v.is_empty() && v != "true" {
                    status.message = v;
                }
            }
            "otel.status_code" if v == "OK" => status.code = StatusCode::Ok,
            "otel.status_code" if v == "ERROR" => status.code = StatusCode::Error,
            "otel.status_description" => status.message = v,
            _ => attributes.push(KeyValue::new(k, AnyValue::String(v))),
        }
    }
    if let Some(r) = &z.remote {
        if !r.service_name.is_empty() {
            attributes.push(KeyValue::new(
                "peer.service",
                AnyValue::String(r.service_name.clone()),
            ));
        }
        if let Some(ip) = &r.ipv4 {
            attributes.push(KeyValue::new("peer.ipv4", AnyValue::String(ip.clone())));
        }
        if let Some(ip) = &r.ipv6 {
            attributes.push(KeyValue::new("peer.ipv6", AnyValue::String(ip.clone())));
        }
        if let Some(p) = r.port {
            attributes.push(KeyValue::new("peer.port", AnyValue::Int(p as i64)));
        }
    }
    let start = z.timestamp.saturating_mul(1_000);
    let span = Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: String::new(),
        // W3C "sampled", plus Jaeger's debug bit.
        flags: 1 | if z.debug { 2 } else { 0 },
        name: z.name,
        kind: z.kind.unwrap_or(SpanKind::Unspecified),
        start_time_unix_nano: start,
        end_time_unix_nano: start.saturating_add(z.duration.saturating_mul(1_000)),
        attributes,
        dropped_attributes_count: 0,
        events: z
            .annotations
            .into_iter()
            .map(|(ts, value)| Event {
                time_unix_nano: ts.saturating_mul(1_000),
                name: value,
                attributes: Vec::new(),
                dropped_attributes_count: 0,
            })
            .collect(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status,
        resource,
        scope: scope.clone(),
    };
    Ok(span)
}
