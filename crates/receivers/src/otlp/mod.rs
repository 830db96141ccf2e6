//! OTLP: gRPC `TraceService/Export` and HTTP `POST /v1/traces` (protobuf and
//! JSON). The conversion itself lives in `waymark_otlp`, shared with the
//! query API and the agent; this module applies the request limits and
//! serves the endpoints.

pub mod grpc;
pub mod http;

use waymark_proto::otlp::collector::ExportTraceServiceRequest;

use crate::{Decoded, IngestError, Limits, TooManySpans};

/// Metric label of spans received over OTLP gRPC.
pub const PROTO_GRPC: &str = "otlp_grpc";
/// Metric label of spans received over OTLP HTTP.
pub const PROTO_HTTP: &str = "otlp_http";

/// An OTLP request that cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("request body is not a valid OTLP protobuf message: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("request body is not valid OTLP JSON: {0}")]
    Json(#[from] waymark_otlp::JsonError),
    #[error(transparent)]
    TooManySpans(#[from] TooManySpans),
}

impl From<OtlpError> for IngestError {
    fn from(e: OtlpError) -> IngestError {
        match e {
            OtlpError::TooManySpans(t) => IngestError::TooManySpans(t),
            other => IngestError::malformed(other),
        }
    }
}

/// Decodes an `ExportTraceServiceRequest` from protobuf bytes.
pub fn decode_protobuf(bytes: &[u8], limits: &Limits) -> Result<Decoded, OtlpError> {
    let req = <ExportTraceServiceRequest as prost::Message>::decode(bytes)?;
    from_request(req, limits)
}

/// Converts a decoded request, validating every span.
pub fn from_request(req: ExportTraceServiceRequest, limits: &Limits) -> Result<Decoded, OtlpError> {
    let mut out = Decoded::new(limits);
    // Refused before converting a single span.
    out.expect(waymark_otlp::span_count(&req))?;
    waymark_otlp::from_request(req, &mut out);
    Ok(out.finish()?)
}

/// Decodes an OTLP/JSON request, validating every span.
pub fn decode_json(bytes: &[u8], limits: &Limits) -> Result<Decoded, OtlpError> {
    let mut out = Decoded::new(limits);
    waymark_otlp::decode_json(bytes, &mut out)?;
    Ok(out.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use waymark_otlp::to_request;

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
                .contains("span 0 (\"GET /checkout\"): trace_id: expected 16 bytes, got 5"),
            "{}",
            d.error_message()
        );
    }

    #[test]
    fn too_many_spans_is_refused_whole() {
        let spans = waymark_testkit::fixture_trace(1);
        let limits = Limits {
            max_spans_per_request: 1,
            ..Limits::default()
        };
        let bytes = to_request(&spans).encode_to_vec();
        let e = decode_protobuf(&bytes, &limits).unwrap_err();
        assert!(
            matches!(
                e,
                OtlpError::TooManySpans(TooManySpans { got: 2, limit: 1 })
            ),
            "{e}"
        );
        let json = waymark_otlp::spans_to_otlp_json(&spans).to_string();
        let e = decode_json(json.as_bytes(), &limits).unwrap_err();
        assert!(matches!(e, OtlpError::TooManySpans(_)), "{e}");
    }

    #[test]
    fn errors_name_the_encoding() {
        let e = decode_protobuf(&[0xff, 0xff, 0xff], &Limits::default()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("request body is not a valid OTLP protobuf"),
            "{e}"
        );
        let e = decode_json(b"[", &Limits::default()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("request body is not valid OTLP JSON"),
            "{e}"
        );
    }
}
