//! Compiles the protos with protox (pure Rust): no system protoc, ever.

use std::path::PathBuf;

use protox::prost::Message;

const PROTOS: &[&str] = &["proto/meridian.proto", "proto/internal.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        // compile_fds does not print these itself.
        println!("cargo:rerun-if-changed={proto}");
    }
    println!("cargo:rerun-if-changed=build.rs");

    let fds = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // Served by gRPC server reflection.
    std::fs::write(out_dir.join("meridian_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
