//! Jaeger's Elasticsearch documents (span, service, dependencies) as serde
//! types, and the conversion between a span document and the span model.
//!
//! # The span document
//!
//! What Jaeger's Elasticsearch writer stores, one document per span:
//!
//! | field | content |
//! |-------|---------|
//! | `traceID`, `spanID` | lower-case hex, 32 and 16 digits (older Jaeger versions wrote 16 digits for a 64-bit trace id; both are read) |
//! | `parentSpanID` | hex, absent for a root span (older versions did not write it: the parent is then the first `CHILD_OF` reference in the same trace) |
//! | `flags` | the span's trace flags, absent when zero |
//! | `operationName` | the span name |
//! | `references` | `[{refType: CHILD_OF/FOLLOWS_FROM, traceID, spanID}]`: the parent first, then the links |
//! | `startTime`, `duration` | µs; `startTimeMillis` is `startTime / 1000`, mapped as a date for range queries |
//! | `tags` | `[{key, type, value}]`, `type` one of `string`, `bool`, `int64`, `float64`, `binary`; current Jaeger writes the value as a JSON string, boolean or number, older versions always as a string; binary values are hex |
//! | `tag` | with "tags as fields", the tags chosen for it as an object: the key with every `.` replaced (`@` by default), the plain value |
//! | `logs` | `[{timestamp (µs), fields: [tags]}]` |
//! | `process` | `{serviceName, tags, tag}` from the resource |
//!
//! The model's span kind, status, trace state and scope travel as Jaeger's
//! synthetic tags, by the rules of [`waymark_model::jaeger`], except that
//! an error status is written as `error: true` alone, as Jaeger's
//! Elasticsearch writer does (it is read back either way).
//!
//! # What Jaeger cannot carry
//!
//! Times finer than a microsecond; dropped counts; link trace state, flags
//! and attributes (a link's `opentracing.ref_type` attribute chooses its
//! reference type, and reading gives every link that attribute); scope
//! attributes; the resource's dropped count; the type of array and map
//! values (they become JSON text in a string tag). Everything else
//! survives model → document → model.
//!
//! Empty lists are written as `[]` (Jaeger writes `null` for some of them;
//! both read the same, in Jaeger and in Elasticsearch).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Number, Value};
use waymark_model::jaeger::{
    REF_TYPE_ATTR, REF_TYPE_CHILD_OF, REF_TYPE_FOLLOWS_FROM, SpanTags, event_from_log, jaeger_tags,
    log_fields, process_tags,
};
use waymark_model::{
    AnyValue, KeyValue, Link, Resource, SERVICE_NAME, Scope, Span, SpanId, StatusCode, TraceId,
    find_attr,
};

/// The service name Jaeger writes for a span whose resource has no
/// attributes at all (a resource with attributes but no `service.name`
/// gets an empty service name). Both read back as "no `service.name`".
pub const NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";

/// A span document in Jaeger's Elasticsearch layout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpanDocument {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
    #[serde(
        rename = "parentSpanID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub parent_span_id: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flags: u32,
    #[serde(rename = "operationName", default)]
    pub operation_name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub references: Vec<Reference>,
    /// µs since the epoch.
    #[serde(rename = "startTime")]
    pub start_time: u64,
    /// `start_time / 1000`.
    #[serde(rename = "startTimeMillis", default)]
    pub start_time_millis: u64,
    /// µs.
    #[serde(default)]
    pub duration: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<Tag>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub tag: BTreeMap<String, Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub logs: Vec<Log>,
    #[serde(default)]
    pub process: Process,
}

/// A reference to another span.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    #[serde(rename = "refType")]
    pub ref_type: RefType,
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefType {
    #[serde(rename = "CHILD_OF")]
    ChildOf,
    #[serde(rename = "FOLLOWS_FROM")]
    FollowsFrom,
}

/// A typed tag. `type` is kept as text so that a type this code does not
/// know survives a round trip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub ty: String,
    #[serde(default)]
    pub value: Value,
}

/// A log: a timestamp (µs) and its fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Log {
    pub timestamp: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub fields: Vec<Tag>,
}

/// The process (the model's resource).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Process {
    #[serde(rename = "serviceName", default)]
    pub service_name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<Tag>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub tag: BTreeMap<String, Value>,
}

/// A service/operation pair, written to the service indices once per pair
/// (its `_id` is [`ServiceDocument::id`], so rewriting it is harmless).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceDocument {
    #[serde(rename = "serviceName")]
    pub service_name: String,
    #[serde(rename = "operationName")]
    pub operation_name: String,
}

