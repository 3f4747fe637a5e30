//! THRESHOLD-SIGN: a site's servers send shares of the site signature to the representative,
//! which combines them, asks for a share's proof after a failed combine, and blames servers
//! whose shares are invalid.

use bft_core::request::Digest;

use super::{Body, WIRE_VERSION};
use crate::codec::{DecodeError, Reader, Writer};

/// What a partial signature is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SigKind {
    /// The leader site's Proposal.
    Proposal,
    /// A non-leader site's Accept.
    Accept,
    /// A site's Global_VC vote (seq = the suggested global view).
    GlobalVc,
    /// The new leader site's Aru_Message (seq = the global view).
    Aru,
    /// A site's Global_Constraint (seq = the global view).
    Constraint,
}

impl SigKind {
    fn code(self) -> u8 {
        match self {
            SigKind::Proposal => 0,
            SigKind::Accept => 1,
            SigKind::GlobalVc => 2,
            SigKind::Aru => 3,
            SigKind::Constraint => 4,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => SigKind::Proposal,
            1 => SigKind::Accept,
            2 => SigKind::GlobalVc,
            3 => SigKind::Aru,
            4 => SigKind::Constraint,
            _ => return None,
        })
    }

    fn get(r: &mut Reader) -> Result<Self, DecodeError> {
        let k = r.u8("sig kind")?;
        SigKind::from_code(k).ok_or_else(|| DecodeError(format!("unknown sig kind {k}")))
    }
}

/// Partial_Sig(server_id, data, partial_sig, verification_proof, sig): one server's share of a
/// site signature. The signed content is identified by (kind, gv, lv, seq, content digest);
/// every server of the site can rebuild it. The share carries its proof of correctness; the
/// server's signature makes the message transferable evidence for Corrupted_Server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialSig {
    /// Signer's index in its site.
    pub server: u32,
    /// Proposal or Accept.
    pub kind: SigKind,
    /// Global view of the content.
    pub gv: u64,
    /// Local view of the content.
    pub lv: u64,
    /// Sequence number of the content.
    pub seq: u64,
    /// SHA-256 of the unsigned content's encoding.
    pub content: Digest,
    /// The encoded threshold share (with proof).
    pub share: Vec<u8>,
    /// The sender's signature over the rest.
    pub sig: Vec<u8>,
}

/// The representative asks a server of its site for the proof of the share it sent for
/// (kind, seq, content): a combine failed and that share came without one. The transport
/// authenticates the asker; the answer is the server's Partial_Sig again, with the proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofRequest {
    /// Proposal, Accept, ...
    pub kind: SigKind,
    /// Sequence number of the content.
    pub seq: u64,
    /// SHA-256 of the unsigned content's encoding.
    pub content: Digest,
}

/// Share_Request(kind, seq, content): the representative asks an excused signer for its share
/// on (kind, seq, content) (designated signers, `replica/designated.rs`): the answer is the
/// signer's Partial_Sig without a proof, never a proof of a share already sent. The transport
/// authenticates the asker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareRequest {
    /// Proposal or Accept.
    pub kind: SigKind,
    /// Sequence number of the content.
    pub seq: u64,
    /// SHA-256 of the unsigned content's encoding.
    pub content: Digest,
}

/// Corrupted_Server(server_id, data, Partial_Sig, sig): proof that `partial.server` sent an
/// invalid share; receivers check the share themselves before blacklisting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorruptedServer {
    /// The accuser's index.
    pub server: u32,
    /// The invalid partial signature.
    pub partial: PartialSig,
    /// The accuser's signature.
    pub sig: Vec<u8>,
}

impl PartialSig {
    /// The bytes the sender signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(WIRE_VERSION).u8(b'S');
        self.put_unsigned(&mut w);
        w.buf
    }

    fn put(&self, w: &mut Writer) {
        self.put_unsigned(w);
        w.bytes(&self.sig);
    }

    fn put_unsigned(&self, w: &mut Writer) {
        w.u32(self.server)
            .u8(self.kind.code())
            .u64(self.gv)
            .u64(self.lv)
            .u64(self.seq)
            .digest(&self.content)
            .bytes(&self.share);
    }

    fn get(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(PartialSig {
            server: r.u32("server")?,
            kind: SigKind::get(r)?,
            gv: r.u64("gv")?,
            lv: r.u64("lv")?,
            seq: r.u64("seq")?,
            content: r.digest("content")?,
            share: r.bytes("share")?,
            sig: r.bytes("sig")?,
        })
    }
}

/// Signed with [`PartialSig::signing_bytes`], not the message encoding: the signature is always
/// encoded.
impl Body for PartialSig {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        self.put(w);
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        PartialSig::get(r)
    }
}

impl Body for ProofRequest {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        w.u8(self.kind.code()).u64(self.seq).digest(&self.content);
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ProofRequest {
            kind: SigKind::get(r)?,
            seq: r.u64("seq")?,
            content: r.digest("content")?,
        })
    }
}

impl Body for ShareRequest {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        w.u8(self.kind.code()).u64(self.seq).digest(&self.content);
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ShareRequest {
            kind: SigKind::get(r)?,
            seq: r.u64("seq")?,
            content: r.digest("content")?,
        })
    }
}

impl Body for CorruptedServer {
    fn put_body(&self, w: &mut Writer, with_sig: bool) {
        w.u32(self.server);
        self.partial.put(w);
        if with_sig {
            w.bytes(&self.sig);
        }
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(CorruptedServer {
            server: r.u32("server")?,
            partial: PartialSig::get(r)?,
            sig: r.bytes("sig")?,
        })
    }
}
