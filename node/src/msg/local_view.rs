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
    w.u32(c.prepares.len() as u32);
    for p in &c.prepares {
        put_prepare(w, p);
    }
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
    let pre_prepare = Arc::new(get_pre_prepare(r)?);
    let m = r.list_len("prepares", 60)?;
    let prepares = (0..m)
        .map(|_| get_prepare(r).map(Arc::new))
        .collect::<Result<_, _>>()?;
    Ok(PrepareCert {
        pre_prepare,
        prepares,
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
    w.u32(st.server).u64(st.gv).u64(st.lv).u64(st.aru);
    w.u32(st.proposals.len() as u32);
    for p in &st.proposals {
        put_proposal(w, p);
    }
    w.u32(st.certs.len() as u32);
    for c in &st.certs {
        put_cert(w, c);
    }
    if with_sig {
        w.bytes(&st.sig);
    }
}

fn get_local_state(r: &mut Reader) -> Result<LocalServerState, DecodeError> {
    let server = r.u32("server")?;
    let gv = r.u64("gv")?;
    let lv = r.u64("lv")?;
    let aru = r.u64("aru")?;
    let n = r.list_len("proposals", 40)?;
    let proposals = (0..n)
        .map(|_| get_proposal(r).map(Arc::new))
        .collect::<Result<_, _>>()?;
    let n = r.list_len("certs", 40)?;
    let certs = (0..n).map(|_| get_cert(r)).collect::<Result<_, _>>()?;
    Ok(LocalServerState {
        server,
        gv,
        lv,
        aru,
        proposals,
        certs,
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
        w.u16(self.site).u64(self.lv).u32(self.votes.len() as u32);
        for v in &self.votes {
            w.u32(v.server).u64(v.lv).bytes(&v.sig);
        }
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        let site = r.u16("site")?;
        let lv = r.u64("lv")?;
        let n = r.list_len("votes", 16)?;
        let votes = (0..n)
            .map(|_| get_new_rep(r))
            .collect::<Result<_, DecodeError>>()?;
        Ok(LocalPreinstall { site, lv, votes })
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
            .u32(self.states.len() as u32);
        for st in &self.states {
            put_local_state(w, st, true);
        }
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        let gv = r.u64("gv")?;
        let lv = r.u64("lv")?;
        let aru = r.u64("aru")?;
        let n = r.list_len("states", 40)?;
        let states = (0..n)
            .map(|_| get_local_state(r).map(Arc::new))
            .collect::<Result<_, _>>()?;
        Ok(LocalCollected {
            gv,
            lv,
            aru,
            states,
        })
    }
}
