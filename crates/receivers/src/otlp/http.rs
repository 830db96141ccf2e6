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
use waymark_proto::google::rpc::Status as RpcStatus;
use waymark_proto::otlp::collector::{ExportTracePartialSuccess, ExportTraceServiceResponse};

use super::{PROTO_HTTP, decode_json, decode_protobuf};
use crate::{IngestError, Receiver, ReceiverContext, wait_shutdown};

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

/// An error answer in the request's encoding: a `google.rpc.Status`
/// carrying the gRPC code of the same failure.
fn error(enc: Encoding, e: &IngestError) -> Response {
    let failure = e.failure();
    let answer = failure.answer();
    let status = answer.http;
    let body = RpcStatus {
        code: answer.grpc as i32,
        message: e.to_string(),
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
    failure.add_retry_after(&mut resp);
    resp
}

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
            let e = IngestError::UnsupportedMedia(format!(
                "unsupported content type {ctype:?}: send application/x-protobuf or application/json"
            ));
            let e = ctx.ingest(PROTO_HTTP, Err(e)).await.unwrap_err();
            return error(Encoding::Json, &e);
        }
    };
    let decoded = waymark_edge::body::read_body(&headers, body, ctx.limits.max_request_bytes)
        .await
        .map_err(IngestError::from)
        .and_then(|bytes| {
            match enc {
                Encoding::Protobuf => decode_protobuf(&bytes, &ctx.limits),
                Encoding::Json => decode_json(&bytes, &ctx.limits),
            }
            .map_err(IngestError::from)
        });
    let accepted = match ctx.ingest(PROTO_HTTP, decoded).await {
        Ok(a) => a,
        Err(e) => return error(enc, &e),
    };
    let rejected = accepted.rejected as i64;
    let message = accepted.message;
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
