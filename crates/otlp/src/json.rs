//! OTLP/JSON, both directions.
//!
//! Reading follows the OTLP/JSON rules: ids are hex strings, field names are
//! lowerCamelCase (the original snake_case names are accepted too), 64-bit
//! integers may be strings or numbers, enums are integers (their names are
//! accepted too), unknown fields are ignored and `null` means "not set".
//! Writing produces the canonical form: camelCase, 64-bit integers as
//! strings, enums as integers, default values left out.

use base64::Engine;
use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::{Map, Value, json};
use waymark_model::{AnyValue, KeyValue, Span, SpanKind};
use waymark_proto::otlp::{common, resource, trace};

use crate::{InvalidSpan, SpanOutput, proto};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// OTLP/JSON that is not a valid `ExportTraceServiceRequest`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JsonError(#[from] serde_json::Error);

/// Decodes an OTLP/JSON `ExportTraceServiceRequest` and converts its spans
/// into `out`. A span whose ids are not valid hex is reported like any
/// other span that cannot be converted.
pub fn decode_json(bytes: &[u8], out: &mut impl SpanOutput) -> Result<(), JsonError> {
    let req: JRequest = serde_json::from_slice(bytes)?;
    let total = req
        .resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter())
        .map(|ss| ss.spans.len())
        .sum();
    out.reserve(total);
    let mut index = 0usize;
    for rs in req.resource_spans {
        let r = rs.resource.unwrap_or_default();
        let resource = proto::resource(resource::Resource {
            attributes: kvs(r.attributes),
            dropped_attributes_count: r.dropped_attributes_count as u32,
        });
        for ss in rs.scope_spans {
            let sc = ss.scope.unwrap_or_default();
            let scope = proto::scope(common::InstrumentationScope {
                name: sc.name,
                version: sc.version,
                attributes: kvs(sc.attributes),
                dropped_attributes_count: sc.dropped_attributes_count as u32,
            });
            for s in ss.spans {
                let name = s.name.clone();
                match span(s) {
                    Ok(s) => proto::convert_into(s, index, &resource, &scope, out),
                    Err(reason) => out.invalid(InvalidSpan {
                        index,
                        name,
                        reason,
                    }),
                }
                index += 1;
            }
        }
    }
    Ok(())
}

fn hex_id(what: &str, s: &str, len: usize, optional: bool) -> Result<Vec<u8>, String> {
    if s.is_empty() && optional {
        return Ok(Vec::new());
    }
    if s.len() != 2 * len || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{what} {s:?} is not {} hex characters", 2 * len));
    }
    hex::decode(s).map_err(|e| format!("{what}: {e}"))
}

fn span(s: JSpan) -> Result<trace::Span, String> {
    Ok(trace::Span {
        trace_id: hex_id("traceId", &s.trace_id, 16, false)?,
        span_id: hex_id("spanId", &s.span_id, 8, false)?,
        trace_state: s.trace_state,
        parent_span_id: hex_id("parentSpanId", &s.parent_span_id, 8, true)?,
        flags: s.flags as u32,
        name: s.name,
        kind: s.kind.0,
        start_time_unix_nano: s.start_time_unix_nano,
        end_time_unix_nano: s.end_time_unix_nano,
        attributes: kvs(s.attributes),
        dropped_attributes_count: s.dropped_attributes_count as u32,
        events: s
            .events
            .into_iter()
            .map(|e| trace::span::Event {
                time_unix_nano: e.time_unix_nano,
                name: e.name,
                attributes: kvs(e.attributes),
                dropped_attributes_count: e.dropped_attributes_count as u32,
            })
            .collect(),
        dropped_events_count: s.dropped_events_count as u32,
        links: s
            .links
            .into_iter()
            .map(|l| {
                Ok(trace::span::Link {
                    trace_id: hex_id("link traceId", &l.trace_id, 16, false)?,
                    span_id: hex_id("link spanId", &l.span_id, 8, false)?,
                    trace_state: l.trace_state,
                    attributes: kvs(l.attributes),
                    dropped_attributes_count: l.dropped_attributes_count as u32,
                    flags: l.flags as u32,
                })
            })
            .collect::<Result<_, String>>()?,
        dropped_links_count: s.dropped_links_count as u32,
        status: s.status.map(|st| trace::Status {
            message: st.message,
            code: st.code.0,
        }),
    })
}

fn kvs(list: Vec<JKeyValue>) -> Vec<common::KeyValue> {
    list.into_iter()
        .map(|kv| common::KeyValue {
            key: kv.key,
            value: kv.value.map(any),
        })
        .collect()
}

