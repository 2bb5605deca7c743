//! Lua scripting and Redis 7 functions: differential tests against
//! redis-server 7.0 (RESP2 and RESP3, database 11), concurrency of real
//! scripts, the busy state and SCRIPT KILL, Postgres errors inside
//! scripts, and the script cache across workers and restarts.

use pgkv_tests::{shared, shared_redis_port, show, spawn_clients, Differential, PgCluster, RawClient, RedisServer};
use std::time::{Duration, Instant};

const DB: u8 = 11;

fn eval(d: &mut Differential, script: &str, keys: &[&str], args: &[&str]) {
    let numkeys = keys.len().to_string();
    let mut argv = vec!["EVAL", script, numkeys.as_str()];
    argv.extend_from_slice(keys);
    argv.extend_from_slice(args);
    d.check(&argv);
}

#[test]
fn eval_converts_lua_values_to_replies_as_redis() {
    Differential::each_protocol(DB, |d| {
        for script in [
            "return 1",
            "return 3.99",
            "return -3.7",
            "return 1e20",
            "return 'hello'",
            "return ''",
            "return true",
            "return false",
            "return nil",
            "return {1, 2, {3, 'a', {}}, 'x'}",
            "return {1, 2, nil, 4}",
            "return {1, false, 3}",
            "return {true, 2.5}",
            "return {ok = 'fine'}",
            "return {ok = 'line\\r\\nbreak'}",
            "return {err = 'My Error'}",
            "return {err = 'line\\nbreak'}",
            "return {err = 'x', ok = 'y'}",
            "return redis.status_reply('STATUS')",
            "return redis.error_reply('CODE some message')",
            "return redis.error_reply('-CODE2 other')",
            "return redis.error_reply('x')",
            "return redis.error_reply(1)",
            "return redis.status_reply()",
            "return {double = 3.5}",
            "return {double = 1/3}",
            "return {big_number = '123456789012345678901234567890'}",
            "return {map = {a = 1}}",
            "return {map = {a = 1, b = {2, 3}, c = 'x'}}",
            "return {set = {a = true}}",
            "return {set = {a = true, b = true, c = true}}",
            "return {verbatim_string = {format = 'txt', string = 'hello'}}",
            "return {map = {}}",
            "return print",
            "return coroutine.create(function() end) ~= nil",
            "redis.setresp(3) return true",
            "redis.setresp(3) return false",
            "redis.setresp(3) return {true, false, nil, 1}",
            "return {1, {ok = 'nested'}, {err = 'NESTED error'}}",
            "return redis.REDIS_VERSION",
            "return redis.REDIS_VERSION_NUM",
            "return {redis.breakpoint(), redis.debug('x'), redis.replicate_commands()}",
            "return {redis.sha1hex(''), redis.sha1hex('abc'), redis.sha1hex(42)}",
            "return tostring(redis.set_repl(redis.REPL_ALL))",
            "return redis.acl_check_cmd('get', 'k')",
            "return redis.acl_check_cmd('config', 'get')",
            "return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING, redis.REPL_NONE, redis.REPL_AOF, redis.REPL_REPLICA, redis.REPL_SLAVE}",
            "redis.log(redis.LOG_WARNING, 'pgkv scripting test', 1, 'x') return 1",
            "return type(math.random())",
            "return _VERSION",
            "local t = {} for k in pairs(_G) do t[#t + 1] = k end table.sort(t) return t",
            "local t = {} for k in pairs(redis) do t[#t + 1] = k end table.sort(t) return t",
            "local t = {} for k in pairs(string) do t[#t + 1] = k end table.sort(t) return t",
        ] {
            eval(d, script, &[], &[]);
        }
        eval(d, "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2], #KEYS, #ARGV}", &["k1", "k2"], &["a1", "a2"]);
        eval(d, "return {#KEYS, #ARGV, type(KEYS), ARGV[3]}", &[], &["x", "", "\x00\u{ff}"]);
    });
}

