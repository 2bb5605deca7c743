//! The Lua engines behind EVAL and FCALL, built as Redis 7.0 builds them.
//!
//! - The interpreter is Redis's own Lua 5.1.5 (vendor/lua-src), compiled by
//!   mlua's `vendored` build, with Redis's cjson, cmsgpack, bit and struct.
//! - `c/glue.c` holds Redis's sandbox and environment set-up, which only
//!   use the Lua C API; this module owns the engines, the running script's
//!   state, and the Rust callbacks (`redis.call` and friends).
//! - A script runs inside the command that started it, in that command's
//!   transaction: `redis.call` goes through `cmd::dispatch` with the
//!   caller's `Ctx`.
//!
//! PostgreSQL errors: a Postgres ERROR inside `redis.call` arrives as a
//! Rust panic (pgrx). It must never unwind through Lua's C frames, and no
//! SQL may run after it. So every callback catches panics, parks the
//! payload ("doomed"), and raises a plain Lua error; later `redis.call`s
//! refuse to run and the count hook keeps raising, so the script ends
//! promptly. When the script has returned, the panic is resumed and the
//! worker's transaction code (worker/xact.rs) rolls the command back and
//! answers with the Postgres error.

pub mod convert;

use crate::cmd::Ctx;
use bytes::Bytes;
use mlua::{Function, Lua, LuaOptions, MultiValue, RegistryKey, StdLib, Table, Value};
use pgkv_resp::{Frame, Protocol};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::c_int;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

extern "C-unwind" {
    fn pgkv_lua_init_eval(l: *mut mlua::ffi::lua_State) -> c_int;
    fn pgkv_lua_init_functions(l: *mut mlua::ffi::lua_State) -> c_int;
    fn pgkv_lua_set_index(l: *mut mlua::ffi::lua_State) -> c_int;
    fn pgkv_lua_compile(l: *mut mlua::ffi::lua_State) -> c_int;
    fn pgkv_lua_set_global(l: *mut mlua::ffi::lua_State) -> c_int;
    fn pgkv_lua_run(l: *mut mlua::ffi::lua_State) -> c_int;
}

/// Most memory one Lua engine may use; past it a script fails with
/// "not enough memory" instead of growing the worker without bound.
const MEMORY_LIMIT: usize = 1 << 30;
/// Redis's LOAD_TIMEOUT_MS: FUNCTION LOAD may only register functions.
const LOAD_TIMEOUT_MS: u128 = 500;

/// Script flags (`#!lua flags=...`, `redis.register_function{flags=...}`),
/// in Redis's order.
pub const FLAG_NAMES: [&str; 5] = ["no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"];
pub const NO_WRITES: u32 = 1;
/// EVAL without a shebang: Redis's backwards-compatible mode.
pub const EVAL_COMPAT: u32 = 1 << 8;

pub const BUSY_EVAL: &str = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
pub const BUSY_FUNCTION: &str = "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// The script being run on this thread.
struct Running {
    ctx: *mut Ctx<'static>,
    eval: bool,
    name: String,
    argv: Vec<Bytes>,
    resp: u8,
    read_only: bool,
    wrote: bool,
    start: Instant,
    limit_ms: i64,
    timed_out: bool,
    killed: bool,
    doomed: Option<Box<dyn Any + Send>>,
}

thread_local! {
    static RUN: RefCell<Option<Running>> = const { RefCell::new(None) };
    /// Start of the FUNCTION LOAD in progress, and the functions it registered.
    static LOAD: RefCell<Option<(Instant, Vec<FunctionInfo>)>> = const { RefCell::new(None) };
    /// Serves other clients while a script is past lua-time-limit (set by
    /// the worker; SQL backends have none).
    static BUSY_HANDLER: Cell<Option<fn()>> = const { Cell::new(None) };
    static EVAL_ENGINE: RefCell<Option<EvalEngine>> = const { RefCell::new(None) };
    static FUNCTIONS: RefCell<Option<Functions>> = const { RefCell::new(None) };
}

/// The worker's callback for the busy period; `None` to remove it.
pub fn set_busy_handler(f: Option<fn()>) {
    BUSY_HANDLER.with(|h| h.set(f));
}

/// Whether a script is running, and if so whether it is an EVAL.
pub fn running_eval() -> Option<bool> {
    RUN.with(|r| r.borrow().as_ref().map(|run| run.eval))
}

/// The -BUSY error for the running script's kind.
pub fn busy_error() -> Frame {
    let eval = running_eval().unwrap_or(true);
    Frame::Error(Bytes::from_static(if eval { BUSY_EVAL } else { BUSY_FUNCTION }.as_bytes()))
}

