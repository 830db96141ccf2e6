//! OTLP: gRPC `TraceService/Export` and HTTP `POST /v1/traces` (protobuf and
//! JSON), decoded into the span model. Also the model → OTLP JSON rendering
//! the query API's api_v3 answers with, so both directions of the OTLP JSON
//! mapping live in one place.

pub mod convert;
pub mod grpc;
pub mod http;
pub mod json;

pub use convert::{DecodeError, Decoded, decode_protobuf, from_request};
pub use json::{decode_json, spans_to_otlp_json};

/// Metric label of spans received over OTLP gRPC.
pub const PROTO_GRPC: &str = "otlp_grpc";
/// Metric label of spans received over OTLP HTTP.
pub const PROTO_HTTP: &str = "otlp_http";