#[test]
fn redis_call_converts_replies_to_lua_as_redis() {
    Differential::each_protocol(DB, |d| {
        d.check(&["DEL", "s", "h", "z", "l", "set", "n", "f", "num"]);
        d.check(&["HSET", "h", "f1", "v1", "f2", "v2", "f3", "v3"]);
        d.check(&["ZADD", "z", "1.5", "a", "2", "b"]);
        d.check(&["RPUSH", "l", "x", "y", "z"]);
        d.check(&["SADD", "set", "3", "1", "2"]);
        for script in [
            "return redis.call('set', KEYS[1], 'v')",
            "return redis.call('get', KEYS[1])",
            "return redis.call('get', 'missing')",
            "return type(redis.call('get', 'missing'))",
            "return redis.call('incr', 'n')",
            "return redis.call('incrbyfloat', 'f', '1.5')",
            "return redis.call('hgetall', 'h')",
            "return redis.call('hget', 'h', 'nofield')",
            "return redis.call('zrange', 'z', 0, -1, 'withscores')",
            "return redis.call('zscore', 'z', 'a')",
            "return redis.call('lrange', 'l', 0, -1)",
            "return redis.call('smembers', 'set')",
            "return redis.call('exists', 'h', 'nope')",
            "return redis.call('set', 'num', 3.5)",
            "return redis.call('set', 'num', 0.1)",
            "return redis.call('get', 'num')",
            "redis.call('set', 'num', 1e20) return redis.call('get', 'num')",
            "redis.call('set', 'num', 2^53 + 1) return redis.call('get', 'num')",
            "return redis.call('type', 'h')",
            "return redis.call('ping')",
            "return redis.pcall('incr', 'h')",
            "local r = redis.pcall('incr', 'h') return {type(r), r.err, tostring(r.ignore_error_stats_update)}",
            "local ok, e = pcall(redis.call, 'incr', 'h') return {tostring(ok), e}",
            "local ok, e = pcall(error, {err = 'X y'}) return {tostring(ok), e}",
            "local ok, e = pcall(error, 'plain') return {tostring(ok), e}",
            "redis.setresp(3) return redis.call('hgetall', 'h')",
            "redis.setresp(3) return redis.call('smembers', 'set')",
            "redis.setresp(3) return redis.call('zscore', 'z', 'a')",
            "redis.setresp(3) return redis.call('zrange', 'z', 0, -1, 'withscores')",
            "redis.setresp(3) return type(redis.call('get', 'missing'))",
            "redis.setresp(3) return redis.call('get', 'missing')",
            "redis.setresp(3) local r = redis.call('zscore', 'z', 'b') return {type(r), r.double}",
            "redis.setresp(3) local r = redis.call('hgetall', 'h') return r.map.f2",
            "redis.setresp(3) redis.setresp(2) return redis.call('hgetall', 'h')",
            "redis.call('select', 0) return redis.call('exists', 'h')",
        ] {
            eval(d, script, &["s"], &[]);
        }
        // SELECT inside a script leaves the caller's database alone.
        d.check(&["EXISTS", "h"]);
    });
}

#[test]
fn script_errors_match_redis() {
    Differential::each_protocol(DB, |d| {
        d.check(&["SET", "str", "x"]);
        d.check(&["EVAL"]);
        d.check(&["EVAL", "return 1"]);
        d.check(&["EVAL", "return 1", "x"]);
        d.check(&["EVAL", "return 1", "-1"]);
        d.check(&["EVAL", "return 1", "2", "k"]);
        d.check(&["EVAL_RO", "return 1", "1"]);
        for script in [
            "return 1 +",
            "return 'unfinished",
            "error('boom')",
            "error('boom', 0)",
            "error({err = 'CUSTOM failure'})",
            "error({err = 'multi\\nline'})",
            "error()",
            "error(42)",
            "local t = nil\nreturn t.x",
            "x = 5",
            "return y",
            "string.foo = 1",
            "redis.call = nil",
            "_G.x = 1",
            "rawset(_G, 'x', 1)",
            "setmetatable(_G, nil)",
            "return os.time()",
            "return io",
            "return loadfile",
            "return dofile",
            "return debug",
            "return newproxy",
            "return setfenv",
            "return redis.call('incr', 'str')",
            "return redis.call('nosuchcommand')",
            "return redis.call('get')",
            "return redis.call('config')",
            "return redis.call('config', 'nosuch')",
            "return redis.call('eval', 'return 1', 0)",
            "return redis.call('script', 'load', 'return 1')",
            "return redis.call('function', 'flush')",
            "return redis.call('hello')",
            "return redis.call()",
            "return redis.call({})",
            "return redis.call('get', true)",
            "return redis.pcall()",
            "return redis.pcall('nosuchcommand')",
            "redis.setresp(4)",
            "redis.setresp()",
            "redis.set_repl(99)",
            "redis.set_repl()",
            "redis.log()",
            "redis.log('x', 'y')",
            "redis.log(9, 'y')",
            "return redis.sha1hex()",
            "return redis.acl_check_cmd('nosuch')",
            "return redis.acl_check_cmd()",
            "redis.register_function('f', function() end)",
            "local x = 1\nlocal y = 2\nreturn redis.call('incr', 'str')",
            "#!lua\nreturn redis.call('set', 'a', 'b')",
            "#!lua flags=no-writes\nreturn redis.call('set', 'a', 'b')",
            "#!lua flags=no-writes,allow-stale\nreturn redis.call('get', 'a')",
            "#!lua flags=bogus\nreturn 1",
            "#!lua name=x\nreturn 1",
            "#!python\nreturn 1",
            "#!lua",
            "#!lua flags=\nreturn 1",
        ] {
            eval(d, script, &[], &[]);
        }
        for script in [
            "return redis.call('set', 'a', 'b')",
            "return redis.call('get', 'a')",
            "return redis.pcall('del', 'a')",
            "#!lua\nreturn 1",
            "#!lua flags=no-writes\nreturn redis.call('get', 'a')",
        ] {
            d.check(&["EVAL_RO", script, "0"]);
        }
    });
}