/// SCRIPT KILL (`eval`) and FUNCTION KILL, as Redis's `scriptKill`.
pub fn kill(eval: bool) -> Frame {
    RUN.with(|r| {
        let mut r = r.borrow_mut();
        let Some(run) = r.as_mut() else {
            return Frame::Error(Bytes::from_static(b"NOTBUSY No scripts in execution right now."));
        };
        if run.wrote {
            return Frame::Error(Bytes::from_static(b"UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."));
        }
        if eval && !run.eval {
            return Frame::Error(Bytes::from_static(BUSY_FUNCTION.as_bytes()));
        }
        if !eval && run.eval {
            return Frame::Error(Bytes::from_static(BUSY_EVAL.as_bytes()));
        }
        run.killed = true;
        Frame::ok()
    })
}

/// Ends the running script with an error that rolls its command back
/// (the worker is shutting down).
pub fn abort(reason: &str) {
    RUN.with(|r| {
        if let Some(run) = r.borrow_mut().as_mut() {
            run.doomed.get_or_insert_with(|| Box::new(reason.to_string()));
        }
    });
}

/// FUNCTION STATS's `running_script` entry: name, command, duration.
pub fn running_script() -> Option<(String, Vec<Bytes>, i64)> {
    RUN.with(|r| r.borrow().as_ref().map(|run| (run.name.clone(), run.argv.clone(), run.start.elapsed().as_millis() as i64)))
}

/// Called by the count hook in glue.c every 100000 instructions.
/// 0: go on, 1: killed, 2: FUNCTION LOAD timeout, 3: abort (Postgres error).
#[no_mangle]
pub extern "C" fn pgkv_lua_interrupt() -> c_int {
    std::panic::catch_unwind(interrupt).unwrap_or(3)
}

fn interrupt() -> c_int {
    // A SQL caller's statement_timeout or cancel: the script cannot serve
    // interrupts (an ERROR must not cross Lua), so it ends, and Postgres
    // handles the interrupt at its next check.
    // SAFETY: a plain global of this backend, set by signal handlers.
    if BUSY_HANDLER.with(|h| h.get()).is_none() && unsafe { std::ptr::read_volatile(std::ptr::addr_of!(pgrx::pg_sys::InterruptPending)) } != 0 {
        abort("canceling statement due to an interrupt");
    }
    if LOAD.with(|l| l.borrow().as_ref().is_some_and(|(start, _)| start.elapsed().as_millis() > LOAD_TIMEOUT_MS)) {
        return 2;
    }
    let busy = RUN.with(|r| {
        let mut r = r.borrow_mut();
        let Some(run) = r.as_mut() else { return false };
        if run.doomed.is_some() {
            return false;
        }
        if !run.timed_out {
            if run.limit_ms <= 0 || (run.start.elapsed().as_millis() as i64) < run.limit_ms {
                return false;
            }
            run.timed_out = true;
            pgrx::warning!(
                "Slow script detected: still in execution after {} milliseconds. You can try killing the script using the {} command. Script name is: {}.",
                run.start.elapsed().as_millis(),
                if run.eval { "SCRIPT KILL" } else { "FUNCTION KILL" },
                run.name
            );
        }
        true
    });
    if busy {
        if let Some(serve) = BUSY_HANDLER.with(|h| h.get()) {
            serve();
        }
    }
    RUN.with(|r| match r.borrow().as_ref() {
        Some(run) if run.doomed.is_some() => 3,
        Some(run) if run.killed => 1,
        _ => 0,
    })
}

/// What a Rust callback hands back to glue.c's trampoline.
enum Outcome {
    Return(Vec<Value>),
    Raise(Value),
}

/// A Rust function for the `redis` table: returns `(ok, values...)`, never
/// raises and never unwinds into Lua (see the module comment).
fn callback(lua: &Lua, f: fn(&Lua, Vec<Value>) -> mlua::Result<Outcome>) -> mlua::Result<Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let args: Vec<Value> = args.into_iter().collect();
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| f(lua, args))) {
            Ok(r) => r?,
            Err(payload) => {
                RUN.with(|r| {
                    if let Some(run) = r.borrow_mut().as_mut() {
                        run.doomed.get_or_insert(payload);
                    } else {
                        std::panic::resume_unwind(payload);
                    }
                });
                Outcome::Raise(Value::Table(convert::error_table(lua, b"script aborted: a PostgreSQL error is pending")?))
            }
        };
        let mut out = Vec::new();
        match outcome {
            Outcome::Return(values) => {
                out.push(Value::Boolean(true));
                out.extend(values);
            }
            Outcome::Raise(err) => {
                out.push(Value::Boolean(false));
                out.push(err);
            }
        }
        Ok(MultiValue::from_iter(out))
    })
}

fn raise(lua: &Lua, msg: &str) -> mlua::Result<Outcome> {
    Ok(Outcome::Raise(Value::Table(convert::error_table(lua, msg.as_bytes())?)))
}

fn returning(v: Value) -> mlua::Result<Outcome> {
    Ok(Outcome::Return(vec![v]))
}

