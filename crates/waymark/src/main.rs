//! The `waymark` binary: parses flags and environment into a configuration
//! and runs one of the modes (`all-in-one` by default, `collector`,
//! `query`), or the load generator (`tracegen`) and the benchmark (`bench`).

mod bench;
mod cli;
mod es;
mod httpc;
mod tracegen;

use clap::Parser;

// The ingest path allocates many small strings and vectors per span;
// mimalloc cut allocator time (a fifth of the server's CPU under glibc
// malloc) substantially in `waymark bench`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("waymark")
        .build()?;
    runtime.block_on(cli::dispatch(cli))
}