fn any(v: JAnyValue) -> common::AnyValue {
    use common::any_value::Value as V;
    let value = if let Some(s) = v.string_value {
        Some(V::StringValue(s))
    } else if let Some(b) = v.bool_value {
        Some(V::BoolValue(b))
    } else if let Some(i) = v.int_value {
        Some(V::IntValue(i.0))
    } else if let Some(d) = v.double_value {
        Some(V::DoubleValue(d.0))
    } else if let Some(a) = v.array_value {
        Some(V::ArrayValue(common::ArrayValue {
            values: a.values.into_iter().map(any).collect(),
        }))
    } else if let Some(l) = v.kvlist_value {
        Some(V::KvlistValue(common::KeyValueList {
            values: kvs(l.values),
        }))
    } else {
        v.bytes_value.map(|b| V::BytesValue(b.0))
    };
    common::AnyValue { value }
}

// ---- JSON shapes -------------------------------------------------------

fn nd<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A 64-bit integer written as a JSON number or a decimal string.
#[derive(Default)]
struct Int<T>(T);

impl<'de, T> Deserialize<'de> for Int<T>
where
    T: std::str::FromStr + TryFrom<i128> + Default,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(Int(T::default())),
            Value::Number(n) => {
                let wide: Option<i128> = n
                    .as_u64()
                    .map(i128::from)
                    .or_else(|| n.as_i64().map(i128::from))
                    .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i128));
                wide.and_then(|w| T::try_from(w).ok())
                    .map(Int)
                    .ok_or_else(|| de::Error::custom(format!("integer out of range: {n}")))
            }
            Value::String(s) => s
                .parse::<T>()
                .map(Int)
                .map_err(|_| de::Error::custom(format!("expected an integer, got {s:?}"))),
            other => Err(de::Error::custom(format!(
                "expected an integer, got {other}"
            ))),
        }
    }
}

fn int_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Int::<u64>::deserialize(d).map(|i| i.0)
}
fn int_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Int::<u32>::deserialize(d).map(|i| i.0 as u64)
}

/// A double written as a number or as a string ("NaN", "Infinity", "1.5").
#[derive(Default)]
struct Double(f64);

impl<'de> Deserialize<'de> for Double {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => Ok(Double(n.as_f64().unwrap_or(0.0))),
            Value::String(s) => match s.as_str() {
                "NaN" => Ok(Double(f64::NAN)),
                "Infinity" => Ok(Double(f64::INFINITY)),
                "-Infinity" => Ok(Double(f64::NEG_INFINITY)),
                _ => s
                    .parse()
                    .map(Double)
                    .map_err(|_| de::Error::custom(format!("expected a number, got {s:?}"))),
            },
            other => Err(de::Error::custom(format!("expected a number, got {other}"))),
        }
    }
}

struct B64Bytes(Vec<u8>);

impl<'de> Deserialize<'de> for B64Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        B64.decode(s.as_bytes())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s.as_bytes()))
            .map(B64Bytes)
            .map_err(|e| de::Error::custom(format!("bytesValue is not base64: {e}")))
    }
}

/// An enum given as its number or its name.
#[derive(Default)]
struct Enum<const K: u8>(i32);

