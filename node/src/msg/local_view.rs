//! LOCAL-VIEW-CHANGE (New_Rep votes and the preinstall proof) and CONSTRUCT-LOCAL-CONSTRAINT
//! (the new representative collects its site's Proposals and Prepare certificates).

use std::sync::Arc;

use super::normal::{
    get_pre_prepare, get_prepare, get_proposal, put_pre_prepare, put_prepare, put_proposal,
    PrePrepare, Prepare, Proposal,
};
use super::Body;
use crate::codec::{DecodeError, Reader, Writer};

/// New_Rep(server_id, suggested_lv, sig): a server's vote to move its site to local view `lv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRep {
    /// Voter's index in its site.
    pub server: u32,
    /// Suggested local view.
    pub lv: u64,
    /// Voter's signature.
    pub sig: Vec<u8>,
}

/// Local_Preinstall_Proof: 2f+1 New_Rep votes from distinct servers of `site` for views ≥ `lv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalPreinstall {
    /// The site.
    pub site: u16,
    /// The local view proven preinstalled.
    pub lv: u64,
    /// The votes.
    pub votes: Vec<NewRep>,
}

/// Request_Local_State(gv, lv, aru) from a new leader-site representative.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLocalState {
    /// Global view.
    pub gv: u64,
    /// The new local view.
    pub lv: u64,
    /// Invocation aru: the representative's Pending_proposal_aru.
    pub aru: u64,
}

/// A Prepare certificate: a Pre-Prepare plus 2f matching Prepares from other servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepareCert {
    /// The Pre-Prepare.
    pub pre_prepare: Arc<PrePrepare>,
    /// 2f Prepares.
    pub prepares: Vec<Arc<Prepare>>,
}

/// Local_Server_State: a server's Proposals and Prepare certificates above `aru`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalServerState {
    /// Sender's index.
    pub server: u32,
    /// Global view.
    pub gv: u64,
    /// Local view.
    pub lv: u64,
    /// Invocation aru.
    pub aru: u64,
    /// Proposals above aru.
    pub proposals: Vec<Arc<Proposal>>,
    /// Prepare certificates above aru (for slots without a Proposal).
    pub certs: Vec<PrepareCert>,
    /// Sender's signature.
    pub sig: Vec<u8>,
}

/// Local_Collected_Server_State: 2f+1 Local_Server_State for the same invocation aru.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalCollected {
    /// Global view.
    pub gv: u64,
    /// Local view.
    pub lv: u64,
    /// Invocation aru.
    pub aru: u64,
    /// The states.
    pub states: Vec<Arc<LocalServerState>>,
}

pub(super) fn put_cert(w: &mut Writer, c: &PrepareCert) {
    put_pre_prepare(w, &c.pre_prepare);
    w.list(&c.prepares, |w, p| put_prepare(w, p));
}

impl PrepareCert {
    /// The certificate's encoding (as inside the view-change messages), for durable storage.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        put_cert(&mut w, self);
        w.buf
    }

    /// The inverse of [`PrepareCert::encode`]; the whole input must be one certificate.
    pub fn decode(bytes: &[u8]) -> Result<PrepareCert, DecodeError> {
        let mut r = Reader::new(bytes);
        let c = get_cert(&mut r)?;
        r.finish()?;
        Ok(c)
    }
}

pub(super) fn get_cert(r: &mut Reader) -> Result<PrepareCert, DecodeError> {
    Ok(PrepareCert {
        pre_prepare: Arc::new(get_pre_prepare(r)?),
        prepares: r.list("prepares", 60, |r| get_prepare(r).map(Arc::new))?,
    })
}

fn get_new_rep(r: &mut Reader) -> Result<NewRep, DecodeError> {
    Ok(NewRep {
        server: r.u32("server")?,
        lv: r.u64("lv")?,
        sig: r.bytes("sig")?,
    })
}

fn put_local_state(w: &mut Writer, st: &LocalServerState, with_sig: bool) {
    w.u32(st.server)
        .u64(st.gv)
        .u64(st.lv)
        .u64(st.aru)
        .list(&st.proposals, |w, p| put_proposal(w, p))
        .list(&st.certs, put_cert);
    if with_sig {
        w.bytes(&st.sig);
    }
}

fn get_local_state(r: &mut Reader) -> Result<LocalServerState, DecodeError> {
    Ok(LocalServerState {
        server: r.u32("server")?,
        gv: r.u64("gv")?,
        lv: r.u64("lv")?,
        aru: r.u64("aru")?,
        proposals: r.list("proposals", 40, |r| get_proposal(r).map(Arc::new))?,
        certs: r.list("certs", 40, get_cert)?,
        sig: r.bytes("sig")?,
    })
}

impl Body for NewRep {
    fn put_body(&self, w: &mut Writer, with_sig: bool) {
        w.u32(self.server).u64(self.lv);
        if with_sig {
            w.bytes(&self.sig);
        }
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        get_new_rep(r)
    }
}

impl Body for LocalPreinstall {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        w.u16(self.site).u64(self.lv).list(&self.votes, |w, v| {
            w.u32(v.server).u64(v.lv).bytes(&v.sig);
        });
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(LocalPreinstall {
            site: r.u16("site")?,
            lv: r.u64("lv")?,
            votes: r.list("votes", 16, get_new_rep)?,
        })
    }
}

impl Body for RequestLocalState {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        w.u64(self.gv).u64(self.lv).u64(self.aru);
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(RequestLocalState {
            gv: r.u64("gv")?,
            lv: r.u64("lv")?,
            aru: r.u64("aru")?,
        })
    }
}

impl Body for LocalServerState {
    fn put_body(&self, w: &mut Writer, with_sig: bool) {
        put_local_state(w, self, with_sig);
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        get_local_state(r)
    }
}

/// The collected states keep their signatures even in the signing bytes.
impl Body for LocalCollected {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        w.u64(self.gv)
            .u64(self.lv)
            .u64(self.aru)
            .list(&self.states, |w, st| put_local_state(w, st, true));
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(LocalCollected {
            gv: r.u64("gv")?,
            lv: r.u64("lv")?,
            aru: r.u64("aru")?,
            states: r.list("states", 40, |r| get_local_state(r).map(Arc::new))?,
        })
    }
}
