//! A protocol's messages on the wire: the [`Wire`] trait and the [`Envelope`] that carries a
//! message with its encoding.

use crate::codec::DecodeError;

/// A protocol's message type: one tag table, one encoding, one bounded decoder.
pub trait Wire: Sized + Clone + std::fmt::Debug + 'static {
    /// The encoding (`version | tag | body`).
    fn encode(&self) -> Vec<u8>;
    /// Decodes bytes from an untrusted peer; never panics, never over-allocates.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError>;
    /// A short name of the message's kind (for logs and fault wrappers).
    fn kind(&self) -> &'static str;
}

/// A message with its encoding, made once and shared by every destination of a broadcast.
#[derive(Clone, Debug)]
pub struct Envelope<M> {
    /// The message.
    pub msg: M,
    /// Its wire size in bytes.
    pub size: u32,
    /// Its encoding.
    pub wire: bytes::Bytes,
}

impl<M: Wire> Envelope<M> {
    /// Wraps `msg`, encoding it once.
    pub fn new(msg: M) -> Self {
        let wire = bytes::Bytes::from(msg.encode());
        Envelope {
            msg,
            size: wire.len() as u32,
            wire,
        }
    }

    /// Decodes received bytes into an envelope that keeps them.
    pub fn decode(wire: bytes::Bytes) -> Result<Self, DecodeError> {
        let msg = M::decode(&wire)?;
        Ok(Envelope {
            msg,
            size: wire.len() as u32,
            wire,
        })
    }
}

/// Implements [`Wire`] for a protocol's message type from its inherent `encode`, `decode` and
/// `kind`, and declares `Envelope`, that message with its encoding made once (the doc comment
/// given is the alias's).
#[macro_export]
macro_rules! wire_message {
    ($(#[$meta:meta])* $msg:ty) => {
        $(#[$meta])*
        pub type Envelope = $crate::Envelope<$msg>;

        impl $crate::Wire for $msg {
            fn encode(&self) -> Vec<u8> {
                <$msg>::encode(self)
            }
            fn decode(bytes: &[u8]) -> Result<Self, $crate::codec::DecodeError> {
                <$msg>::decode(bytes)
            }
            fn kind(&self) -> &'static str {
                <$msg>::kind(self)
            }
        }
    };
}