impl<'de, const K: u8> Deserialize<'de> for Enum<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(Enum(0)),
            Value::Number(n) => n
                .as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .map(Enum)
                .ok_or_else(|| de::Error::custom(format!("invalid enum value {n}"))),
            Value::String(s) => {
                let names: &[&str] = if K == 0 {
                    &[
                        "SPAN_KIND_UNSPECIFIED",
                        "SPAN_KIND_INTERNAL",
                        "SPAN_KIND_SERVER",
                        "SPAN_KIND_CLIENT",
                        "SPAN_KIND_PRODUCER",
                        "SPAN_KIND_CONSUMER",
                    ]
                } else {
                    &["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"]
                };
                names
                    .iter()
                    .position(|n| *n == s)
                    .map(|i| Enum(i as i32))
                    .or_else(|| s.parse().ok().map(Enum))
                    .ok_or_else(|| de::Error::custom(format!("unknown enum name {s:?}")))
            }
            other => Err(de::Error::custom(format!("invalid enum value {other}"))),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JRequest {
    #[serde(default, deserialize_with = "nd", alias = "resource_spans")]
    resource_spans: Vec<JResourceSpans>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JResourceSpans {
    #[serde(default)]
    resource: Option<JResource>,
    #[serde(default, deserialize_with = "nd", alias = "scope_spans")]
    scope_spans: Vec<JScopeSpans>,
    // Read so that a wrongly typed value is refused like before; the model
    // keeps no schema URL.
    #[serde(default, deserialize_with = "nd", alias = "schema_url")]
    #[allow(dead_code)]
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JResource {
    #[serde(default, deserialize_with = "nd")]
    attributes: Vec<JKeyValue>,
    #[serde(
        default,
        deserialize_with = "int_u32",
        alias = "dropped_attributes_count"
    )]
    dropped_attributes_count: u64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JScopeSpans {
    #[serde(default)]
    scope: Option<JScope>,
    #[serde(default, deserialize_with = "nd")]
    spans: Vec<JSpan>,
    // Read so that a wrongly typed value is refused like before; the model
    // keeps no schema URL.
    #[serde(default, deserialize_with = "nd", alias = "schema_url")]
    #[allow(dead_code)]
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JScope {
    #[serde(default, deserialize_with = "nd")]
    name: String,
    #[serde(default, deserialize_with = "nd")]
    version: String,
    #[serde(default, deserialize_with = "nd")]
    attributes: Vec<JKeyValue>,
    #[serde(
        default,
        deserialize_with = "int_u32",
        alias = "dropped_attributes_count"
    )]
    dropped_attributes_count: u64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JSpan {
    #[serde(default, deserialize_with = "nd", alias = "trace_id")]
    trace_id: String,
    #[serde(default, deserialize_with = "nd", alias = "span_id")]
    span_id: String,
    #[serde(default, deserialize_with = "nd", alias = "trace_state")]
    trace_state: String,
    #[serde(default, deserialize_with = "nd", alias = "parent_span_id")]
    parent_span_id: String,
    #[serde(default, deserialize_with = "int_u32")]
    flags: u64,
    #[serde(default, deserialize_with = "nd")]
    name: String,
    #[serde(default)]
    kind: Enum<0>,
    #[serde(default, deserialize_with = "int_u64", alias = "start_time_unix_nano")]
    start_time_unix_nano: u64,
    #[serde(default, deserialize_with = "int_u64", alias = "end_time_unix_nano")]
    end_time_unix_nano: u64,
    #[serde(default, deserialize_with = "nd")]
    attributes: Vec<JKeyValue>,
    #[serde(
        default,
        deserialize_with = "int_u32",
        alias = "dropped_attributes_count"
    )]
    dropped_attributes_count: u64,
    #[serde(default, deserialize_with = "nd")]
    events: Vec<JEvent>,
    #[serde(default, deserialize_with = "int_u32", alias = "dropped_events_count")]
    dropped_events_count: u64,
    #[serde(default, deserialize_with = "nd")]
    links: Vec<JLink>,
    #[serde(default, deserialize_with = "int_u32", alias = "dropped_links_count")]
    dropped_links_count: u64,
    #[serde(default)]
    status: Option<JStatus>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JEvent {
    #[serde(default, deserialize_with = "int_u64", alias = "time_unix_nano")]
    time_unix_nano: u64,
    #[serde(default, deserialize_with = "nd")]
    name: String,
    #[serde(default, deserialize_with = "nd")]
    attributes: Vec<JKeyValue>,
    #[serde(
        default,
        deserialize_with = "int_u32",
        alias = "dropped_attributes_count"
    )]
    dropped_attributes_count: u64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JLink {
    #[serde(default, deserialize_with = "nd", alias = "trace_id")]
    trace_id: String,
    #[serde(default, deserialize_with = "nd", alias = "span_id")]
    span_id: String,
    #[serde(default, deserialize_with = "nd", alias = "trace_state")]
    trace_state: String,
    #[serde(default, deserialize_with = "nd")]
    attributes: Vec<JKeyValue>,
    #[serde(
        default,
        deserialize_with = "int_u32",
        alias = "dropped_attributes_count"
    )]
    dropped_attributes_count: u64,
    #[serde(default, deserialize_with = "int_u32")]
    flags: u64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JStatus {
    #[serde(default, deserialize_with = "nd")]
    message: String,
    #[serde(default)]
    code: Enum<1>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JKeyValue {
    #[serde(default, deserialize_with = "nd")]
    key: String,
    #[serde(default)]
    value: Option<JAnyValue>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct JAnyValue {
    #[serde(default, alias = "string_value")]
    string_value: Option<String>,
    #[serde(default, alias = "bool_value")]
    bool_value: Option<bool>,
    #[serde(default, alias = "int_value")]
    int_value: Option<Int<i64>>,
    #[serde(default, alias = "double_value")]
    double_value: Option<Double>,
    #[serde(default, alias = "array_value")]
    array_value: Option<JArray>,
    #[serde(default, alias = "kvlist_value")]
    kvlist_value: Option<JKvList>,
    #[serde(default, alias = "bytes_value")]
    bytes_value: Option<B64Bytes>,
}

#[derive(Deserialize, Default)]
struct JArray {
    #[serde(default, deserialize_with = "nd")]
    values: Vec<JAnyValue>,
}

#[derive(Deserialize, Default)]
struct JKvList {
    #[serde(default, deserialize_with = "nd")]
    values: Vec<JKeyValue>,
}

// ---- writing -----------------------------------------------------------

/// Renders spans as an OTLP/JSON `TracesData` object
/// (`{"resourceSpans":[...]}`), grouping spans by resource and scope.
pub fn spans_to_otlp_json(spans: &[Span]) -> Value {
    let mut resources: Vec<(&Span, Vec<(&Span, Vec<Value>)>)> = Vec::new();
    for s in spans {
        let ri = match resources.iter().position(|(r, _)| {
            std::sync::Arc::ptr_eq(&r.resource, &s.resource) || r.resource == s.resource
        }) {
            Some(i) => i,
            None => {
                resources.push((s, Vec::new()));
                resources.len() - 1
            }
        };
        let scopes = &mut resources[ri].1;
        let si = match scopes
            .iter()
            .position(|(sc, _)| std::sync::Arc::ptr_eq(&sc.scope, &s.scope) || sc.scope == s.scope)
        {
            Some(i) => i,
            None => {
                scopes.push((s, Vec::new()));
                scopes.len() - 1
            }
        };
        scopes[si].1.push(span_json(s));
    }
    let resource_spans: Vec<Value> = resources
        .into_iter()
        .map(|(r, scopes)| {
            let mut res = Map::new();
            res.insert("attributes".into(), kvs_json(&r.resource.attributes));
            if r.resource.dropped_attributes_count > 0 {
                res.insert(
                    "droppedAttributesCount".into(),
                    json!(r.resource.dropped_attributes_count),
                );
            }
            let scope_spans: Vec<Value> = scopes
                .into_iter()
                .map(|(sc, spans)| {
                    let mut scope = Map::new();
                    scope.insert("name".into(), json!(sc.scope.name));
                    if !sc.scope.version.is_empty() {
                        scope.insert("version".into(), json!(sc.scope.version));
                    }
                    if !sc.scope.attributes.is_empty() {
                        scope.insert("attributes".into(), kvs_json(&sc.scope.attributes));
                    }
                    json!({"scope": scope, "spans": spans})
                })
                .collect();
            json!({"resource": res, "scopeSpans": scope_spans})
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}

fn span_json(s: &Span) -> Value {
    let mut m = Map::new();
    m.insert("traceId".into(), json!(s.trace_id.to_hex()));
    m.insert("spanId".into(), json!(s.span_id.to_hex()));
    if !s.trace_state.is_empty() {
        m.insert("traceState".into(), json!(s.trace_state));
    }
    if let Some(p) = s.parent_span_id {
        m.insert("parentSpanId".into(), json!(p.to_hex()));
    }
    if s.flags != 0 {
        m.insert("flags".into(), json!(s.flags));
    }
    m.insert("name".into(), json!(s.name));
    m.insert("kind".into(), json!(span_kind_num(s.kind)));
    m.insert(
        "startTimeUnixNano".into(),
        json!(s.start_time_unix_nano.to_string()),
    );
    m.insert(
        "endTimeUnixNano".into(),
        json!(s.end_time_unix_nano.to_string()),
    );
    m.insert("attributes".into(), kvs_json(&s.attributes));
    if s.dropped_attributes_count > 0 {
        m.insert(
            "droppedAttributesCount".into(),
            json!(s.dropped_attributes_count),
        );
    }
    if !s.events.is_empty() {
        let events: Vec<Value> = s
            .events
            .iter()
            .map(|e| {
                let mut ev = json!({
                    "timeUnixNano": e.time_unix_nano.to_string(),
                    "name": e.name,
                    "attributes": kvs_json(&e.attributes),
                });
                if e.dropped_attributes_count > 0 {
                    ev["droppedAttributesCount"] = json!(e.dropped_attributes_count);
                }
                ev
            })
            .collect();
        m.insert("events".into(), Value::Array(events));
    }
    if s.dropped_events_count > 0 {
        m.insert("droppedEventsCount".into(), json!(s.dropped_events_count));
    }
    if !s.links.is_empty() {
        let links: Vec<Value> = s
            .links
            .iter()
            .map(|l| {
                let mut lk = json!({
                    "traceId": l.trace_id.to_hex(),
                    "spanId": l.span_id.to_hex(),
                    "attributes": kvs_json(&l.attributes),
                });
                if !l.trace_state.is_empty() {
                    lk["traceState"] = json!(l.trace_state);
                }
                if l.flags != 0 {
                    lk["flags"] = json!(l.flags);
                }
                if l.dropped_attributes_count > 0 {
                    lk["droppedAttributesCount"] = json!(l.dropped_attributes_count);
                }
                lk
            })
            .collect();
        m.insert("links".into(), Value::Array(links));
    }
    if s.dropped_links_count > 0 {
        m.insert("droppedLinksCount".into(), json!(s.dropped_links_count));
    }
    let mut status = Map::new();
    if !s.status.message.is_empty() {
        status.insert("message".into(), json!(s.status.message));
    }
    if s.status.code.to_otlp() != 0 {
        status.insert("code".into(), json!(s.status.code.to_otlp()));
    }
    m.insert("status".into(), Value::Object(status));
    Value::Object(m)
}

fn span_kind_num(k: SpanKind) -> i32 {
    k.to_otlp()
}

fn kvs_json(kvs: &[KeyValue]) -> Value {
    Value::Array(
        kvs.iter()
            .map(|kv| json!({"key": kv.key, "value": any_json(&kv.value)}))
            .collect(),
    )
}

/// One OTLP/JSON `AnyValue`.
pub fn any_json(v: &AnyValue) -> Value {
    match v {
        AnyValue::Empty => json!({}),
        AnyValue::String(s) => json!({ "stringValue": s }),
        AnyValue::Bool(b) => json!({ "boolValue": b }),
        AnyValue::Int(i) => json!({ "intValue": i.to_string() }),
        AnyValue::Double(d) if d.is_finite() => json!({ "doubleValue": d }),
        AnyValue::Double(d) => {
            json!({ "doubleValue": if d.is_nan() { "NaN" } else if *d > 0.0 { "Infinity" } else { "-Infinity" } })
        }
        AnyValue::Bytes(b) => json!({ "bytesValue": B64.encode(b) }),
        AnyValue::Array(items) => {
            json!({ "arrayValue": { "values": items.iter().map(any_json).collect::<Vec<_>>() } })
        }
        AnyValue::KvList(kvs) => json!({ "kvlistValue": { "values": kvs_json(kvs) } }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Collected;

    #[test]
    fn json_roundtrip_of_fixture() {
        let spans = waymark_testkit::fixture_trace(1_700_000_000_123_456_789);
        let text = spans_to_otlp_json(&spans).to_string();
        let mut d = Collected::default();
        decode_json(text.as_bytes(), &mut d).unwrap();
        assert!(d.invalid.is_empty(), "{:?}", d.invalid);
        assert_eq!(d.spans, spans);
    }

    #[test]
    fn accepts_numbers_strings_names_and_snake_case() {
        let body = r#"{"resource_spans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
          "scopeSpans":[{"scope":null,"spans":[
            {"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"a",
             "kind":"SPAN_KIND_SERVER","startTimeUnixNano":1000,"end_time_unix_nano":"2000",
             "attributes":[{"key":"n","value":{"intValue":"9007199254740993"}},{"key":"d","value":{"doubleValue":"NaN"}}],
             "status":{"code":2,"message":"bad"}, "unknownField": 1},
            {"traceId":"xyz","spanId":"0102030405060708","name":"bad"}
          ]}]}]}"#;
        let mut d = Collected::default();
        decode_json(body.as_bytes(), &mut d).unwrap();
        assert_eq!(d.spans.len(), 1);
        assert_eq!(d.invalid.len(), 1);
        assert_eq!(d.invalid[0].index, 1);
        assert!(
            d.invalid[0]
                .to_string()
                .contains(r#"traceId "xyz" is not 32 hex characters"#),
            "{}",
            d.invalid[0]
        );
        let s = &d.spans[0];
        assert_eq!(s.kind, SpanKind::Server);
        assert_eq!(s.end_time_unix_nano, 2000);
        assert_eq!(s.attributes[0].value, AnyValue::Int(9_007_199_254_740_993));
        assert_eq!(s.service_name(), "svc");
        assert!(s.is_error());
    }

    #[test]
    fn invalid_json_names_the_problem() {
        let e = decode_json(b"{\"resourceSpans\": [", &mut Collected::default()).unwrap_err();
        assert!(e.to_string().contains("EOF"), "{e}");
        let e = decode_json(
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}"#,
            &mut Collected::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("soon"), "{e}");
    }
}
