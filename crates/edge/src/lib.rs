//! What every network edge of Waymark shares, receivers and query API
//! alike: the one mapping from what went wrong ([`Failure`]) to an HTTP
//! status, a gRPC code and a retry hint ([`Failure::answer`]), and request
//! bodies read under a size limit ([`body`]).
//!
//! A storage error keeps its kind up to here: [`Failure`] is built from
//! [`StorageErrorKind`], so a full disk tells a client to come back later
//! while corrupt data does not invite a retry storm.
//!
//! This crate must not know about protocols' payloads or span data.

pub mod body;

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use waymark_storage::StorageErrorKind;

/// What a failure means to the client, whatever the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Failure {
    /// The request is not valid; sending it again will not help.
    Invalid,
    /// The request (or its inflated body) is larger than a limit.
    TooLarge,
    /// The content type or encoding is not one this endpoint reads.
    UnsupportedMedia,
    /// What was asked for does not exist.
    NotFound,
    /// Not now: a full queue or disk, a backend that is down. The same
    /// request may succeed later.
    Unavailable,
    /// A fault on our side (corrupt data, a bug). Retrying will not help
    /// until an operator acts, so no retry hint is given.
    Internal,
}

/// How a [`Failure`] is answered on each transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub http: StatusCode,
    pub grpc: tonic::Code,
    /// Sent as `Retry-After` over HTTP; `None` means "do not retry".
    pub retry_after: Option<Duration>,
}

/// The retry hint given with every [`Failure::Unavailable`].
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

impl Failure {
    /// The one mapping from a failure to status codes.
    pub fn answer(self) -> Answer {
        use tonic::Code;
        let (http, grpc) = match self {
            Failure::Invalid => (StatusCode::BAD_REQUEST, Code::InvalidArgument),
            Failure::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, Code::ResourceExhausted),
            Failure::UnsupportedMedia => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, Code::InvalidArgument)
            }
            Failure::NotFound => (StatusCode::NOT_FOUND, Code::NotFound),
            Failure::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable),
            Failure::Internal => (StatusCode::INTERNAL_SERVER_ERROR, Code::Internal),
        };
        Answer {
            http,
            grpc,
            retry_after: (self == Failure::Unavailable).then_some(RETRY_AFTER),
        }
    }

    /// A gRPC status with `message`.
    pub fn grpc_status(self, message: impl Into<String>) -> tonic::Status {
        tonic::Status::new(self.answer().grpc, message)
    }

    /// A plain-text HTTP answer with `message` (the Jaeger and Zipkin
    /// collector APIs answer errors in text), with `Retry-After` when a
    /// retry may succeed.
    pub fn text(self, message: impl Into<String>) -> Response {
        let mut r = (
            self.answer().http,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            message.into(),
        )
            .into_response();
        self.add_retry_after(&mut r);
        r
    }

    /// Adds `Retry-After` to `r` when this failure carries a retry hint.
    pub fn add_retry_after(self, r: &mut Response) {
        if let Some(after) = self.answer().retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(after.as_secs()));
        }
    }
}

impl From<StorageErrorKind> for Failure {
    fn from(kind: StorageErrorKind) -> Failure {
        match kind {
            // A refused write (full disk, WAL fault) or a backend that is
            // down: the engine recovers on its own.
            StorageErrorKind::Unavailable => Failure::Unavailable,
            // I/O errors reach us from disks and object stores, and are
            // transient far more often than not; a client that retries
            // loses nothing, one told "internal" may drop its spans.
            StorageErrorKind::Io => Failure::Unavailable,
            StorageErrorKind::Invalid => Failure::Invalid,
            StorageErrorKind::Corrupt => Failure::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unavailable_invites_a_retry() {
        for f in [
            Failure::Invalid,
            Failure::TooLarge,
            Failure::UnsupportedMedia,
            Failure::NotFound,
            Failure::Internal,
        ] {
            assert_eq!(f.answer().retry_after, None, "{f:?}");
            assert!(f.text("x").headers().get(header::RETRY_AFTER).is_none());
        }
        let r = Failure::Unavailable.text("later");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            Failure::Unavailable.grpc_status("later").code(),
            tonic::Code::Unavailable
        );
    }

    #[test]
    fn storage_kinds_keep_their_meaning() {
        assert_eq!(
            Failure::from(StorageErrorKind::Unavailable),
            Failure::Unavailable
        );
        assert_eq!(Failure::from(StorageErrorKind::Io), Failure::Unavailable);
        assert_eq!(Failure::from(StorageErrorKind::Invalid), Failure::Invalid);
        assert_eq!(Failure::from(StorageErrorKind::Corrupt), Failure::Internal);
    }
}
