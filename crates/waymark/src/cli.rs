//! Command-line interface. Every server option can come from the YAML file
//! (`--config`), a flag, or a `WAYMARK_*` environment variable; flags and
//! variables override the file.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use waymark_server::settings::{Kind, SETTINGS, Setting};
use waymark_server::{Config, Mode};

/// Waymark: a distributed tracing backend that speaks OTLP and serves
/// Jaeger's query API. With no subcommand it runs `all-in-one`.
#[derive(Parser, Debug)]
#[command(name = "waymark", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Receivers, storage and the query API in one process (default).
    AllInOne(ServerArgs),
    /// Receivers and the storage writer, without the query API.
    Collector(ServerArgs),
    /// The query API over what a collector stores: its data directory (read-only) or the same Elasticsearch.
    Query(ServerArgs),
    /// Per-node agent: receives locally, queues on disk, forwards to collectors.
    Agent(ServerArgs),
    /// Sends generated traces to an OTLP endpoint.
    Tracegen(crate::tracegen::TracegenArgs),
    /// Starts a server, loads it and prints ingest, size and query figures.
    Bench(crate::bench::BenchArgs),
    /// Deletes Jaeger-layout Elasticsearch/OpenSearch indices older than N days.
    EsCleaner(crate::es::CleanerArgs),
    /// Manages rollover indices and aliases in Elasticsearch/OpenSearch.
    EsRollover(crate::es::RolloverArgs),
}

/// Options of the server modes: `--config`, `--log-level`, and one flag
/// per setting of `waymark_server::settings::SETTINGS`, built from that
/// table (so `--help`, the file keys and `docs/configuration.md` cannot
/// disagree). Each overrides the configuration file.
#[derive(Debug, Clone, Default)]
pub struct ServerArgs {
    /// YAML configuration file (see docs/configuration.md).
    pub config: Option<PathBuf>,
    /// Log filter.
    pub log_level: Option<String>,
    /// Settings given as flags or variables, checked, in the order they
    /// apply (later ones win).
    pub overrides: Vec<(&'static Setting, serde_yaml_ng::Value)>,
}

impl clap::FromArgMatches for ServerArgs {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut args = ServerArgs::default();
        args.update_from_arg_matches(m)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        if let Some(p) = m.get_one::<PathBuf>("config") {
            self.config = Some(p.clone());
        }
        if let Some(l) = m.get_one::<String>("log-level") {
            self.log_level = Some(l.clone());
        }
        for s in SETTINGS.iter().filter(|s| s.flag.is_some()) {
            let Some(values) = m.get_many::<serde_yaml_ng::Value>(s.key) else {
                continue;
            };
            let values: Vec<_> = values.cloned().collect();
            let value = match s.kind {
                // `--collector a --collector b,c` is one list.
                Kind::List => serde_yaml_ng::Value::Sequence(
                    values
                        .into_iter()
                        .flat_map(|v| match v {
                            serde_yaml_ng::Value::Sequence(items) => items,
                            other => vec![other],
                        })
                        .collect(),
                ),
                _ => values.into_iter().last().expect("a value"),
            };
            self.overrides.push((s, value));
        }
        Ok(())
    }
}