/// `redis.call` / `redis.pcall`.
fn redis_command(lua: &Lua, args: Vec<Value>, raise_error: bool) -> mlua::Result<Outcome> {
    let state = RUN.with(|r| r.borrow().as_ref().map(|run| (run.ctx, run.resp, run.doomed.is_some())));
    let Some((ctx, resp, doomed)) = state else {
        return raise(lua, "redis.call/pcall can only be called inside a script invocation");
    };
    if doomed {
        return raise(lua, "script aborted: a PostgreSQL error is pending");
    }
    let argv = match convert::lua_argv(&args) {
        Ok(argv) => argv,
        Err(msg) => {
            let t = Value::Table(convert::error_table(lua, msg.as_bytes())?);
            return Ok(if raise_error { Outcome::Raise(t) } else { Outcome::Return(vec![t]) });
        }
    };
    // SAFETY: `ctx` is the running command's context; `run_script` set it
    // and clears it before that borrow ends, and the script runs on this
    // thread only, inside that call.
    let ctx: &mut Ctx = unsafe { &mut *ctx };
    ctx.session.proto = if resp == 3 { Protocol::Resp3 } else { Protocol::Resp2 };
    let reply = crate::cmd::dispatch(ctx, &argv);
    let value = convert::reply_to_lua(lua, &reply, resp)?;
    if raise_error && matches!(reply, Frame::Error(_)) {
        return Ok(Outcome::Raise(value));
    }
    returning(value)
}

/// Run by `cmd::dispatch` for a command a script calls: Redis's
/// `scriptCall` checks, once the command is known. Marks the script dirty
/// when the command writes.
pub fn check_script_command(spec: &crate::cmd::CommandSpec) -> Result<(), crate::error::CmdError> {
    use crate::error::CmdError;
    if spec.has_flag("noscript") {
        return Err(CmdError::Static("ERR This Redis command is not allowed from script"));
    }
    let writes = spec.has_flag("write");
    RUN.with(|r| {
        let mut r = r.borrow_mut();
        let Some(run) = r.as_mut() else { return Ok(()) };
        if run.read_only && (writes || spec.has_flag("may_replicate")) {
            return Err(CmdError::Static("ERR Write commands are not allowed from read-only scripts."));
        }
        if writes {
            run.wrote = true;
        }
        Ok(())
    })
}

fn redis_call(lua: &Lua, args: Vec<Value>) -> mlua::Result<Outcome> {
    redis_command(lua, args, true)
}

fn redis_pcall(lua: &Lua, args: Vec<Value>) -> mlua::Result<Outcome> {
    redis_command(lua, args, false)
}

fn in_script() -> bool {
    RUN.with(|r| r.borrow().is_some())
}

fn redis_setresp(lua: &Lua, args: Vec<Value>) -> mlua::Result<Outcome> {
    if !in_script() {
        return raise(lua, "redis.setresp can only be called inside a script invocation");
    }
    if args.len() != 1 {
        return raise(lua, "redis.setresp() requires one argument.");
    }
    let resp = lua_number(lua, &args[0])? as i32;
    if resp != 2 && resp != 3 {
        return raise(lua, "RESP version must be 2 or 3.");
    }
    RUN.with(|r| {
        if let Some(run) = r.borrow_mut().as_mut() {
            run.resp = resp as u8;
        }
    });
    Ok(Outcome::Return(Vec::new()))
}

/// `lua_tonumber`: numbers, and strings that read as numbers; else 0.
fn lua_number(lua: &Lua, v: &Value) -> mlua::Result<f64> {
    Ok(match v {
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        Value::String(_) => lua.coerce_number(v.clone())?.unwrap_or(0.0),
        _ => 0.0,
    })
}

fn redis_set_repl(lua: &Lua, args: Vec<Value>) -> mlua::Result<Outcome> {
    if !in_script() {
        return raise(lua, "redis.set_repl can only be called inside a script invocation");
    }
    if args.len() != 1 {
        return raise(lua, "redis.set_repl() requires two arguments.");
    }
    let flags = lua_number(lua, &args[0])? as i32;
    if flags & !3 != 0 {
        return raise(lua, "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.");
    }
    // Accepted: the WAL replicates whatever the transaction commits.
    Ok(Outcome::Return(Vec::new()))
}

