//! Connection commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO, CLIENT.

use super::table::{local, tx, Binding};
use super::{eq_ic, Args, Ctx};
use crate::error::*;
use crate::gucs;
use bytes::Bytes;
use pgkv_resp::{Frame, Protocol};

pub const COMMANDS: &[Binding] = &[
    local("ping", ping),
    local("echo", echo),
    local("quit", quit),
    local("select", select),
    tx("auth", auth),
    tx("hello", hello),
    local("client|id", client_id),
    local("client|getname", client_getname),
    local("client|setname", client_setname),
];


/// `PING [message]`
fn ping(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if args.remaining() > 1 {
        return Err(CmdError::Arity("ping".into()));
    }
    // A RESP2 subscriber gets a pub/sub-shaped pong.
    if ctx.session.proto == pgkv_resp::Protocol::Resp2 && ctx.session.subs.any() {
        let msg = args.peek().cloned().unwrap_or_default();
        return Ok(Frame::Array(vec![Frame::bulk("pong"), Frame::Bulk(msg)]));
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
    let db = super::parse_i32_or(&args.next_bytes()?, None)?;
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

/// Checks a username and password; on success the session runs as that
/// user from now on.
/// - `default` is Redis's default user: with no `pgkv.password` it accepts
///   any password (nopass), unless `pgkv.auth = 'postgres'`; otherwise only
///   `pgkv.password`. Commands run as the worker.
/// - Any other name, with `pgkv.auth = 'postgres'`, is a PostgreSQL role:
///   it must be able to log in, be a member of pgkv_client (or own the
///   extension), and the password must match its stored SCRAM (or md5)
///   verifier. Its commands then run as that role.
fn authenticate(ctx: &mut Ctx, user: &[u8], password: &[u8]) -> Result<bool, CmdError> {
    let ok = if user == b"default" {
        let ok = match gucs::password() {
            None => !gucs::auth_postgres(),
            Some(expected) => constant_time_eq(password, expected.as_bytes()),
        };
        if ok {
            ctx.session.role = None;
        }
        ok
    } else if gucs::auth_postgres() {
        match std::str::from_utf8(user) {
            Ok(name) => match ctx.store().role_login(name)? {
                Some(login) if login.allowed => {
                    let ok = login.secret.as_deref().is_some_and(|secret| crate::store::verify_password(name, secret, password));
                    if ok {
                        ctx.session.role = Some(login.oid);
                    }
                    ok
                }
                _ => false,
            },
            Err(_) => false,
        }
    } else {
        false
    };
    if !ok {
        // Never the password.
        pgrx::log!("pgkv: AUTH failed for user \"{}\"", String::from_utf8_lossy(user));
    }
    Ok(ok)
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
    if authenticate(ctx, &user, &password)? {
        ctx.session.authenticated = true;
        Ok(Frame::ok())
    } else {
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
        if !authenticate(ctx, &user, &password)? {
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
