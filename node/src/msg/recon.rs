//! Reconciliation: a lagging server asks for the order proofs it misses, or catches up by state
//! transfer when it is too far behind.

use bft_core::request::Digest;

use super::Body;
use crate::codec::{DecodeError, Reader, Writer, MAX_SNAPSHOT};

/// A lagging server asks for globally ordered updates above its `aru` (a light form of
/// LOCAL-/GLOBAL-RECONCILIATION; answered with self-verifying [`OrderProof`]s).
///
/// [`OrderProof`]: super::OrderProof
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconRequest {
    /// The requester's sequence number up to which everything is executed.
    pub aru: u64,
    /// The requester's global view (a peer in a newer one sends it that view's proof).
    pub gv: u64,
}

/// State transfer: a server's checkpoint at sequence number `seq` (its executed state and
/// per-client execution points). Accepted once f+1 servers of one site vouch for the digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Checkpoint sequence number.
    pub seq: u64,
    /// SHA-256 of `state`.
    pub digest: Digest,
    /// The encoded state (empty when only vouching for the digest).
    pub state: Vec<u8>,
}

impl Body for ReconRequest {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        w.u64(self.aru).u64(self.gv);
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ReconRequest {
            aru: r.u64("aru")?,
            gv: r.u64("gv")?,
        })
    }
}

impl Body for Snapshot {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        w.u64(self.seq).digest(&self.digest);
        w.u32(self.state.len() as u32);
        w.buf.extend_from_slice(&self.state);
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Snapshot {
            seq: r.u64("seq")?,
            digest: r.digest("digest")?,
            state: r.bytes_max("state", MAX_SNAPSHOT)?,
        })
    }
}
