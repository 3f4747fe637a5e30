//! The normal case (TDSC Fig. A-1): ASSIGN-SEQUENCE inside the leader site (Pre-Prepare,
//! Prepare) and ASSIGN-GLOBAL-ORDER between sites (Proposal, Accept, and the order proof they
//! make together).

use std::sync::Arc;

use bft_core::request::{batch_digest, get_batch, put_batch, Digest, Update};

use super::{Body, WIRE_VERSION};
use crate::codec::{DecodeError, Reader, Writer};

/// Pre-Prepare(server_id, gv, lv, seq, Update), here carrying a batch of updates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrePrepare {
    /// The representative's index in its site.
    pub server: u32,
    /// Global view.
    pub gv: u64,
    /// Local view.
    pub lv: u64,
    /// Global sequence number.
    pub seq: u64,
    /// The updates bound to `seq` (one in the paper's configuration).
    pub batch: Vec<Arc<Update>>,
    /// The representative's signature.
    pub sig: Vec<u8>,
}

/// Prepare(server_id, gv, lv, seq, Digest(batch)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepare {
    /// Sender's index in its site.
    pub server: u32,
    /// Global view.
    pub gv: u64,
    /// Local view.
    pub lv: u64,
    /// Sequence number.
    pub seq: u64,
    /// Digest of the batch.
    pub digest: Digest,
    /// Sender's signature.
    pub sig: Vec<u8>,
}

/// Proposal(site_id, gv, lv, seq, batch), threshold-signed by the leader site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// The leader site.
    pub site: u16,
    /// Global view.
    pub gv: u64,
    /// Local view of the leader site.
    pub lv: u64,
    /// Sequence number.
    pub seq: u64,
    /// The updates.
    pub batch: Vec<Arc<Update>>,
    /// The site's threshold signature.
    pub tsig: Vec<u8>,
}

/// Accept(site_id, gv, lv, seq, Digest(batch)), threshold-signed by a non-leader site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accept {
    /// The accepting site.
    pub site: u16,
    /// Global view.
    pub gv: u64,
    /// Local view of the accepting site.
    pub lv: u64,
    /// Sequence number.
    pub seq: u64,
    /// Digest of the proposal's batch.
    pub digest: Digest,
    /// The site's threshold signature.
    pub tsig: Vec<u8>,
}

/// A Globally_Ordered_Update: the Proposal plus ⌊S/2⌋ Accepts from distinct other sites. Self-
/// verifying against the site public keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderProof {
    /// The threshold-signed Proposal.
    pub proposal: Arc<Proposal>,
    /// Threshold-signed Accepts.
    pub accepts: Vec<Arc<Accept>>,
}

/// Other sites' Accepts of one slot, relayed into its site by a representative together, once
/// they complete the slot's order proof there (one message where there were one per Accept).
/// Each Accept is checked on its own, as if it came alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptRelay {
    /// Threshold-signed Accepts.
    pub accepts: Vec<Arc<Accept>>,
}

impl PrePrepare {
    fn put_unsigned(&self, w: &mut Writer) {
        w.u32(self.server).u64(self.gv).u64(self.lv).u64(self.seq);
        put_batch(w, &self.batch);
    }
}

impl Prepare {
    fn put_unsigned(&self, w: &mut Writer) {
        w.u32(self.server)
            .u64(self.gv)
            .u64(self.lv)
            .u64(self.seq)
            .digest(&self.digest);
    }
}

impl Proposal {
    fn put_unsigned(&self, w: &mut Writer) {
        w.u16(self.site).u64(self.gv).u64(self.lv).u64(self.seq);
        put_batch(w, &self.batch);
    }

    /// Digest of the batch (what Accepts and Prepares refer to).
    pub fn digest(&self) -> Digest {
        batch_digest(&self.batch)
    }

    /// The content the leader site threshold-signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(WIRE_VERSION).u8(b'P');
        self.put_unsigned(&mut w);
        w.buf
    }
}

