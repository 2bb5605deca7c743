//! Per-client state that commands read and change: the selected database, the
//! protocol, the name, authentication. A RESP connection owns one for its
//! lifetime; a SQL call builds a fresh one (see `sql_api`).

use bytes::Bytes;
use pgkv_resp::Protocol;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A client of the worker's RESP port.
    Resp,
    /// A `kv.*` SQL function inside the caller's transaction.
    Sql,
}

#[derive(Clone, Debug)]
pub struct Session {
    pub id: u64,
    pub db: i16,
    pub proto: Protocol,
    pub name: Option<Bytes>,
    pub authenticated: bool,
    pub origin: Origin,
    /// Set by QUIT: send the reply, then close.
    pub close_after_reply: bool,
    /// A script (EVAL, FCALL) of this client is running: the commands it
    /// calls are checked as Redis checks `redis.call`, and must not block.
    pub in_script: bool,
}

impl Session {
    pub fn new(id: u64, origin: Origin, authenticated: bool) -> Session {
        Session { id, db: 0, proto: Protocol::Resp2, name: None, authenticated, origin, close_after_reply: false, in_script: false }
    }
}
