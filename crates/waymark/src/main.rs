//! The `waymark` binary: parses flags and environment into a configuration
//! and runs one of the modes (`all-in-one` by default, `collector`,
//! `query`), or the load generator (`tracegen`) and the benchmark (`bench`).

mod bench;
mod cli;
mod httpc;
mod tracegen;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("waymark")
        .build()?;
    runtime.block_on(cli::dispatch(cli))
}
