//! `waymark bench`: starts a Waymark server as a child process on a fresh
//! data directory, loads it with generated traces over OTLP, and prints
//! the figures we track: ingest spans per server CPU-second (until the
//! server is idle again, so background block writing counts), bytes per
//! stored span at rest, ingest-to-queryable delay, trace-by-id and search
//! latency percentiles, and peak RSS.
//!
//! Server CPU and memory come from `/proc/<pid>`, so this runs on Linux.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tokio::sync::Mutex;
use waymark_model::Span;
use waymark_testkit::{GeneratorConfig, TraceGenerator, now_ns};

use crate::httpc;
use crate::tracegen::Sender;

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Spans to ingest before measuring queries.
    #[arg(long, default_value_t = 1_000_000)]
    pub spans: u64,
    /// OTLP transport of the load: grpc or http.
    #[arg(long, default_value = "grpc")]
    pub protocol: String,
    /// Concurrent senders.
    #[arg(long, default_value_t = 4)]
    pub senders: usize,
    /// Traces per export request.
    #[arg(long, default_value_t = 20)]
    pub batch: usize,
    /// Trace-by-id and search queries to time (each).
    #[arg(long, default_value_t = 500)]
    pub queries: usize,
    /// WAL sync policy of the server under test.
    #[arg(long, default_value = "batch")]
    pub fsync: String,
    /// Keep the data directory here instead of a temporary one.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

struct Server {
    child: Child,
    pid: u32,
    query: SocketAddr,
    admin: SocketAddr,
    otlp_grpc: SocketAddr,
    otlp_http: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// User + system CPU seconds of a process.
fn cpu_seconds(pid: u32, ticks: f64) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the line.
    let rest = &stat[stat.rfind(')').context("bad /proc stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f[11].parse()?;
    let stime: f64 = f[12].parse()?;
    Ok((utime + stime) / ticks)
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn metric(admin: SocketAddr, name: &str) -> Option<f64> {
    let r = httpc::get(admin, "/metrics").ok()?;
    String::from_utf8_lossy(&r.body).lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next()? == name).then(|| it.next()?.parse().ok())?
    })
}