impl ServiceDocument {
    pub fn of(doc: &SpanDocument) -> ServiceDocument {
        ServiceDocument {
            service_name: doc.process.service_name.clone(),
            operation_name: doc.operation_name.clone(),
        }
    }

    /// The document id Jaeger gives it: the 64-bit FNV-1a hash of the
    /// service name followed by the operation name, in hex without padding.
    pub fn id(&self) -> String {
        let h = fnv1a64(&[self.service_name.as_bytes(), self.operation_name.as_bytes()]);
        format!("{h:x}")
    }
}

/// The dependency links of one period, in the dependencies indices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DependenciesDocument {
    /// RFC 3339, UTC.
    pub timestamp: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub dependencies: Vec<DependencyLinkDocument>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyLinkDocument {
    pub parent: String,
    pub child: String,
    #[serde(rename = "callCount")]
    pub call_count: u64,
}

impl DependenciesDocument {
    /// The document for links computed at `ns` (since the epoch). Jaeger's
    /// document has no error count.
    pub fn new(ns: u64, links: &[waymark_storage::DependencyLink]) -> Self {
        DependenciesDocument {
            timestamp: crate::time::format_rfc3339_go(ns),
            dependencies: links
                .iter()
                .map(|l| DependencyLinkDocument {
                    parent: l.parent.clone(),
                    child: l.child.clone(),
                    call_count: l.call_count,
                })
                .collect(),
        }
    }

    /// The timestamp in ns since the epoch.
    pub fn timestamp_nanos(&self) -> Result<u64, DocumentError> {
        crate::time::parse_rfc3339(&self.timestamp)
            .ok_or_else(|| DocumentError::Timestamp(self.timestamp.clone()))
    }

    pub fn links(&self) -> Vec<waymark_storage::DependencyLink> {
        self.dependencies
            .iter()
            .map(|d| waymark_storage::DependencyLink {
                parent: d.parent.clone(),
                child: d.child.clone(),
                call_count: d.call_count,
                error_count: 0,
            })
            .collect()
    }
}

/// Why a document could not become a span.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("{field}: {source}")]
    Id {
        field: &'static str,
        #[source]
        source: waymark_model::IdError,
    },
    #[error("not an RFC 3339 timestamp: {0:?}")]
    Timestamp(String),
}

/// Jaeger's "tags as fields" option (`--es.tags-as-fields.*`): which span
/// and process tags are written to the `tag`/`process.tag` objects instead
/// of the nested `tags` lists. Binary tags always stay nested.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagsAsFields {
    /// Every tag (`--es.tags-as-fields.all`).
    pub all: bool,
    /// These keys (`--es.tags-as-fields.config-file`/`include`).
    pub keys: BTreeSet<String>,
    /// Replaces `.` in keys (`--es.tags-as-fields.dot-replacement`, `@`).
    pub dot_replacement: String,
}

impl Default for TagsAsFields {
    fn default() -> Self {
        TagsAsFields {
            all: false,
            keys: BTreeSet::new(),
            dot_replacement: "@".into(),
        }
    }
}

impl TagsAsFields {
    pub(crate) fn applies(&self, key: &str) -> bool {
        self.all || self.keys.contains(key)
    }

    pub(crate) fn field_name(&self, key: &str) -> String {
        key.replace('.', &self.dot_replacement)
    }

    fn tag_key(&self, field: &str) -> String {
        if self.dot_replacement.is_empty() {
            field.to_string()
        } else {
            field.replace(&self.dot_replacement, ".")
        }
    }

    /// Splits tags into the nested list and the flattened object.
    fn split(&self, tags: Vec<Tag>) -> (Vec<Tag>, BTreeMap<String, Value>) {
        if !self.all && self.keys.is_empty() {
            return (tags, BTreeMap::new());
        }
        let mut nested = Vec::new();
        let mut fields = BTreeMap::new();
        for t in tags {
            if t.ty != TYPE_BINARY && self.applies(&t.key) && !is_non_finite_text(&t) {
                fields.insert(self.field_name(&t.key), t.value);
            } else {
                nested.push(t);
            }
        }
        (nested, fields)
    }

    /// The nested tags followed by the flattened ones (in key order), as
    /// Jaeger's reader merges them.
    fn merge(&self, nested: &[Tag], fields: &BTreeMap<String, Value>) -> Vec<KeyValue> {
        let mut out: Vec<KeyValue> = nested.iter().map(Tag::to_model).collect();
        out.extend(
            fields
                .iter()
                .map(|(k, v)| KeyValue::new(self.tag_key(k), field_value(v))),
        );
        out
    }
}

