//! Reading request bodies under a size limit, inflating gzip with the same
//! limit applied to the inflated size, so that neither a large body nor a
//! small gzip bomb can make a receiver allocate more than the limit.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyError {
    #[error("request body exceeds the limit of {0} bytes (limits.max_request_bytes)")]
    TooLarge(usize),
    #[error("request body inflates to more than the limit of {0} bytes (limits.max_request_bytes)")]
    InflatesTooLarge(usize),
    #[error("request body is not valid gzip: {0}")]
    BadGzip(String),
    #[error("unsupported content encoding {0:?}: send gzip or no encoding")]
    UnsupportedEncoding(String),
    #[error("reading request body: {0}")]
    Read(String),
}

impl BodyError {
    /// What this error means to the client.
    pub fn failure(&self) -> crate::Failure {
        use crate::Failure;
        match self {
            BodyError::TooLarge(_) | BodyError::InflatesTooLarge(_) => Failure::TooLarge,
            BodyError::UnsupportedEncoding(_) => Failure::UnsupportedMedia,
            BodyError::BadGzip(_) | BodyError::Read(_) => Failure::Invalid,
        }
    }
}

/// The media type of `Content-Type`, lower-cased, without parameters.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let m = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    (!m.is_empty()).then_some(m)
}

/// Reads the whole body (at most `limit` bytes) and inflates it when
/// `Content-Encoding` says gzip.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let raw = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(e) if is_length_limit(&e) => return Err(BodyError::TooLarge(limit)),
        Err(e) => return Err(BodyError::Read(e.to_string())),
    };
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(raw),
        "gzip" | "x-gzip" => inflate(&raw, limit).map(Bytes::from),
        other => Err(BodyError::UnsupportedEncoding(other.to_string())),
    }
}

/// Inflates gzip, reading at most `limit + 1` bytes of output.
pub fn inflate(raw: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    let mut dec = flate2::read::MultiGzDecoder::new(raw).take(limit as u64 + 1);
    dec.read_to_end(&mut out)
        .map_err(|e| BodyError::BadGzip(e.to_string()))?;
    if out.len() > limit {
        return Err(BodyError::InflatesTooLarge(limit));
    }
    Ok(out)
}

/// True when reading the body stopped at the size limit. The limit error
/// type belongs to `http-body-util`, which we reach only through axum, so
/// the error chain is matched by its message.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.to_string().contains("length limit exceeded") {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_bomb_stops_at_the_limit() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 4 << 20]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 16 << 10);
        assert_eq!(
            inflate(&bomb, 1 << 20),
            Err(BodyError::InflatesTooLarge(1 << 20))
        );
        assert_eq!(inflate(&bomb, 8 << 20).unwrap().len(), 4 << 20);
        assert!(matches!(
            inflate(b"not gzip", 100),
            Err(BodyError::BadGzip(_))
        ));
    }
}
