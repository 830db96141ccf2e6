//! Zipkin v1 JSON, converted into v2 spans the way Zipkin converts it: the
//! core annotations (`cs`/`cr`, `sr`/`ss`, `ms`/`mr`) give each side its
//! kind, local endpoint, start and duration; `sa`/`ca`/`ma` address
//! annotations give the remote endpoint; other binary annotations become
//! tags and other annotations stay annotations, on the side whose endpoint
//! they carry. A v1 span with both a client and a server side becomes two
//! spans sharing the id, the server one marked shared.

use serde::Deserialize;
use serde_json::Value;
use waymark_model::SpanKind;

use super::ZipkinError;
use super::json::JEndpoint;
use super::{ZEndpoint, ZSpan, hex_bytes, to_model};
use crate::Decoded;
use crate::Limits;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct V1Span {
    trace_id: String,
    id: String,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    timestamp: Option<u64>,
    #[serde(default)]
    duration: Option<u64>,
    #[serde(default)]
    debug: Option<bool>,
    #[serde(default)]
    annotations: Vec<V1Annotation>,
    #[serde(default)]
    binary_annotations: Vec<V1Binary>,
}

#[derive(Deserialize)]
struct V1Annotation {
    timestamp: u64,
    value: String,
    #[serde(default)]
    endpoint: Option<JEndpoint>,
}

#[derive(Deserialize)]
struct V1Binary {
    key: String,
    value: Value,
    #[serde(default)]
    endpoint: Option<JEndpoint>,
}

fn same(a: &Option<ZEndpoint>, b: &Option<ZEndpoint>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.service_name == b.service_name,
        _ => false,
    }
}

fn convert(s: V1Span) -> Result<Vec<ZSpan>, String> {
    let base = ZSpan {
        trace_id: hex_bytes("traceId", &s.trace_id, 16)?,
        id: hex_bytes("id", &s.id, 8)?,
        parent_id: match s.parent_id.as_deref() {
            None | Some("") => None,
            Some(p) => Some(hex_bytes("parentId", p, 8)?),
        },
        name: s.name.unwrap_or_default(),
        debug: s.debug.unwrap_or(false),
        ..Default::default()
    };
    let mut core: std::collections::HashMap<&str, (u64, Option<ZEndpoint>)> = Default::default();
    let mut others = Vec::new();
    for a in s.annotations {
        let ep = a.endpoint.map(ZEndpoint::from);
        match a.value.as_str() {
            "cs" | "cr" | "sr" | "ss" | "ms" | "mr" => {
                let key: &'static str = match a.value.as_str() {
                    "cs" => "cs",
                    "cr" => "cr",
                    "sr" => "sr",
                    "ss" => "ss",
                    "ms" => "ms",
                    _ => "mr",
                };
                core.insert(key, (a.timestamp, ep));
            }
            _ => others.push((a.timestamp, a.value, ep)),
        }
    }
    let side = |start: &str, end: &str| -> Option<(Option<u64>, Option<u64>, Option<ZEndpoint>)> {
        let s = core.get(start);
        let e = core.get(end);
        if s.is_none() && e.is_none() {
            return None;
        }
        let ep = s
            .and_then(|x| x.1.clone())
            .or_else(|| e.and_then(|x| x.1.clone()));
        Some((s.map(|x| x.0), e.map(|x| x.0), ep))
    };
    let client = side("cs", "cr");
    let server = side("sr", "ss");
    let mut out: Vec<ZSpan> = Vec::new();
    let both = client.is_some() && server.is_some();
    let mk = |kind, (start, end, ep): (Option<u64>, Option<u64>, Option<ZEndpoint>), shared| {
        let timestamp = start.or(s.timestamp).unwrap_or(0);
        let duration = match (start, end) {
            (Some(a), Some(b)) if b >= a => b - a,
            _ if !both => s.duration.unwrap_or(0),
            _ => 0,
        };
        ZSpan {
            kind: Some(kind),
            timestamp,
            duration,
            local: ep,
            shared,
            ..base.clone()
        }
    };
    if let Some(c) = client {
        out.push(mk(SpanKind::Client, c, false));
    }
    if let Some(sv) = server {
        out.push(mk(SpanKind::Server, sv, both));
    }
    if out.is_empty() {
        if let Some(p) = side("ms", "ms") {
            out.push(mk(SpanKind::Producer, p, false));
        } else if let Some(c) = side("mr", "mr") {
            out.push(mk(SpanKind::Consumer, c, false));
        }
    }
    if out.is_empty() {
        let local = others.iter().find_map(|(_, _, e)| e.clone()).or_else(|| {
            s.binary_annotations
                .iter()
                .find(|b| !matches!(b.key.as_str(), "sa" | "ca" | "ma"))
                .and_then(|b| b.endpoint.as_ref())
                .map(|e| ZEndpoint {
                    service_name: e.service_name.clone().unwrap_or_default().to_lowercase(),
                    ipv4: e.ipv4.clone(),
                    ipv6: e.ipv6.clone(),
                    port: e.port,
                })
        });
        out.push(ZSpan {
            timestamp: s.timestamp.unwrap_or(0),
            duration: s.duration.unwrap_or(0),
            local,
            ..base.clone()
        });
    }
    let pick = |out: &[ZSpan], ep: &Option<ZEndpoint>| -> usize {
        out.iter().position(|z| same(&z.local, ep)).unwrap_or(0)
    };
    for (ts, value, ep) in others {
        let i = pick(&out, &ep);
        out[i].annotations.push((ts, value));
    }
    for b in s.binary_annotations {
        let ep = b.endpoint.map(ZEndpoint::from);
        let target_kind = match b.key.as_str() {
            "sa" => Some(SpanKind::Client),
            "ca" => Some(SpanKind::Server),
            "ma" => None,
            _ => {
                let value = match b.value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                let i = pick(&out, &ep);
                out[i].tags.insert(b.key, value);
                continue;
            }
        };
        let i = match target_kind {
            Some(k) => out.iter().position(|z| z.kind == Some(k)).unwrap_or(0),
            None => 0,
        };
        if out[i].remote.is_none() {
            out[i].remote = ep;
        }
    }
    Ok(out)
}

