//! Jaeger's native protocols: Thrift `Agent.emitBatch` over UDP (compact
//! protocol on 6831, binary on 6832) and Thrift `Batch` over HTTP
//! (`POST /api/traces` on 14268). The decoders are pure functions of bytes.

pub mod batch;
pub mod grpc;
pub mod http;
pub mod udp;

use crate::thrift::{Protocol, TValue, read_message, read_struct};
use crate::{Decoded, IngestError, Limits, TooManySpans};

/// A Jaeger request that cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum JaegerError {
    #[error("request body is not valid Jaeger Thrift: {0}")]
    Thrift(String),
    #[error(transparent)]
    TooManySpans(#[from] TooManySpans),
}

impl From<JaegerError> for IngestError {
    fn from(e: JaegerError) -> IngestError {
        match e {
            JaegerError::TooManySpans(t) => IngestError::TooManySpans(t),
            other => IngestError::malformed(other),
        }
    }
}

/// Metric labels.
pub const PROTO_UDP_COMPACT: &str = "jaeger_udp_compact";
pub const PROTO_UDP_BINARY: &str = "jaeger_udp_binary";
pub const PROTO_HTTP: &str = "jaeger_http";

/// Largest UDP packet a Jaeger client sends (and we read).
pub const MAX_PACKET: usize = 65_000;

/// Decodes one agent packet: an `Agent.emitBatch` message.
pub fn decode_agent_packet(
    bytes: &[u8],
    protocol: Protocol,
    limits: &Limits,
) -> Result<Decoded, JaegerError> {
    let msg = read_message(bytes, protocol).map_err(|e| JaegerError::Thrift(e.0))?;
    match msg.name.as_str() {
        "emitBatch" => match msg.body.iter().find(|(id, _)| *id == 1) {
            Some((_, TValue::Struct(b))) => batch::batch_to_model(b, limits),
            _ => Err(JaegerError::Thrift("emitBatch carries no Batch".into())),
        },
        "emitZipkinBatch" => Err(JaegerError::Thrift(
            "emitZipkinBatch is not supported: send Zipkin spans to the Zipkin port (9411)".into(),
        )),
        other => Err(JaegerError::Thrift(format!(
            "unknown agent method {other:?}: expected emitBatch"
        ))),
    }
}

/// Decodes the body of `POST /api/traces`: one `Batch` struct.
pub fn decode_http_batch(
    bytes: &[u8],
    protocol: Protocol,
    limits: &Limits,
) -> Result<Decoded, JaegerError> {
    let b = read_struct(bytes, protocol).map_err(|e| JaegerError::Thrift(e.0))?;
    batch::batch_to_model(&b, limits)
}