fn redis_log(lua: &Lua, args: Vec<Value>) -> mlua::Result<Outcome> {
    if args.len() < 2 {
        return raise(lua, "redis.log() requires two arguments or more.");
    }
    if !matches!(args[0], Value::Integer(_) | Value::Number(_)) && lua.coerce_number(args[0].clone())?.is_none() {
        return raise(lua, "First argument must be a number (log level).");
    }
    let level = lua_number(lua, &args[0])? as i32;
    if !(0..=3).contains(&level) {
        return raise(lua, "Invalid debug level.");
    }
    // Redis's default verbosity is notice: debug and verbose are dropped.
    if level < 2 {
        return Ok(Outcome::Return(Vec::new()));
    }
    let mut parts: Vec<String> = Vec::new();
    for a in &args[1..] {
        if let Some(s) = lua.coerce_string(a.clone())? {
            parts.push(String::from_utf8_lossy(&s.as_bytes()).into_owned());
        }
    }
    let line = parts.join(" ");
    if level == 3 {
        pgrx::warning!("pgkv script: {line}");
    } else {
        pgrx::log!("pgkv script: {line}");
    }
    Ok(Outcome::Return(Vec::new()))
}

pub fn sha1hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

fn redis_sha1hex(lua: &Lua, args: Vec<Value>) -> mlua::Result<Outcome> {
    if args.len() != 1 {
        return raise(lua, "wrong number of arguments");
    }
    let data = match &args[0] {
        Value::String(_) | Value::Integer(_) | Value::Number(_) => lua.coerce_string(args[0].clone())?.map(|s| s.as_bytes().to_vec()).unwrap_or_default(),
        _ => Vec::new(),
    };
    returning(Value::String(lua.create_string(sha1hex(&data))?))
}

fn single_string_arg(args: &[Value]) -> Option<&mlua::String> {
    match args {
        [Value::String(s)] => Some(s),
        _ => None,
    }
}

fn redis_error_reply(lua: &Lua, args: Vec<Value>) -> mlua::Result<Outcome> {
    let Some(s) = single_string_arg(&args) else {
        return returning(Value::Table(convert::error_table(lua, b"wrong number or type of arguments")?));
    };
    let mut buf = s.as_bytes().to_vec();
    if buf.first() != Some(&b'-') {
        buf.insert(0, b'-');
    }
    returning(Value::Table(convert::error_table(lua, &buf)?))
}

fn redis_status_reply(lua: &Lua, args: Vec<Value>) -> mlua::Result<Outcome> {
    let Some(s) = single_string_arg(&args) else {
        return returning(Value::Table(convert::error_table(lua, b"wrong number or type of arguments")?));
    };
    let t = lua.create_table()?;
    t.set("ok", s.clone())?;
    returning(Value::Table(t))
}

fn redis_acl_check_cmd(lua: &Lua, args: Vec<Value>) -> mlua::Result<Outcome> {
    if !in_script() {
        return raise(lua, "redis.acl_check_cmd can only be called inside a script invocation");
    }
    let argv = match convert::lua_argv(&args) {
        Ok(a) => a,
        Err(msg) => return raise(lua, msg),
    };
    // pgkv has one user, allowed everything: any known command passes.
    let known = crate::cmd::table::lookup(&argv[0])
        .map(|base| base.subcommands.is_empty() || argv.len() < 2 || base.subcommand(&argv[1]).is_some())
        .unwrap_or(false);
    if !known {
        return raise(lua, "Invalid command passed to redis.acl_check_cmd()");
    }
    returning(Value::Boolean(true))
}

/// `redis.register_function`, during FUNCTION LOAD only.
fn redis_register_function(lua: &Lua, args: Vec<Value>) -> mlua::Result<Outcome> {
    if LOAD.with(|l| l.borrow().is_none()) {
        return raise(lua, "redis.register_function can only be called on FUNCTION LOAD command");
    }
    let parsed = match args.len() {
        1 => register_named_args(lua, &args[0])?,
        2 => register_positional_args(lua, &args)?,
        _ => Err("wrong number of arguments to redis.register_function"),
    };
    let (name, desc, func, flags) = match parsed {
        Ok(p) => p,
        Err(msg) => return raise(lua, msg),
    };
    if !valid_name(&name) {
        return raise(lua, "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long");
    }
    let dup = LOAD.with(|l| l.borrow().as_ref().is_some_and(|(_, fs)| fs.iter().any(|f| f.name == name)));
    if dup {
        return raise(lua, "Function already exists in the library");
    }
    let key = lua.create_registry_value(func)?;
    LOAD.with(|l| {
        if let Some((_, fs)) = l.borrow_mut().as_mut() {
            fs.push(FunctionInfo { name, desc, flags, func: key });
        }
    });
    Ok(Outcome::Return(Vec::new()))
}

type Registration = Result<(String, Option<Bytes>, Function, u32), &'static str>;

/// `luaGetStringSds`: strings and numbers.
fn string_arg(lua: &Lua, v: &Value) -> mlua::Result<Option<Vec<u8>>> {
    Ok(match v {
        Value::String(_) | Value::Integer(_) | Value::Number(_) => lua.coerce_string(v.clone())?.map(|s| s.as_bytes().to_vec()),
        _ => None,
    })
}

