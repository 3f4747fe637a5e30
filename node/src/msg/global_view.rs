//! The global view change: GLOBAL-LEADER-ELECTION (Global_VC votes and the preinstall proof),
//! CONSTRUCT-ARU and CONSTRUCT-GLOBAL-CONSTRAINT (sites report what they know above the new
//! leader site's aru: order proofs, Proposals and Prepare certificates).

use std::sync::Arc;

use bft_core::request::Digest;
use sha2::{Digest as _, Sha256};

use super::local_view::{get_cert, put_cert, PrepareCert};
use super::normal::{get_order_proof, get_proposal, put_order_proof, put_proposal};
use super::normal::{OrderProof, Proposal};
use super::{Body, WIRE_VERSION};
use crate::codec::{DecodeError, Reader, Writer};

/// Global_VC(site_id, gv): a site's threshold-signed vote to move to global view `gv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalVc {
    /// The voting site.
    pub site: u16,
    /// Suggested global view.
    pub gv: u64,
    /// The site's threshold signature.
    pub tsig: Vec<u8>,
}

impl GlobalVc {
    /// The content the site signs.
    pub fn signing_bytes(site: u16, gv: u64) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(WIRE_VERSION).u8(b'G').u16(site).u64(gv);
        w.buf
    }
}

/// Global_Preinstall_Proof: Global_VC messages from a majority of sites for views ≥ `gv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalPreinstall {
    /// The global view proven preinstalled.
    pub gv: u64,
    /// The votes.
    pub votes: Vec<GlobalVc>,
}

/// Aru_Message(site_id, gv, site_aru), threshold-signed by the new leader site: at least f+1
/// correct servers there executed everything up to `aru`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AruMessage {
    /// The new leader site.
    pub site: u16,
    /// The new global view.
    pub gv: u64,
    /// The site's execution point.
    pub aru: u64,
    /// Threshold signature.
    pub tsig: Vec<u8>,
}

impl AruMessage {
    /// The content the site signs.
    pub fn signing_bytes(site: u16, gv: u64, aru: u64) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(WIRE_VERSION).u8(b'R').u16(site).u64(gv).u64(aru);
        w.buf
    }

    /// The aru inside content made by [`AruMessage::signing_bytes`].
    pub fn aru_of(content: &[u8]) -> Option<u64> {
        let mut r = Reader::new(content);
        let (_, _, _, _) = (
            r.u8("v").ok()?,
            r.u8("tag").ok()?,
            r.u16("site").ok()?,
            r.u64("gv").ok()?,
        );
        let aru = r.u64("aru").ok()?;
        r.finish().ok()?;
        Some(aru)
    }
}

/// Request_Global_State(gv, lv, aru) from a representative to its site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestGlobalState {
    /// Global view.
    pub gv: u64,
    /// Local view.
    pub lv: u64,
    /// Invocation aru.
    pub aru: u64,
}

/// Global_Server_State: what a server knows above `aru`: order proofs and Proposals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalServerState {
    /// Sender's index.
    pub server: u32,
    /// Global view.
    pub gv: u64,
    /// Invocation aru.
    pub aru: u64,
    /// Globally ordered updates above aru.
    pub ordered: Vec<OrderProof>,
    /// Proposals above aru without global order.
    pub proposals: Vec<Arc<Proposal>>,
    /// Prepare certificates above aru from a later view than any Proposal held for the slot
    /// (leader-site servers: a Proposal may exist that they never received; TDSC Fig. A-20).
    pub certs: Vec<PrepareCert>,
    /// Sender's signature.
    pub sig: Vec<u8>,
}

/// Global_Collected_Server_State: 2f+1 Global_Server_State for one invocation aru.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalCollected {
    /// Global view.
    pub gv: u64,
    /// Invocation aru.
    pub aru: u64,
    /// The states.
    pub states: Vec<Arc<GlobalServerState>>,
}

/// Global_Constraint(site_id, gv, aru, union): a site's threshold-signed knowledge above aru.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalConstraint {
    /// The site.
    pub site: u16,
    /// Global view.
    pub gv: u64,
    /// Invocation aru (from the Aru_Message).
    pub aru: u64,
    /// Ordered updates in the union.
    pub ordered: Vec<OrderProof>,
    /// Proposals in the union.
    pub proposals: Vec<Arc<Proposal>>,
    /// Prepare certificates in the union (slots whose latest binding is a certificate).
    pub certs: Vec<PrepareCert>,
    /// Threshold signature over (site, gv, aru, digest of the union).
    pub tsig: Vec<u8>,
}

/// Collected_Global_Constraints: Global_Constraint messages from a majority of sites.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectedConstraints {
    /// Global view.
    pub gv: u64,
    /// Invocation aru.
    pub aru: u64,
    /// The constraints.
    pub constraints: Vec<Arc<GlobalConstraint>>,
}

impl GlobalConstraint {
    /// Digest of the union this constraint carries.
    pub fn union_digest(
        ordered: &[OrderProof],
        proposals: &[Arc<Proposal>],
        certs: &[PrepareCert],
    ) -> Digest {
        let mut w = Writer::default();
        put_knowledge(&mut w, ordered, proposals, certs);
        Sha256::digest(&w.buf).into()
    }

