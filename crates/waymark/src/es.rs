//! `waymark es-cleaner` and `waymark es-rollover`: the index maintenance
//! a Jaeger-layout Elasticsearch/OpenSearch cluster needs, meant to run as
//! Kubernetes CronJobs beside the collector. Both take the same connection
//! and index flags (or configuration file) as the collector.

use std::time::Duration;

use clap::{Args, Subcommand};
use waymark_elasticsearch::{EsClient, cleaner, rollover};

use crate::cli::ServerArgs;
use waymark_model::now_unix_nanos as now_ns;

/// `waymark es-cleaner DAYS`.
#[derive(Args, Debug)]
pub struct CleanerArgs {
    /// Delete the dated indices (spans, services, dependencies) whose whole
    /// day (or hour) is older than this many days.
    pub days: u64,
    /// Print what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `waymark es-rollover init|rollover|lookback`.
#[derive(Args, Debug)]
pub struct RolloverArgs {
    #[command(subcommand)]
    pub action: RolloverAction,
}

#[derive(Subcommand, Debug)]
pub enum RolloverAction {
    /// Put the index templates and create the first span and service
    /// indices with their -write and -read aliases (idempotent).
    Init {
        /// Name an ILM policy in the templates (Elasticsearch; see `policy`).
        #[arg(long)]
        ilm_policy: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Put a lifecycle policy (ILM on Elasticsearch, ISM on OpenSearch) that
    /// rolls the indices over and deletes old ones, instead of CronJobs.
    Policy {
        /// Policy name.
        #[arg(long, default_value = "waymark-ilm-policy")]
        name: String,
        /// Roll the write index over at this age, e.g. 1d.
        #[arg(long, default_value = "1d")]
        rollover_after: String,
        /// Delete indices at this age, e.g. 7d.
        #[arg(long, default_value = "7d")]
        delete_after: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Start new write indices when the current ones are older than
    /// --max-age, and add them to the read aliases.
    Rollover {
        /// Rollover condition, e.g. 1d, 12h.
        #[arg(long, default_value = "1d")]
        max_age: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Remove indices created before --older-than from the read aliases.
    Lookback {
        /// e.g. 7d.
        #[arg(long)]
        older_than: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

fn client(server: &ServerArgs) -> anyhow::Result<(EsClient, waymark_elasticsearch::EsConfig)> {
    let cfg = server.to_config()?.storage.elasticsearch.to_config();
    let client = EsClient::new(&cfg.client)?;
    Ok((client, cfg))
}

pub async fn cleaner(a: CleanerArgs) -> anyhow::Result<()> {
    let (client, cfg) = client(&a.server)?;
    let cutoff = now_ns().saturating_sub(a.days.saturating_mul(86_400) * 1_000_000_000);
    if a.dry_run {
        let names: Vec<String> = cleaner::list_indices(&client, &cfg.indices)
            .await?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        for n in cleaner::expired(&cfg.indices, &names, cutoff) {
            println!("would delete {n}");
        }
        return Ok(());
    }
    let d = cleaner::delete_indices_before(&client, &cfg.indices, cutoff).await?;
    for n in &d.indices {
        println!("deleted {n}");
    }
    println!(
        "{} indices deleted ({} span documents)",
        d.indices.len(),
        d.spans
    );
    Ok(())
}

pub async fn rollover(a: RolloverArgs) -> anyhow::Result<()> {
    let report = match a.action {
        RolloverAction::Init { ilm_policy, server } => {
            let (client, mut cfg) = client(&server)?;
            cfg.templates.ilm_policy = ilm_policy;
            rollover::init(&client, &cfg.indices, &cfg.templates).await?
        }
        RolloverAction::Policy {
            name,
            rollover_after,
            delete_after,
            server,
        } => {
            for (flag, v) in [
                ("rollover-after", &rollover_after),
                ("delete-after", &delete_after),
            ] {
                waymark_server::config::parse_duration(v)
                    .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))?;
            }
            let (client, cfg) = client(&server)?;
            rollover::put_policy(&client, &cfg.indices, &name, &rollover_after, &delete_after)
                .await?
        }
        RolloverAction::Rollover { max_age, server } => {
            waymark_server::config::parse_duration(&max_age)
                .map_err(|e| anyhow::anyhow!("--max-age: {e}"))?;
            let (client, cfg) = client(&server)?;
            rollover::rollover(
                &client,
                &cfg.indices,
                &serde_json::json!({"max_age": max_age}),
            )
            .await?
        }
        RolloverAction::Lookback { older_than, server } => {
            let d: Duration = waymark_server::config::parse_duration(&older_than)
                .map_err(|e| anyhow::anyhow!("--older-than: {e}"))?;
            let (client, cfg) = client(&server)?;
            let cutoff_ms = (now_ns().saturating_sub(d.as_nanos() as u64)) / 1_000_000;
            rollover::lookback(&client, &cfg.indices, cutoff_ms).await?
        }
    };
    for l in report.lines {
        println!("{l}");
    }
    Ok(())
}
