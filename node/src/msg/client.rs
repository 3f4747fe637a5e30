//! Client traffic: the update itself (its codec lives in `bft_core::request`), the signed reply
//! with its order proof, and read-only queries answered inside the client's site.

use steward_config::{ServerId, SiteId};

use super::normal::{get_order_proof, put_order_proof, OrderProof};
use super::Body;
use crate::codec::{DecodeError, Reader, Writer};
use bft_core::request::{ClientId, Update};

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

fn put_server(w: &mut Writer, s: ServerId) {
    w.u16(s.site.0).u32(s.index);
}

fn get_server(r: &mut Reader) -> Result<ServerId, DecodeError> {
    Ok(ServerId::new(SiteId(r.u16("site")?), r.u32("server")?))
}

/// An update's signature covers its digest, not the message encoding: always encoded.
impl Body for Update {
    fn put_body(&self, w: &mut Writer, _with_sig: bool) {
        self.put(w);
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        Update::get(r)
    }
}

impl Body for Reply {
    fn put_body(&self, w: &mut Writer, with_sig: bool) {
        put_server(w, self.server);
        w.u32(self.client).u64(self.ts);
        match &self.proof {
            Some(p) => {
                w.u8(1);
                put_order_proof(w, p);
            }
            None => {
                w.u8(0);
            }
        }
        w.bytes(&self.result);
        if with_sig {
            w.bytes(&self.sig);
        }
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Reply {
            server: get_server(r)?,
            client: r.u32("client")?,
            ts: r.u64("ts")?,
            proof: match r.flag("proof flag")? {
                true => Some(get_order_proof(r)?),
                false => None,
            },
            result: r.bytes("result")?,
            sig: r.bytes("sig")?,
        })
    }
}

impl Body for Query {
    fn put_body(&self, w: &mut Writer, with_sig: bool) {
        w.u32(self.client).u64(self.ts).bytes(&self.key);
        if with_sig {
            w.bytes(&self.sig);
        }
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Query {
            client: r.u32("client")?,
            ts: r.u64("ts")?,
            key: r.bytes("key")?,
            sig: r.bytes("sig")?,
        })
    }
}

impl Body for QueryReply {
    fn put_body(&self, w: &mut Writer, with_sig: bool) {
        put_server(w, self.server);
        w.u32(self.client).u64(self.ts).bytes(&self.result);
        if with_sig {
            w.bytes(&self.sig);
        }
    }
    fn get_body(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(QueryReply {
            server: get_server(r)?,
            client: r.u32("client")?,
            ts: r.u64("ts")?,
            result: r.bytes("result")?,
            sig: r.bytes("sig")?,
        })
    }
}
