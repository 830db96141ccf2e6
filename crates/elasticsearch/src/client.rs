//! The HTTP side: one [`EsClient`] per cluster, over reqwest with rustls.
//!
//! Requests go to the configured URLs in turn; a URL that cannot be reached
//! is skipped for the next one (a request is tried on every URL once before
//! it fails). Credentials: basic auth (the password given directly or read
//! from a file, the Kubernetes Secret case), an API key, or a bearer token.
//! TLS: the system's web PKI roots plus an optional CA file (the ConfigMap
//! case), an optional client certificate, and certificate checks off only
//! when asked for explicitly.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};

use crate::templates::Version;

/// How to reach a cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    /// Base URLs, e.g. `https://es-0:9200`; requests rotate among them.
    pub urls: Vec<String>,
    pub username: Option<String>,
    /// The password itself (prefer `password_file`).
    pub password: Option<String>,
    /// A file holding the password (trailing newline ignored).
    pub password_file: Option<PathBuf>,
    /// A file holding an API key, as Elasticsearch encodes it (base64 of
    /// `id:key`); sent as `Authorization: ApiKey <key>`.
    pub api_key_file: Option<PathBuf>,
    /// A file holding a bearer token.
    pub bearer_token_file: Option<PathBuf>,
    /// PEM file of the CA that signed the cluster's certificate.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for clusters that ask for one.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    /// Accept any server certificate. Only for testing.
    pub tls_skip_verify: bool,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Compress request bodies with gzip.
    pub gzip: bool,
    /// Ask the cluster for its HTTP nodes at start-up and spread requests
    /// over them instead of the configured URLs.
    pub sniff: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            urls: vec!["http://127.0.0.1:9200".into()],
            username: None,
            password: None,
            password_file: None,
            api_key_file: None,
            bearer_token_file: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            tls_skip_verify: false,
            timeout: Duration::from_secs(30),
            gzip: false,
            sniff: false,
        }
    }
}

/// Errors talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum EsError {
    #[error("elasticsearch configuration: {0}")]
    Config(String),
    #[error("elasticsearch unreachable ({url}): {message}")]
    Transport { url: String, message: String },
    #[error("elasticsearch answered {status} to {method} {path}: {reason}")]
    Status {
        method: String,
        path: String,
        status: u16,
        reason: String,
    },
    #[error("elasticsearch response to {path} not understood: {message}")]
    Decode { path: String, message: String },
}

impl EsError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            EsError::Transport { .. } => true,
            EsError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

impl From<EsError> for waymark_storage::StorageError {
    fn from(e: EsError) -> Self {
        use waymark_storage::StorageErrorKind as K;
        let kind = match &e {
            EsError::Config(_) => K::Invalid,
            EsError::Decode { .. } => K::Corrupt,
            e if e.is_retryable() => K::Unavailable,
            _ => K::Io,
        };
        waymark_storage::StorageError::new(kind, e.to_string())
    }
}

/// An answer: status and body.
#[derive(Clone, Debug)]
pub struct EsResponse {
    pub status: u16,
    pub body: Bytes,
}

impl EsResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `error.type: error.reason` of an error body, or the body itself.
    pub fn reason(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        match v.get("error") {
            Some(serde_json::Value::Object(o)) => format!(
                "{}: {}",
                o.get("type").and_then(|t| t.as_str()).unwrap_or("error"),
                o.get("reason").and_then(|t| t.as_str()).unwrap_or("")
            ),
            Some(other) => other.to_string(),
            None => String::from_utf8_lossy(&self.body)
                .chars()
                .take(500)
                .collect(),
        }
    }
}

/// A client for one cluster.
pub struct EsClient {
    http: reqwest::Client,
    /// Swapped whole by sniffing; requests take a cheap snapshot.
    urls: parking_lot::RwLock<std::sync::Arc<Vec<String>>>,
    next: AtomicUsize,
    auth: Option<HeaderValue>,
    gzip: bool,
}

