//! Zipkin v2 protobuf (`zipkin.proto3.ListOfSpans`).

use std::net::{Ipv4Addr, Ipv6Addr};

use prost::Message;
use waymark_model::SpanKind;
use waymark_proto::zipkin;

use super::ZipkinError;
use super::{ZEndpoint, ZSpan, to_model};
use crate::Decoded;
use crate::Limits;

fn endpoint(e: zipkin::Endpoint) -> ZEndpoint {
    ZEndpoint {
        service_name: e.service_name.to_lowercase(),
        ipv4: <[u8; 4]>::try_from(e.ipv4.as_slice())
            .ok()
            .map(|b| Ipv4Addr::from(b).to_string()),
        ipv6: <[u8; 16]>::try_from(e.ipv6.as_slice())
            .ok()
            .map(|b| Ipv6Addr::from(b).to_string()),
        port: u16::try_from(e.port).ok().filter(|p| *p != 0),
    }
}

/// Decodes a protobuf `ListOfSpans`.
pub fn decode_v2_proto(bytes: &[u8], limits: &Limits) -> Result<Decoded, ZipkinError> {
    let list = zipkin::ListOfSpans::decode(bytes)
        .map_err(|e| ZipkinError::Protobuf(format!("expected a Zipkin ListOfSpans: {e}")))?;
    let spans = list
        .spans
        .into_iter()
        .map(|s| {
            let mut tags: Vec<(String, String)> = s.tags.into_iter().collect();
            tags.sort();
            ZSpan {
                trace_id: s.trace_id,
                parent_id: (!s.parent_id.is_empty()).then_some(s.parent_id),
                id: s.id,
                kind: match s.kind {
                    1 => Some(SpanKind::Client),
                    2 => Some(SpanKind::Server),
                    3 => Some(SpanKind::Producer),
                    4 => Some(SpanKind::Consumer),
                    _ => None,
                },
                name: s.name,
                timestamp: s.timestamp,
                duration: s.duration,
                local: s.local_endpoint.map(endpoint),
                remote: s.remote_endpoint.map(endpoint),
                annotations: s
                    .annotations
                    .into_iter()
                    .map(|a| (a.timestamp, a.value))
                    .collect(),
                tags: tags.into_iter().collect(),
                debug: s.debug,
                shared: s.shared,
            }
        })
        .collect();
    to_model(spans, Decoded::new(limits))
}
