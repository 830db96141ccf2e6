//! The gRPC surfaces of a running server, driven by gRPC clients: spans in
//! over OTLP and Jaeger's PostSpans, read back through Jaeger's api_v2 and
//! api_v3 query services, and sampling strategies from SamplingManager.

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use waymark_proto::jaeger::{api_v2 as v2, api_v3 as v3};
use waymark_proto::otlp::collector::trace_service_client::TraceServiceClient;
use waymark_server::{Config, Mode};

const T0: u64 = 1_700_000_000_000_000_000;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn server(dir: &std::path::Path) -> waymark_server::Running {
    let mut cfg = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    let l = &mut cfg.listen;
    for a in [
        &mut l.otlp_grpc,
        &mut l.otlp_http,
        &mut l.zipkin,
        &mut l.jaeger_compact,
        &mut l.jaeger_binary,
        &mut l.jaeger_http,
        &mut l.sampling,
        &mut l.jaeger_grpc,
        &mut l.query,
        &mut l.query_grpc,
        &mut l.admin,
    ] {
        *a = loopback();
    }
    waymark_server::start(cfg, Mode::AllInOne).await.unwrap()
}

fn ts(ns: u64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: (ns / 1_000_000_000) as i64,
        nanos: (ns % 1_000_000_000) as i32,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_services_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path()).await;
    let b = srv.bound.clone();
    let fixture = waymark_testkit::fixture_trace(T0);
    let trace_id = fixture[0].trace_id;
    let mut otlp = TraceServiceClient::connect(format!("http://{}", b.otlp_grpc.unwrap()))
        .await
        .unwrap();
    otlp.export(waymark_otlp::to_request(&fixture))
        .await
        .unwrap();

    let url = format!("http://{}", b.query_grpc.unwrap());
    let mut q2 = v2::query_service_client::QueryServiceClient::connect(url.clone())
        .await
        .unwrap();
    // api_v2 GetTrace: Jaeger's proto model with Jaeger's tags.
    let mut stream = q2
        .get_trace(v2::GetTraceRequest {
            trace_id: trace_id.0.to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let chunk = stream.next().await.unwrap().unwrap();
    assert_eq!(chunk.spans.len(), 2);
    let root = chunk
        .spans
        .iter()
        .find(|s| s.operation_name == "GET /checkout")
        .unwrap();
    assert_eq!(root.process.as_ref().unwrap().service_name, "frontend");
    let tags: Vec<_> = root.tags.iter().map(|t| t.key.as_str()).collect();
    assert!(
        tags.contains(&"span.kind") && tags.contains(&"otel.scope.name"),
        "{tags:?}"
    );
    let big = root.tags.iter().find(|t| t.key == "big.int").unwrap();
    assert_eq!(
        (big.v_type, big.v_int64),
        (v2::ValueType::Int64 as i32, 9_007_199_254_740_993)
    );
    assert_eq!(
        root.references[0].ref_type,
        v2::SpanRefType::FollowsFrom as i32
    );
    let child = chunk
        .spans
        .iter()
        .find(|s| s.operation_name == "charge")
        .unwrap();
    assert_eq!(child.references[0].span_id, root.span_id);
    assert!(child.tags.iter().any(|t| t.key == "error" && t.v_bool));
    assert_eq!(child.logs[0].fields[0].v_str, "exception");
    assert_eq!(child.duration.unwrap().nanos, 8_000_000);

    let missing = q2
        .get_trace(v2::GetTraceRequest {
            trace_id: vec![0x42; 16],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // api_v2 FindTraces, services, operations, dependencies.
    let found: Vec<_> = q2
        .find_traces(v2::FindTracesRequest {
            query: Some(v2::TraceQueryParameters {
                service_name: "payment".into(),
                tags: [("error".to_string(), "true".to_string())].into(),
                start_time_min: ts(T0 - 1_000_000_000),
                start_time_max: ts(T0 + 1_000_000_000),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].as_ref().unwrap().spans.len(), 2, "whole trace");
    let bad = q2
        .find_traces(v2::FindTracesRequest {
            query: Some(v2::TraceQueryParameters::default()),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    let services = q2
        .get_services(v2::GetServicesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(services.services, vec!["frontend", "payment"]);
    let ops = q2
        .get_operations(v2::GetOperationsRequest {
            service: "frontend".into(),
            span_kind: "server".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ops.operations[0].name, "GET /checkout");
    let deps = q2
        .get_dependencies(v2::GetDependenciesRequest {
            start_time: ts(T0 - 60_000_000_000),
            end_time: ts(T0 + 60_000_000_000),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            deps.dependencies[0].parent.as_str(),
            deps.dependencies[0].child.as_str()
        ),
        ("frontend", "payment")
    );

    // api_v3: OTLP TracesData and summaries.
    let mut q3 = v3::query_service_client::QueryServiceClient::connect(url)
        .await
        .unwrap();
    let data = q3
        .get_trace(v3::GetTraceRequest {
            trace_id: trace_id.to_hex(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .next()
        .await
        .unwrap()
        .unwrap();
    let spans: Vec<_> = data
        .resource_spans
        .iter()
        .flat_map(|r| r.scope_spans.iter().flat_map(|s| s.spans.iter()))
        .collect();
    assert_eq!(spans.len(), 2);
    assert!(spans.iter().all(|s| s.trace_id == trace_id.0.to_vec()));
    let summaries = q3
        .find_trace_summaries(v3::FindTraceSummariesRequest {
            query: Some(v3::TraceQueryParameters {
                service_name: "frontend".into(),
                start_time_min: ts(T0 - 1_000_000_000),
                start_time_max: ts(T0 + 1_000_000_000),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .next()
        .await
        .unwrap()
        .unwrap();
    let s = &summaries.summaries[0];
    assert_eq!(
        (
            s.root_service_name.as_str(),
            s.span_count,
            s.error_span_count
        ),
        ("frontend", 2, 1)
    );
    let ops = q3
        .get_operations(v3::GetOperationsRequest {
            service: "payment".into(),
            span_kind: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            ops.operations[0].name.as_str(),
            ops.operations[0].span_kind.as_str()
        ),
        ("charge", "client")
    );

    // Every call above was timed, under its method's label.
    let metrics = scrape(b.admin).await;
    for label in [
        "grpc_v2_trace_by_id",
        "grpc_v3_trace_by_id",
        "grpc_v2_operations",
        "grpc_v3_operations",
    ] {
        assert!(
            metrics.contains(&format!(
                "waymark_query_duration_seconds_count{{endpoint=\"{label}\"}}"
            )),
            "{label} not timed:\n{metrics}"
        );
    }
    drop(srv);
}

/// `GET /metrics` on the admin port, over a bare HTTP/1.0 exchange.
async fn scrape(admin: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(admin).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_post_spans_and_sampling_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path()).await;
    let b = srv.bound.clone();
    let url = format!("http://{}", b.jaeger_grpc.unwrap());
    let mut c = v2::collector_service_client::CollectorServiceClient::connect(url.clone())
        .await
        .unwrap();
    let mut trace_id = vec![0u8; 16];
    trace_id[15] = 7;
    let span = v2::Span {
        trace_id: trace_id.clone(),
        span_id: vec![0, 0, 0, 0, 0, 0, 0, 9],
        operation_name: "jaeger-grpc-op".into(),
        start_time: ts(T0),
        duration: Some(prost_types::Duration {
            seconds: 0,
            nanos: 5_000,
        }),
        tags: vec![v2::KeyValue {
            key: "span.kind".into(),
            v_str: "server".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    c.post_spans(v2::PostSpansRequest {
        batch: Some(v2::Batch {
            spans: vec![span],
            process: Some(v2::Process {
                service_name: "grpc-svc".into(),
                tags: vec![],
            }),
        }),
    })
    .await
    .unwrap();
    let bad = c
        .post_spans(v2::PostSpansRequest {
            batch: Some(v2::Batch {
                spans: vec![v2::Span::default()],
                process: None,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad}");

    let mut q2 = v2::query_service_client::QueryServiceClient::connect(format!(
        "http://{}",
        b.query_grpc.unwrap()
    ))
    .await
    .unwrap();
    let chunk = q2
        .get_trace(v2::GetTraceRequest {
            trace_id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .next()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(chunk.spans[0].operation_name, "jaeger-grpc-op");
    assert_eq!(
        chunk.spans[0].process.as_ref().unwrap().service_name,
        "grpc-svc"
    );

    let mut sm = v2::sampling_manager_client::SamplingManagerClient::connect(url)
        .await
        .unwrap();
    let r = sm
        .get_sampling_strategy(v2::SamplingStrategyParameters {
            service_name: "anyone".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.strategy_type,
        v2::SamplingStrategyType::Probabilistic as i32
    );
    assert_eq!(r.probabilistic_sampling.unwrap().sampling_rate, 1.0);
    tokio::time::sleep(Duration::from_millis(10)).await;
    drop(srv);
}