#[test]
fn evalsha_and_the_script_cache_match_redis() {
    Differential::each_protocol(DB, |d| {
        d.check(&["SCRIPT", "FLUSH"]);
        let body = "return {'cache test', ARGV[1]}";
        let sha = pgkv_tests_sha(body);
        d.check(&["EVALSHA", &sha, "0", "a"]);
        d.check(&["EVALSHA", "short", "0"]);
        d.check(&["EVALSHA_RO", &sha, "0"]);
        d.check(&["SCRIPT", "EXISTS", &sha, "nosuch"]);
        d.check(&["SCRIPT", "LOAD", body]);
        d.check(&["SCRIPT", "EXISTS", &sha, &sha.to_uppercase(), "nosuch"]);
        d.check(&["EVALSHA", &sha, "0", "a"]);
        d.check(&["EVALSHA", &sha.to_uppercase(), "0", "b"]);
        d.check(&["EVALSHA_RO", &sha, "0", "c"]);
        d.check(&["EVALSHA", &sha, "x"]);
        d.check(&["SCRIPT", "LOAD", "return +"]);
        d.check(&["SCRIPT", "LOAD", "#!lua flags=nope\nreturn 1"]);
        d.check(&["SCRIPT", "LOAD"]);
        d.check(&["SCRIPT", "FLUSH", "ASYNC"]);
        d.check(&["SCRIPT", "EXISTS", &sha]);
        d.check(&["EVALSHA", &sha, "0"]);
        // EVAL caches the script too.
        d.check(&["EVAL", body, "0", "z"]);
        d.check(&["SCRIPT", "EXISTS", &sha]);
        d.check(&["EVALSHA", &sha, "0", "y"]);
        d.check(&["SCRIPT", "FLUSH", "SYNC"]);
        d.check(&["SCRIPT", "FLUSH", "bogus"]);
        d.check(&["SCRIPT", "FLUSH", "SYNC", "extra"]);
        d.check(&["SCRIPT", "NOSUCH"]);
        d.check(&["SCRIPT", "KILL"]);
        d.check(&["FUNCTION", "KILL"]);
    });
}

fn pgkv_tests_sha(body: &str) -> String {
    // The reference computes it; any server's SCRIPT LOAD would do.
    let mut r = RawClient::connect(shared_redis_port());
    let reply = r.call(&["SCRIPT", "LOAD", body]);
    r.call(&["SCRIPT", "FLUSH"]);
    let text = String::from_utf8(reply).unwrap();
    text.lines().nth(1).unwrap().to_string()
}

const LIB: &str = "#!lua name=mylib\n\
    local function incr_by(keys, args)\n\
      return redis.call('incrby', keys[1], args[1])\n\
    end\n\
    redis.register_function('my_incr', incr_by)\n";

const LIB2: &str = "#!lua name=mylib2\n\
    redis.register_function{function_name = 'my_get', callback = function(keys) return redis.call('get', keys[1]) end, flags = {'no-writes'}, description = 'reads a key'}\n";

