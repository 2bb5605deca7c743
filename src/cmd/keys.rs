//! Keyspace commands: DEL, EXISTS.

use super::table::{tx, Binding};
use super::{Args, Ctx};
use crate::error::CmdResult;
use crate::store::Fetch;
use pgkv_resp::Frame;

pub const COMMANDS: &[Binding] = &[tx("del", del), tx("exists", exists)];

/// `DEL key [key ...]`
fn del(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let keys = args.rest();
    Ok(Frame::Integer(ctx.store().delete(ctx.session.db, keys, ctx.now_ms)?))
}

/// `EXISTS key [key ...]`: a key named twice counts twice.
fn exists(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let mut n = 0;
    for key in args.rest() {
        if ctx.store().lookup(ctx.session.db, key, ctx.now_ms, Fetch::Meta)?.is_some() {
            n += 1;
        }
    }
    Ok(Frame::Integer(n))
}
