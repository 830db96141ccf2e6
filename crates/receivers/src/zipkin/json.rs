//! Zipkin v2 JSON: a list of spans with hex ids, µs times and string tags.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use waymark_model::SpanKind;

use super::ZipkinError;
use super::{ZEndpoint, ZSpan, hex_bytes, to_model};
use crate::Decoded;
use crate::Limits;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JEndpoint {
    #[serde(default)]
    pub service_name: Option<String>,
    #[serde(default)]
    pub ipv4: Option<String>,
    #[serde(default)]
    pub ipv6: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
}

impl From<JEndpoint> for ZEndpoint {
    fn from(e: JEndpoint) -> Self {
        ZEndpoint {
            service_name: e.service_name.unwrap_or_default().to_lowercase(),
            ipv4: e.ipv4,
            ipv6: e.ipv6,
            port: e.port.filter(|p| *p != 0),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JSpan {
    trace_id: String,
    id: String,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    timestamp: Option<u64>,
    #[serde(default)]
    duration: Option<u64>,
    #[serde(default)]
    local_endpoint: Option<JEndpoint>,
    #[serde(default)]
    remote_endpoint: Option<JEndpoint>,
    #[serde(default)]
    annotations: Option<Vec<JAnnotation>>,
    #[serde(default)]
    tags: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    debug: Option<bool>,
    #[serde(default)]
    shared: Option<bool>,
}

#[derive(Deserialize)]
struct JAnnotation {
    timestamp: u64,
    value: String,
}

/// Zipkin's kind names.
pub fn kind(s: &str) -> Option<SpanKind> {
    match s {
        "CLIENT" => Some(SpanKind::Client),
        "SERVER" => Some(SpanKind::Server),
        "PRODUCER" => Some(SpanKind::Producer),
        "CONSUMER" => Some(SpanKind::Consumer),
        _ => None,
    }
}

fn convert(s: JSpan) -> Result<ZSpan, String> {
    Ok(ZSpan {
        trace_id: hex_bytes("traceId", &s.trace_id, 16)?,
        id: hex_bytes("id", &s.id, 8)?,
        parent_id: match s.parent_id.as_deref() {
            None | Some("") => None,
            Some(p) => Some(hex_bytes("parentId", p, 8)?),
        },
        kind: match s.kind.as_deref() {
            None => None,
            Some(k) => Some(kind(k).ok_or_else(|| format!("unknown kind {k:?}"))?),
        },
        name: s.name.unwrap_or_default(),
        timestamp: s.timestamp.unwrap_or(0),
        duration: s.duration.unwrap_or(0),
        local: s.local_endpoint.map(Into::into),
        remote: s.remote_endpoint.map(Into::into),
        annotations: s
            .annotations
            .unwrap_or_default()
            .into_iter()
            .map(|a| (a.timestamp, a.value))
            .collect(),
        tags: s
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect(),
        debug: s.debug.unwrap_or(false),
        shared: s.shared.unwrap_or(false),
    })
}

/// Decodes a v2 JSON list of spans. Spans with bad ids are rejected one by
/// one; a body that is not a JSON list of span objects is refused whole.
pub fn decode_v2_json(bytes: &[u8], limits: &Limits) -> Result<Decoded, ZipkinError> {
    let raw: Vec<Value> = serde_json::from_slice(bytes)
        .map_err(|e| ZipkinError::Json(format!("expected a JSON list of Zipkin v2 spans: {e}")))?;
    let mut pre = Decoded::new(limits);
    let mut spans = Vec::with_capacity(raw.len());
    for v in raw {
        let parsed: Result<JSpan, String> = serde_json::from_value(v).map_err(|e| e.to_string());
        match parsed.and_then(convert) {
            Ok(z) => spans.push(z),
            Err(why) => pre.reject("", why),
        }
    }
    to_model(spans, pre)
}

#[cfg(test)]
mod tests {
    use super::*;
    use waymark_model::{AnyValue, StatusCode};

    #[test]
    fn v2_json_maps_like_jaeger() {
        let body = br#"[{"traceId":"86154a4ba6e91385","parentId":"86154a4ba6e91385","id":"4d1e00c0db9010db",
          "kind":"CLIENT","name":"get /api","timestamp":1472470996199000,"duration":207000,
          "localEndpoint":{"serviceName":"Frontend","ipv4":"127.0.0.1"},
          "remoteEndpoint":{"serviceName":"backend","ipv4":"192.168.99.101","port":9000},
          "annotations":[{"timestamp":1472470996238000,"value":"foo"}],
          "tags":{"http.path":"/api","clnt/finagle.version":"6.45.0","error":"timeout"},"debug":true},
          {"traceId":"xyz","id":"1"}]"#;
        let d = decode_v2_json(body, &Limits::default()).unwrap();
        assert_eq!(d.rejected, 1, "{}", d.error_message());
        let s = &d.spans[0];
        assert_eq!(s.trace_id.to_hex(), "000000000000000086154a4ba6e91385");
        assert_eq!(s.service_name(), "frontend");
        assert_eq!(s.kind, SpanKind::Client);
        assert_eq!(s.start_time_unix_nano, 1_472_470_996_199_000_000);
        assert_eq!(s.duration_nanos(), 207_000_000);
        assert_eq!(s.flags, 3, "sampled + debug");
        assert_eq!(s.status.code, StatusCode::Error);
        assert_eq!(s.status.message, "timeout");
        assert_eq!(s.events[0].name, "foo");
        assert!(s.attributes.contains(&waymark_model::KeyValue::new(
            "peer.port",
            AnyValue::Int(9000)
        )));
        assert!(s.attributes.contains(&waymark_model::KeyValue::new(
            "peer.service",
            AnyValue::String("backend".into())
        )));
        assert_eq!(
            s.resource.attributes[1].value,
            AnyValue::String("127.0.0.1".into())
        );
    }

    #[test]
    fn timestamps_near_the_end_of_time_saturate() {
        // Found by fuzz/zipkin_v1_thrift: start + duration overflowed.
        let body =
            br#"[{"traceId":"1","id":"2","timestamp":18446744073709551,"duration":9000000000000}]"#;
        let d = decode_v2_json(body, &Limits::default()).unwrap();
        let s = &d.spans[0];
        assert!(s.end_time_unix_nano >= s.start_time_unix_nano);
        assert_eq!(s.end_time_unix_nano, u64::MAX);
    }

    #[test]
    fn not_a_list_is_refused() {
        assert!(matches!(
            decode_v2_json(b"{}", &Limits::default()),
            Err(ZipkinError::Json(_))
        ));
    }
}