    /// The content the site signs.
    pub fn signing_bytes(site: u16, gv: u64, aru: u64, union: &Digest) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(WIRE_VERSION)
            .u8(b'C')
            .u16(site)
            .u64(gv)
            .u64(aru)
            .digest(union);
        w.buf
    }
}

fn put_global_vc(w: &mut Writer, v: &GlobalVc) {
    w.u16(v.site).u64(v.gv).bytes(&v.tsig);
}

fn get_global_vc(r: &mut Reader) -> Result<GlobalVc, DecodeError> {
    Ok(GlobalVc {
        site: r.u16("site")?,
        gv: r.u64("gv")?,
        tsig: r.bytes("tsig")?,
    })
}

/// What a server or a site knows above an aru: order proofs, Proposals, Prepare certificates.
fn put_knowledge(
    w: &mut Writer,
    ordered: &[OrderProof],
    proposals: &[Arc<Proposal>],
    certs: &[PrepareCert],
) {
    w.list(ordered, put_order_proof)
        .list(proposals, |w, p| put_proposal(w, p))
        .list(certs, put_cert);
}

type Knowledge = (Vec<OrderProof>, Vec<Arc<Proposal>>, Vec<PrepareCert>);

fn get_knowledge(r: &mut Reader) -> Result<Knowledge, DecodeError> {
    Ok((
        r.list("ordered", 80, get_order_proof)?,
        r.list("proposals", 80, |r| get_proposal(r).map(Arc::new))?,
        r.list("certs", 80, get_cert)?,
    ))
}

fn put_global_state(w: &mut Writer, st: &GlobalServerState, with_sig: bool) {
    w.u32(st.server).u64(st.gv).u64(st.aru);
    put_knowledge(w, &st.ordered, &st.proposals, &st.certs);
    if with_sig {
        w.bytes(&st.sig);
    }
}

fn get_global_state(r: &mut Reader) -> Result<GlobalServerState, DecodeError> {
    let server = r.u32("server")?;
    let gv = r.u64("gv")?;
    let aru = r.u64("aru")?;
    let (ordered, proposals, certs) = get_knowledge(r)?;
    Ok(GlobalServerState {
        server,
        gv,
        aru,
        ordered,
        proposals,
        certs,
        sig: r.bytes("sig")?,
    })
}

fn put_constraint(w: &mut Writer, c: &GlobalConstraint) {
    w.u16(c.site).u64(c.gv).u64(c.aru);
    put_knowledge(w, &c.ordered, &c.proposals, &c.certs);
    w.bytes(&c.tsig);
}

fn get_constraint(r: &mut Reader) -> Result<GlobalConstraint, DecodeError> {
    let site = r.u16("site")?;
    let gv = r.u64("gv")?;
    let aru = r.u64("aru")?;
    let (ordered, proposals, certs) = get_knowledge(r)?;
    Ok(GlobalConstraint {
        site,
        gv,
        aru,
        ordered,
        proposals,
        certs,
        tsig: r.bytes("tsig")?,
    })
}

/// Threshold-signed over [`GlobalVc::signing_bytes`]: the signature is always encoded.
impl Body for GlobalVc {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        put_global_vc(w, self);
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        get_global_vc(r)
    }
}

impl Body for GlobalPreinstall {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        w.u64(self.gv).list(&self.votes, put_global_vc);
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(GlobalPreinstall {
            gv: r.u64("gv")?,
            votes: r.list("votes", 14, get_global_vc)?,
        })
    }
}

/// Threshold-signed over [`AruMessage::signing_bytes`]: the signature is always encoded.
impl Body for AruMessage {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        w.u16(self.site)
            .u64(self.gv)
            .u64(self.aru)
            .bytes(&self.tsig);
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(AruMessage {
            site: r.u16("site")?,
            gv: r.u64("gv")?,
            aru: r.u64("aru")?,
            tsig: r.bytes("tsig")?,
        })
    }
}

impl Body for RequestGlobalState {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        w.u64(self.gv).u64(self.lv).u64(self.aru);
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(RequestGlobalState {
            gv: r.u64("gv")?,
            lv: r.u64("lv")?,
            aru: r.u64("aru")?,
        })
    }
}

impl Body for GlobalServerState {
    fn put_body(&self, w: &mut Writer, with_sig: bool) {
        put_global_state(w, self, with_sig);
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        get_global_state(r)
    }
}

/// The collected states keep their signatures even in the signing bytes.
impl Body for GlobalCollected {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        w.u64(self.gv)
            .u64(self.aru)
            .list(&self.states, |w, st| put_global_state(w, st, true));
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(GlobalCollected {
            gv: r.u64("gv")?,
            aru: r.u64("aru")?,
            states: r.list("states", 40, |r| get_global_state(r).map(Arc::new))?,
        })
    }
}

/// Threshold-signed over [`GlobalConstraint::signing_bytes`]: the signature is always encoded.
impl Body for GlobalConstraint {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        put_constraint(w, self);
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        get_constraint(r)
    }
}

impl Body for CollectedConstraints {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        w.u64(self.gv)
            .u64(self.aru)
            .list(&self.constraints, |w, gc| put_constraint(w, gc));
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(CollectedConstraints {
            gv: r.u64("gv")?,
            aru: r.u64("aru")?,
            constraints: r.list("constraints", 40, |r| get_constraint(r).map(Arc::new))?,
        })
    }
}
