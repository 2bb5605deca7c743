//! Configuration: GUCs under `pgkv.`. Defined in `_PG_init`, read by the
//! worker at start and again after SIGHUP.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

pub static PORT: GucSetting<i32> = GucSetting::<i32>::new(6379);
pub static LISTEN_ADDRESSES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"127.0.0.1"));
pub static DATABASE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"postgres"));
pub static WORKERS: GucSetting<i32> = GucSetting::<i32>::new(1);
pub static PASSWORD: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c""));
pub static AUTH: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"password"));
pub static LOCK_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(1000);
pub static SQL_DB: GucSetting<i32> = GucSetting::<i32>::new(0);
pub static DISABLED_COMMANDS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c""));
pub static MAXCLIENTS: GucSetting<i32> = GucSetting::<i32>::new(10000);
pub static TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(0);
pub static PROTECTED_MODE: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static QUERY_BUFFER_LIMIT_KB: GucSetting<i32> = GucSetting::<i32>::new(1024 * 1024);
pub static OUTPUT_LIMIT_KB: GucSetting<i32> = GucSetting::<i32>::new(0);
pub static PUBSUB_OUTPUT_LIMIT_KB: GucSetting<i32> = GucSetting::<i32>::new(32 * 1024);
pub static PUBSUB_OUTPUT_SOFT_LIMIT_KB: GucSetting<i32> = GucSetting::<i32>::new(8 * 1024);
pub static PUBSUB_OUTPUT_SOFT_SECONDS: GucSetting<i32> = GucSetting::<i32>::new(60);
pub static ROW_LOCATION_CACHE_KB: GucSetting<i32> = GucSetting::<i32>::new(16 * 1024);
pub static PROTO_MAX_BULK_LEN: GucSetting<i32> = GucSetting::<i32>::new(512 * 1024 * 1024);

