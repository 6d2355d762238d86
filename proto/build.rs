//! Compiles `proto/*.proto` with protox (a pure-Rust protobuf compiler), so building lanes never needs a
//! system `protoc`. The file descriptor set is kept too: the daemon serves it through gRPC reflection.
use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/lanes.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(out.join("lanes_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // prost's codec, with malformed input reported as INVALID_ARGUMENT (src/codec.rs).
        .codec_path("crate::codec::LanesCodec")
        .compile_fds(fds)?;
    Ok(())
}
