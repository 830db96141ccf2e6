//! The receiver compliance test: every receiver, over every transport and
//! encoding, counts the same metrics under the same names, applies the same
//! limits and answers each failure with the same status (the mapping in
//! `waymark_edge::Failure::answer`). A receiver that drifts from the others
//! fails here, whatever its own unit tests say.
//!
//! The request bodies are the fuzz seeds, which real client libraries
//! wrote (`fuzz/make_seeds.py`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tokio::sync::watch;
use waymark_edge::Failure;
use waymark_pipeline::{IngestMetrics, Pipeline, PipelineConfig, ProtocolLabel, StorageSink};
use waymark_proto::jaeger::api_v2 as jpb;
use waymark_proto::otlp::collector::ExportTraceServiceRequest;
use waymark_receivers::jaeger::grpc::JaegerGrpcReceiver;
use waymark_receivers::jaeger::http::JaegerHttpReceiver;
use waymark_receivers::jaeger::udp::JaegerUdpReceiver;
use waymark_receivers::otlp::grpc::OtlpGrpcReceiver;
use waymark_receivers::otlp::http::OtlpHttpReceiver;
use waymark_receivers::thrift::Protocol;
use waymark_receivers::zipkin::http::ZipkinReceiver;
use waymark_receivers::{Decoded, Limits, Receiver, ReceiverContext};
use waymark_storage::{EmbeddedConfig, EmbeddedStorage, StorageErrorKind};
use waymark_testkit::faulty::FaultyStorage;

const SEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds");

fn seed(path: &str) -> Vec<u8> {
    std::fs::read(format!("{SEEDS}/{path}")).unwrap_or_else(|e| panic!("seed {path}: {e}"))
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Transport {
    OtlpHttpProtobuf,
    OtlpHttpJson,
    OtlpGrpc,
    JaegerHttpBinary,
    JaegerHttpCompact,
    JaegerGrpc,
    JaegerUdpCompact,
    JaegerUdpBinary,
    ZipkinV2Json,
    ZipkinV2Protobuf,
    ZipkinV1Json,
    ZipkinV1Thrift,
}

use Transport::*;

const ALL: [Transport; 12] = [
    OtlpHttpProtobuf,
    OtlpHttpJson,
    OtlpGrpc,
    JaegerHttpBinary,
    JaegerHttpCompact,
    JaegerGrpc,
    JaegerUdpCompact,
    JaegerUdpBinary,
    ZipkinV2Json,
    ZipkinV2Protobuf,
    ZipkinV1Json,
    ZipkinV1Thrift,
];

impl Transport {
    /// The `protocol` label its spans are counted under.
    fn label(self) -> &'static str {
        match self {
            OtlpHttpProtobuf | OtlpHttpJson => "otlp_http",
            OtlpGrpc => "otlp_grpc",
            JaegerHttpBinary | JaegerHttpCompact => "jaeger_http",
            JaegerGrpc => "jaeger_grpc",
            JaegerUdpCompact => "jaeger_udp_compact",
            JaegerUdpBinary => "jaeger_udp_binary",
            ZipkinV2Json | ZipkinV2Protobuf | ZipkinV1Json | ZipkinV1Thrift => "zipkin",
        }
    }

    /// A request a real client sent.
    fn good(self) -> Vec<u8> {
        seed(match self {
            OtlpHttpProtobuf | OtlpGrpc => "otlp_protobuf/sdk-two-spans",
            OtlpHttpJson => "otlp_json/sdk-two-spans.json",
            JaegerHttpBinary => "jaeger_http_binary/batch",
            JaegerHttpCompact => "jaeger_http_compact/batch",
            JaegerGrpc => "jaeger_grpc/otel-exporter",
            JaegerUdpCompact => "jaeger_agent_compact/emitBatch",
            JaegerUdpBinary => "jaeger_agent_binary/emitBatch",
            ZipkinV2Json => "zipkin_v2_json/py_zipkin",
            ZipkinV2Protobuf => "zipkin_v2_proto/py_zipkin",
            ZipkinV1Json => "zipkin_v1_json/py_zipkin",
            ZipkinV1Thrift => "zipkin_v1_thrift/thrift-list",
        })
    }

    /// Spans in [`Transport::good`], by our own decoder.
    fn spans(self) -> usize {
        use waymark_receivers::{jaeger, otlp, zipkin};
        let b = self.good();
        let l = Limits::default();
        let d: Decoded = match self {
            OtlpHttpProtobuf | OtlpGrpc => otlp::decode_protobuf(&b, &l).unwrap(),
            OtlpHttpJson => otlp::decode_json(&b, &l).unwrap(),
            JaegerHttpBinary => jaeger::decode_http_batch(&b, Protocol::Binary, &l).unwrap(),
            JaegerHttpCompact => jaeger::decode_http_batch(&b, Protocol::Compact, &l).unwrap(),
            JaegerGrpc => {
                let req = jpb::PostSpansRequest::decode(b.as_slice()).unwrap();
                jaeger::grpc::decode_batch(req.batch.unwrap(), &l).unwrap()
            }
            JaegerUdpCompact => jaeger::decode_agent_packet(&b, Protocol::Compact, &l).unwrap(),
            JaegerUdpBinary => jaeger::decode_agent_packet(&b, Protocol::Binary, &l).unwrap(),
            ZipkinV2Json => zipkin::json::decode_v2_json(&b, &l).unwrap(),
            ZipkinV2Protobuf => zipkin::proto::decode_v2_proto(&b, &l).unwrap(),
            ZipkinV1Json => zipkin::v1::decode_v1_json(&b, &l).unwrap(),
            ZipkinV1Thrift => zipkin::v1::decode_v1_thrift(&b, &l).unwrap(),
        };
        assert_eq!(d.rejected, 0, "{self:?}: {}", d.error_message());
        assert!(!d.spans.is_empty(), "{self:?}: the seed holds no spans");
        d.spans.len()
    }

    fn is_grpc(self) -> bool {
        matches!(self, OtlpGrpc | JaegerGrpc)
    }

    fn is_udp(self) -> bool {
        matches!(self, JaegerUdpCompact | JaegerUdpBinary)
    }

    /// Path and content type over HTTP.
    fn http(self) -> (&'static str, &'static str) {
        match self {
            OtlpHttpProtobuf => ("/v1/traces", "application/x-protobuf"),
            OtlpHttpJson => ("/v1/traces", "application/json"),
            JaegerHttpBinary => ("/api/traces", "application/x-thrift"),
            JaegerHttpCompact => ("/api/traces", "application/vnd.apache.thrift.compact"),
            ZipkinV2Json => ("/api/v2/spans", "application/json"),
            ZipkinV2Protobuf => ("/api/v2/spans", "application/x-protobuf"),
            ZipkinV1Json => ("/api/v1/spans", "application/json"),
            ZipkinV1Thrift => ("/api/v1/spans", "application/x-thrift"),
            _ => unreachable!("{self:?} is not HTTP"),
        }
    }
}