const TYPE_STRING: &str = "string";
const TYPE_BOOL: &str = "bool";
const TYPE_INT64: &str = "int64";
const TYPE_FLOAT64: &str = "float64";
const TYPE_BINARY: &str = "binary";

impl Tag {
    /// A model attribute as a typed tag, the way Jaeger's Elasticsearch
    /// writer encodes it: strings, booleans and numbers as JSON values,
    /// bytes as hex, arrays and maps as JSON text, an empty value as `null`.
    /// A float that is a whole number is written without a fraction (as Go
    /// does); a float that is not finite as `NaN`, `+Inf` or `-Inf` text.
    pub fn from_model(kv: &KeyValue) -> Tag {
        let (ty, value) = match &kv.value {
            AnyValue::Empty => (TYPE_STRING, Value::Null),
            AnyValue::String(s) => (TYPE_STRING, Value::String(s.clone())),
            AnyValue::Bool(b) => (TYPE_BOOL, Value::Bool(*b)),
            AnyValue::Int(i) => (TYPE_INT64, Value::from(*i)),
            AnyValue::Double(d) => (TYPE_FLOAT64, float_value(*d)),
            AnyValue::Bytes(b) => (TYPE_BINARY, Value::String(hex::encode(b))),
            AnyValue::Array(_) | AnyValue::KvList(_) => {
                (TYPE_STRING, Value::String(kv.value.to_tag_string()))
            }
        };
        Tag {
            key: kv.key.clone(),
            ty: ty.into(),
            value,
        }
    }

    /// The tag as a model attribute. Values written as text (older Jaeger)
    /// are parsed by their type; a value that does not parse as its type is
    /// kept as a string rather than lost.
    pub fn to_model(&self) -> KeyValue {
        let value = match (&self.value, self.ty.as_str()) {
            (Value::Null, _) => AnyValue::Empty,
            (Value::String(s), TYPE_BOOL) => match parse_go_bool(s) {
                Some(b) => AnyValue::Bool(b),
                None => AnyValue::String(s.clone()),
            },
            (Value::String(s), TYPE_INT64) => match s.parse() {
                Ok(i) => AnyValue::Int(i),
                Err(_) => AnyValue::String(s.clone()),
            },
            (Value::String(s), TYPE_FLOAT64) => match parse_go_float(s) {
                Some(d) => AnyValue::Double(d),
                None => AnyValue::String(s.clone()),
            },
            (Value::String(s), TYPE_BINARY) => match hex::decode(s) {
                Ok(b) => AnyValue::Bytes(b),
                Err(_) => AnyValue::String(s.clone()),
            },
            (Value::String(s), _) => AnyValue::String(s.clone()),
            (Value::Number(n), TYPE_FLOAT64) => AnyValue::Double(n.as_f64().unwrap_or(0.0)),
            (Value::Number(n), TYPE_INT64) => match n.as_i64() {
                Some(i) => AnyValue::Int(i),
                None => AnyValue::Int(n.as_f64().unwrap_or(0.0) as i64),
            },
            (Value::Number(_), _) => field_value(&self.value),
            (Value::Bool(b), _) => AnyValue::Bool(*b),
            (Value::Array(_) | Value::Object(_), _) => AnyValue::String(self.value.to_string()),
        };
        KeyValue::new(self.key.clone(), value)
    }
}