fn register_positional_args(lua: &Lua, args: &[Value]) -> mlua::Result<Registration> {
    let Some(name) = string_arg(lua, &args[0])? else {
        return Ok(Err("first argument to redis.register_function must be a string"));
    };
    let Value::Function(f) = &args[1] else {
        return Ok(Err("second argument to redis.register_function must be a function"));
    };
    Ok(Ok((String::from_utf8_lossy(&name).into_owned(), None, f.clone(), 0)))
}

fn register_named_args(lua: &Lua, arg: &Value) -> mlua::Result<Registration> {
    let Value::Table(t) = arg else {
        return Ok(Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments)."));
    };
    let mut entries: Vec<(Value, Value)> = Vec::new();
    t.for_each::<Value, Value>(|k, v| {
        entries.push((k, v));
        Ok(())
    })?;
    let (mut name, mut desc, mut func, mut flags) = (None, None, None, 0u32);
    for (k, v) in entries {
        let Some(key) = string_arg(lua, &k)? else {
            return Ok(Err("named argument key given to redis.register_function is not a string"));
        };
        let key = String::from_utf8_lossy(&key).to_ascii_lowercase();
        match key.as_str() {
            "function_name" => match string_arg(lua, &v)? {
                Some(n) => name = Some(String::from_utf8_lossy(&n).into_owned()),
                None => return Ok(Err("function_name argument given to redis.register_function must be a string")),
            },
            "description" => match string_arg(lua, &v)? {
                Some(d) => desc = Some(Bytes::from(d)),
                None => return Ok(Err("description argument given to redis.register_function must be a string")),
            },
            "callback" => match v {
                Value::Function(f) => func = Some(f),
                _ => return Ok(Err("callback argument given to redis.register_function must be a function")),
            },
            "flags" => {
                let Value::Table(ft) = v else {
                    return Ok(Err("flags argument to redis.register_function must be a table representing function flags"));
                };
                let mut j = 1;
                loop {
                    let f: Value = ft.get(j)?;
                    if f == Value::Nil {
                        break;
                    }
                    let Some(s) = string_arg(lua, &f)? else { return Ok(Err("unknown flag given")) };
                    let s = String::from_utf8_lossy(&s).to_ascii_lowercase();
                    match FLAG_NAMES.iter().position(|n| *n == s) {
                        Some(i) => flags |= 1 << i,
                        None => return Ok(Err("unknown flag given")),
                    }
                    j += 1;
                }
            }
            _ => return Ok(Err("unknown argument given to redis.register_function")),
        }
    }
    let Some(name) = name else { return Ok(Err("redis.register_function must get a function name argument")) };
    let Some(func) = func else { return Ok(Err("redis.register_function must get a callback argument")) };
    Ok(Ok((name, desc, func, flags)))
}

/// Redis's `functionsVerifyName`: letters, digits and underscores.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// One Lua interpreter with Redis's environment.
struct Core {
    lua: Lua,
    handler: RegistryKey,
    run: Function,
    compile: Function,
}

fn new_lua() -> mlua::Result<Lua> {
    // SAFETY: the standard libraries are opened by glue.c exactly as Redis
    // opens them (with debug, which Redis removes from the globals right
    // after building its error handler).
    let lua = unsafe { Lua::unsafe_new_with(StdLib::NONE, LuaOptions::new()) };
    lua.set_memory_limit(MEMORY_LIMIT)?;
    Ok(lua)
}

fn callbacks(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("call", callback(lua, redis_call)?)?;
    t.set("pcall", callback(lua, redis_pcall)?)?;
    t.set("log", callback(lua, redis_log)?)?;
    t.set("setresp", callback(lua, redis_setresp)?)?;
    t.set("sha1hex", callback(lua, redis_sha1hex)?)?;
    t.set("error_reply", callback(lua, redis_error_reply)?)?;
    t.set("status_reply", callback(lua, redis_status_reply)?)?;
    t.set("set_repl", callback(lua, redis_set_repl)?)?;
    t.set("acl_check_cmd", callback(lua, redis_acl_check_cmd)?)?;
    t.set("register_function", callback(lua, redis_register_function)?)?;
    Ok(t)
}

impl Core {
    fn new(lua: Lua, handler: Function) -> mlua::Result<Core> {
        // SAFETY: glue.c's functions follow the lua_CFunction contract.
        let (run, compile) = unsafe { (lua.create_c_function(pgkv_lua_run)?, lua.create_c_function(pgkv_lua_compile)?) };
        let handler = lua.create_registry_value(handler)?;
        Ok(Core { lua, handler, run, compile })
    }

