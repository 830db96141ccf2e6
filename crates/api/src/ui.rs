//! The web UI, embedded in the binary. `ui/dist` is built from `ui/src`
//! and checked in (CI rebuilds it and fails on a diff), so building Waymark
//! needs only cargo. Every client-side route (`/search`, `/trace/{id}`,
//! `/dependencies`, ...) answers with the app; `/api/...` never does.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX: &[u8] = include_bytes!("../../../ui/dist/index.html");
const APP_JS: &[u8] = include_bytes!("../../../ui/dist/assets/app.js");
const APP_CSS: &[u8] = include_bytes!("../../../ui/dist/assets/app.css");
const FAVICON: &[u8] = include_bytes!("../../../ui/dist/assets/favicon.svg");

/// Asset names carry no content hash, so browsers must revalidate.
const CACHE: &str = "no-cache";

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/assets/{file}", get(asset))
        .fallback(app)
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, ctype): (&'static [u8], &str) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "favicon.svg" => (FAVICON, "image/svg+xml"),
        _ => return (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, CACHE),
        ],
        body,
    )
        .into_response()
}

async fn app(uri: Uri) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") {
        return crate::jaeger::err(
            StatusCode::NOT_FOUND,
            format!("no API route {path}: see /api/services, /api/traces, /api/v3/..."),
        );
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        INDEX,
    )
        .into_response()
}