/// Every receiver on its own port, over one pipeline and a store that
/// fails on demand.
struct Harness {
    metrics: Arc<IngestMetrics>,
    store: Arc<FaultyStorage>,
    otlp_http: SocketAddr,
    otlp_grpc: SocketAddr,
    jaeger_http: SocketAddr,
    jaeger_grpc: SocketAddr,
    udp_compact: SocketAddr,
    udp_binary: SocketAddr,
    zipkin: SocketAddr,
    client: reqwest::Client,
    _stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

async fn tcp() -> (tokio::net::TcpListener, SocketAddr) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

async fn udp() -> (tokio::net::UdpSocket, SocketAddr) {
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let a = s.local_addr().unwrap();
    (s, a)
}

async fn harness(limits: Limits) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let inner = EmbeddedStorage::open(EmbeddedConfig::new(dir.path()))
        .await
        .unwrap();
    let store = Arc::new(FaultyStorage::new(Arc::new(inner)));
    let metrics = Arc::new(IngestMetrics::default());
    let pipeline = Pipeline::start(
        Arc::new(StorageSink(store.clone())),
        PipelineConfig::default(),
        metrics.clone(),
    );
    let ctx = ReceiverContext {
        pipeline,
        limits: Arc::new(limits),
    };
    let (l_oh, otlp_http) = tcp().await;
    let (l_og, otlp_grpc) = tcp().await;
    let (l_jh, jaeger_http) = tcp().await;
    let (l_jg, jaeger_grpc) = tcp().await;
    let (l_z, zipkin) = tcp().await;
    let (s_c, udp_compact) = udp().await;
    let (s_b, udp_binary) = udp().await;
    let receivers: Vec<Box<dyn Receiver>> = vec![
        Box::new(OtlpHttpReceiver {
            listener: l_oh,
            ctx: ctx.clone(),
            cors_allowed_origins: Vec::new(),
        }),
        Box::new(OtlpGrpcReceiver {
            listener: l_og,
            ctx: ctx.clone(),
        }),
        Box::new(JaegerHttpReceiver {
            listener: l_jh,
            ctx: ctx.clone(),
            extra: None,
        }),
        Box::new(JaegerGrpcReceiver {
            listener: l_jg,
            ctx: ctx.clone(),
            extra: tonic::service::Routes::default(),
        }),
        Box::new(ZipkinReceiver {
            listener: l_z,
            ctx: ctx.clone(),
        }),
        Box::new(JaegerUdpReceiver {
            socket: s_c,
            protocol: Protocol::Compact,
            ctx: ctx.clone(),
            queue_packets: 16,
        }),
        Box::new(JaegerUdpReceiver {
            socket: s_b,
            protocol: Protocol::Binary,
            ctx,
            queue_packets: 16,
        }),
    ];
    let (stop, rx) = watch::channel(false);
    for r in receivers {
        let rx = rx.clone();
        tokio::spawn(async move { r.run(rx).await });
    }
    Harness {
        metrics,
        store,
        otlp_http,
        otlp_grpc,
        jaeger_http,
        jaeger_grpc,
        udp_compact,
        udp_binary,
        zipkin,
        client: {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::new()
        },
        _stop: stop,
        _dir: dir,
    }
}

