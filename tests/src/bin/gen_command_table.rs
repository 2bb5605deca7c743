//! Regenerates `src/cmd/redis_commands.resp`: the metadata of every Redis
//! 7.0 command (COMMAND INFO and COMMAND DOCS, as RESP3) read from the
//! reference redis-server. pgkv's command table takes arity, flags, key specs
//! and docs from it, the way Redis builds commands.c from its JSON specs, so
//! COMMAND INFO/DOCS stay byte-identical to the server pgkv follows.
//!
//!     cargo run -p pgkv-tests --bin gen_command_table

use pgkv_tests::{repo_root, RedisServer};

fn main() {
    let server = RedisServer::start();
    let mut c = server.raw();
    c.call(&["HELLO", "3"]);
    let version = c.call(&["INFO", "server"]);
    let text = String::from_utf8_lossy(&version);
    assert!(text.contains("redis_version:7.0."), "the reference must be Redis 7.0, got:\n{text}");
    let info = c.call(&["COMMAND", "INFO"]);
    let docs = c.call(&["COMMAND", "DOCS"]);
    let mut out = Vec::new();
    out.extend_from_slice(&info);
    out.extend_from_slice(&docs);
    let path = repo_root().join("src/cmd/redis_commands.resp");
    std::fs::write(&path, out).expect("write the table");
    println!("wrote {} ({} bytes)", path.display(), info.len() + docs.len());
}
