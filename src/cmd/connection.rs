//! Connection commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO, CLIENT.

use super::table::{arg, command, doc, Arg, ArgKind, CommandSpec, Doc};
use super::{eq_ic, Args, Ctx};
use crate::error::*;
use crate::gucs;
use bytes::Bytes;
use pgkv_resp::{Frame, Protocol};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        flags: &["fast"],
        acl: &["connection"],
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        doc: Doc {
            args: &[Arg { flags: &["optional"], ..arg("message", ArgKind::String) }],
            ..doc("Ping the server", "1.0.0", "connection", "O(1)")
        },
        ..command("ping", -1, ping)
    },
    CommandSpec {
        flags: &["loading", "stale", "fast"],
        acl: &["connection"],
        doc: Doc { args: &[arg("message", ArgKind::String)], ..doc("Echo the given string", "1.0.0", "connection", "O(1)") },
        ..command("echo", 2, echo)
    },
    CommandSpec {
        flags: &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        acl: &["connection"],
        doc: doc("Close the connection", "1.0.0", "connection", "O(1)"),
        ..command("quit", -1, quit)
    },
    CommandSpec {
        flags: &["loading", "stale", "fast"],
        acl: &["connection"],
        doc: Doc {
            args: &[arg("index", ArgKind::Integer)],
            ..doc("Change the selected database for the current connection", "1.0.0", "connection", "O(1)")
        },
        ..command("select", 2, select)
    },
    CommandSpec {
        flags: &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        acl: &["connection"],
        doc: Doc {
            history: &[("6.0.0", "Added ACL style (username and password).")],
            args: &[
                Arg { since: Some("6.0.0"), flags: &["optional"], ..arg("username", ArgKind::String) },
                arg("password", ArgKind::String),
            ],
            ..doc("Authenticate to the server", "1.0.0", "connection", "O(N) where N is the number of passwords defined for the user")
        },
        ..command("auth", -2, auth)
    },
    CommandSpec {
        flags: &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        acl: &["connection"],
        doc: Doc {
            history: &[("6.2.0", "`protover` made optional; when called without arguments the command reports the current connection's context.")],
            args: &[Arg {
                flags: &["optional"],
                args: &[
                    arg("protover", ArgKind::Integer),
                    Arg {
                        token: Some("AUTH"),
                        flags: &["optional"],
                        args: &[arg("username", ArgKind::String), arg("password", ArgKind::String)],
                        ..arg("username_password", ArgKind::Block)
                    },
                    Arg { token: Some("SETNAME"), flags: &["optional"], ..arg("clientname", ArgKind::String) },
                ],
                ..arg("arguments", ArgKind::Block)
            }],
            ..doc("Handshake with Redis", "6.0.0", "connection", "O(1)")
        },
        ..command("hello", -1, hello)
    },
    CommandSpec {
        acl: &[],
        handler: None,
        doc: doc("A container for client connection commands", "2.4.0", "connection", "Depends on subcommand."),
        subcommands: CLIENT_SUBCOMMANDS,
        ..command("client", -2, ping)
    },
];

const CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec {
        flags: &["noscript", "loading", "stale"],
        acl: &["connection"],
        doc: doc("Returns the client ID for the current connection", "5.0.0", "connection", "O(1)"),
        ..command("client|id", 2, client_id)
    },
    CommandSpec {
        flags: &["noscript", "loading", "stale"],
        acl: &["connection"],
        doc: doc("Get the current connection name", "2.6.9", "connection", "O(1)"),
        ..command("client|getname", 2, client_getname)
    },
    CommandSpec {
        flags: &["noscript", "loading", "stale"],
        acl: &["connection"],
        doc: Doc {
            args: &[arg("connection-name", ArgKind::String)],
            ..doc("Set the current connection name", "2.6.9", "connection", "O(1)")
        },
        ..command("client|setname", 3, client_setname)
    },
];

/// `PING [message]`
fn ping(_ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if args.remaining() > 1 {
        return Err(CmdError::Arity("ping".into()));
    }
    Ok(match args.peek() {
        None => Frame::simple("PONG"),
        Some(msg) => Frame::Bulk(msg.clone()),
    })
}

/// `ECHO message`
fn echo(_ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    Ok(Frame::Bulk(args.next_bytes()?))
}

/// `QUIT`: answers OK, then the connection closes once the reply is sent.
fn quit(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    ctx.session.close_after_reply = true;
    Ok(Frame::ok())
}