fn read_secret(what: &str, path: &PathBuf) -> Result<String, EsError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| EsError::Config(format!("reading {what} from {}: {e}", path.display())))
}

impl EsClient {
    pub fn new(cfg: &ClientConfig) -> Result<EsClient, EsError> {
        // One process-wide crypto provider for rustls; a second install is
        // refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        if cfg.urls.is_empty() {
            return Err(EsError::Config("no server URLs".into()));
        }
        let mut urls = Vec::new();
        for u in &cfg.urls {
            let parsed = reqwest::Url::parse(u)
                .map_err(|e| EsError::Config(format!("server URL {u:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(EsError::Config(format!(
                    "server URL {u:?}: the scheme must be http or https"
                )));
            }
            urls.push(u.trim_end_matches('/').to_string());
        }
        let mut b = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| EsError::Config(format!("reading CA file {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                EsError::Config(format!(
                    "CA file {}: not PEM certificates: {e}",
                    ca.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(EsError::Config(format!(
                    "CA file {} holds no certificate",
                    ca.display()
                )));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        match (&cfg.client_cert_file, &cfg.client_key_file) {
            (Some(cert), Some(key)) => {
                let mut pem = std::fs::read(cert).map_err(|e| {
                    EsError::Config(format!(
                        "reading client certificate {}: {e}",
                        cert.display()
                    ))
                })?;
                pem.push(b'\n');
                pem.extend(std::fs::read(key).map_err(|e| {
                    EsError::Config(format!("reading client key {}: {e}", key.display()))
                })?);
                let id = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| EsError::Config(format!("client certificate and key: {e}")))?;
                b = b.identity(id);
            }
            (None, None) => {}
            _ => {
                return Err(EsError::Config(
                    "a client certificate needs both the certificate and the key file".into(),
                ));
            }
        }
        if cfg.tls_skip_verify {
            tracing::warn!("elasticsearch: tls certificate verification is off");
            b = b.danger_accept_invalid_certs(true);
        }
        let http = b
            .build()
            .map_err(|e| EsError::Config(format!("building the HTTP client: {e}")))?;

        let password = match (&cfg.password, &cfg.password_file) {
            (Some(_), Some(_)) => {
                return Err(EsError::Config(
                    "give the password or a password file, not both".into(),
                ));
            }
            (Some(p), None) => Some(p.clone()),
            (None, Some(f)) => Some(read_secret("the password", f)?),
            (None, None) => None,
        };
        let mut schemes = Vec::new();
        if let Some(user) = &cfg.username {
            use base64::Engine;
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", password.unwrap_or_default()));
            schemes.push(format!("Basic {token}"));
        } else if password.is_some() {
            return Err(EsError::Config("a password without a username".into()));
        }
        if let Some(f) = &cfg.api_key_file {
            schemes.push(format!("ApiKey {}", read_secret("the API key", f)?));
        }
        if let Some(f) = &cfg.bearer_token_file {
            schemes.push(format!("Bearer {}", read_secret("the bearer token", f)?));
        }
        if schemes.len() > 1 {
            return Err(EsError::Config(
                "choose one of username/password, API key and bearer token".into(),
            ));
        }
        let auth = match schemes.pop() {
            Some(s) => {
                let mut v = HeaderValue::from_str(&s).map_err(|_| {
                    EsError::Config("credentials contain invalid characters".into())
                })?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        Ok(EsClient {
            http,
            urls: parking_lot::RwLock::new(std::sync::Arc::new(urls)),
            next: AtomicUsize::new(0),
            auth,
            gzip: cfg.gzip,
        })
    }

    /// Sends a request, trying each URL once on connection errors. Any HTTP
    /// status is returned as an answer, not an error.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &'static str)>,
    ) -> Result<EsResponse, EsError> {
        let body = match body {
            Some((b, ct)) if self.gzip && b.len() > 1024 => {
                use std::io::Write;
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(&b).expect("writing to memory");
                Some((
                    Bytes::from(enc.finish().expect("writing to memory")),
                    ct,
                    true,
                ))
            }
            Some((b, ct)) => Some((Bytes::from(b), ct, false)),
            None => None,
        };
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let urls = self.urls.read().clone();
        let mut last = None;
        for i in 0..urls.len() {
            let base = &urls[(start + i) % urls.len()];
            let url = format!("{base}{path}");
            let mut req = self.http.request(method.clone(), &url);
            if let Some(a) = &self.auth {
                req = req.header(AUTHORIZATION, a.clone());
            }
            if let Some((b, ct, gz)) = &body {
                req = req.header(CONTENT_TYPE, *ct).body(b.clone());
                if *gz {
                    req = req.header(CONTENT_ENCODING, "gzip");
                }
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = resp.bytes().await.map_err(|e| EsError::Transport {
                        url: base.clone(),
                        message: format!("reading the response: {e}"),
                    })?;
                    return Ok(EsResponse { status, body });
                }
                Err(e) => {
                    tracing::warn!(url = %base, error = %e, "elasticsearch request failed; trying the next url");
                    last = Some(EsError::Transport {
                        url: base.clone(),
                        message: error_chain(&e),
                    });
                }
            }
        }
        Err(last.expect("at least one url"))
    }

    /// Sends JSON and expects a 2xx answer, decoded as JSON.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, EsError> {
        let body = body.map(|b| (serde_json::to_vec(b).expect("JSON"), "application/json"));
        let r = self.send(method.clone(), path, body).await?;
        if !r.is_success() {
            return Err(EsError::Status {
                method: method.to_string(),
                path: path.to_string(),
                status: r.status,
                reason: r.reason(),
            });
        }
        serde_json::from_slice(&r.body).map_err(|e| EsError::Decode {
            path: path.to_string(),
            message: e.to_string(),
        })
    }

    /// The URLs requests rotate among.
    pub fn urls(&self) -> Vec<String> {
        self.urls.read().as_ref().clone()
    }

    /// Replaces the URLs by the cluster's HTTP nodes (`GET /_nodes/http`),
    /// with the scheme of the configured URLs; returns how many. Keeps the
    /// configured URLs when the cluster names none.
    pub async fn sniff(&self) -> Result<usize, EsError> {
        let v = self
            .json(
                Method::GET,
                "/_nodes/http?filter_path=nodes.*.http.publish_address",
                None,
            )
            .await?;
        let scheme = self
            .urls
            .read()
            .first()
            .and_then(|u| u.split_once("://").map(|(s, _)| s.to_string()))
            .unwrap_or_else(|| "http".into());
        let mut found: Vec<String> = v["nodes"]
            .as_object()
            .into_iter()
            .flat_map(|nodes| nodes.values())
            .filter_map(|n| n["http"]["publish_address"].as_str())
            // "host/ip:port" or "ip:port"
            .map(|a| a.rsplit('/').next().unwrap_or(a))
            .map(|a| format!("{scheme}://{a}"))
            .collect();
        found.sort();
        found.dedup();
        if !found.is_empty() {
            tracing::info!(nodes = ?found, "elasticsearch nodes sniffed");
            *self.urls.write() = std::sync::Arc::new(found.clone());
        }
        Ok(found.len())
    }

    /// `GET /`: which cluster this is.
    pub async fn version(&self) -> Result<Version, EsError> {
        let r = self.send(Method::GET, "/", None).await?;
        if r.status == StatusCode::UNAUTHORIZED.as_u16() || r.status == 403 {
            return Err(EsError::Status {
                method: "GET".into(),
                path: "/".into(),
                status: r.status,
                reason: format!("check the credentials: {}", r.reason()),
            });
        }
        if !r.is_success() {
            return Err(EsError::Status {
                method: "GET".into(),
                path: "/".into(),
                status: r.status,
                reason: r.reason(),
            });
        }
        Version::from_root_response(&r.body).map_err(|e| EsError::Decode {
            path: "/".into(),
            message: e.to_string(),
        })
    }
}

/// An error with its causes, which reqwest keeps in `source()`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