/// The ingest counters of one protocol label.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Counts {
    received: u64,
    rejected: u64,
    stored: u64,
    failed: u64,
    malformed: u64,
}

impl Harness {
    fn counts(&self, t: Transport) -> Counts {
        let l = ProtocolLabel {
            protocol: t.label(),
        };
        let m = &self.metrics;
        Counts {
            received: m.received.get_or_create(&l).get(),
            rejected: m.rejected.get_or_create(&l).get(),
            stored: m.stored.get_or_create(&l).get(),
            failed: m.failed.get_or_create(&l).get(),
            malformed: m.malformed.get_or_create(&l).get(),
        }
    }

    /// Sends `body` and returns the outcome as the failure it stands for
    /// (`None`: accepted). For UDP, which has no answer, waits until the
    /// counters move and returns `None`.
    async fn send(
        &self,
        t: Transport,
        body: Vec<u8>,
        content_type: Option<&str>,
    ) -> Option<Failure> {
        if t.is_udp() {
            let before = self.counts(t);
            let to = if t == JaegerUdpCompact {
                self.udp_compact
            } else {
                self.udp_binary
            };
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.send_to(&body, to).unwrap();
            for _ in 0..500 {
                let now = self.counts(t);
                if now.malformed != before.malformed
                    || now.stored != before.stored
                    || now.failed != before.failed
                    || now.rejected != before.rejected
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            return None;
        }
        if t.is_grpc() {
            return self.send_grpc(t, body).await;
        }
        let (path, ctype) = t.http();
        let addr = match t {
            OtlpHttpProtobuf | OtlpHttpJson => self.otlp_http,
            JaegerHttpBinary | JaegerHttpCompact => self.jaeger_http,
            _ => self.zipkin,
        };
        let resp = self
            .client
            .post(format!("http://{addr}{path}"))
            .header("content-type", content_type.unwrap_or(ctype))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let retry_after = resp.headers().get("retry-after").is_some();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() {
            assert!(!retry_after, "{t:?}: Retry-After on success");
            return None;
        }
        let f = failure_of_http(status.as_u16())
            .unwrap_or_else(|| panic!("{t:?}: unexpected status {status}: {text}"));
        assert_eq!(
            retry_after,
            f.answer().retry_after.is_some(),
            "{t:?}: Retry-After on {status} ({text})"
        );
        assert!(!text.is_empty(), "{t:?}: {status} without a message");
        Some(f)
    }

    async fn send_grpc(&self, t: Transport, body: Vec<u8>) -> Option<Failure> {
        let res = match t {
            OtlpGrpc => {
                use waymark_proto::otlp::collector::trace_service_client::TraceServiceClient;
                let mut c = TraceServiceClient::connect(format!("http://{}", self.otlp_grpc))
                    .await
                    .unwrap();
                let req = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
                c.export(req).await.map(|_| ())
            }
            JaegerGrpc => {
                use jpb::collector_service_client::CollectorServiceClient;
                let mut c = CollectorServiceClient::connect(format!("http://{}", self.jaeger_grpc))
                    .await
                    .unwrap();
                let req = jpb::PostSpansRequest::decode(body.as_slice()).unwrap();
                c.post_spans(req).await.map(|_| ())
            }
            _ => unreachable!(),
        };
        match res {
            Ok(()) => None,
            Err(s) => {
                assert!(
                    !s.message().is_empty(),
                    "{t:?}: {:?} without a message",
                    s.code()
                );
                Some(
                    failure_of_grpc(s.code())
                        .unwrap_or_else(|| panic!("{t:?}: unexpected code {s:?}")),
                )
            }
        }
    }
}

const FAILURES: [Failure; 6] = [
    Failure::Invalid,
    Failure::TooLarge,
    Failure::UnsupportedMedia,
    Failure::NotFound,
    Failure::Unavailable,
    Failure::Internal,
];

fn failure_of_http(status: u16) -> Option<Failure> {
    FAILURES
        .into_iter()
        .find(|f| f.answer().http.as_u16() == status)
}

fn failure_of_grpc(code: tonic::Code) -> Option<Failure> {
    // Invalid and UnsupportedMedia share INVALID_ARGUMENT.
    FAILURES.into_iter().find(|f| f.answer().grpc == code)
}

fn plus(mut c: Counts, f: impl FnOnce(&mut Counts)) -> Counts {
    f(&mut c);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_receiver_stores_counts_and_maps_failures_alike() {
    let h = harness(Limits::default()).await;
    for t in ALL {
        let n = t.spans() as u64;

        // Accepted and stored.
        let before = h.counts(t);
        assert_eq!(h.send(t, t.good(), None).await, None, "{t:?}");
        assert_eq!(
            h.counts(t),
            plus(before, |c| {
                c.received += n;
                c.stored += n;
            }),
            "{t:?}: a good request"
        );

        // Each storage error kind, as the documented status.
        for kind in [
            StorageErrorKind::Unavailable,
            StorageErrorKind::Io,
            StorageErrorKind::Invalid,
            StorageErrorKind::Corrupt,
        ] {
            h.store.set_fault(Some(kind));
            let before = h.counts(t);
            let got = h.send(t, t.good(), None).await;
            h.store.set_fault(None);
            if !t.is_udp() {
                // The documented table (docs/architecture.md, "Errors").
                let want = match kind {
                    StorageErrorKind::Unavailable | StorageErrorKind::Io => Failure::Unavailable,
                    StorageErrorKind::Invalid => Failure::Invalid,
                    StorageErrorKind::Corrupt => Failure::Internal,
                };
                assert_eq!(got, Some(want), "{t:?}: storage {kind:?}");
            }
            assert_eq!(
                h.counts(t),
                plus(before, |c| {
                    c.received += n;
                    c.failed += n;
                }),
                "{t:?}: storage {kind:?}"
            );
        }

        // A body no decoder can read. gRPC bodies are decoded by the
        // transport before a receiver sees them, so they are left out.
        if !t.is_grpc() {
            let before = h.counts(t);
            let got = h.send(t, b"\xff\x00garbage{".to_vec(), None).await;
            if !t.is_udp() {
                assert_eq!(got, Some(Failure::Invalid), "{t:?}: garbage");
            }
            assert_eq!(
                h.counts(t),
                plus(before, |c| c.malformed += 1),
                "{t:?}: garbage"
            );
        }

        // A content type the endpoint does not read.
        if !t.is_grpc() && !t.is_udp() {
            let before = h.counts(t);
            let got = h.send(t, t.good(), Some("text/csv")).await;
            assert_eq!(got, Some(Failure::UnsupportedMedia), "{t:?}: text/csv");
            assert_eq!(
                h.counts(t),
                plus(before, |c| c.malformed += 1),
                "{t:?}: text/csv"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_receiver_applies_the_limits_alike() {
    // Fewer spans allowed than any seed holds: refused whole, counted as
    // received and rejected, nothing stored.
    let h = harness(Limits {
        max_spans_per_request: 0,
        ..Limits::default()
    })
    .await;
    for t in ALL {
        let n = t.spans() as u64;
        let before = h.counts(t);
        let got = h.send(t, t.good(), None).await;
        if !t.is_udp() {
            assert_eq!(got, Some(Failure::Invalid), "{t:?}: too many spans");
        }
        assert_eq!(
            h.counts(t),
            plus(before, |c| {
                c.received += n;
                c.rejected += n;
            }),
            "{t:?}: too many spans"
        );
    }

    // Strings longer than any seed's longest one fit, shorter do not: every
    // span is rejected one by one; the request is still answered.
    let h = harness(Limits {
        max_string_bytes: 1,
        ..Limits::default()
    })
    .await;
    for t in ALL {
        let n = t.spans() as u64;
        let before = h.counts(t);
        let got = h.send(t, t.good(), None).await;
        let want = match t {
            // No partial-success answer: nothing usable is an invalid batch.
            JaegerGrpc => Some(Failure::Invalid),
            _ => None,
        };
        if !t.is_udp() {
            assert_eq!(got, want, "{t:?}: every span over a limit");
        }
        assert_eq!(
            h.counts(t),
            plus(before, |c| {
                c.received += n;
                c.rejected += n;
            }),
            "{t:?}: every span over a limit"
        );
    }

    // A body larger than the limit, on the HTTP transports.
    let h = harness(Limits {
        max_request_bytes: 16,
        ..Limits::default()
    })
    .await;
    for t in ALL.into_iter().filter(|t| !t.is_grpc() && !t.is_udp()) {
        let before = h.counts(t);
        let got = h.send(t, t.good(), None).await;
        assert_eq!(got, Some(Failure::TooLarge), "{t:?}: body too large");
        assert_eq!(
            h.counts(t),
            plus(before, |c| c.malformed += 1),
            "{t:?}: body too large"
        );
    }
}
