//! Keyspace commands: DEL, EXISTS.

use super::table::{command, doc, key_arg, Arg, BeginSearch, CommandSpec, Doc, FindKeys, KeySpec};
use super::{Args, Ctx};
use crate::error::CmdResult;
use crate::store::Fetch;
use pgkv_resp::Frame;

/// Every key from the first argument on.
const ALL_KEYS: FindKeys = FindKeys::Range { lastkey: -1, keystep: 1, limit: 0 };

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        flags: &["write"],
        acl: &["keyspace"],
        keys: (1, -1, 1),
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        key_specs: &[KeySpec { notes: None, flags: &["RM", "delete"], begin: BeginSearch::Index(1), find: ALL_KEYS }],
        doc: Doc {
            args: &[Arg { flags: &["multiple"], ..key_arg("key", 0) }],
            ..doc(
                "Delete a key",
                "1.0.0",
                "generic",
                "O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).",
            )
        },
        tx: true,
        ..command("del", -2, del)
    },
    CommandSpec {
        flags: &["readonly", "fast"],
        acl: &["keyspace"],
        keys: (1, -1, 1),
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        key_specs: &[KeySpec { notes: None, flags: &["RO"], begin: BeginSearch::Index(1), find: ALL_KEYS }],
        doc: Doc {
            history: &[("3.0.3", "Accepts multiple `key` arguments.")],
            args: &[Arg { flags: &["multiple"], ..key_arg("key", 0) }],
            ..doc("Determine if a key exists", "1.0.0", "generic", "O(N) where N is the number of keys to check.")
        },
        tx: true,
        ..command("exists", -2, exists)
    },
];

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
