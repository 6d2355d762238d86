//! The protobuf codec of the lanes API: prost's, except that a message that cannot be decoded is
//! `INVALID_ARGUMENT` (the caller sent something malformed) rather than prost's `INTERNAL`.
//!
//! Owns: that mapping only. Must never: change how messages are encoded or decoded.
use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Largest message the API sends or accepts, each way. Measured (node/src/api.rs tests): DescribeGraph of
/// the real mainnet graph of 2021 (8,827 nodes, 37,454 channels) is 7.7 MB, of a synthetic graph of today's
/// size (17,000 nodes, 51,000 channels) 11 MB; tonic's default of 4 MiB refused both. 64 MiB leaves the
/// network room to grow five-fold.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// [`ProstCodec`] with malformed input reported as `INVALID_ARGUMENT`.
#[derive(Debug, Clone, Copy)]
pub struct LanesCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for LanesCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for LanesCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = LanesDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        LanesDecoder(ProstCodec::<T, U>::default().decoder())
    }
}

/// Decodes like prost; a decode failure is `INVALID_ARGUMENT`.
#[derive(Debug)]
pub struct LanesDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for LanesDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|s| Status::invalid_argument(format!("malformed message: {}", s.message())))
    }

    fn buffer_settings(&self) -> tonic::codec::BufferSettings {
        self.0.buffer_settings()
    }
}
