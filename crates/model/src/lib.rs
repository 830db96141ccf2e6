//! The one span model of Waymark. Every receiver decodes its protocol into
//! these types at the edge and every read path returns them; nothing after the
//! receivers knows which protocol a span arrived in.
//!
//! The model follows OTLP's data model (typed attributes, events, links,
//! status, resource and instrumentation scope) because OTLP is the richest of
//! the protocols we accept: Jaeger and Zipkin map into it without loss.
//!
//! This crate does no I/O and has no async code.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub mod jaeger;
pub mod time;
mod value;
pub use value::{AnyValue, KeyValue, find_attr};

/// Nanoseconds since the Unix epoch, now (0 for a clock before 1970).
pub fn now_unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A 16-byte trace id. The all-zero id is invalid.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id. The all-zero id is invalid.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct SpanId(pub [u8; 8]);

/// Why an id could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("expected {expected} hex characters at most, got {got}")]
    TooLong { expected: usize, got: usize },
    #[error("not a hex string: {0:?}")]
    NotHex(String),
    #[error("id is all zeros")]
    Zero,
    #[error("expected {expected} bytes, got {got}")]
    WrongLength { expected: usize, got: usize },
}

macro_rules! id_impl {
    ($ty:ident, $n:expr) => {
        impl $ty {
            /// Length of the id in bytes.
            pub const LEN: usize = $n;

            /// True for the all-zero id, which OTLP defines as invalid.
            pub fn is_zero(&self) -> bool {
                self.0.iter().all(|b| *b == 0)
            }

            /// Lower-case hex, zero-padded to the full width.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses an id from raw bytes; the all-zero id is rejected.
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
                let arr: [u8; $n] = bytes.try_into().map_err(|_| IdError::WrongLength {
                    expected: $n,
                    got: bytes.len(),
                })?;
                let id = $ty(arr);
                if id.is_zero() {
                    return Err(IdError::Zero);
                }
                Ok(id)
            }

            /// Parses hex of up to the full width; shorter strings are
            /// left-padded with zeros (Jaeger's 64-bit trace ids). The
            /// all-zero id is rejected.
            pub fn from_hex(s: &str) -> Result<Self, IdError> {
                if s.len() > 2 * $n {
                    return Err(IdError::TooLong {
                        expected: 2 * $n,
                        got: s.len(),
                    });
                }
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(IdError::NotHex(s.to_string()));
                }
                let padded = format!("{:0>width$}", s, width = 2 * $n);
                let mut arr = [0u8; $n];
                hex::decode_to_slice(&padded, &mut arr)
                    .map_err(|_| IdError::NotHex(s.to_string()))?;
                let id = $ty(arr);
                if id.is_zero() {
                    return Err(IdError::Zero);
                }
                Ok(id)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for b in self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($ty), self)
            }
        }

        impl FromStr for $ty {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::from_hex(s)
            }
        }
    };
}

id_impl!(TraceId, 16);
id_impl!(SpanId, 8);

/// The role of a span in a call, as OTLP defines it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// OTLP's enum number.
    pub fn to_otlp(self) -> i32 {
        self as i32
    }

    /// From OTLP's enum number; unknown numbers become `Unspecified`.
    pub fn from_otlp(n: i32) -> Self {
        match n {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    /// The lower-case name Jaeger uses in the `span.kind` tag and the
    /// operations API; empty for unspecified.
    pub fn jaeger_name(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }

    /// Parses Jaeger's lower-case name (as used by `spanKind=`).
    pub fn from_jaeger_name(s: &str) -> Option<Self> {
        Some(match s {
            "" | "unspecified" => SpanKind::Unspecified,
            "internal" => SpanKind::Internal,
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            _ => return None,
        })
    }
}

/// Outcome of the operation a span describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
}

impl StatusCode {
    pub fn to_otlp(self) -> i32 {
        self as i32
    }
    pub fn from_otlp(n: i32) -> Self {
        match n {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Status {
    pub code: StatusCode,
    pub message: String,
}

/// A timestamped annotation on a span (a Jaeger log, a Zipkin annotation).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Event {
    pub time_unix_nano: u64,
    pub name: String,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
}

/// A reference from a span to another span, possibly in another trace.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Link {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub trace_state: String,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub flags: u32,
}

/// The entity that produced spans (a service instance); `service.name`
/// identifies the service.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Resource {
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
}

/// The resource attribute naming the service.
pub const SERVICE_NAME: &str = "service.name";

/// What Jaeger and OpenTelemetry call a span whose resource names no service.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

impl Resource {
    /// The service name, or [`UNKNOWN_SERVICE`] when the resource has none.
    pub fn service_name(&self) -> &str {
        match find_attr(&self.attributes, SERVICE_NAME) {
            Some(AnyValue::String(s)) if !s.is_empty() => s,
            _ => UNKNOWN_SERVICE,
        }
    }
}

/// The instrumentation library that produced a span.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Scope {
    pub name: String,
    pub version: String,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
}

/// One span. Resource and scope are shared between the spans of a batch
/// (`Arc`), and storage encodings write each distinct one once.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub trace_state: String,
    pub flags: u32,
    pub name: String,
    pub kind: SpanKind,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub events: Vec<Event>,
    pub dropped_events_count: u32,
    pub links: Vec<Link>,
    pub dropped_links_count: u32,
    pub status: Status,
    /// Skipped by serde: storage encodes resources in a table of their own.
    #[serde(skip)]
    pub resource: Arc<Resource>,
    /// Skipped by serde: storage encodes scopes in a table of their own.
    #[serde(skip)]
    pub scope: Arc<Scope>,
}

impl Span {
    /// The service that emitted this span.
    pub fn service_name(&self) -> &str {
        self.resource.service_name()
    }

    /// Duration in nanoseconds; zero when the end precedes the start.
    pub fn duration_nanos(&self) -> u64 {
        self.end_time_unix_nano
            .saturating_sub(self.start_time_unix_nano)
    }

    /// True when the span reports an error status.
    pub fn is_error(&self) -> bool {
        self.status.code == StatusCode::Error
    }
}

/// The spans of one trace, as the read path returns them. `warnings` carries
/// notes from query-side adjusters, keyed by span id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    pub trace_id: TraceId,
    pub spans: Vec<Span>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_and_pad() {
        let t = TraceId::from_hex("abc").unwrap();
        assert_eq!(t.to_hex(), "00000000000000000000000000000abc");
        assert_eq!(TraceId::from_hex(&t.to_hex()).unwrap(), t);
        assert!(matches!(TraceId::from_hex("0"), Err(IdError::Zero)));
        assert!(matches!(TraceId::from_hex("xyz"), Err(IdError::NotHex(_))));
        assert!(matches!(
            SpanId::from_hex("00112233445566778"),
            Err(IdError::TooLong { .. })
        ));
        assert!(SpanId::from_bytes(&[1, 2, 3]).is_err());
    }

    #[test]
    fn service_name_defaults() {
        let r = Resource::default();
        assert_eq!(r.service_name(), UNKNOWN_SERVICE);
        let r = Resource {
            attributes: vec![KeyValue::new(SERVICE_NAME, AnyValue::String("cart".into()))],
            ..Default::default()
        };
        assert_eq!(r.service_name(), "cart");
    }
}
