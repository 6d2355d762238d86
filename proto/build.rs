//! Compiles `proto/*.proto` with protox (a pure-Rust protobuf compiler), so building lanes never needs a
//! system `protoc`. The file descriptor set is kept too: the daemon serves it through gRPC reflection.
//!
//! With the crate's `serde` feature every message derives `serde::Serialize` (lanes-cli's `--json`), and every
//! enum field (an `i32` in prost) serializes as its value's word (`src/text.rs`), found here from the
//! descriptors so that a new enum field cannot print as a bare number.
use std::{env, path::PathBuf};

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};

const PACKAGE: &str = "lanes.v1";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/lanes.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(out.join("lanes_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    let mut config = tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // prost's codec, with malformed input reported as INVALID_ARGUMENT (src/codec.rs).
        .codec_path("crate::codec::LanesCodec")
        .message_attribute(".", r#"#[cfg_attr(feature = "serde", derive(serde::Serialize))]"#);
    for (field, rust_enum) in enum_fields(&fds) {
        let with = format!("crate::text::serialize_word::<{rust_enum}, _>");
        config = config.field_attribute(field, format!(r#"#[cfg_attr(feature = "serde", serde(serialize_with = "{with}"))]"#));
    }
    config.compile_fds(fds)?;
    Ok(())
}

/// Every enum field of the package's messages: its path for prost (`.lanes.v1.Payment.status`) and the Rust
/// path of its enum (`crate::v1::PaymentStatus`).
fn enum_fields(fds: &FileDescriptorSet) -> Vec<(String, String)> {
    fn walk(prefix: &str, message: &DescriptorProto, found: &mut Vec<(String, String)>) {
        let path = format!("{prefix}.{}", message.name());
        for field in message.field.iter().filter(|f| f.r#type() == Type::Enum) {
            let name = field.type_name().strip_prefix(&format!(".{PACKAGE}.")).filter(|n| !n.contains('.'));
            let name = name.unwrap_or_else(|| panic!("{path}.{}: only top-level enums of {PACKAGE} have words", field.name()));
            assert!(
                field.label() != Label::Repeated && !field.proto3_optional(),
                "{path}.{}: a repeated or optional enum field needs its own serializer in src/text.rs",
                field.name()
            );
            found.push((format!("{path}.{}", field.name()), format!("crate::v1::{name}")));
        }
        for nested in &message.nested_type {
            walk(&path, nested, found);
        }
    }
    let mut found = Vec::new();
    for file in fds.file.iter().filter(|f| f.package() == PACKAGE) {
        for message in &file.message_type {
            walk(&format!(".{PACKAGE}"), message, &mut found);
        }
    }
    found
}
