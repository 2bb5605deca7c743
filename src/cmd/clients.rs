//! CLIENT LIST and CLIENT INFO. The worker owns the connections; before a
//! batch that asks, it leaves a snapshot of them here.

use super::table::{local, Binding};
use super::{eq_ic, Args, Ctx};
use crate::error::{CmdError, CmdResult};
use bytes::Bytes;
use pgkv_resp::Frame;
use std::cell::RefCell;

pub const COMMANDS: &[Binding] = &[local("client|list", client_list), local("client|info", client_info)];

/// One connection as CLIENT LIST shows it.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    pub name: String,
    pub age: u64,
    pub idle: u64,
    /// Redis's flag letters: b blocked, P subscriber, x in MULTI, N none.
    pub flags: String,
    pub db: i16,
    pub sub: usize,
    pub psub: usize,
    pub ssub: usize,
    pub multi: i64,
    pub qbuf: usize,
    pub obl: usize,
    pub cmd: String,
    pub resp: i64,
    pub pubsub: bool,
}

impl ClientInfo {
    fn line(&self) -> String {
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} \
             argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl={} oll=0 omem={} tot-mem={} events=r cmd={} user=default redir=-1 resp={}\n",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            self.name,
            self.age,
            self.idle,
            self.flags,
            self.db,
            self.sub,
            self.psub,
            self.ssub,
            self.multi,
            self.qbuf,
            16384usize.saturating_sub(self.qbuf),
            self.obl,
            self.obl,
            16384 + self.qbuf + self.obl,
            self.cmd,
            self.resp
        )
    }
}

thread_local! {
    static SNAPSHOT: RefCell<Vec<ClientInfo>> = const { RefCell::new(Vec::new()) };
}

/// The worker's connections, as of the start of this batch.
pub fn set_snapshot(clients: Vec<ClientInfo>) {
    SNAPSHOT.with(|s| *s.borrow_mut() = clients);
}

/// The snapshot with the calling client shown running `cmd` now.
fn current(ctx: &Ctx, cmd: &str) -> Vec<ClientInfo> {
    let mut all = SNAPSHOT.with(|s| s.borrow().clone());
    for c in all.iter_mut().filter(|c| c.id == ctx.session.id) {
        c.cmd = cmd.to_string();
        c.idle = 0;
        c.db = ctx.session.db;
        c.name = ctx.session.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
        c.resp = ctx.session.proto.version();
    }
    all
}

fn verbatim(text: String) -> Frame {
    Frame::Verbatim { format: *b"txt", text: Bytes::from(text) }
}

/// `CLIENT LIST [TYPE normal|master|replica|pubsub] [ID client-id ...]`
fn client_list(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let mut clients = current(ctx, "client|list");
    if let Some(opt) = args.peek().cloned() {
        args.next_bytes()?;
        if eq_ic(&opt, "type") && args.remaining() == 1 {
            let t = args.next_bytes()?;
            let kind = String::from_utf8_lossy(&t).to_ascii_lowercase();
            match kind.as_str() {
                "normal" => clients.retain(|c| !c.pubsub),
                "pubsub" => clients.retain(|c| c.pubsub),
                "master" | "replica" | "slave" => clients.clear(),
                _ => return Err(CmdError::msg(format!("ERR Unknown client type '{}'", String::from_utf8_lossy(&t)))),
            }
        } else if eq_ic(&opt, "id") && !args.is_empty() {
            let mut ids = Vec::new();
            for a in args.rest() {
                let id = pgkv_resp::num::parse_i64(a).filter(|n| *n > 0).ok_or_else(|| CmdError::msg("ERR Invalid client ID"))?;
                ids.push(id as u64);
            }
            clients.retain(|c| ids.contains(&c.id));
        } else {
            return Err(CmdError::syntax());
        }
    }
    Ok(verbatim(clients.iter().map(ClientInfo::line).collect()))
}

/// `CLIENT INFO`
fn client_info(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    let me = current(ctx, "client|info").into_iter().find(|c| c.id == ctx.session.id).unwrap_or_default();
    Ok(verbatim(me.line()))
}