/// A value of the flattened `tag` object: its JSON type is its type; a
/// number without a fraction is an int64 (so a whole float comes back as
/// an integer, in Jaeger too).
fn field_value(v: &Value) -> AnyValue {
    match v {
        Value::Null => AnyValue::Empty,
        Value::Bool(b) => AnyValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AnyValue::Int(i),
            None => AnyValue::Double(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => AnyValue::String(s.clone()),
        Value::Array(_) | Value::Object(_) => AnyValue::String(v.to_string()),
    }
}

/// Largest magnitude below which every whole f64 is exactly an i64.
const WHOLE_AS_INT_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53

fn float_value(d: f64) -> Value {
    if d.is_nan() {
        Value::String("NaN".into())
    } else if d.is_infinite() {
        Value::String(if d > 0.0 { "+Inf" } else { "-Inf" }.into())
    } else if d == d.trunc() && d.abs() < WHOLE_AS_INT_LIMIT && !(d == 0.0 && d.is_sign_negative())
    {
        Value::from(d as i64)
    } else {
        Number::from_f64(d)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

fn is_non_finite_text(t: &Tag) -> bool {
    t.ty == TYPE_FLOAT64 && t.value.is_string()
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseFloat`, including its spellings of infinity.
fn parse_go_float(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// The `traceID` values a trace may be stored under: 32 hex digits (what
/// current Jaeger and Waymark write) and, for a 64-bit id, also the 16
/// digits older Jaeger wrote. A read by trace id matches any of them.
pub fn stored_trace_ids(id: &TraceId) -> Vec<String> {
    let full = id.to_hex();
    if id.0[..8].iter().all(|b| *b == 0) {
        vec![full[16..].to_string(), full]
    } else {
        vec![full]
    }
}

/// 64-bit FNV-1a over the concatenation of `parts`.
pub(crate) fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn us(ns: u64) -> u64 {
    ns / 1_000
}

impl SpanDocument {
    /// The document Jaeger's writer would store for `span`.
    pub fn from_span(span: &Span, fields: &TagsAsFields) -> SpanDocument {
        let trace_id = span.trace_id.to_hex();
        let parent_span_id = span.parent_span_id.map(|p| p.to_hex()).unwrap_or_default();

        // The parent first, then the links; a link to the parent itself
        // gives the parent's reference its type instead of repeating it.
        let mut references = Vec::with_capacity(span.links.len() + 1);
        if !parent_span_id.is_empty() {
            references.push(Reference {
                ref_type: RefType::ChildOf,
                trace_id: trace_id.clone(),
                span_id: parent_span_id.clone(),
            });
        }
        for link in &span.links {
            let ref_type = match find_attr(&link.attributes, REF_TYPE_ATTR) {
                Some(AnyValue::String(s)) if s == REF_TYPE_CHILD_OF => RefType::ChildOf,
                _ => RefType::FollowsFrom,
            };
            let r = Reference {
                ref_type,
                trace_id: link.trace_id.to_hex(),
                span_id: link.span_id.to_hex(),
            };
            if !parent_span_id.is_empty() && r.trace_id == trace_id && r.span_id == parent_span_id {
                references[0].ref_type = ref_type;
                continue;
            }
            references.push(r);
        }

        let mut tags = jaeger_tags(span);
        if span.status.code == StatusCode::Error {
            // Jaeger's Elasticsearch writer records an error as `error: true`
            // without `otel.status_code: ERROR`.
            tags.retain(|kv| {
                !(kv.key == "otel.status_code"
                    && matches!(&kv.value, AnyValue::String(s) if s == "ERROR"))
            });
        }
        let (tags, tag) = fields.split(tags.iter().map(Tag::from_model).collect());

        let start_time = us(span.start_time_unix_nano);
        SpanDocument {
            trace_id,
            span_id: span.span_id.to_hex(),
            parent_span_id,
            flags: span.flags,
            operation_name: span.name.clone(),
            references,
            start_time,
            start_time_millis: start_time / 1_000,
            duration: us(span.duration_nanos()),
            tags,
            tag,
            logs: span
                .events
                .iter()
                .map(|e| Log {
                    timestamp: us(e.time_unix_nano),
                    fields: log_fields(e).iter().map(Tag::from_model).collect(),
                })
                .collect(),
            process: Process::from_resource(&span.resource, fields),
        }
    }

    /// The span this document describes. `fields` must name the same dot
    /// replacement the document was written with.
    pub fn to_span(&self, fields: &TagsAsFields) -> Result<Span, DocumentError> {
        let id_err = |field| move |source| DocumentError::Id { field, source };
        let trace_id = TraceId::from_hex(&self.trace_id).map_err(id_err("traceID"))?;
        let span_id = SpanId::from_hex(&self.span_id).map_err(id_err("spanID"))?;
        let mut references = Vec::with_capacity(self.references.len());
        for r in &self.references {
            references.push((
                r.ref_type,
                TraceId::from_hex(&r.trace_id).map_err(id_err("references.traceID"))?,
                SpanId::from_hex(&r.span_id).map_err(id_err("references.spanID"))?,
            ));
        }
        let parent = if self.parent_span_id.is_empty() {
            references
                .iter()
                .find(|(ty, t, _)| *ty == RefType::ChildOf && *t == trace_id)
                .map(|(_, _, s)| *s)
        } else {
            Some(SpanId::from_hex(&self.parent_span_id).map_err(id_err("parentSpanID"))?)
        };
        let mut links = Vec::new();
        let mut parent_ref_seen = false;
        for (ty, t, s) in references {
            if !parent_ref_seen && ty == RefType::ChildOf && t == trace_id && Some(s) == parent {
                parent_ref_seen = true;
                continue;
            }
            let ref_name = match ty {
                RefType::ChildOf => REF_TYPE_CHILD_OF,
                RefType::FollowsFrom => REF_TYPE_FOLLOWS_FROM,
            };
            links.push(Link {
                trace_id: t,
                span_id: s,
                attributes: vec![KeyValue::new(
                    REF_TYPE_ATTR,
                    AnyValue::String(ref_name.into()),
                )],
                ..Default::default()
            });
        }

        let t = SpanTags::from_jaeger(fields.merge(&self.tags, &self.tag));
        let scope = Scope {
            name: t.scope_name,
            version: t.scope_version,
            ..Default::default()
        };
        let start = self.start_time.saturating_mul(1_000);
        Ok(Span {
            trace_id,
            span_id,
            parent_span_id: parent,
            trace_state: t.trace_state,
            flags: self.flags,
            name: self.operation_name.clone(),
            kind: t.kind,
            start_time_unix_nano: start,
            end_time_unix_nano: start.saturating_add(self.duration.saturating_mul(1_000)),
            attributes: t.attributes,
            dropped_attributes_count: 0,
            events: self
                .logs
                .iter()
                .map(|l| {
                    event_from_log(
                        l.timestamp.saturating_mul(1_000),
                        l.fields.iter().map(Tag::to_model).collect(),
                    )
                })
                .collect(),
            dropped_events_count: 0,
            links,
            dropped_links_count: 0,
            status: t.status,
            resource: Arc::new(self.process.to_resource(fields)),
            scope: Arc::new(scope),
        })
    }
}

impl Process {
    /// The process of a resource: `service.name` is the service name (see
    /// [`NO_SERVICE_NAME`] for a resource without one), the other
    /// attributes its tags.
    pub fn from_resource(r: &Resource, fields: &TagsAsFields) -> Process {
        let service_name = match find_attr(&r.attributes, SERVICE_NAME) {
            Some(AnyValue::String(s)) => s.clone(),
            Some(other) => other.to_tag_string(),
            None if r.attributes.is_empty() => NO_SERVICE_NAME.into(),
            None => String::new(),
        };
        let (tags, tag) = fields.split(process_tags(r).map(Tag::from_model).collect());
        Process {
            service_name,
            tags,
            tag,
        }
    }

    pub fn to_resource(&self, fields: &TagsAsFields) -> Resource {
        let mut attributes = Vec::with_capacity(self.tags.len() + self.tag.len() + 1);
        if !self.service_name.is_empty() && self.service_name != NO_SERVICE_NAME {
            attributes.push(KeyValue::new(
                SERVICE_NAME,
                AnyValue::String(self.service_name.clone()),
            ));
        }
        attributes.extend(fields.merge(&self.tags, &self.tag));
        Resource {
            attributes,
            dropped_attributes_count: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_known_values() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&[b"foo", b"bar"]), fnv1a64(&[b"foobar"]));
    }

    #[test]
    fn trace_id_forms() {
        let short = TraceId::from_hex("a3ce929d0e0e4736").unwrap();
        assert_eq!(
            stored_trace_ids(&short),
            ["a3ce929d0e0e4736", "0000000000000000a3ce929d0e0e4736"]
        );
        let long = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        assert_eq!(
            stored_trace_ids(&long),
            ["4bf92f3577b34da6a3ce929d0e0e4736"]
        );
    }

    #[test]
    fn floats_like_go() {
        assert_eq!(float_value(72.0).to_string(), "72");
        assert_eq!(float_value(72.5).to_string(), "72.5");
        assert_eq!(float_value(f64::NAN), Value::String("NaN".into()));
        assert_eq!(float_value(f64::NEG_INFINITY), Value::String("-Inf".into()));
        let t = Tag::from_model(&KeyValue::new("x", AnyValue::Double(f64::INFINITY)));
        assert_eq!(t.to_model().value, AnyValue::Double(f64::INFINITY));
    }

    #[test]
    fn text_values_of_older_jaeger() {
        let tag = |ty: &str, v: &str| Tag {
            key: "k".into(),
            ty: ty.into(),
            value: Value::String(v.into()),
        };
        assert_eq!(tag("bool", "true").to_model().value, AnyValue::Bool(true));
        assert_eq!(tag("int64", "-7").to_model().value, AnyValue::Int(-7));
        assert_eq!(
            tag("float64", "1.5").to_model().value,
            AnyValue::Double(1.5)
        );
        assert_eq!(
            tag("binary", "00ff").to_model().value,
            AnyValue::Bytes(vec![0, 255])
        );
        // Not parseable as its type: kept as the text.
        assert_eq!(
            tag("int64", "many").to_model().value,
            AnyValue::String("many".into())
        );
    }
}
