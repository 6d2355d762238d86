//! The lanes control API: types and gRPC client/server generated from `proto/lanes.proto`.
//!
//! This crate owns the wire contract, and how its values read (`text`: enum words, dates, and with the
//! `serde` feature the messages' JSON form); it must never contain node logic.

pub mod codec;
pub mod macaroon;
pub mod text;
pub use codec::MAX_MESSAGE_BYTES;

/// Generated messages and the `Lanes` service (`lanes.v1`).
pub mod v1 {
    tonic::include_proto!("lanes.v1");
}

/// The encoded file descriptor set of the API, served through gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/lanes_descriptor.bin"));

pub use v1::lanes_client::LanesClient;
pub use v1::lanes_server::{Lanes, LanesServer};