pub fn init() {
    GucRegistry::define_int_guc(
        c"pgkv.row_location_cache",
        c"Memory each process (a pgkv worker, a session calling the kv functions) uses to remember where the rows of keys and collection members are, so that a lookup can skip the index.",
        c"16 bytes per row; 0 turns it off.",
        &ROW_LOCATION_CACHE_KB,
        0,
        i32::MAX / 1024,
        GucContext::Sighup,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"pgkv.client_query_buffer_limit",
        c"Unparsed input past which a client is disconnected (Redis's client-query-buffer-limit).",
        c"",
        &QUERY_BUFFER_LIMIT_KB,
        1024,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"pgkv.output_limit",
        c"Unsent replies after which a normal client is disconnected (Redis's client-output-buffer-limit normal); 0 means none.",
        c"Without a limit the worker stops reading a client whose unsent replies pass 64MB, so memory stays bounded either way.",
        &OUTPUT_LIMIT_KB,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"pgkv.pubsub_output_limit",
        c"Unsent messages after which a subscriber is disconnected (the hard limit of Redis's client-output-buffer-limit pubsub).",
        c"0 means none.",
        &PUBSUB_OUTPUT_LIMIT_KB,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"pgkv.pubsub_output_soft_limit",
        c"Unsent messages a subscriber may keep for at most pgkv.pubsub_output_soft_seconds (the soft limit of client-output-buffer-limit pubsub).",
        c"0 means none.",
        &PUBSUB_OUTPUT_SOFT_LIMIT_KB,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"pgkv.pubsub_output_soft_seconds",
        c"How long a subscriber may stay over pgkv.pubsub_output_soft_limit.",
        c"",
        &PUBSUB_OUTPUT_SOFT_SECONDS,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_string_guc(
        c"pgkv.auth",
        c"How RESP clients authenticate: 'password' (pgkv.password, Redis's requirepass) or 'postgres'.",
        c"With 'postgres', AUTH <role> <password> checks the password of a LOGIN role that is a member of pgkv_client, and the client's commands run as that role.",
        &AUTH,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pgkv.port",
        c"TCP port the RESP server listens on.",
        c"Changing it takes effect on reload: the workers rebind.",
        &PORT,
        1,
        65535,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pgkv.listen_addresses",
        c"Comma-separated addresses the RESP server binds to.",
        c"Defaults to 127.0.0.1. Use 0.0.0.0 or :: to listen on every interface. Takes effect on reload.",
        &LISTEN_ADDRESSES,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pgkv.database",
        c"Database whose kv schema the RESP workers serve.",
        c"The workers wait until CREATE EXTENSION pgkv has run in it.",
        &DATABASE,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pgkv.workers",
        c"Number of RESP background workers.",
        c"Each binds the port with SO_REUSEPORT; the kernel spreads connections over them.",
        &WORKERS,
        0,
        64,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pgkv.password",
        c"Password RESP clients must give with AUTH (Redis's requirepass).",
        c"Empty means no authentication, as Redis without requirepass.",
        &PASSWORD,
        GucContext::Sighup,
        GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
    );
    GucRegistry::define_int_guc(
        c"pgkv.lock_timeout",
        c"lock_timeout of the workers' transactions, in milliseconds.",
        c"Bounds how long a SQL session holding a key's row lock can stall a worker; the waiting command fails alone.",
        &LOCK_TIMEOUT_MS,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    init_limits();
    GucRegistry::define_int_guc(
        c"pgkv.sql_db",
        c"Redis database number (0-15) that the kv.* SQL functions use.",
        c"The SQL equivalent of SELECT for the calling session.",
        &SQL_DB,
        0,
        (crate::DATABASES - 1) as i32,
        GucContext::Userset,
        GucFlags::default(),
    );
}

/// Security and limit settings (the rest of `init`).
fn init_limits() {
    GucRegistry::define_string_guc(
        c"pgkv.disabled_commands",
        c"Comma-separated commands RESP clients may not run.",
        c"A disabled command answers as an unknown one, e.g. 'FLUSHALL,FLUSHDB,KEYS'. SQL callers are governed by GRANTs instead.",
        &DISABLED_COMMANDS,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pgkv.maxclients",
        c"Most RESP clients a worker serves at once (Redis's maxclients).",
        c"A client past the limit is answered -ERR max number of clients reached and disconnected.",
        &MAXCLIENTS,
        1,
        1_000_000,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pgkv.timeout",
        c"Seconds after which an idle RESP client is disconnected; 0 never (Redis's timeout).",
        c"",
        &TIMEOUT,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_bool_guc(
        c"pgkv.protected_mode",
        c"Refuse non-loopback clients while no password is set (Redis's protected-mode).",
        c"",
        &PROTECTED_MODE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pgkv.proto_max_bulk_len",
        c"Largest bulk string a RESP request may carry, in bytes (Redis's proto-max-bulk-len).",
        c"",
        &PROTO_MAX_BULK_LEN,
        1024 * 1024,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_BYTE,
    );
}

/// Whether RESP clients may run `name` (any case).
pub fn command_disabled(name: &[u8]) -> bool {
    // Read in place (`get` copies the string, and every RESP command asks).
    // SAFETY: the setting's current value, owned by guc.c, which replaces
    // it only while this thread processes a configuration reload.
    let raw = unsafe { *DISABLED_COMMANDS.as_ptr() };
    if raw.is_null() {
        return false;
    }
    let list = unsafe { std::ffi::CStr::from_ptr(raw) };
    list.to_bytes().split(|&c| c == b',').any(|w| {
        let w = w.trim_ascii();
        !w.is_empty() && w.eq_ignore_ascii_case(name)
    })
}

fn string(setting: &GucSetting<Option<CString>>) -> String {
    setting.get().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The configured password, or `None` when AUTH is not required.
pub fn password() -> Option<String> {
    Some(string(&PASSWORD)).filter(|p| !p.is_empty())
}

/// `pgkv.auth = 'postgres'`: clients log in as PostgreSQL roles.
pub fn auth_postgres() -> bool {
    string(&AUTH).trim().eq_ignore_ascii_case("postgres")
}

/// Whether a new client must AUTH before anything else.
pub fn auth_required() -> bool {
    password().is_some() || auth_postgres()
}

pub fn database() -> String {
    string(&DATABASE)
}

pub fn listen_addresses() -> Vec<String> {
    string(&LISTEN_ADDRESSES).split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

pub fn port() -> u16 {
    PORT.get() as u16
}

pub fn workers() -> i32 {
    WORKERS.get()
}

/// The current value of any Postgres setting, as SHOW prints it.
pub fn show_setting(name: &std::ffi::CStr) -> String {
    // SAFETY: GetConfigOption returns a pointer into GUC storage, valid until the next change.
    unsafe {
        let p = pgrx::pg_sys::GetConfigOption(name.as_ptr(), true, false);
        if p.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

pub fn config_file() -> String {
    show_setting(c"config_file")
}

pub fn server_version() -> String {
    show_setting(c"server_version")
}

/// Sets a Postgres setting for this session. Inside a transaction the
/// change is undone if the transaction aborts.
pub fn set_session(name: &std::ffi::CStr, value: &str) {
    let value = std::ffi::CString::new(value).expect("no NUL in a setting");
    // SAFETY: both strings are NUL-terminated and outlive the call;
    // SetConfigOption copies them.
    unsafe {
        pgrx::pg_sys::SetConfigOption(
            name.as_ptr(),
            value.as_ptr(),
            pgrx::pg_sys::GucContext::PGC_USERSET,
            pgrx::pg_sys::GucSource::PGC_S_SESSION,
        );
    }
}
