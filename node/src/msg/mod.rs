//! Steward's messages (TDSC Fig. A-1, normal case) and their versioned binary encoding.
//!
//! Every message is encoded as `version (u8) | type (u8) | body`. Signed messages sign the
//! encoding of everything but the signature ([`Message::signing_bytes`]); threshold-signed ones
//! (Proposal, Accept) sign the same way with the site key.

use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use steward_config::{ServerId, SiteId};

use crate::codec::{DecodeError, Reader, Writer};
pub use bft_core::request::{batch_digest, ClientId, Digest, Op, Update};
use bft_core::request::{get_batch, put_batch};

/// Wire format version.
pub const WIRE_VERSION: u8 = 1;

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

/// A Globally_Ordered_Update: the Proposal plus ⌊S/2⌋ Accepts from distinct other sites. Self-
/// verifying against the site public keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderProof {
    /// The threshold-signed Proposal.
    pub proposal: Arc<Proposal>,
    /// Threshold-signed Accepts.
    pub accepts: Vec<Arc<Accept>>,
}

/// The reply to a client update: the order proof, the execution result, signed by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The replying server.
    pub server: ServerId,
    /// The client.
    pub client: ClientId,
    /// The update's timestamp.
    pub ts: u64,
    /// Proof that the update was globally ordered. None from a server that caught up by state
    /// transfer and no longer holds it: the client's f+1 matching results are the evidence.
    pub proof: Option<OrderProof>,
    /// Execution result.
    pub result: Vec<u8>,
    /// The server's signature.
    pub sig: Vec<u8>,
}

/// A read-only query, answered inside the client's site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// The client.
    pub client: ClientId,
    /// Client timestamp (queries share the client's timestamp sequence).
    pub ts: u64,
    /// Key to read.
    pub key: Vec<u8>,
    /// Client signature.
    pub sig: Vec<u8>,
}

/// One server's signed answer to a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryReply {
    /// The answering server.
    pub server: ServerId,
    /// The client.
    pub client: ClientId,
    /// The query's timestamp.
    pub ts: u64,
    /// The value (empty = absent), prefixed by one byte: 1 present, 0 absent.
    pub result: Vec<u8>,
    /// The server's signature.
    pub sig: Vec<u8>,
}

/// A lagging server asks for globally ordered updates above its `aru` (a light form of
/// LOCAL-/GLOBAL-RECONCILIATION; answered with self-verifying [`OrderProof`]s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconRequest {
    /// The requester's sequence number up to which everything is executed.
    pub aru: u64,
}

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