/// `SELECT index`
fn select(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let db = super::parse_i32(&args.next_bytes()?)?;
    if !(0..crate::DATABASES as i32).contains(&db) {
        return Err(CmdError::Static(DB_OUT_OF_RANGE));
    }
    ctx.session.db = db as i16;
    Ok(Frame::ok())
}

/// Compares without an early exit, so the time taken does not tell an
/// attacker how many leading bytes of the password were right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= (x ^ y) as usize;
    }
    diff == 0
}

/// Redis's `default` user: with no password configured it accepts any
/// password (nopass); otherwise only `pgkv.password`.
fn check_credentials(user: &[u8], password: &[u8]) -> bool {
    if user != b"default" {
        return false;
    }
    match gucs::password() {
        None => true,
        Some(expected) => constant_time_eq(password, expected.as_bytes()),
    }
}

/// `AUTH [username] password`
fn auth(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if args.remaining() > 2 {
        return Err(CmdError::syntax());
    }
    let (user, password) = if args.remaining() == 1 {
        if gucs::password().is_none() {
            return Err(CmdError::Static(NO_PASSWORD_SET));
        }
        (Bytes::from_static(b"default"), args.next_bytes()?)
    } else {
        (args.next_bytes()?, args.next_bytes()?)
    };
    if check_credentials(&user, &password) {
        ctx.session.authenticated = true;
        Ok(Frame::ok())
    } else {
        pgrx::log!("pgkv: AUTH failed for user \"{}\"", String::from_utf8_lossy(&user));
        Err(CmdError::Static(WRONGPASS))
    }
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`
fn hello(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let mut proto = None;
    if !args.is_empty() {
        let v = super::parse_i64(&args.next_bytes()?)
            .map_err(|_| CmdError::msg("ERR Protocol version is not an integer or out of range"))?;
        proto = Some(match v {
            2 => Protocol::Resp2,
            3 => Protocol::Resp3,
            _ => return Err(CmdError::Static(NOPROTO)),
        });
    }
    let mut credentials = None;
    let mut name = None;
    while let Some(opt) = args.peek().cloned() {
        args.next_bytes()?;
        if eq_ic(&opt, "auth") && args.remaining() >= 2 {
            credentials = Some((args.next_bytes()?, args.next_bytes()?));
        } else if eq_ic(&opt, "setname") && args.remaining() >= 1 {
            name = Some(args.next_bytes()?);
        } else {
            let mut msg = b"ERR Syntax error in HELLO option '".to_vec();
            msg.extend_from_slice(&opt);
            msg.push(b'\'');
            return Err(CmdError::Msg(Bytes::from(sanitize(msg))));
        }
    }
    if let Some((user, password)) = credentials {
        if !check_credentials(&user, &password) {
            pgrx::log!("pgkv: AUTH failed for user \"{}\"", String::from_utf8_lossy(&user));
            return Err(CmdError::Static(WRONGPASS));
        }
        ctx.session.authenticated = true;
    }
    if !ctx.session.authenticated {
        return Err(CmdError::Static(HELLO_NOAUTH));
    }
    if let Some(name) = name {
        set_name(ctx, name)?;
    }
    if let Some(p) = proto {
        ctx.session.proto = p;
    }
    let s = |v: &'static str| Frame::Bulk(Bytes::from_static(v.as_bytes()));
    Ok(Frame::Map(vec![
        (s("server"), s("redis")),
        (s("version"), s(super::server::REDIS_VERSION)),
        (s("proto"), Frame::Integer(ctx.session.proto.version())),
        (s("id"), Frame::Integer(ctx.session.id as i64)),
        (s("mode"), s("standalone")),
        (s("role"), s("master")),
        (s("modules"), Frame::Array(vec![])),
    ]))
}

fn set_name(ctx: &mut Ctx, name: Bytes) -> Result<(), CmdError> {
    if name.is_empty() {
        ctx.session.name = None;
        return Ok(());
    }
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::Static(BAD_CLIENT_NAME));
    }
    ctx.session.name = Some(name);
    Ok(())
}

/// `CLIENT ID`
fn client_id(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    Ok(Frame::Integer(ctx.session.id as i64))
}

/// `CLIENT GETNAME`
fn client_getname(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    Ok(match &ctx.session.name {
        Some(n) => Frame::Bulk(n.clone()),
        None => Frame::NullBulk,
    })
}

/// `CLIENT SETNAME connection-name`
fn client_setname(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    set_name(ctx, args.next_bytes()?)?;
    Ok(Frame::ok())
}
