//! `waymark tracegen`: sends realistic generated traces over OTLP gRPC or
//! HTTP/protobuf at a chosen rate, for demos and load tests.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Args;
use prost::Message;
use waymark_otlp::to_request;
use waymark_proto::otlp::collector::trace_service_client::TraceServiceClient;
use waymark_testkit::{GeneratorConfig, TraceGenerator, now_ns};

#[derive(Args, Debug, Clone)]
pub struct TracegenArgs {
    /// OTLP endpoint: host:port of the gRPC (4317) or HTTP (4318) receiver.
    #[arg(long, default_value = "127.0.0.1:4317")]
    pub endpoint: SocketAddr,
    /// Protocol: grpc or http (protobuf over POST /v1/traces).
    #[arg(long, default_value = "grpc")]
    pub protocol: String,
    /// Traces per second in total; 0 sends as fast as the server accepts.
    #[arg(long, default_value_t = 100)]
    pub rate: u64,
    /// How long to send, e.g. 30s, 5m.
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// Stop after this many traces (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub traces: u64,
    /// Traces per request.
    #[arg(long, default_value_t = 10)]
    pub batch: usize,
    /// Concurrent senders.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Probability that a trace contains an error.
    #[arg(long, default_value_t = 0.05)]
    pub error_rate: f64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub async fn run(a: TracegenArgs) -> anyhow::Result<()> {
    let duration = waymark_server::config::parse_duration(&a.duration)
        .map_err(|e| anyhow::anyhow!("--duration: {e}"))?;
    let deadline = Instant::now() + duration;
    let per_worker_rate = a.rate as f64 / a.workers.max(1) as f64;
    let per_worker_limit = if a.traces > 0 {
        a.traces.div_ceil(a.workers.max(1) as u64)
    } else {
        u64::MAX
    };
    let mut handles = Vec::new();
    for w in 0..a.workers.max(1) {
        let a = a.clone();
        handles.push(tokio::spawn(async move {
            let mut g = TraceGenerator::new(GeneratorConfig {
                seed: a.seed.wrapping_mul(1000).wrapping_add(w as u64),
                error_rate: a.error_rate,
            });
            let mut sender = Sender::connect(&a.protocol, a.endpoint).await?;
            let started = Instant::now();
            let (mut traces, mut spans, mut failed) = (0u64, 0u64, 0u64);
            while Instant::now() < deadline && traces < per_worker_limit {
                let mut batch = Vec::new();
                let n = (a.batch as u64).min(per_worker_limit - traces);
                for _ in 0..n {
                    batch.extend(g.trace(now_ns()));
                }
                let count = batch.len() as u64;
                match sender.send(&batch).await {
                    Ok(()) => {
                        traces += n;
                        spans += count;
                    }
                    Err(e) => {
                        failed += count;
                        tracing::warn!(error = %e, "export failed");
                    }
                }
                if per_worker_rate > 0.0 {
                    let due = Duration::from_secs_f64(traces as f64 / per_worker_rate);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
            anyhow::Ok((traces, spans, failed))
        }));
    }
    let (mut traces, mut spans, mut failed) = (0, 0, 0);
    for h in handles {
        let (t, s, f) = h.await??;
        traces += t;
        spans += s;
        failed += f;
    }
    println!("sent {traces} traces ({spans} spans); {failed} spans failed");
    if failed > 0 {
        anyhow::bail!("{failed} spans were not accepted");
    }
    Ok(())
}

/// An OTLP client over either transport.
pub enum Sender {
    Grpc(TraceServiceClient<tonic::transport::Channel>),
    Http(SocketAddr),
}

impl Sender {
    pub async fn connect(protocol: &str, endpoint: SocketAddr) -> anyhow::Result<Sender> {
        match protocol {
            "grpc" => Ok(Sender::Grpc(
                TraceServiceClient::connect(format!("http://{endpoint}"))
                    .await
                    .map_err(|e| anyhow::anyhow!("connecting to {endpoint}: {e}"))?
                    .max_encoding_message_size(64 << 20),
            )),
            "http" => Ok(Sender::Http(endpoint)),
            other => anyhow::bail!("unknown protocol {other:?}: expected grpc or http"),
        }
    }

    pub async fn send(&mut self, spans: &[waymark_model::Span]) -> anyhow::Result<()> {
        let req = to_request(spans);
        self.send_request(req).await
    }

    pub async fn send_request(
        &mut self,
        req: waymark_proto::otlp::collector::ExportTraceServiceRequest,
    ) -> anyhow::Result<()> {
        match self {
            Sender::Grpc(c) => {
                let r = c.export(req).await?.into_inner();
                if let Some(p) = r.partial_success
                    && p.rejected_spans > 0
                {
                    anyhow::bail!("{} spans rejected: {}", p.rejected_spans, p.error_message);
                }
                Ok(())
            }
            Sender::Http(addr) => {
                let addr = *addr;
                let body = req.encode_to_vec();
                let r = tokio::task::spawn_blocking(move || {
                    crate::httpc::request(
                        addr,
                        "POST",
                        "/v1/traces",
                        Some("application/x-protobuf"),
                        &body,
                    )
                })
                .await??;
                if r.status != 200 {
                    anyhow::bail!("HTTP {}: {}", r.status, String::from_utf8_lossy(&r.body));
                }
                Ok(())
            }
        }
    }
}