    /// Compiles a chunk; `Err` is Lua's message.
    fn compile(&self, code: &[u8], chunkname: &str, env: Option<&Table>) -> mlua::Result<Result<Function, Vec<u8>>> {
        let code = self.lua.create_string(code)?;
        let (f, msg): (Value, Value) = match env {
            Some(env) => self.compile.call((code, chunkname, env.clone()))?,
            None => self.compile.call((code, chunkname))?,
        };
        Ok(match f {
            Value::Function(f) => Ok(f),
            _ => Err(match msg {
                Value::String(s) => s.as_bytes().to_vec(),
                _ => Vec::new(),
            }),
        })
    }
}

/// What a script or function run needs to know besides its code.
pub struct RunSpec {
    pub eval: bool,
    /// The SHA (EVAL) or function name, as Redis names it in errors.
    pub name: String,
    pub read_only: bool,
    pub limit_ms: i64,
}

/// Runs `f` for the command `ctx` is running and returns its reply.
/// `args` are KEYS and ARGV: globals for EVAL, arguments for functions.
fn run_script(core: &Core, ctx: &mut Ctx, f: &Function, keys: &[Bytes], argv: &[Bytes], spec: RunSpec, command: &[Bytes]) -> Frame {
    let lua = &core.lua;
    let outcome = || -> mlua::Result<(bool, Value)> {
        let keys_t = lua.create_sequence_from(keys.iter().map(|k| lua.create_string(k)).collect::<mlua::Result<Vec<_>>>()?)?;
        let argv_t = lua.create_sequence_from(argv.iter().map(|a| lua.create_string(a)).collect::<mlua::Result<Vec<_>>>()?)?;
        let handler: Function = lua.registry_value(&core.handler)?;
        if spec.eval {
            // SAFETY: see pgkv_lua_set_global in glue.c.
            let set_global = unsafe { lua.create_c_function(pgkv_lua_set_global)? };
            set_global.call::<()>(("KEYS", keys_t))?;
            set_global.call::<()>(("ARGV", argv_t))?;
            core.run.call((handler, f.clone()))
        } else {
            core.run.call((handler, f.clone(), keys_t, argv_t))
        }
    };
    let saved = (ctx.session.db, ctx.session.proto, ctx.session.in_script);
    let ctx_ptr: *mut Ctx<'static> = (ctx as *mut Ctx).cast();
    RUN.with(|r| {
        *r.borrow_mut() = Some(Running {
            ctx: ctx_ptr,
            eval: spec.eval,
            name: spec.name.clone(),
            argv: command.to_vec(),
            resp: 2,
            read_only: spec.read_only,
            wrote: false,
            start: Instant::now(),
            limit_ms: spec.limit_ms,
            timed_out: false,
            killed: false,
            doomed: None,
        })
    });
    ctx.session.in_script = true;
    let result = outcome();
    let run = RUN.with(|r| r.borrow_mut().take()).expect("set above");
    (ctx.session.db, ctx.session.proto, ctx.session.in_script) = saved;
    if let Some(payload) = run.doomed {
        std::panic::resume_unwind(payload);
    }
    let reply = match result {
        Ok((true, v)) => convert::lua_to_reply(lua, &v, run.resp),
        Ok((false, err)) => convert::script_error(lua, &err, &spec.name),
        Err(e) => Ok(Frame::Error(Bytes::from(crate::error::sanitize(format!("ERR Error running script {}, {e}", spec.name).into_bytes())))),
    };
    reply.unwrap_or_else(|e| Frame::Error(Bytes::from(crate::error::sanitize(format!("ERR {e}").into_bytes()))))
}

/// A script in EVAL's cache.
struct Cached {
    func: Function,
    flags: u32,
}

struct EvalEngine {
    core: Core,
    scripts: std::collections::HashMap<String, Cached>,
}

fn new_eval_engine() -> mlua::Result<EvalEngine> {
    let lua = new_lua()?;
    let fns = callbacks(&lua)?;
    // SAFETY: see glue.c.
    let init = unsafe { lua.create_c_function(pgkv_lua_init_eval)? };
    let handler: Function = init.call(fns)?;
    Ok(EvalEngine { core: Core::new(lua, handler)?, scripts: Default::default() })
}

fn with_eval<R>(f: impl FnOnce(&mut EvalEngine) -> R) -> R {
    EVAL_ENGINE.with(|e| {
        let mut e = e.borrow_mut();
        if e.is_none() {
            *e = Some(new_eval_engine().expect("create the Lua engine"));
        }
        f(e.as_mut().expect("created above"))
    })
}