#[test]
fn functions_match_redis() {
    Differential::each_protocol(DB, |d| {
        d.check(&["FUNCTION", "FLUSH"]);
        d.check(&["FUNCTION", "LIST"]);
        d.check(&["FUNCTION", "STATS"]);
        for bad in [
            "return 1",
            "#!lua\nreturn 1",
            "#!lua name=bad-name\nredis.register_function('f', function() end)",
            "#!lua name=x name=y\nreturn 1",
            "#!lua name=x foo=bar\nreturn 1",
            "#!js name=x\nreturn 1",
            "#!lua name=x",
            "#!lua name=x\nreturn 1",
            "#!lua name=x\nreturn +",
            "#!lua name=x\nerror('at load')",
            "#!lua name=x\nredis.call('ping')",
            "#!lua name=x\nlocal s = string.format('%d', 1)",
            "#!lua name=x\nredis.register_function('f')",
            "#!lua name=x\nredis.register_function('f', 'not a function')",
            "#!lua name=x\nredis.register_function({}, function() end)",
            "#!lua name=x\nredis.register_function('f', function() end, 3)",
            "#!lua name=x\nredis.register_function('bad name', function() end)",
            "#!lua name=x\nredis.register_function('f', function() end) redis.register_function('f', function() end)",
            "#!lua name=x\nredis.register_function{function_name = 'f'}",
            "#!lua name=x\nredis.register_function{callback = function() end}",
            "#!lua name=x\nredis.register_function{function_name = 'f', callback = function() end, flags = {'bogus'}}",
            "#!lua name=x\nredis.register_function{function_name = 'f', callback = function() end, flags = 'no-writes'}",
            "#!lua name=x\nredis.register_function{function_name = 'f', callback = function() end, nope = 1}",
            "#!lua name=x\nredis.register_function{function_name = 'f', callback = 'x'}",
            "#!lua name=x\nx = 1",
        ] {
            d.check(&["FUNCTION", "LOAD", bad]);
        }
        d.check(&["FUNCTION", "LOAD", "BOGUS", "code"]);
        d.check(&["FUNCTION", "LOAD", LIB]);
        d.check(&["FUNCTION", "LOAD", LIB]);
        d.check(&["FUNCTION", "LOAD", "REPLACE", LIB]);
        d.check(&["FUNCTION", "LOAD", LIB2]);
        d.check(&["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('my_incr', function() return 1 end)"]);
        d.check(&["FUNCTION", "LOAD", "#!lua name=withflags\nredis.register_function{function_name = 'ro', callback = function(k) return redis.call('set', k[1], 'x') end, flags = {'no-writes', 'ALLOW-STALE'}}"]);
        d.check(&["FUNCTION", "LIST", "LIBRARYNAME", "mylib"]);
        d.check(&["FUNCTION", "LIST", "LIBRARYNAME", "MYLIB2", "WITHCODE"]);
        d.check_unordered(&["FUNCTION", "LIST", "LIBRARYNAME", "MY*", "WITHCODE"]);
        d.check(&["FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "withflags"]);
        d.check(&["FUNCTION", "LIST", "LIBRARYNAME"]);
        d.check(&["FUNCTION", "LIST", "BOGUS"]);
        d.check(&["FUNCTION", "LIST", "WITHCODE", "WITHCODE"]);
        d.check(&["FUNCTION", "STATS"]);
        d.check(&["DEL", "fk"]);
        d.check(&["FCALL", "my_incr", "1", "fk", "5"]);
        d.check(&["FCALL", "my_incr", "1", "fk", "x"]);
        d.check(&["FCALL", "my_get", "1", "fk"]);
        d.check(&["FCALL_RO", "my_get", "1", "fk"]);
        d.check(&["FCALL_RO", "my_incr", "1", "fk", "1"]);
        d.check(&["FCALL_RO", "ro", "1", "fk"]);
        d.check(&["FCALL", "ro", "1", "fk"]);
        d.check(&["FCALL", "nosuch", "0"]);
        d.check(&["FCALL", "my_get", "x"]);
        d.check(&["FCALL", "my_get", "-1"]);
        d.check(&["FCALL", "my_get", "3", "a"]);
        d.check(&["FCALL"]);
        d.check(&["FUNCTION", "DELETE", "nosuch"]);
        d.check(&["FUNCTION", "DELETE", "withflags"]);
        d.check(&["FUNCTION", "FLUSH", "bogus"]);
        d.check(&["FUNCTION", "FLUSH", "SYNC", "extra"]);
        d.check(&["FUNCTION", "RESTORE", "garbage"]);
        d.check(&["FUNCTION", "RESTORE", "garbage", "BOGUS"]);
        d.check(&["FUNCTION", "RESTORE", "garbage", "FLUSH", "extra"]);
        // One library, so collisions name the same one on both servers.
        d.check(&["FUNCTION", "DELETE", "mylib2"]);
        // DUMP and RESTORE, including each server restoring the other's
        // payload (pgkv writes libraries uncompressed; Redis may LZF them).
        let ours = d.pgkv.call(&["FUNCTION", "DUMP"]);
        let theirs = d.redis.call(&["FUNCTION", "DUMP"]);
        let ours = bulk(&ours);
        let theirs = bulk(&theirs);
        for (payload, name) in [(&theirs, "redis's dump"), (&ours, "pgkv's dump")] {
            d.check(&["FUNCTION", "FLUSH", "ASYNC"]);
            let a = d.pgkv.call(&[b"FUNCTION".as_slice(), b"RESTORE", payload]);
            let b = d.redis.call(&[b"FUNCTION".as_slice(), b"RESTORE", payload]);
            assert_eq!(show(&a), show(&b), "restoring {name}");
            d.check(&["FUNCTION", "LIST", "WITHCODE"]);
            d.check(&["FCALL", "my_incr", "1", "fk", "1"]);
            let a = d.pgkv.call(&[b"FUNCTION".as_slice(), b"RESTORE", payload]);
            let b = d.redis.call(&[b"FUNCTION".as_slice(), b"RESTORE", payload]);
            assert_eq!(show(&a), show(&b), "restoring {name} again (APPEND collides)");
            let a = d.pgkv.call(&[b"FUNCTION".as_slice(), b"RESTORE", payload, b"REPLACE"]);
            let b = d.redis.call(&[b"FUNCTION".as_slice(), b"RESTORE", payload, b"REPLACE"]);
            assert_eq!(show(&a), show(&b), "restoring {name} with REPLACE");
        }
        let mut corrupt = ours.clone();
        let n = corrupt.len();
        corrupt[n - 1] ^= 0xff;
        let a = d.pgkv.call(&[b"FUNCTION".as_slice(), b"RESTORE", &corrupt]);
        let b = d.redis.call(&[b"FUNCTION".as_slice(), b"RESTORE", &corrupt]);
        assert_eq!(show(&a), show(&b), "corrupt payload");
        d.check(&["FUNCTION", "LOAD", "#!lua name=errs\nredis.register_function('fails', function(keys, args)\n  local x = 1\n  return redis.call('incr', keys[1])\nend)\nredis.register_function('raises', function() error('oops') end)"]);
        d.check(&["SET", "fstr", "abc"]);
        d.check(&["FCALL", "fails", "1", "fstr"]);
        d.check(&["FCALL", "raises", "0"]);
        d.check(&["FUNCTION", "FLUSH"]);
        d.check(&["FUNCTION", "LIST"]);
        d.check(&["FCALL", "my_incr", "1", "fk", "1"]);
    });
}

fn bulk(reply: &[u8]) -> Vec<u8> {
    let (frame, _) = pgkv_resp::decode(reply).unwrap().unwrap();
    match frame {
        pgkv_resp::Frame::Bulk(b) => b.to_vec(),
        other => panic!("expected a bulk reply, got {other:?}"),
    }
}

#[test]
fn bundled_libraries_match_redis() {
    Differential::each_protocol(DB, |d| {
        for script in [
            "return cjson.encode({1, 2, 3})",
            "return cjson.encode({a = 1})",
            "return cjson.encode({a = {b = {1, 'x', true}}})",
            "return cjson.encode(1.5)",
            "return cjson.encode(0.1)",
            "return cjson.encode('quote\" slash/ tab\\t nul\\0')",
            "return cjson.encode({})",
            "return cjson.encode({[1] = 1, [5] = 5})",
            "return cjson.encode({[1] = 1, [20] = 5})",
            "return cjson.encode(cjson.null)",
            "return cjson.encode({f = function() end})",
            "local t = cjson.decode('{\"a\":[1,2,{\"b\":null}],\"s\":\"x\\\\u00e9\"}') return {t.a[1], t.a[2], tostring(t.a[3].b == cjson.null), t.s}",
            "return cjson.decode('[1, 2.5, \"x\"]')",
            "return cjson.decode('{\"a\": 1')",
            "return cjson.decode('nope')",
            "return cjson.encode(cjson.decode('{\"k\":[1,2,{\"n\":-1.25e3}]}'))",
            "return cmsgpack.pack({1, 2, 3})",
            "return cmsgpack.pack({a = 1})",
            "return cmsgpack.pack(1.5, 'x', -1, 300, 70000, 2^40)",
            "return {cmsgpack.unpack(cmsgpack.pack(1, 'two', {3}))}",
            "local t = cmsgpack.unpack(cmsgpack.pack({a = {b = 'c'}, n = -7})) return {t.a.b, t.n}",
            "return cmsgpack.unpack('\\147\\1\\2\\3')",
            "return {bit.band(0xff, 0x0f), bit.bor(1, 2), bit.bxor(5, 3), bit.bnot(0), bit.lshift(1, 10), bit.rshift(-1, 28), bit.arshift(-256, 4), bit.rol(1, 33), bit.ror(1, 1), bit.tobit(2^32 + 1), bit.tohex(255), bit.tohex(-1, -4), bit.bswap(0x12345678)}",
            "return struct.pack('>I2', 258)",
            "return struct.pack('<i4 h', -2, 7)",
            "return {struct.unpack('<i4', struct.pack('<i4', -123456))}",
            "return {struct.unpack('>Bs', struct.pack('>Bs', 7, 'str'))}",
            "return struct.size('i4h')",
            "return struct.pack('>z', 'zero')",
            "return struct.unpack('>I2', 'x')",
        ] {
            eval(d, script, &[], &[]);
        }
    });
}

/// A Redlock-style lock (SET NX PX, compare-and-delete) guarding a
/// read-modify-write, and a fixed-window rate limiter, from several clients
/// at once: no increment is lost and the limiter admits exactly its limit.
fn locks_and_rate_limits_hold_under_concurrency(c: &PgCluster, prefix: &str, with_lock: bool) {
    const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
    const LIMIT: &str = "local n = redis.call('incr', KEYS[1])\n\
        if n == 1 then redis.call('pexpire', KEYS[1], ARGV[2]) end\n\
        if n > tonumber(ARGV[1]) then return 0 end\n\
        return 1";
    let (threads, rounds, limit) = (4, 25, 30);
    let lock = format!("{prefix}:lock");
    let counter = format!("{prefix}:counter");
    let window = format!("{prefix}:window");
    let keys = (lock.clone(), counter.clone(), window.clone());
    let handles = spawn_clients(&c.redis_url(), threads, move |t, mut r| {
        let (lock, counter, window) = &keys;
        let mut admitted = 0;
        for i in 0..rounds {
            if !with_lock {
                let _: i64 = redis::cmd("EVAL").arg("return redis.call('incr', KEYS[1])").arg(1).arg(&counter).query(&mut r).unwrap();
                let ok: i64 = redis::cmd("EVAL").arg(LIMIT).arg(1).arg(&window).arg(limit).arg(60000).query(&mut r).unwrap();
                admitted += ok;
                continue;
            }
            let token = format!("{t}-{i}");
            loop {
                let got: Option<String> = redis::cmd("SET").arg(&lock).arg(&token).arg("NX").arg("PX").arg(30000).query(&mut r).unwrap();
                if got.is_some() {
                    break;
                }
            }
            let n: Option<i64> = redis::cmd("GET").arg(&counter).query(&mut r).unwrap();
            let _: () = redis::cmd("SET").arg(&counter).arg(n.unwrap_or(0) + 1).query(&mut r).unwrap();
            let wrong: i64 = redis::cmd("EVAL").arg(RELEASE).arg(1).arg(&lock).arg("not-mine").query(&mut r).unwrap();
            assert_eq!(wrong, 0, "another token must not release the lock");
            let released: i64 = redis::cmd("EVAL").arg(RELEASE).arg(1).arg(&lock).arg(&token).query(&mut r).unwrap();
            assert_eq!(released, 1);
            let ok: i64 = redis::cmd("EVAL").arg(LIMIT).arg(1).arg(&window).arg(limit).arg(60000).query(&mut r).unwrap();
            admitted += ok;
        }
        admitted
    });
    let admitted: i64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let mut r = c.redis();
    let total: i64 = redis::cmd("GET").arg(&counter).query(&mut r).unwrap();
    assert_eq!(total, (threads * rounds) as i64, "every locked increment survived");
    assert_eq!(admitted, limit, "the limiter admitted exactly its limit");
    let calls: i64 = redis::cmd("GET").arg(&window).query(&mut r).unwrap();
    assert_eq!(calls, (threads * rounds) as i64);
    let exists: i64 = redis::cmd("EXISTS").arg(&lock).query(&mut r).unwrap();
    assert_eq!(exists, 0, "the last holder released the lock");
}

#[test]
fn lock_and_rate_limiter_scripts_are_atomic_under_concurrency() {
    locks_and_rate_limits_hold_under_concurrency(shared(), "conc1", true);
}

/// Sends PING on fresh connections until one is answered -BUSY: the
/// script passed lua-time-limit. A connection whose PING joined the
/// script's own batch gets no answer until the script ends; it is given
/// up after a while and another one tried.
fn wait_for_busy(port: u16) -> Vec<u8> {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
        let mut buf = [0u8; 512];
        let mut last = Vec::new();
        if let Ok(n) = s.read(&mut buf) {
            if buf[..n].starts_with(b"-BUSY") {
                return buf[..n].to_vec();
            }
            last = buf[..n].to_vec();
        }
        assert!(Instant::now() < deadline, "the script on port {port} never became busy; last reply {}", show(&last));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The same busy-script scenario against one server: what each client saw.
fn busy_scenario(port: u16) -> Vec<Vec<u8>> {
    let mut seen = Vec::new();
    let mut admin = RawClient::connect(port);
    admin.call(&["CONFIG", "SET", "lua-time-limit", "100"]);
    admin.call(&["FUNCTION", "LOAD", "REPLACE", "#!lua name=spin\nredis.register_function('spin', function() while true do end end)\nredis.register_function('spin_write', function(k) redis.call('set', k[1], 'x') while true do end end)"]);
    drop(admin);
    // An EVAL that never ends, killed by SCRIPT KILL.
    let mut runner = RawClient::connect(port);
    runner.send(b"*3\r\n$4\r\nEVAL\r\n$17\r\nwhile true do end\r\n$1\r\n0\r\n");
    let first = std::panic::catch_unwind(|| wait_for_busy(port));
    let first = first.unwrap_or_else(|e| {
        eprintln!("runner got: {}", show(&runner.read_reply()));
        std::panic::resume_unwind(e)
    });
    seen.push(first);
    let mut other = RawClient::connect(port);
    seen.push(other.call(&["GET", "k"]));
    seen.push(other.call(&["FUNCTION", "KILL"]));
    seen.push(other.call(&["FUNCTION", "STATS"]));
    seen.push(other.call(&["NOSUCH"]));
    let mut late = RawClient::connect(port);
    seen.push(late.call(&["SET", "k", "v"]));
    seen.push(late.call(&["SCRIPT", "KILL"]));
    seen.push(runner.read_reply());
    seen.push(runner.call(&["PING"]));
    seen.push(other.call(&["SCRIPT", "KILL"]));
    seen
}

#[test]
fn a_busy_script_answers_busy_and_script_kill_ends_it() {
    let c = PgCluster::start();
    let reference = RedisServer::start();
    eprintln!("pgkv on {}, redis on {}", c.redis_port, reference.port);
    let ours = match std::panic::catch_unwind(|| busy_scenario(c.redis_port)) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{}", c.log());
            std::panic::resume_unwind(e)
        }
    };
    let theirs = busy_scenario(reference.port);
    assert_eq!(ours.iter().map(|r| show(r)).collect::<Vec<_>>(), theirs.iter().map(|r| show(r)).collect::<Vec<_>>());
    assert_eq!(c.raw().call(&["PING"]), b"+PONG\r\n", "the worker serves again");
}

#[test]
fn a_postgres_error_inside_a_script_rolls_it_back_and_the_worker_survives() {
    let c = PgCluster::start();
    let mut r = c.raw();
    assert_eq!(r.call(&["SET", "locked", "v"]), b"+OK\r\n");
    // lock_timeout: a SQL session holds the key's row.
    let mut sql = c.sql();
    let mut tx = sql.transaction().unwrap();
    tx.execute("SELECT 1 FROM kv.keys WHERE db = 0 AND key = 'locked'::bytea FOR UPDATE", &[]).unwrap();
    for script in [
        "redis.call('set', KEYS[1], 'partial') return redis.call('set', KEYS[2], 'w')",
        "redis.call('set', KEYS[1], 'partial') local ok = redis.pcall('set', KEYS[2], 'w') return 'swallowed'",
        "redis.call('set', KEYS[1], 'partial') local ok = pcall(redis.call, 'set', KEYS[2], 'w') while true do end",
    ] {
        let reply = r.call(&["EVAL", script, "2", "other", "locked"]);
        assert!(reply.starts_with(b"-ERR PostgreSQL error: canceling statement due to lock timeout"), "{}", show(&reply));
        assert_eq!(r.call(&["EXISTS", "other"]), b":0\r\n", "the script's first write was rolled back");
    }
    tx.rollback().unwrap();
    assert_eq!(r.call(&["EVAL", "return redis.call('set', KEYS[1], 'w')", "1", "locked"]), b"+OK\r\n");
    assert_eq!(r.call(&["GET", "locked"]), b"$1\r\nw\r\n");
    // A failing trigger.
    c.psql(
        "CREATE FUNCTION public.boom() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.field = 'boom'::bytea THEN RAISE EXCEPTION 'boom trigger'; END IF; RETURN NEW; END $$; \
         CREATE TRIGGER boom BEFORE INSERT ON kv.hashes FOR EACH ROW EXECUTE FUNCTION public.boom()",
    );
    let reply = r.call(&["EVAL", "redis.call('set', KEYS[1], 'a') redis.call('hset', KEYS[2], 'ok', '1') redis.call('hset', KEYS[2], 'boom', '1') return 1", "2", "t1", "t2"]);
    assert!(reply.starts_with(b"-ERR PostgreSQL error: boom trigger"), "{}", show(&reply));
    assert_eq!(r.call(&["EXISTS", "t1", "t2"]), b":0\r\n");
    // The Lua state and the worker are fine afterwards, on this client and others.
    assert_eq!(r.call(&["EVAL", "return redis.call('hset', KEYS[1], 'ok', '1')", "1", "t2"]), b":1\r\n");
    assert_eq!(c.raw().call(&["EVAL", "return {1, 'two'}", "0"]), b"*2\r\n:1\r\n$3\r\ntwo\r\n");
    // A function hits the same error the same way.
    assert!(r.call(&["FUNCTION", "LOAD", "#!lua name=b\nredis.register_function('b', function(k) redis.call('set', k[1], 'x') return redis.call('hset', k[2], 'boom', 1) end)"]).starts_with(b"$1"));
    let reply = r.call(&["FCALL", "b", "2", "f1", "f2"]);
    assert!(reply.starts_with(b"-ERR PostgreSQL error: boom trigger"), "{}", show(&reply));
    assert_eq!(r.call(&["EXISTS", "f1"]), b":0\r\n");
    assert_eq!(r.call(&["PING"]), b"+PONG\r\n");
}

/// Connections to each of a two-worker cluster's workers (client ids are
/// i+1, i+1+n... on worker i).
fn one_per_worker(c: &PgCluster) -> Vec<RawClient> {
    vec![c.client_on_worker(0), c.client_on_worker(1)]
}

#[test]
fn scripts_and_functions_are_shared_by_workers_and_survive_restart() {
    let c = PgCluster::start_with(&["pgkv.workers = 2"]);
    locks_and_rate_limits_hold_under_concurrency(&c, "conc2", true);
    let body = "return 'cached:' .. ARGV[1]";
    let lib = "#!lua name=keep\nredis.register_function('keep', function(k, a) return 'kept:' .. a[1] end)";
    let mut ws = one_per_worker(&c);
    let sha = String::from_utf8(ws[0].call(&["SCRIPT", "LOAD", body])).unwrap().lines().nth(1).unwrap().to_string();
    assert!(ws[0].call(&["FUNCTION", "LOAD", lib]).starts_with(b"$4\r\nkeep"));
    for w in ws.iter_mut() {
        assert_eq!(w.call(&["EVALSHA", &sha, "0", "w"]), b"$8\r\ncached:w\r\n");
        assert_eq!(w.call(&["FCALL", "keep", "0", "w"]), b"$6\r\nkept:w\r\n");
    }
    // A flush on one worker is seen by the other.
    assert_eq!(ws[1].call(&["SCRIPT", "FLUSH"]), b"+OK\r\n");
    assert!(ws[0].call(&["EVALSHA", &sha, "0", "w"]).starts_with(b"-NOSCRIPT"));
    assert_eq!(ws[1].call(&["FUNCTION", "DELETE", "keep"]), b"+OK\r\n");
    assert_eq!(ws[0].call(&["FCALL", "keep", "0", "w"]), b"-ERR Function not found\r\n");
    ws[1].call(&["SCRIPT", "LOAD", body]);
    ws[1].call(&["FUNCTION", "LOAD", lib]);
    drop(ws);
    c.restart("fast");
    for mut w in one_per_worker(&c) {
        assert_eq!(w.call(&["SCRIPT", "EXISTS", &sha]), b"*1\r\n:1\r\n");
        assert_eq!(w.call(&["EVALSHA", &sha, "0", "r"]), b"$8\r\ncached:r\r\n");
        assert_eq!(w.call(&["FCALL", "keep", "0", "r"]), b"$6\r\nkept:r\r\n");
    }
    // The same from SQL, in the caller's transaction.
    assert_eq!(c.psql("SELECT kv.fcall('keep', '{}', '{sql}')"), "\"kept:sql\"");
    assert_eq!(c.psql(&format!("SELECT kv.call('EVALSHA', '{sha}', '0', 'q')")), "\"cached:q\"");
}

#[test]
fn kv_eval_runs_scripts_from_sql_in_the_callers_transaction() {
    let c = shared();
    assert_eq!(c.psql("SELECT kv.eval('return {1, ''two'', {ok = ''fine''}, false}')"), "[1, \"two\", \"fine\", null]");
    assert_eq!(c.psql("SELECT kv.eval('return redis.call(''set'', KEYS[1], ARGV[1])', '{sql:evk}', '{v1}')"), "\"OK\"");
    assert_eq!(c.psql("SELECT kv.get('sql:evk')"), "v1");
    assert_eq!(c.psql("SELECT kv.eval('return redis.call(''get'', ''sql:none'')') IS NULL"), "t");
    // Rolled back with the caller's transaction.
    c.psql("BEGIN; SELECT kv.eval('return redis.call(''set'', KEYS[1], ''v2'')', '{sql:evk}'); ROLLBACK");
    assert_eq!(c.psql("SELECT kv.get('sql:evk')"), "v1");
    let mut sql = c.sql();
    let err = sql.query_one("SELECT kv.eval('error(''from sql'')')", &[]).unwrap_err();
    let msg = err.as_db_error().map(|e| e.message().to_string()).unwrap_or_default();
    assert!(msg.starts_with("ERR user_script:1: from sql script: "), "{msg}");
    let err = sql.query_one("SELECT kv.call('SCRIPT', 'KILL')", &[]).unwrap_err();
    assert_eq!(err.as_db_error().unwrap().message(), "ERR This Redis command is not allowed from SQL");
    assert_eq!(c.psql("SELECT kv.eval('return 7')"), "7");
}