/// Decodes a v1 Thrift body: a binary-protocol `list<zipkincore.Span>`
/// (field ids from the published zipkinCore.thrift).
pub fn decode_v1_thrift(bytes: &[u8], limits: &Limits) -> Result<Decoded, ZipkinError> {
    use crate::thrift::{Protocol, TValue, read_list};
    let list = read_list(bytes, Protocol::Binary)
        .map_err(|e| ZipkinError::Thrift(format!("expected a list of Zipkin v1 spans: {e}")))?;
    fn get(f: &[(i16, TValue)], id: i16) -> Option<&TValue> {
        f.iter().find(|(i, _)| *i == id).map(|(_, v)| v)
    }
    fn int(f: &[(i16, TValue)], id: i16) -> Option<i64> {
        match get(f, id)? {
            TValue::I64(v) => Some(*v),
            TValue::I32(v) => Some(*v as i64),
            TValue::I16(v) => Some(*v as i64),
            _ => None,
        }
    }
    fn string(f: &[(i16, TValue)], id: i16) -> Option<String> {
        match get(f, id)? {
            TValue::Binary(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
    fn endpoint(f: &[(i16, TValue)], id: i16) -> Option<JEndpoint> {
        let TValue::Struct(e) = get(f, id)? else {
            return None;
        };
        let ipv4 = int(e, 1)
            .filter(|v| *v != 0)
            .map(|v| std::net::Ipv4Addr::from(v as u32).to_string());
        let ipv6 = match get(e, 4) {
            Some(TValue::Binary(b)) if b.len() == 16 => {
                let a: [u8; 16] = b.as_slice().try_into().ok()?;
                Some(std::net::Ipv6Addr::from(a).to_string())
            }
            _ => None,
        };
        Some(JEndpoint {
            service_name: string(e, 3),
            ipv4,
            ipv6,
            port: int(e, 2).map(|p| p as u16),
        })
    }
    fn structs(v: Option<&TValue>) -> Vec<&Vec<(i16, TValue)>> {
        match v {
            Some(TValue::List(items)) => items
                .iter()
                .filter_map(|i| match i {
                    TValue::Struct(s) => Some(s),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
    let mut pre = Decoded::new(limits);
    let mut spans = Vec::new();
    for item in &list {
        let TValue::Struct(f) = item else {
            pre.reject("", "not a struct");
            continue;
        };
        let high = int(f, 12).unwrap_or(0);
        let low = int(f, 1).unwrap_or(0);
        let trace_id = if high != 0 {
            format!("{high:016x}{low:016x}")
        } else {
            format!("{low:016x}")
        };
        let v1 = V1Span {
            trace_id,
            id: format!("{:016x}", int(f, 4).unwrap_or(0)),
            parent_id: int(f, 5).filter(|p| *p != 0).map(|p| format!("{p:016x}")),
            name: string(f, 3),
            timestamp: int(f, 10).map(|t| t.max(0) as u64),
            duration: int(f, 11).map(|t| t.max(0) as u64),
            debug: match get(f, 9) {
                Some(TValue::Bool(b)) => Some(*b),
                _ => None,
            },
            annotations: structs(get(f, 6))
                .into_iter()
                .map(|a| V1Annotation {
                    timestamp: int(a, 1).unwrap_or(0).max(0) as u64,
                    value: string(a, 2).unwrap_or_default(),
                    endpoint: endpoint(a, 3),
                })
                .collect(),
            binary_annotations: structs(get(f, 8))
                .into_iter()
                .map(|b| {
                    let raw = match get(b, 2) {
                        Some(TValue::Binary(v)) => v.clone(),
                        _ => Vec::new(),
                    };
                    let be = |n: usize| -> Option<[u8; 8]> {
                        (raw.len() == n).then(|| {
                            let mut a = [0u8; 8];
                            a[8 - n..].copy_from_slice(&raw);
                            a
                        })
                    };
                    let value = match int(b, 3).unwrap_or(6) {
                        0 => Value::Bool(raw.first() == Some(&1)),
                        2..=4 => {
                            let n = match int(b, 3) {
                                Some(2) => 2,
                                Some(3) => 4,
                                _ => 8,
                            };
                            match be(n) {
                                Some(a) => {
                                    let v = i64::from_be_bytes(a);
                                    // Sign-extend the narrower widths.
                                    let shift = 64 - 8 * n as u32;
                                    Value::from((v << shift) >> shift)
                                }
                                None => Value::String(String::new()),
                            }
                        }
                        5 => be(8)
                            .map(|a| Value::from(f64::from_be_bytes(a)))
                            .unwrap_or(Value::Null),
                        1 => {
                            use base64::Engine;
                            Value::String(base64::engine::general_purpose::STANDARD.encode(&raw))
                        }
                        _ => Value::String(String::from_utf8_lossy(&raw).into_owned()),
                    };
                    V1Binary {
                        key: string(b, 1).unwrap_or_default(),
                        value,
                        endpoint: endpoint(b, 4),
                    }
                })
                .collect(),
        };
        match convert(v1) {
            Ok(z) => spans.extend(z),
            Err(why) => pre.reject("", why),
        }
    }
    to_model(spans, pre)
}

/// Decodes a v1 JSON list of spans.
pub fn decode_v1_json(bytes: &[u8], limits: &Limits) -> Result<Decoded, ZipkinError> {
    let raw: Vec<Value> = serde_json::from_slice(bytes)
        .map_err(|e| ZipkinError::Json(format!("expected a JSON list of Zipkin v1 spans: {e}")))?;
    let mut pre = Decoded::new(limits);
    let mut spans = Vec::new();
    for v in raw {
        let parsed: Result<V1Span, String> = serde_json::from_value(v).map_err(|e| e.to_string());
        match parsed.and_then(convert) {
            Ok(z) => spans.extend(z),
            Err(why) => pre.reject("", why),
        }
    }
    to_model(spans, pre)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_v1_span_becomes_client_and_server() {
        let body = br#"[{"traceId":"00000000000000aa","id":"00000000000000bb","name":"get",
          "timestamp":1000,"duration":90,
          "annotations":[
            {"timestamp":1000,"value":"cs","endpoint":{"serviceName":"front","ipv4":"10.0.0.1"}},
            {"timestamp":1010,"value":"sr","endpoint":{"serviceName":"back","ipv4":"10.0.0.2"}},
            {"timestamp":1020,"value":"cache.miss","endpoint":{"serviceName":"back"}},
            {"timestamp":1080,"value":"ss","endpoint":{"serviceName":"back"}},
            {"timestamp":1090,"value":"cr","endpoint":{"serviceName":"front"}}],
          "binaryAnnotations":[
            {"key":"http.path","value":"/x","endpoint":{"serviceName":"back"}},
            {"key":"sa","value":true,"endpoint":{"serviceName":"back","port":8080}}]}]"#;
        let d = decode_v1_json(body, &Limits::default()).unwrap();
        assert_eq!(d.rejected, 0, "{}", d.error_message());
        assert_eq!(d.spans.len(), 2);
        let c = &d.spans[0];
        let s = &d.spans[1];
        assert_eq!((c.kind, c.service_name()), (SpanKind::Client, "front"));
        assert_eq!((s.kind, s.service_name()), (SpanKind::Server, "back"));
        assert_eq!(
            c.span_id, s.span_id,
            "shared id; the query side splits them"
        );
        assert_eq!(c.duration_nanos(), 90_000);
        assert_eq!(s.duration_nanos(), 70_000);
        assert_eq!(s.events[0].name, "cache.miss");
        assert!(s.attributes.iter().any(|kv| kv.key == "http.path"));
        assert!(c.attributes.iter().any(|kv| kv.key == "peer.port"));
    }
}