/// Redis's `evalExtractShebangFlags`: `(flags, shebang length)`.
pub fn shebang_flags(body: &[u8]) -> Result<(u32, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((EVAL_COMPAT, 0));
    }
    let Some(end) = body.iter().position(|&c| c == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let parts = match pgkv_resp::request::split_args(&body[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err("Invalid engine in script shebang".into()),
    };
    if parts[0] != b"#!lua" {
        return Err(format!("Unexpected engine in script shebang: {}", String::from_utf8_lossy(&parts[0])));
    }
    let mut flags = 0;
    for part in &parts[1..] {
        let Some(list) = part.strip_prefix(b"flags=") else {
            return Err(format!("Unknown lua shebang option: {}", String::from_utf8_lossy(part)));
        };
        // sdssplitlen of an empty string yields no element.
        if list.is_empty() {
            continue;
        }
        for flag in list.split(|&c| c == b',') {
            match FLAG_NAMES.iter().position(|n| n.as_bytes() == flag) {
                Some(i) => flags |= 1 << i,
                None => return Err(format!("Unexpected flag in script shebang: {}", String::from_utf8_lossy(flag))),
            }
        }
    }
    Ok((flags, end))
}

/// Whether EVAL's cache on this thread holds `sha`.
pub fn script_cached(sha: &str) -> bool {
    with_eval(|e| e.scripts.contains_key(sha))
}

/// Compiles `body` into EVAL's cache (SCRIPT LOAD, EVAL). `Err` is the
/// error reply text.
pub fn script_compile(sha: &str, body: &[u8]) -> Result<(), String> {
    with_eval(|e| {
        if e.scripts.contains_key(sha) {
            return Ok(());
        }
        let (flags, shebang_len) = shebang_flags(body)?;
        match e.core.compile(&body[shebang_len..], "@user_script", None) {
            Ok(Ok(func)) => {
                e.scripts.insert(sha.to_string(), Cached { func, flags });
                Ok(())
            }
            Ok(Err(msg)) => Err(format!("Error compiling script (new function): {}", String::from_utf8_lossy(&msg))),
            Err(err) => Err(format!("Error compiling script (new function): {err}")),
        }
    })
}

/// The flags of a cached script.
pub fn script_flags(sha: &str) -> Option<u32> {
    with_eval(|e| e.scripts.get(sha).map(|c| c.flags))
}

/// SCRIPT FLUSH: forgets every compiled script.
pub fn script_flush() {
    EVAL_ENGINE.with(|e| *e.borrow_mut() = None);
}

/// Runs a cached script.
pub fn script_run(ctx: &mut Ctx, sha: &str, keys: &[Bytes], argv: &[Bytes], spec: RunSpec, command: &[Bytes]) -> Frame {
    with_eval(|e| {
        let func = e.scripts.get(sha).expect("script_compile ran first").func.clone();
        run_script(&e.core, ctx, &func, keys, argv, spec, command)
    })
}

/// A function a library registered.
pub struct FunctionInfo {
    pub name: String,
    pub desc: Option<Bytes>,
    pub flags: u32,
    func: RegistryKey,
}

pub struct Library {
    pub name: String,
    /// The whole FUNCTION LOAD payload, shebang included.
    pub code: Bytes,
    pub functions: Vec<FunctionInfo>,
}

/// The FUNCTION engine: one interpreter and the libraries loaded into it,
/// mirroring `kv.libraries` as of `version`.
pub struct Functions {
    core: Core,
    library_api: RegistryKey,
    globals: RegistryKey,
    meta: RegistryKey,
    real_globals: RegistryKey,
    set_index: Function,
    pub version: Option<i64>,
    pub libraries: std::collections::BTreeMap<String, Library>,
}

fn new_functions() -> mlua::Result<Functions> {
    let lua = new_lua()?;
    let fns = callbacks(&lua)?;
    // SAFETY: see glue.c.
    let (init, set_index) = unsafe { (lua.create_c_function(pgkv_lua_init_functions)?, lua.create_c_function(pgkv_lua_set_index)?) };
    let (handler, library_api, globals, meta, real_globals): (Function, Table, Table, Table, Table) = init.call(fns)?;
    let library_api = lua.create_registry_value(library_api)?;
    let globals = lua.create_registry_value(globals)?;
    let meta = lua.create_registry_value(meta)?;
    let real_globals = lua.create_registry_value(real_globals)?;
    Ok(Functions { core: Core::new(lua, handler)?, library_api, globals, meta, real_globals, set_index, version: None, libraries: Default::default() })
}

/// Redis's `functionExtractLibMetaData`: (engine, name, code after the shebang line).
pub fn library_metadata(payload: &[u8]) -> Result<(String, String, &[u8]), String> {
    if !payload.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = payload.iter().position(|&c| c == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let parts = match pgkv_resp::request::split_args(&payload[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err("Invalid library metadata".into()),
    };
    let engine = String::from_utf8_lossy(&parts[0][2..]).into_owned();
    let mut name = None;
    for part in &parts[1..] {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err("Invalid metadata value, name argument was given multiple times".into());
            }
            name = Some(String::from_utf8_lossy(&part[5..]).into_owned());
            continue;
        }
        return Err(format!("Invalid metadata value given: {}", String::from_utf8_lossy(part)));
    }
    let Some(name) = name else { return Err("Library name was not given".into()) };
    Ok((engine, name, &payload[end..]))
}

impl Functions {
    /// Compiles and runs a library's code, collecting what it registers
    /// (Redis's `luaEngineCreate`). `Err` is the error reply text.
    fn create(&self, code: &[u8]) -> Result<Vec<FunctionInfo>, String> {
        let lua = &self.core.lua;
        let attempt = || -> mlua::Result<Result<Vec<FunctionInfo>, String>> {
            let meta: Table = lua.registry_value(&self.meta)?;
            let globals: Table = lua.registry_value(&self.globals)?;
            let api: Table = lua.registry_value(&self.library_api)?;
            let real: Table = lua.registry_value(&self.real_globals)?;
            self.set_index.call::<()>((meta.clone(), api))?;
            let compiled = self.core.compile(code, "@user_function", Some(&globals));
            let result = match compiled {
                Ok(Ok(chunk)) => {
                    LOAD.with(|l| *l.borrow_mut() = Some((Instant::now(), Vec::new())));
                    let ran: mlua::Result<(bool, Value)> = self.core.run.call((Value::Nil, chunk));
                    let registered = LOAD.with(|l| l.borrow_mut().take()).map(|(_, f)| f).unwrap_or_default();
                    match ran {
                        Ok((true, _)) => Ok(registered),
                        Ok((false, err)) => {
                            let msg = match &err {
                                Value::Table(t) => convert::error_info(lua, t)?.msg.unwrap_or_default(),
                                Value::String(s) => [b"ERR ".as_slice(), &s.as_bytes()].concat(),
                                _ => Vec::new(),
                            };
                            Err(format!("Error registering functions: {}", String::from_utf8_lossy(&msg)))
                        }
                        Err(e) => Err(format!("Error registering functions: {e}")),
                    }
                }
                Ok(Err(msg)) => Err(format!("Error compiling function: {}", String::from_utf8_lossy(&msg))),
                Err(e) => Err(format!("Error compiling function: {e}")),
            };
            self.set_index.call::<()>((meta, real))?;
            Ok(result)
        };
        attempt().unwrap_or_else(|e| Err(e.to_string()))
    }

    /// Loads a library payload into `self` (FUNCTION LOAD, RESTORE, a
    /// reload from kv.libraries): Redis's `functionsCreateWithLibraryCtx`.
    /// Returns the library name.
    pub fn load(&mut self, payload: &[u8], replace: bool) -> Result<String, String> {
        let (engine, name, code) = library_metadata(payload)?;
        if !valid_name(&name) {
            return Err("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
        }
        if !engine.eq_ignore_ascii_case("lua") {
            return Err(format!("Engine '{engine}' not found"));
        }
        if self.libraries.contains_key(&name) && !replace {
            return Err(format!("Library '{name}' already exists"));
        }
        let functions = self.create(code)?;
        if functions.is_empty() {
            return Err("No functions registered".into());
        }
        for f in &functions {
            let taken = self.libraries.values().any(|l| l.name != name && l.functions.iter().any(|g| g.name == f.name));
            if taken {
                return Err(format!("Function {} already exists", f.name));
            }
        }
        self.libraries.insert(name.clone(), Library { name: name.clone(), code: Bytes::copy_from_slice(payload), functions });
        Ok(name)
    }

    /// The function `name` and its library.
    pub fn function(&self, name: &str) -> Option<&FunctionInfo> {
        self.libraries.values().flat_map(|l| l.functions.iter()).find(|f| f.name == name)
    }

    pub fn run(&self, ctx: &mut Ctx, name: &str, keys: &[Bytes], argv: &[Bytes], spec: RunSpec, command: &[Bytes]) -> Frame {
        let Some(fi) = self.function(name) else { return Frame::Error(Bytes::from_static(b"ERR Function not found")) };
        match self.core.lua.registry_value::<Function>(&fi.func) {
            Ok(f) => run_script(&self.core, ctx, &f, keys, argv, spec, command),
            Err(e) => Frame::Error(Bytes::from(format!("ERR {e}"))),
        }
    }
}

/// The FUNCTION engine of this thread, created empty on first use.
pub fn with_functions<R>(f: impl FnOnce(&mut Functions) -> R) -> R {
    FUNCTIONS.with(|e| {
        let mut e = e.borrow_mut();
        if e.is_none() {
            *e = Some(new_functions().expect("create the Lua engine"));
        }
        f(e.as_mut().expect("created above"))
    })
}

/// Replaces the FUNCTION engine with an empty one (FUNCTION FLUSH, or
/// before reloading kv.libraries).
pub fn reset_functions() -> Functions {
    new_functions().expect("create the Lua engine")
}

/// Installs a FUNCTION engine built by the caller.
pub fn install_functions(f: Functions) {
    FUNCTIONS.with(|e| *e.borrow_mut() = Some(f));
}