/// Every message of the normal case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Client → server; server → representative; representative → leader representative.
    Update(Arc<Update>),
    /// ASSIGN-SEQUENCE round 1.
    PrePrepare(Arc<PrePrepare>),
    /// ASSIGN-SEQUENCE round 2.
    Prepare(Arc<Prepare>),
    /// THRESHOLD-SIGN share.
    PartialSig(Arc<PartialSig>),
    /// THRESHOLD-SIGN blame.
    Corrupted(Arc<CorruptedServer>),
    /// Leader site → all sites.
    Proposal(Arc<Proposal>),
    /// Non-leader site → all sites.
    Accept(Arc<Accept>),
    /// Server → client.
    Reply(Arc<Reply>),
    /// Client → its site's servers.
    Query(Arc<Query>),
    /// Server → client.
    QueryReply(Arc<QueryReply>),
    /// Server → servers: what it is missing.
    ReconRequest(Arc<ReconRequest>),
    /// Server → server: a Globally_Ordered_Update.
    Ordered(Arc<OrderProof>),
    /// LOCAL-VIEW-CHANGE vote.
    NewRep(Arc<NewRep>),
    /// LOCAL-VIEW-CHANGE proof (to the site and, reliably, to every site).
    LocalPreinstall(Arc<LocalPreinstall>),
    /// CONSTRUCT-LOCAL-CONSTRAINT request.
    RequestLocalState(Arc<RequestLocalState>),
    /// CONSTRUCT-LOCAL-CONSTRAINT answer.
    LocalServerState(Arc<LocalServerState>),
    /// CONSTRUCT-LOCAL-CONSTRAINT bundle.
    LocalCollected(Arc<LocalCollected>),
    /// GLOBAL-LEADER-ELECTION vote.
    GlobalVc(Arc<GlobalVc>),
    /// GLOBAL-LEADER-ELECTION proof.
    GlobalPreinstall(Arc<GlobalPreinstall>),
    /// CONSTRUCT-ARU result, leader site → all sites.
    Aru(Arc<AruMessage>),
    /// CONSTRUCT-ARU / -GLOBAL-CONSTRAINT request.
    RequestGlobalState(Arc<RequestGlobalState>),
    /// CONSTRUCT-ARU / -GLOBAL-CONSTRAINT answer.
    GlobalServerState(Arc<GlobalServerState>),
    /// CONSTRUCT-GLOBAL-CONSTRAINT bundle.
    GlobalCollected(Arc<GlobalCollected>),
    /// A site's Global_Constraint.
    GlobalConstraint(Arc<GlobalConstraint>),
    /// Collected_Global_Constraints at the leader site.
    CollectedConstraints(Arc<CollectedConstraints>),
    /// State transfer for a server too far behind for order proofs.
    Snapshot(Arc<Snapshot>),
    /// THRESHOLD-SIGN: a share's proof, asked for after a failed combine.
    ProofRequest(Arc<ProofRequest>),
}

fn sha(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

fn put_server(w: &mut Writer, s: ServerId) {
    w.u16(s.site.0).u32(s.index);
}

fn get_server(r: &mut Reader) -> Result<ServerId, DecodeError> {
    Ok(ServerId::new(SiteId(r.u16("site")?), r.u32("server")?))
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
            kind: {
                let k = r.u8("sig kind")?;
                SigKind::from_code(k).ok_or_else(|| DecodeError(format!("unknown sig kind {k}")))?
            },
            gv: r.u64("gv")?,
            lv: r.u64("lv")?,
            seq: r.u64("seq")?,
            content: r.digest("content")?,
            share: r.bytes("share")?,
            sig: r.bytes("sig")?,
        })
    }
}

fn put_proposal(w: &mut Writer, p: &Proposal) {
    p.put_unsigned(w);
    w.bytes(&p.tsig);
}

