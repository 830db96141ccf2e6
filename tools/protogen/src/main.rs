//! Regenerates the Rust code that `waymark-proto` checks in from the `.proto`
//! files beside it. Uses `protox` (a protobuf compiler written in Rust), so no
//! `protoc` binary is needed anywhere. With `--check` it writes nothing and
//! exits non-zero when the checked-in code differs from a fresh generation.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Entry files; their imports are pulled in by the compiler.
const ROOTS: &[&str] = &[
    "otlp/trace_service.proto",
    "google/rpc/status.proto",
    "zipkin/zipkin.proto",
    "jaeger/api_v2/collector.proto",
    "jaeger/api_v2/sampling.proto",
    "jaeger/api_v2/query.proto",
    "jaeger/api_v3/query_service.proto",
];

fn main() -> anyhow::Result<()> {
    let check = std::env::args().skip(1).any(|a| a == "--check");
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/proto");
    let proto_dir = crate_dir.join("proto");
    let gen_dir = crate_dir.join("src/gen");

    let fds = protox::compile(ROOTS, [&proto_dir]).context("compiling .proto files")?;
    let tmp = tempfile::tempdir()?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::codec::ProtoCodec")
        .out_dir(tmp.path())
        .compile_fds(fds)
        .context("generating Rust code")?;

    let fresh = list(tmp.path())?;
    if check {
        let current = list(&gen_dir)?;
        let mut stale = Vec::new();
        for name in fresh.iter().chain(current.iter()) {
            let a = std::fs::read(tmp.path().join(name)).ok();
            let b = std::fs::read(gen_dir.join(name)).ok();
            if a != b && !stale.contains(name) {
                stale.push(name.clone());
            }
        }
        if !stale.is_empty() {
            bail!(
                "generated protobuf code is stale: {stale:?}; run `cargo run -p waymark-protogen` and commit the result"
            );
        }
        println!("protobuf code is up to date ({} files)", fresh.len());
    } else {
        std::fs::create_dir_all(&gen_dir)?;
        for old in list(&gen_dir)? {
            std::fs::remove_file(gen_dir.join(old))?;
        }
        for name in &fresh {
            std::fs::copy(tmp.path().join(name), gen_dir.join(name))?;
        }
        println!("wrote {} files to {}", fresh.len(), gen_dir.display());
    }
    Ok(())
}

fn list(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut names = Vec::new();
    if dir.exists() {
        for entry in std::fs::read_dir(dir)? {
            let name = PathBuf::from(entry?.file_name());
            if name.extension().is_some_and(|e| e == "rs") {
                names.push(name);
            }
        }
    }
    names.sort();
    Ok(names)
}