fn start_server(data: &Path, fsync: &str) -> anyhow::Result<Server> {
    let (grpc, http, query, admin) = (free_port()?, free_port()?, free_port()?, free_port()?);
    let exe = std::env::current_exe()?;
    let child = Command::new(exe)
        .args(["all-in-one", "--data-dir"])
        .arg(data)
        .args(["--otlp-grpc-listen", &grpc.to_string()])
        .args(["--otlp-http-listen", &http.to_string()])
        .args(["--query-listen", &query.to_string()])
        .args(["--admin-listen", &admin.to_string()])
        .args(["--zipkin-listen", "127.0.0.1:0"])
        .args(["--jaeger-compact-listen", "127.0.0.1:0"])
        .args(["--jaeger-binary-listen", "127.0.0.1:0"])
        .args(["--jaeger-http-listen", "127.0.0.1:0"])
        .args(["--sampling-listen", "127.0.0.1:0"])
        .args(["--jaeger-grpc-listen", "127.0.0.1:0"])
        .args(["--query-grpc-listen", "127.0.0.1:0"])
        .args([
            "--fsync",
            fsync,
            "--head-max-age",
            "2s",
            "--log-level",
            "warn",
        ])
        .stdin(Stdio::null())
        .spawn()
        .context("starting the server")?;
    let pid = child.id();
    let server = Server {
        child,
        pid,
        query,
        admin,
        otlp_grpc: grpc,
        otlp_http: http,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = httpc::get(admin, "/ready")
            && r.status == 200
        {
            return Ok(server);
        }
        if Instant::now() > deadline {
            anyhow::bail!("server did not become ready within 60s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What a search query looks for; chosen from generated spans so it matches.
#[derive(Clone)]
struct SearchCase {
    service: String,
    operation: String,
}

pub async fn run(a: BenchArgs) -> anyhow::Result<()> {
    let tmp;
    let data = match &a.data_dir {
        Some(d) => d.clone(),
        None => {
            tmp = std::env::temp_dir().join(format!("waymark-bench-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            tmp.clone()
        }
    };
    std::fs::create_dir_all(&data)?;
    let ticks = clock_ticks();
    let server = start_server(&data, &a.fsync)?;
    let endpoint = if a.protocol == "http" {
        server.otlp_http
    } else {
        server.otlp_grpc
    };
    println!(
        "waymark bench: {} spans over OTLP {} with {} senders, fsync={}",
        a.spans, a.protocol, a.senders, a.fsync
    );

    // ---- ingest ----------------------------------------------------------
    let cpu0 = cpu_seconds(server.pid, ticks)?;
    let t0 = Instant::now();
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let samples: Arc<Mutex<Vec<(String, u64, u64)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..a.senders.max(1) {
        let a = a.clone();
        let sent = sent.clone();
        let samples = samples.clone();
        tasks.push(tokio::spawn(async move {
            let mut g = TraceGenerator::new(GeneratorConfig {
                seed: 7 + w as u64,
                ..Default::default()
            });
            let mut sender = Sender::connect(&a.protocol, endpoint).await?;
            let mut n = 0u64;
            loop {
                if sent.load(std::sync::atomic::Ordering::Relaxed) >= a.spans {
                    break;
                }
                let mut batch: Vec<Span> = Vec::new();
                for _ in 0..a.batch {
                    let t = g.trace(now_ns());
                    n += 1;
                    if n.is_multiple_of(50) {
                        let root = t.last().expect("generated trace has spans");
                        samples.lock().await.push((
                            root.trace_id.to_hex(),
                            root.start_time_unix_nano,
                            t.len() as u64,
                        ));
                    }
                    batch.extend(t);
                }
                let len = batch.len() as u64;
                sender.send(&batch).await?;
                sent.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let load_wall = t0.elapsed();
    let total = sent.load(std::sync::atomic::Ordering::Relaxed);
    // Idle = the head is written out as blocks and the CPU stopped moving.
    let mut last = cpu_seconds(server.pid, ticks)?;
    let mut still = 0;
    let idle_deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < idle_deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = cpu_seconds(server.pid, ticks)?;
        let head = metric(server.admin, "waymark_head_spans").unwrap_or(1.0);
        if now - last < 0.02 && head == 0.0 {
            still += 1;
            if still >= 2 {
                break;
            }
        } else {
            still = 0;
        }
        last = now;
    }
    let cpu = last - cpu0;
    let block_bytes = dir_bytes(&data.join("blocks"));
    let wal_bytes = dir_bytes(&data.join("wal"));

    // ---- ingest to queryable -------------------------------------------------
    let mut sender = Sender::connect(&a.protocol, endpoint).await?;
    let mut g = TraceGenerator::new(GeneratorConfig {
        seed: 999,
        ..Default::default()
    });
    let mut visible = Vec::new();
    for _ in 0..20 {
        let t = g.trace(now_ns());
        let id = t[0].trace_id.to_hex();
        let start = Instant::now();
        sender.send(&t).await?;
        loop {
            let r = httpc::get(server.query, &format!("/api/traces/{id}"))?;
            if r.status == 200 {
                break;
            }
            if start.elapsed() > Duration::from_secs(10) {
                anyhow::bail!("trace {id} not queryable after 10s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        visible.push(ms(start.elapsed()));
    }
    visible.sort_by(f64::total_cmp);

    // ---- trace by id -------------------------------------------------------
    let samples = samples.lock().await.clone();
    anyhow::ensure!(!samples.is_empty(), "no samples collected");
    let query = server.query;
    let n_queries = a.queries;
    let by_id = tokio::task::spawn_blocking({
        let samples = samples.clone();
        move || -> anyhow::Result<Vec<f64>> {
            let mut out = Vec::with_capacity(n_queries);
            for i in 0..n_queries {
                let (id, _, spans) = &samples[(i * 7919) % samples.len()];
                let t = Instant::now();
                let r = httpc::get(query, &format!("/api/traces/{id}"))?;
                let el = ms(t.elapsed());
                anyhow::ensure!(r.status == 200, "trace {id}: HTTP {}", r.status);
                let v: serde_json::Value = serde_json::from_slice(&r.body)?;
                let got = v["data"][0]["spans"]
                    .as_array()
                    .map(|a| a.len())
                    .unwrap_or(0) as u64;
                anyhow::ensure!(got == *spans, "trace {id}: {got} spans, expected {spans}");
                out.push(el);
            }
            Ok(out)
        }
    })
    .await??;
    let mut by_id = by_id;
    by_id.sort_by(f64::total_cmp);

    // ---- search ------------------------------------------------------------
    let cases = [
        SearchCase {
            service: "frontend".into(),
            operation: "auth/Authenticate".into(),
        },
        SearchCase {
            service: "frontend".into(),
            operation: "catalog/ListProducts".into(),
        },
        SearchCase {
            service: "frontend".into(),
            operation: "payment/Charge".into(),
        },
        SearchCase {
            service: "frontend".into(),
            operation: "cart/GetCart".into(),
        },
    ];
    let start_us = samples.iter().map(|s| s.1).min().unwrap_or(0) / 1000 - 1_000_000;
    let end_us = now_ns() / 1000;
    let search = tokio::task::spawn_blocking(move || -> anyhow::Result<(Vec<f64>, u64)> {
        let mut out = Vec::with_capacity(n_queries);
        let mut found = 0u64;
        for i in 0..n_queries {
            let c = &cases[i % cases.len()];
            let tags = r#"{"rpc.system":"grpc","server.port":"50051"}"#;
            let path = format!(
                "/api/traces?service={}&operation={}&tags={}&minDuration=1ms&limit=20&start={start_us}&end={end_us}",
                c.service,
                c.operation.replace('/', "%2F"),
                tags.replace('"', "%22").replace('{', "%7B").replace('}', "%7D").replace(':', "%3A").replace(',', "%2C"),
            );
            let t = Instant::now();
            let r = httpc::get(query, &path)?;
            let el = ms(t.elapsed());
            anyhow::ensure!(r.status == 200, "search: HTTP {}: {}", r.status, String::from_utf8_lossy(&r.body));
            let v: serde_json::Value = serde_json::from_slice(&r.body)?;
            found += v["data"].as_array().map(|a| a.len()).unwrap_or(0) as u64;
            out.push(el);
        }
        Ok((out, found))
    })
    .await??;
    let (mut search_ms, found) = search;
    search_ms.sort_by(f64::total_cmp);

    let rss_peak_mib = status_kib(server.pid, "VmHWM:") as f64 / 1024.0;
    let rss_now_mib = status_kib(server.pid, "VmRSS:") as f64 / 1024.0;
    let stored = total + 20 * 10;
    let _ = stored;

    println!();
    println!("ingest");
    println!("  spans sent and acknowledged    {total}");
    println!(
        "  wall time                      {:.2} s ({:.0} spans/s)",
        load_wall.as_secs_f64(),
        total as f64 / load_wall.as_secs_f64()
    );
    println!("  server CPU until idle          {cpu:.2} s");
    println!("  spans per server CPU-second    {:.0}", total as f64 / cpu);
    println!("storage");
    println!("  block bytes                    {block_bytes}");
    println!("  wal bytes left                 {wal_bytes}");
    println!(
        "  bytes per span at rest         {:.1}",
        (block_bytes + wal_bytes) as f64 / total as f64
    );
    println!("ingest to queryable (20 traces)");
    println!(
        "  p50 / max                      {:.2} ms / {:.2} ms",
        percentile(&visible, 50.0),
        visible.last().copied().unwrap_or(0.0)
    );
    println!("trace by id ({n_queries} queries, {total} spans stored)");
    println!(
        "  p50 / p99                      {:.2} ms / {:.2} ms",
        percentile(&by_id, 50.0),
        percentile(&by_id, 99.0)
    );
    println!("search: service + operation + 2 tags + minDuration, limit 20 ({n_queries} queries)");
    println!(
        "  p50 / p99                      {:.2} ms / {:.2} ms",
        percentile(&search_ms, 50.0),
        percentile(&search_ms, 99.0)
    );
    println!(
        "  traces returned per query      {:.1}",
        found as f64 / n_queries.max(1) as f64
    );
    println!("memory");
    println!("  peak RSS                       {rss_peak_mib:.0} MiB (now {rss_now_mib:.0} MiB)");
    let summary = serde_json::json!({
        "spans": total,
        "spans_per_cpu_second": total as f64 / cpu,
        "bytes_per_span": (block_bytes + wal_bytes) as f64 / total as f64,
        "queryable_ms_p50": percentile(&visible, 50.0),
        "queryable_ms_max": visible.last().copied().unwrap_or(0.0),
        "trace_by_id_ms_p50": percentile(&by_id, 50.0),
        "trace_by_id_ms_p99": percentile(&by_id, 99.0),
        "search_ms_p50": percentile(&search_ms, 50.0),
        "search_ms_p99": percentile(&search_ms, 99.0),
        "peak_rss_mib": rss_peak_mib,
    });
    println!("{summary}");
    drop(server);
    if a.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&data);
    }
    Ok(())
}
