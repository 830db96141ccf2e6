//! OTLP over HTTP: `POST /v1/traces` with protobuf or JSON bodies, optional
//! gzip, and CORS for browser SDKs.
//!
//! Size limits apply to the body as sent and again while it is inflated, so
//! a small gzip bomb is refused with 413 after reading at most the limit.

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::cors::{AllowOrigin, CorsLayer};
use waymark_pipeline::SubmitError;
use waymark_proto::google::rpc::Status as RpcStatus;
use waymark_proto::otlp::collector::{ExportTracePartialSuccess, ExportTraceServiceResponse};

use super::{PROTO_HTTP, decode_json, decode_protobuf};
use crate::{Receiver, ReceiverContext, wait_shutdown};

/// The OTLP HTTP receiver.
pub struct OtlpHttpReceiver {
    pub listener: TcpListener,
    pub ctx: ReceiverContext,
    /// Origins allowed by CORS; `*` allows any. Empty disables CORS.
    pub cors_allowed_origins: Vec<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

/// Builds the router; public so tests can drive it without a socket.
pub fn router(ctx: ReceiverContext, cors_allowed_origins: &[String]) -> Router {
    let mut r = Router::new()
        .route("/v1/traces", post(export))
        .with_state(ctx);
    if !cors_allowed_origins.is_empty() {
        let origin = if cors_allowed_origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(
                cors_allowed_origins
                    .iter()
                    .filter_map(|o| HeaderValue::from_str(o).ok()),
            )
        };
        r = r.layer(
            CorsLayer::new()
                .allow_origin(origin)
                .allow_methods([http::Method::POST, http::Method::OPTIONS])
                .allow_headers([header::CONTENT_TYPE, header::CONTENT_ENCODING])
                .max_age(std::time::Duration::from_secs(7200)),
        );
    }
    r
}

fn error(enc: Encoding, status: StatusCode, grpc_code: i32, message: String) -> Response {
    let body = RpcStatus {
        code: grpc_code,
        message,
    };
    let mut resp = match enc {
        Encoding::Json => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({"code": body.code, "message": body.message}).to_string(),
        )
            .into_response(),
        Encoding::Protobuf => (
            status,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            body.encode_to_vec(),
        )
            .into_response(),
    };
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

// gRPC status codes used in error bodies.
const INVALID_ARGUMENT: i32 = 3;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNAVAILABLE: i32 = 14;

async fn export(State(ctx): State<ReceiverContext>, headers: HeaderMap, body: Body) -> Response {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ctype
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let enc = match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        _ => {
            return error(
                Encoding::Json,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                INVALID_ARGUMENT,
                format!(
                    "unsupported content type {ctype:?}: send application/x-protobuf or application/json"
                ),
            );
        }
    };
    let bytes = match crate::body::read_body(&headers, body, ctx.limits.max_request_bytes).await {
        Ok(b) => b,
        Err(e) => {
            let code = match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => RESOURCE_EXHAUSTED,
                _ => INVALID_ARGUMENT,
            };
            return error(enc, e.status(), code, e.to_string());
        }
    };
    let decoded = match enc {
        Encoding::Protobuf => decode_protobuf(&bytes, &ctx.limits),
        Encoding::Json => decode_json(&bytes, &ctx.limits),
    };
    let decoded = match decoded {
        Ok(d) => d,
        Err(e) => {
            return error(
                enc,
                StatusCode::BAD_REQUEST,
                INVALID_ARGUMENT,
                e.to_string(),
            );
        }
    };
    let metrics = ctx.pipeline.metrics();
    metrics.count_received(PROTO_HTTP, decoded.spans.len() + decoded.rejected);
    metrics.count_rejected(PROTO_HTTP, decoded.rejected);
    let message = decoded.error_message();
    let rejected = decoded.rejected as i64;
    if let Err(e) = ctx.pipeline.submit(PROTO_HTTP, decoded.spans).await {
        let status = match e {
            SubmitError::Full { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        return error(enc, status, UNAVAILABLE, e.to_string());
    }
    let resp = ExportTraceServiceResponse {
        partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: rejected,
            error_message: message.clone(),
        }),
    };
    match enc {
        Encoding::Protobuf => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            resp.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => {
            let body = if rejected > 0 {
                serde_json::json!({"partialSuccess": {"rejectedSpans": rejected.to_string(), "errorMessage": message}})
            } else {
                serde_json::json!({})
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
    }
}

#[async_trait]
impl Receiver for OtlpHttpReceiver {
    fn name(&self) -> &'static str {
        PROTO_HTTP
    }

    async fn run(self: Box<Self>, shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
        let app = router(self.ctx, &self.cors_allowed_origins);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(wait_shutdown(shutdown))
            .await
    }
}