impl Accept {
    fn put_unsigned(&self, w: &mut Writer) {
        w.u16(self.site)
            .u64(self.gv)
            .u64(self.lv)
            .u64(self.seq)
            .digest(&self.digest);
    }

    /// The content the accepting site threshold-signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(WIRE_VERSION).u8(b'A');
        self.put_unsigned(&mut w);
        w.buf
    }
}

pub(super) fn put_proposal(w: &mut Writer, p: &Proposal) {
    p.put_unsigned(w);
    w.bytes(&p.tsig);
}

pub(super) fn get_proposal(r: &mut Reader) -> Result<Proposal, DecodeError> {
    Ok(Proposal {
        site: r.u16("site")?,
        gv: r.u64("gv")?,
        lv: r.u64("lv")?,
        seq: r.u64("seq")?,
        batch: get_batch(r)?,
        tsig: r.bytes("tsig")?,
    })
}

fn put_accept(w: &mut Writer, a: &Accept) {
    a.put_unsigned(w);
    w.bytes(&a.tsig);
}

fn get_accept(r: &mut Reader) -> Result<Accept, DecodeError> {
    Ok(Accept {
        site: r.u16("site")?,
        gv: r.u64("gv")?,
        lv: r.u64("lv")?,
        seq: r.u64("seq")?,
        digest: r.digest("digest")?,
        tsig: r.bytes("tsig")?,
    })
}

pub(super) fn put_pre_prepare(w: &mut Writer, p: &PrePrepare) {
    p.put_unsigned(w);
    w.bytes(&p.sig);
}

pub(super) fn get_pre_prepare(r: &mut Reader) -> Result<PrePrepare, DecodeError> {
    Ok(PrePrepare {
        server: r.u32("server")?,
        gv: r.u64("gv")?,
        lv: r.u64("lv")?,
        seq: r.u64("seq")?,
        batch: get_batch(r)?,
        sig: r.bytes("sig")?,
    })
}

pub(super) fn put_prepare(w: &mut Writer, p: &Prepare) {
    p.put_unsigned(w);
    w.bytes(&p.sig);
}

pub(super) fn get_prepare(r: &mut Reader) -> Result<Prepare, DecodeError> {
    Ok(Prepare {
        server: r.u32("server")?,
        gv: r.u64("gv")?,
        lv: r.u64("lv")?,
        seq: r.u64("seq")?,
        digest: r.digest("digest")?,
        sig: r.bytes("sig")?,
    })
}

pub(super) fn put_order_proof(w: &mut Writer, o: &OrderProof) {
    put_proposal(w, &o.proposal);
    w.list(&o.accepts, |w, a| put_accept(w, a));
}

pub(super) fn get_order_proof(r: &mut Reader) -> Result<OrderProof, DecodeError> {
    Ok(OrderProof {
        proposal: Arc::new(get_proposal(r)?),
        accepts: r.list("accepts", 60, |r| get_accept(r).map(Arc::new))?,
    })
}

impl Body for PrePrepare {
    fn put_body(&self, w: &mut Writer, with_sig: bool) {
        self.put_unsigned(w);
        if with_sig {
            w.bytes(&self.sig);
        }
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        get_pre_prepare(r)
    }
}

impl Body for Prepare {
    fn put_body(&self, w: &mut Writer, with_sig: bool) {
        self.put_unsigned(w);
        if with_sig {
            w.bytes(&self.sig);
        }
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        get_prepare(r)
    }
}

/// The threshold signature is part of the signed message: always encoded.
impl Body for Proposal {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        put_proposal(w, self);
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        get_proposal(r)
    }
}

/// The threshold signature is part of the signed message: always encoded.
impl Body for Accept {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        put_accept(w, self);
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        get_accept(r)
    }
}

impl Body for AcceptRelay {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        w.list(&self.accepts, |w, a| put_accept(w, a));
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(AcceptRelay {
            accepts: r.list("accepts", 60, |r| get_accept(r).map(Arc::new))?,
        })
    }
}

impl Body for OrderProof {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        put_order_proof(w, self);
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        get_order_proof(r)
    }
}