fn get_proposal(r: &mut Reader) -> Result<Proposal, DecodeError> {
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

fn put_pre_prepare(w: &mut Writer, p: &PrePrepare) {
    p.put_unsigned(w);
    w.bytes(&p.sig);
}

fn get_pre_prepare(r: &mut Reader) -> Result<PrePrepare, DecodeError> {
    Ok(PrePrepare {
        server: r.u32("server")?,
        gv: r.u64("gv")?,
        lv: r.u64("lv")?,
        seq: r.u64("seq")?,
        batch: get_batch(r)?,
        sig: r.bytes("sig")?,
    })
}

fn put_prepare(w: &mut Writer, p: &Prepare) {
    p.put_unsigned(w);
    w.bytes(&p.sig);
}

fn get_prepare(r: &mut Reader) -> Result<Prepare, DecodeError> {
    Ok(Prepare {
        server: r.u32("server")?,
        gv: r.u64("gv")?,
        lv: r.u64("lv")?,
        seq: r.u64("seq")?,
        digest: r.digest("digest")?,
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

fn put_cert(w: &mut Writer, c: &PrepareCert) {
    put_pre_prepare(w, &c.pre_prepare);
    w.u32(c.prepares.len() as u32);
    for p in &c.prepares {
        put_prepare(w, p);
    }
}

fn get_cert(r: &mut Reader) -> Result<PrepareCert, DecodeError> {
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

fn put_knowledge(
    w: &mut Writer,
    ordered: &[OrderProof],
    proposals: &[Arc<Proposal>],
    certs: &[PrepareCert],
) {
    w.u32(ordered.len() as u32);
    for o in ordered {
        put_order_proof(w, o);
    }
    w.u32(proposals.len() as u32);
    for p in proposals {
        put_proposal(w, p);
    }
    w.u32(certs.len() as u32);
    for c in certs {
        put_cert(w, c);
    }
}

type Knowledge = (Vec<OrderProof>, Vec<Arc<Proposal>>, Vec<PrepareCert>);

fn get_knowledge(r: &mut Reader) -> Result<Knowledge, DecodeError> {
    let n = r.list_len("ordered", 80)?;
    let ordered = (0..n)
        .map(|_| get_order_proof(r))
        .collect::<Result<_, _>>()?;
    let n = r.list_len("proposals", 80)?;
    let proposals = (0..n)
        .map(|_| get_proposal(r).map(Arc::new))
        .collect::<Result<_, _>>()?;
    let n = r.list_len("certs", 80)?;
    let certs = (0..n).map(|_| get_cert(r)).collect::<Result<_, _>>()?;
    Ok((ordered, proposals, certs))
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

impl GlobalConstraint {
    /// Digest of the union this constraint carries.
    pub fn union_digest(
        ordered: &[OrderProof],
        proposals: &[Arc<Proposal>],
        certs: &[PrepareCert],
    ) -> Digest {
        let mut w = Writer::default();
        put_knowledge(&mut w, ordered, proposals, certs);
        sha(&w.buf)
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

fn put_order_proof(w: &mut Writer, o: &OrderProof) {
    put_proposal(w, &o.proposal);
    w.u32(o.accepts.len() as u32);
    for a in &o.accepts {
        put_accept(w, a);
    }
}

fn get_order_proof(r: &mut Reader) -> Result<OrderProof, DecodeError> {
    let proposal = Arc::new(get_proposal(r)?);
    let n = r.list_len("accepts", 60)?;
    let accepts = (0..n)
        .map(|_| get_accept(r).map(Arc::new))
        .collect::<Result<_, _>>()?;
    Ok(OrderProof { proposal, accepts })
}

impl Message {
    fn tag(&self) -> u8 {
        match self {
            Message::Update(_) => 1,
            Message::PrePrepare(_) => 2,
            Message::Prepare(_) => 3,
            Message::PartialSig(_) => 4,
            Message::Corrupted(_) => 5,
            Message::Proposal(_) => 6,
            Message::Accept(_) => 7,
            Message::Reply(_) => 8,
            Message::Query(_) => 9,
            Message::QueryReply(_) => 10,
            Message::ReconRequest(_) => 11,
            Message::Ordered(_) => 12,
            Message::NewRep(_) => 13,
            Message::LocalPreinstall(_) => 14,
            Message::RequestLocalState(_) => 15,
            Message::LocalServerState(_) => 16,
            Message::LocalCollected(_) => 17,
            Message::GlobalVc(_) => 18,
            Message::GlobalPreinstall(_) => 19,
            Message::Aru(_) => 20,
            Message::RequestGlobalState(_) => 21,
            Message::GlobalServerState(_) => 22,
            Message::GlobalCollected(_) => 23,
            Message::GlobalConstraint(_) => 24,
            Message::CollectedConstraints(_) => 25,
            Message::Snapshot(_) => 26,
            Message::ProofRequest(_) => 27,
        }
    }

    /// Short name for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Update(_) => "update",
            Message::PrePrepare(_) => "pre-prepare",
            Message::Prepare(_) => "prepare",
            Message::PartialSig(_) => "partial-sig",
            Message::Corrupted(_) => "corrupted-server",
            Message::Proposal(_) => "proposal",
            Message::Accept(_) => "accept",
            Message::Reply(_) => "reply",
            Message::Query(_) => "query",
            Message::QueryReply(_) => "query-reply",
            Message::ReconRequest(_) => "recon-request",
            Message::Ordered(_) => "ordered",
            Message::NewRep(_) => "new-rep",
            Message::LocalPreinstall(_) => "local-preinstall",
            Message::RequestLocalState(_) => "request-local-state",
            Message::LocalServerState(_) => "local-server-state",
            Message::LocalCollected(_) => "local-collected",
            Message::GlobalVc(_) => "global-vc",
            Message::GlobalPreinstall(_) => "global-preinstall",
            Message::Aru(_) => "aru",
            Message::RequestGlobalState(_) => "request-global-state",
            Message::GlobalServerState(_) => "global-server-state",
            Message::GlobalCollected(_) => "global-collected",
            Message::GlobalConstraint(_) => "global-constraint",
            Message::CollectedConstraints(_) => "collected-constraints",
            Message::Snapshot(_) => "snapshot",
            Message::ProofRequest(_) => "proof-request",
        }
    }

    /// Encode with `sig` fields included (`with_sig`) or excluded (for signing).
    fn put(&self, w: &mut Writer, with_sig: bool) {
        w.u8(WIRE_VERSION).u8(self.tag());
        let sig = |w: &mut Writer, s: &[u8]| {
            if with_sig {
                w.bytes(s);
            }
        };
        match self {
            Message::Update(u) => u.put(w),
            Message::PrePrepare(p) => {
                p.put_unsigned(w);
                sig(w, &p.sig);
            }
            Message::Prepare(p) => {
                p.put_unsigned(w);
                sig(w, &p.sig);
            }
            Message::PartialSig(p) => p.put(w),
            Message::Corrupted(c) => {
                w.u32(c.server);
                c.partial.put(w);
                sig(w, &c.sig);
            }
            Message::Proposal(p) => put_proposal(w, p),
            Message::Accept(a) => put_accept(w, a),
            Message::Reply(rp) => {
                put_server(w, rp.server);
                w.u32(rp.client).u64(rp.ts);
                match &rp.proof {
                    Some(p) => {
                        w.u8(1);
                        put_order_proof(w, p);
                    }
                    None => {
                        w.u8(0);
                    }
                }
                w.bytes(&rp.result);
                sig(w, &rp.sig);
            }
            Message::Query(q) => {
                w.u32(q.client).u64(q.ts).bytes(&q.key);
                sig(w, &q.sig);
            }
            Message::QueryReply(q) => {
                put_server(w, q.server);
                w.u32(q.client).u64(q.ts).bytes(&q.result);
                sig(w, &q.sig);
            }
            Message::ReconRequest(r) => {
                w.u64(r.aru);
            }
            Message::Ordered(o) => put_order_proof(w, o),
            Message::NewRep(n) => {
                w.u32(n.server).u64(n.lv);
                sig(w, &n.sig);
            }
            Message::LocalPreinstall(p) => {
                w.u16(p.site).u64(p.lv).u32(p.votes.len() as u32);
                for v in &p.votes {
                    w.u32(v.server).u64(v.lv).bytes(&v.sig);
                }
            }
            Message::RequestLocalState(r) => {
                w.u64(r.gv).u64(r.lv).u64(r.aru);
            }
            Message::LocalServerState(st) => {
                put_local_state(w, st, with_sig);
            }
            Message::LocalCollected(c) => {
                w.u64(c.gv).u64(c.lv).u64(c.aru).u32(c.states.len() as u32);
                for st in &c.states {
                    put_local_state(w, st, true);
                }
            }
            Message::GlobalVc(v) => put_global_vc(w, v),
            Message::GlobalPreinstall(p) => {
                w.u64(p.gv).u32(p.votes.len() as u32);
                for v in &p.votes {
                    put_global_vc(w, v);
                }
            }
            Message::Aru(a) => {
                w.u16(a.site).u64(a.gv).u64(a.aru).bytes(&a.tsig);
            }
            Message::RequestGlobalState(r) => {
                w.u64(r.gv).u64(r.lv).u64(r.aru);
            }
            Message::GlobalServerState(st) => put_global_state(w, st, with_sig),
            Message::GlobalCollected(c) => {
                w.u64(c.gv).u64(c.aru).u32(c.states.len() as u32);
                for st in &c.states {
                    put_global_state(w, st, true);
                }
            }
            Message::GlobalConstraint(c) => put_constraint(w, c),
            Message::CollectedConstraints(c) => {
                w.u64(c.gv).u64(c.aru).u32(c.constraints.len() as u32);
                for gc in &c.constraints {
                    put_constraint(w, gc);
                }
            }
            Message::Snapshot(sn) => {
                w.u64(sn.seq).digest(&sn.digest);
                w.u32(sn.state.len() as u32);
                w.buf.extend_from_slice(&sn.state);
            }
            Message::ProofRequest(q) => {
                w.u8(q.kind.code()).u64(q.seq).digest(&q.content);
            }
        }
    }

    /// The full wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.put(&mut w, true);
        w.buf
    }

    /// The bytes a server signs: the encoding without the signature field.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.put(&mut w, false);
        w.buf
    }

    /// Decode a full wire encoding. Never panics; rejects unknown versions, tags, oversize
    /// lengths and trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("version")?;
        if version != WIRE_VERSION {
            return Err(DecodeError(format!("unsupported wire version {version}")));
        }
        let msg = match r.u8("type")? {
            1 => Message::Update(Arc::new(Update::get(&mut r)?)),
            2 => Message::PrePrepare(Arc::new(get_pre_prepare(&mut r)?)),
            3 => Message::Prepare(Arc::new(get_prepare(&mut r)?)),
            4 => Message::PartialSig(Arc::new(PartialSig::get(&mut r)?)),
            5 => Message::Corrupted(Arc::new(CorruptedServer {
                server: r.u32("server")?,
                partial: PartialSig::get(&mut r)?,
                sig: r.bytes("sig")?,
            })),
            6 => Message::Proposal(Arc::new(get_proposal(&mut r)?)),
            7 => Message::Accept(Arc::new(get_accept(&mut r)?)),
            8 => {
                let server = get_server(&mut r)?;
                let client = r.u32("client")?;
                let ts = r.u64("ts")?;
                let proof = match r.u8("proof flag")? {
                    0 => None,
                    1 => Some(get_order_proof(&mut r)?),
                    f => return Err(DecodeError(format!("bad proof flag {f}"))),
                };
                Message::Reply(Arc::new(Reply {
                    server,
                    client,
                    ts,
                    proof,
                    result: r.bytes("result")?,
                    sig: r.bytes("sig")?,
                }))
            }
            9 => Message::Query(Arc::new(Query {
                client: r.u32("client")?,
                ts: r.u64("ts")?,
                key: r.bytes("key")?,
                sig: r.bytes("sig")?,
            })),
            10 => Message::QueryReply(Arc::new(QueryReply {
                server: get_server(&mut r)?,
                client: r.u32("client")?,
                ts: r.u64("ts")?,
                result: r.bytes("result")?,
                sig: r.bytes("sig")?,
            })),
            11 => Message::ReconRequest(Arc::new(ReconRequest { aru: r.u64("aru")? })),
            12 => Message::Ordered(Arc::new(get_order_proof(&mut r)?)),
            13 => Message::NewRep(Arc::new(NewRep {
                server: r.u32("server")?,
                lv: r.u64("lv")?,
                sig: r.bytes("sig")?,
            })),
            14 => {
                let site = r.u16("site")?;
                let lv = r.u64("lv")?;
                let n = r.list_len("votes", 16)?;
                let votes = (0..n)
                    .map(|_| {
                        Ok(NewRep {
                            server: r.u32("server")?,
                            lv: r.u64("lv")?,
                            sig: r.bytes("sig")?,
                        })
                    })
                    .collect::<Result<_, DecodeError>>()?;
                Message::LocalPreinstall(Arc::new(LocalPreinstall { site, lv, votes }))
            }
            15 => Message::RequestLocalState(Arc::new(RequestLocalState {
                gv: r.u64("gv")?,
                lv: r.u64("lv")?,
                aru: r.u64("aru")?,
            })),
            16 => Message::LocalServerState(Arc::new(get_local_state(&mut r)?)),
            17 => {
                let gv = r.u64("gv")?;
                let lv = r.u64("lv")?;
                let aru = r.u64("aru")?;
                let n = r.list_len("states", 40)?;
                let states = (0..n)
                    .map(|_| get_local_state(&mut r).map(Arc::new))
                    .collect::<Result<_, _>>()?;
                Message::LocalCollected(Arc::new(LocalCollected {
                    gv,
                    lv,
                    aru,
                    states,
                }))
            }
            18 => Message::GlobalVc(Arc::new(get_global_vc(&mut r)?)),
            19 => {
                let gv = r.u64("gv")?;
                let n = r.list_len("votes", 14)?;
                let votes = (0..n)
                    .map(|_| get_global_vc(&mut r))
                    .collect::<Result<_, _>>()?;
                Message::GlobalPreinstall(Arc::new(GlobalPreinstall { gv, votes }))
            }
            20 => Message::Aru(Arc::new(AruMessage {
                site: r.u16("site")?,
                gv: r.u64("gv")?,
                aru: r.u64("aru")?,
                tsig: r.bytes("tsig")?,
            })),
            21 => Message::RequestGlobalState(Arc::new(RequestGlobalState {
                gv: r.u64("gv")?,
                lv: r.u64("lv")?,
                aru: r.u64("aru")?,
            })),
            22 => Message::GlobalServerState(Arc::new(get_global_state(&mut r)?)),
            23 => {
                let gv = r.u64("gv")?;
                let aru = r.u64("aru")?;
                let n = r.list_len("states", 40)?;
                let states = (0..n)
                    .map(|_| get_global_state(&mut r).map(Arc::new))
                    .collect::<Result<_, _>>()?;
                Message::GlobalCollected(Arc::new(GlobalCollected { gv, aru, states }))
            }
            24 => Message::GlobalConstraint(Arc::new(get_constraint(&mut r)?)),
            25 => {
                let gv = r.u64("gv")?;
                let aru = r.u64("aru")?;
                let n = r.list_len("constraints", 40)?;
                let constraints = (0..n)
                    .map(|_| get_constraint(&mut r).map(Arc::new))
                    .collect::<Result<_, _>>()?;
                Message::CollectedConstraints(Arc::new(CollectedConstraints {
                    gv,
                    aru,
                    constraints,
                }))
            }
            26 => Message::Snapshot(Arc::new(Snapshot {
                seq: r.u64("seq")?,
                digest: r.digest("digest")?,
                state: r.bytes_max("state", crate::codec::MAX_SNAPSHOT)?,
            })),
            27 => Message::ProofRequest(Arc::new(ProofRequest {
                kind: {
                    let k = r.u8("sig kind")?;
                    SigKind::from_code(k)
                        .ok_or_else(|| DecodeError(format!("unknown sig kind {k}")))?
                },
                seq: r.u64("seq")?,
                content: r.digest("content")?,
            })),
            t => return Err(DecodeError(format!("unknown message type {t}"))),
        };
        r.finish()?;
        Ok(msg)
    }
}

/// A Steward message with its encoding made once.
pub type Envelope = bft_core::Envelope<Message>;

impl bft_core::Wire for Message {
    fn encode(&self) -> Vec<u8> {
        Message::encode(self)
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Message::decode(bytes)
    }
    fn kind(&self) -> &'static str {
        Message::kind(self)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample_update(ts: u64) -> Arc<Update> {
        Arc::new(Update {
            client: 7,
            ts,
            op: Op::Put {
                key: b"k".to_vec(),
                value: vec![1; 200],
            },
            sig: vec![9; 64],
        })
    }

    /// One sample of every message kind (also used by the replica's robustness tests).
    pub(crate) fn samples() -> Vec<Message> {
        let batch = vec![sample_update(1), sample_update(2)];
        let proposal = Arc::new(Proposal {
            site: 0,
            gv: 1,
            lv: 2,
            seq: 3,
            batch: batch.clone(),
            tsig: vec![5; 128],
        });
        let accept = Arc::new(Accept {
            site: 1,
            gv: 1,
            lv: 0,
            seq: 3,
            digest: [3; 32],
            tsig: vec![6; 128],
        });
        let partial = PartialSig {
            server: 2,
            kind: SigKind::Accept,
            gv: 1,
            lv: 0,
            seq: 3,
            content: [8; 32],
            share: vec![4; 307],
            sig: vec![2; 64],
        };
        vec![
            Message::Update(sample_update(1)),
            Message::PrePrepare(Arc::new(PrePrepare {
                server: 0,
                gv: 1,
                lv: 2,
                seq: 3,
                batch,
                sig: vec![1; 64],
            })),
            Message::Prepare(Arc::new(Prepare {
                server: 1,
                gv: 1,
                lv: 2,
                seq: 3,
                digest: [2; 32],
                sig: vec![1; 64],
            })),
            Message::PartialSig(Arc::new(partial.clone())),
            Message::ProofRequest(Arc::new(ProofRequest {
                kind: SigKind::Proposal,
                seq: 9,
                content: [7; 32],
            })),
            Message::Corrupted(Arc::new(CorruptedServer {
                server: 3,
                partial,
                sig: vec![1; 64],
            })),
            Message::Proposal(proposal.clone()),
            Message::Accept(accept.clone()),
            Message::Reply(Arc::new(Reply {
                server: ServerId::new(SiteId(0), 1),
                client: 7,
                ts: 1,
                proof: Some(OrderProof {
                    proposal,
                    accepts: vec![accept.clone(), accept],
                }),
                result: b"ok".to_vec(),
                sig: vec![1; 64],
            })),
            Message::Reply(Arc::new(Reply {
                server: ServerId::new(SiteId(0), 2),
                client: 7,
                ts: 2,
                proof: None,
                result: b"ok".to_vec(),
                sig: vec![1; 64],
            })),
            Message::Query(Arc::new(Query {
                client: 7,
                ts: 9,
                key: b"k".to_vec(),
                sig: vec![1; 64],
            })),
            Message::QueryReply(Arc::new(QueryReply {
                server: ServerId::new(SiteId(1), 0),
                client: 7,
                ts: 9,
                result: vec![1, 2, 3],
                sig: vec![1; 64],
            })),
            Message::ReconRequest(Arc::new(ReconRequest { aru: 17 })),
            Message::NewRep(Arc::new(NewRep {
                server: 1,
                lv: 2,
                sig: vec![3; 64],
            })),
            Message::LocalPreinstall(Arc::new(LocalPreinstall {
                site: 1,
                lv: 2,
                votes: vec![NewRep {
                    server: 1,
                    lv: 2,
                    sig: vec![3; 64],
                }],
            })),
            Message::RequestLocalState(Arc::new(RequestLocalState {
                gv: 0,
                lv: 1,
                aru: 9,
            })),
            Message::LocalCollected(Arc::new(LocalCollected {
                gv: 0,
                lv: 1,
                aru: 9,
                states: vec![Arc::new(LocalServerState {
                    server: 2,
                    gv: 0,
                    lv: 1,
                    aru: 9,
                    proposals: vec![],
                    certs: vec![PrepareCert {
                        pre_prepare: Arc::new(PrePrepare {
                            server: 0,
                            gv: 0,
                            lv: 0,
                            seq: 10,
                            batch: vec![sample_update(3)],
                            sig: vec![1; 64],
                        }),
                        prepares: vec![Arc::new(Prepare {
                            server: 1,
                            gv: 0,
                            lv: 0,
                            seq: 10,
                            digest: [2; 32],
                            sig: vec![1; 64],
                        })],
                    }],
                    sig: vec![4; 64],
                })],
            })),
            Message::Ordered(Arc::new(OrderProof {
                proposal: Arc::new(Proposal {
                    site: 0,
                    gv: 1,
                    lv: 2,
                    seq: 3,
                    batch: vec![sample_update(5)],
                    tsig: vec![5; 128],
                }),
                accepts: vec![],
            })),
            Message::GlobalPreinstall(Arc::new(GlobalPreinstall {
                gv: 3,
                votes: vec![GlobalVc {
                    site: 1,
                    gv: 3,
                    tsig: vec![1; 128],
                }],
            })),
            Message::Aru(Arc::new(AruMessage {
                site: 1,
                gv: 1,
                aru: 7,
                tsig: vec![2; 128],
            })),
            Message::CollectedConstraints(Arc::new(CollectedConstraints {
                gv: 1,
                aru: 7,
                constraints: vec![Arc::new(GlobalConstraint {
                    site: 2,
                    gv: 1,
                    aru: 7,
                    ordered: vec![],
                    proposals: vec![Arc::new(Proposal {
                        site: 0,
                        gv: 0,
                        lv: 0,
                        seq: 8,
                        batch: vec![sample_update(4)],
                        tsig: vec![5; 128],
                    })],
                    certs: vec![],
                    tsig: vec![6; 128],
                })],
            })),
            Message::GlobalCollected(Arc::new(GlobalCollected {
                gv: 1,
                aru: 7,
                states: vec![Arc::new(GlobalServerState {
                    server: 1,
                    gv: 1,
                    aru: 7,
                    ordered: vec![],
                    proposals: vec![],
                    certs: vec![PrepareCert {
                        pre_prepare: Arc::new(PrePrepare {
                            server: 0,
                            gv: 0,
                            lv: 0,
                            seq: 9,
                            batch: vec![sample_update(6)],
                            sig: vec![7; 64],
                        }),
                        prepares: vec![Arc::new(Prepare {
                            server: 2,
                            gv: 0,
                            lv: 0,
                            seq: 9,
                            digest: [3; 32],
                            sig: vec![8; 64],
                        })],
                    }],
                    sig: vec![3; 64],
                })],
            })),
        ]
    }

    #[test]
    fn every_message_roundtrips() {
        for m in samples() {
            let bytes = m.encode();
            assert_eq!(Message::decode(&bytes).unwrap(), m, "{}", m.kind());
            // Truncation anywhere is an error, never a panic.
            for cut in 0..bytes.len() {
                assert!(
                    Message::decode(&bytes[..cut]).is_err(),
                    "{} cut {cut}",
                    m.kind()
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(Message::decode(&longer).is_err());
        }
    }

    #[test]
    fn signing_bytes_exclude_the_signature() {
        for m in samples() {
            assert!(m.signing_bytes().len() <= m.encode().len());
        }
        let a = sample_update(1);
        let mut b = (*a).clone();
        b.sig = vec![0; 64];
        assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn bad_version_and_tag_are_rejected() {
        let mut bytes = samples()[0].encode();
        bytes[0] = 9;
        assert!(Message::decode(&bytes).unwrap_err().0.contains("version"));
        bytes[0] = WIRE_VERSION;
        bytes[1] = 200;
        assert!(Message::decode(&bytes).unwrap_err().0.contains("type"));
    }

    #[test]
    fn huge_lengths_do_not_allocate() {
        // An Update claiming a 4 GiB key.
        let mut bytes = vec![WIRE_VERSION, 1];
        bytes.extend(7u32.to_be_bytes());
        bytes.extend(1u64.to_be_bytes());
        bytes.push(1);
        bytes.extend(u32::MAX.to_be_bytes());
        assert!(Message::decode(&bytes).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Message::decode(&bytes);
        }

        #[test]
        fn mutated_encodings_never_panic(idx in any::<usize>(), pos in any::<usize>(), val in any::<u8>()) {
            let all = samples();
            let m = &all[idx % all.len()];
            let mut bytes = m.encode();
            let p = pos % bytes.len();
            bytes[p] = val;
            let _ = Message::decode(&bytes);
        }
    }
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod wire_compat;