impl clap::Args for ServerArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        use clap::{Arg, ArgAction, value_parser};
        let mut cmd = cmd
            .arg(
                Arg::new("config")
                    .long("config")
                    .env("WAYMARK_CONFIG")
                    .value_name("FILE")
                    .value_parser(value_parser!(PathBuf))
                    .help("YAML configuration file (see docs/configuration.md)"),
            )
            .arg(
                Arg::new("log-level")
                    .long("log-level")
                    .env("WAYMARK_LOG")
                    .value_name("FILTER")
                    .help("Log filter, e.g. info, debug, waymark_storage=debug [default: info]"),
            );
        for s in SETTINGS {
            let (Some(flag), Some(env)) = (s.flag, s.env_var()) else {
                continue;
            };
            // clap keeps `&'static str` names; the table is built once per
            // process, so the few derived names are leaked on purpose.
            let env: &'static str = Box::leak(env.into_boxed_str());
            let default = s.default_text().replace('`', "");
            let arg = Arg::new(s.key)
                .long(flag)
                .env(env)
                .value_name(value_name(s.kind))
                .help(format!("{} [default: {default}]", s.help))
                .long_help(format!(
                    "{}.\n\nFile key: {}. Default: {default}.",
                    s.doc.replace('`', ""),
                    s.key
                ))
                .hide_env_values(s.secret)
                .action(match s.kind {
                    Kind::List => ArgAction::Append,
                    _ => ArgAction::Set,
                })
                .value_parser(move |raw: &str| s.parse(raw));
            cmd = cmd.arg(arg);
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

fn value_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "TEXT",
        Kind::Path => "PATH",
        Kind::Bool => "BOOL",
        Kind::Count | Kind::Range(..) => "N",
        Kind::Float => "X",
        Kind::Percent => "PERCENT",
        Kind::Duration => "DURATION",
        Kind::Address => "ADDR",
        Kind::List => "LIST",
        Kind::OneOf(_) => "CHOICE",
    }
}

impl ServerArgs {
    /// Loads the file (if any) and applies the overrides.
    pub fn to_config(&self) -> anyhow::Result<Config> {
        let text = match &self.config {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .with_context(|| format!("reading config file {}", p.display()))?,
            ),
            None => None,
        };
        Config::load(text.as_deref(), &self.overrides).map_err(|e| match &self.config {
            Some(p) => anyhow::anyhow!("config file {}: {e}", p.display()),
            None => anyhow::anyhow!("{e}"),
        })
    }
}

fn init_logging(filter: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter.unwrap_or("info"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn serve(args: ServerArgs, mode: Mode) -> anyhow::Result<()> {
    init_logging(args.log_level.as_deref());
    let cfg = args.to_config()?;
    let running = waymark_server::start(cfg, mode).await?;
    let b = &running.bound;
    tracing::info!(
        mode = ?mode,
        otlp_grpc = ?b.otlp_grpc,
        otlp_http = ?b.otlp_http,
        zipkin = ?b.zipkin,
        jaeger_udp_compact = ?b.jaeger_compact,
        jaeger_udp_binary = ?b.jaeger_binary,
        jaeger_http = ?b.jaeger_http,
        sampling = ?b.sampling,
        jaeger_grpc = ?b.jaeger_grpc,
        query = ?b.query,
        query_grpc = ?b.query_grpc,
        admin = %b.admin,
        "waymark is serving"
    );
    running.run_until(shutdown_signal()).await
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve(cli.server, Mode::AllInOne).await,
        Some(Command::AllInOne(a)) => serve(merge(cli.server, a), Mode::AllInOne).await,
        Some(Command::Collector(a)) => serve(merge(cli.server, a), Mode::Collector).await,
        Some(Command::Query(a)) => serve(merge(cli.server, a), Mode::Query).await,
        Some(Command::Agent(a)) => serve(merge(cli.server, a), Mode::Agent).await,
        Some(Command::Tracegen(a)) => {
            init_logging(cli.server.log_level.as_deref());
            crate::tracegen::run(a).await
        }
        Some(Command::Bench(a)) => {
            init_logging(cli.server.log_level.as_deref().or(Some("warn")));
            crate::bench::run(a).await
        }
        Some(Command::EsCleaner(a)) => {
            init_logging(cli.server.log_level.as_deref());
            crate::es::cleaner(a).await
        }
        Some(Command::EsRollover(a)) => {
            init_logging(cli.server.log_level.as_deref());
            crate::es::rollover(a).await
        }
    }
}

/// Global flags given before the subcommand count too; the subcommand's win.
fn merge(global: ServerArgs, sub: ServerArgs) -> ServerArgs {
    let mut overrides = global.overrides;
    overrides.extend(sub.overrides);
    ServerArgs {
        config: sub.config.or(global.config),
        log_level: sub.log_level.or(global.log_level),
        overrides,
    }
}
