//! MULTI/EXEC/DISCARD/WATCH: differential tests against redis-server 7.0 in
//! both protocols, and WATCH against every kind of modifier pgkv has: another
//! client, SQL, expiry, another worker.

use pgkv_tests::{shared, show, Differential, PgCluster, RawClient};
use std::time::Duration;

#[test]
fn queuing_exec_and_errors_match_redis() {
    Differential::each_protocol_pair(9, |d, _| {
        d.check(&["MULTI"]);
        d.check(&["SET", "a", "1"]);
        d.check(&["INCR", "a"]);
        d.check(&["LPUSH", "a", "x"]);
        d.check(&["GET", "a"]);
        d.check(&["PING"]);
        d.check(&["ECHO", "hi"]);
        d.check(&["HSET", "h", "f", "v"]);
        d.check(&["HGETALL", "h"]);
        d.check(&["EXEC"]);
        d.check(&["EXEC"]);
        d.check(&["DISCARD"]);
        d.check(&["MULTI"]);
        d.check(&["MULTI"]);
        d.check(&["WATCH", "a"]);
        d.check(&["GET", "a"]);
        d.check(&["EXEC"]);
        // A syntax error while queuing aborts the whole transaction.
        d.check(&["MULTI"]);
        d.check(&["SET", "b", "1"]);
        d.check(&["GET"]);
        d.check(&["NOSUCHCOMMAND", "x"]);
        d.check(&["EXEC"]);
        d.check(&["GET", "b"]);
        d.check(&["MULTI"]);
        d.check(&["SET", "b", "2"]);
        d.check(&["DISCARD"]);
        d.check(&["GET", "b"]);
        d.check(&["MULTI"]);
        d.check(&["EXEC"]);
        // SELECT inside MULTI changes the database for what follows.
        d.check(&["MULTI"]);
        d.check(&["SELECT", "10"]);
        d.check(&["SET", "in10", "x"]);
        d.check(&["SELECT", "9"]);
        d.check(&["EXEC"]);
        d.check(&["GET", "in10"]);
        d.check(&["SELECT", "10"]);
        d.check(&["GET", "in10"]);
        d.check(&["DEL", "in10"]);
        d.check(&["SELECT", "9"]);
        d.check(&["MULTI", "x"]);
        d.check(&["EXEC", "x"]);
        d.check(&["WATCH"]);
        d.check(&["UNWATCH"]);
        d.check(&["UNWATCH", "x"]);
    });
}

/// Key rows changed inside a transaction are written back by the version
/// the transaction locked, once; a statement that reads the whole keyspace
/// (DBSIZE, KEYS) writes them back mid-transaction, and later changes to
/// the same keys go by key. Both must leave what Redis leaves.
#[test]
fn key_rows_written_back_twice_in_one_transaction_match_redis() {
    // A database of its own: `Differential::shared` flushes the database
    // it is given, and the other tests here run alongside.
    Differential::each_protocol_pair(12, |d, _| {
        d.check(&["DEL", "wb:h", "wb:l", "wb:n", "wb:s"]);
        d.check(&["RPUSH", "wb:l", "x"]);
        d.check(&["MULTI"]);
        d.check(&["HSET", "wb:h", "f1", "v"]);
        d.check(&["RPUSH", "wb:l", "a"]);
        d.check(&["INCR", "wb:n"]);
        d.check(&["SADD", "wb:s", "m1"]);
        d.check(&["DBSIZE"]);
        d.check(&["HSET", "wb:h", "f2", "v"]);
        d.check(&["LPUSH", "wb:l", "b"]);
        d.check(&["INCR", "wb:n"]);
        d.check(&["SADD", "wb:s", "m2", "m3"]);
        d.check(&["EXPIRE", "wb:h", "100"]);
        d.check(&["DBSIZE"]);
        d.check(&["RPOP", "wb:l"]);
        d.check(&["HLEN", "wb:h"]);
        d.check(&["EXEC"]);
        d.check(&["HLEN", "wb:h"]);
        d.check(&["TTL", "wb:h"]);
        d.check(&["LRANGE", "wb:l", "0", "-1"]);
        d.check(&["LLEN", "wb:l"]);
        d.check(&["GET", "wb:n"]);
        d.check(&["SCARD", "wb:s"]);
        // The same commands pipelined: one batch, no MULTI.
        d.check_pipeline(&[
            vec!["HSET", "wb:h", "f3", "v"],
            vec!["INCR", "wb:n"],
            vec!["DBSIZE"],
            vec!["HDEL", "wb:h", "f1"],
            vec!["INCR", "wb:n"],
            vec!["LPOP", "wb:l"],
            vec!["HLEN", "wb:h"],
            vec!["LLEN", "wb:l"],
        ]);
        d.check(&["HGETALL", "wb:h"]);
        d.check(&["GET", "wb:n"]);
        d.check(&["LRANGE", "wb:l", "0", "-1"]);
    });
}

/// A list, hash, set or sorted set read in a batch sees what the batch wrote before
/// it, whichever way that went: pushes and member writes queued for the
/// batch's end, LSET's and LINSERT's statements, pops taken from the
/// read-ahead. (These reads go straight to the tables' indexes, with a
/// fresh snapshot once the transaction has written.)
#[test]
fn collection_reads_see_the_batchs_earlier_writes() {
    Differential::each_protocol_pair(13, |d, _| {
        let steps: &[&[&str]] = &[
            &["RPUSH", "rl", "a", "b", "c", "d"],
            &["LRANGE", "rl", "0", "-1"],
            &["LSET", "rl", "1", "B"],
            &["LRANGE", "rl", "0", "-1"],
            &["LPUSH", "rl", "z"],
            &["LINDEX", "rl", "0"],
            &["LINSERT", "rl", "AFTER", "c", "C"],
            &["LRANGE", "rl", "-3", "-1"],
            &["RPOP", "rl"],
            &["LPOP", "rl"],
            &["LRANGE", "rl", "0", "-1"],
            &["LREM", "rl", "0", "C"],
            &["LTRIM", "rl", "1", "-1"],
            &["LRANGE", "rl", "0", "-1"],
            &["LPOS", "rl", "c"],
            &["HSET", "rh", "f", "1", "g", "2"],
            &["HGETALL", "rh"],
            &["HSET", "rh", "f", "10"],
            &["HDEL", "rh", "g"],
            &["HSET", "rh", "g", "3"],
            &["HGETALL", "rh"],
            &["HVALS", "rh"],
            &["SADD", "rs", "b", "a"],
            &["SREM", "rs", "b"],
            &["SMEMBERS", "rs"],
            &["SADD", "rs", "c"],
            &["SORT", "rs", "ALPHA"],
            &["ZADD", "rz", "2", "b", "1", "a", "3", "c"],
            &["ZRANGE", "rz", "0", "-1", "WITHSCORES"],
            &["ZADD", "rz", "0", "c"],
            &["ZREM", "rz", "a"],
            &["ZINCRBY", "rz", "5", "b"],
            &["ZRANGE", "rz", "0", "0"],
            &["ZREVRANGE", "rz", "0", "-1", "WITHSCORES"],
            &["ZRANGEBYSCORE", "rz", "0", "(7", "WITHSCORES"],
            &["ZRANGE", "rz", "1", "5", "REV"],
            &["HSCAN", "rh", "0"],
            &["ZSCAN", "rz", "0"],
            &["SSCAN", "rs", "0", "MATCH", "a*"],
        ];
        in_multi_then_in_one_batch(d, &["DEL", "rl", "rh", "rs", "rz"], steps);
        d.check(&["LRANGE", "rl", "0", "-1"]);
        d.check(&["HGETALL", "rh"]);
    });
}

/// Read-modify-write commands (INCR, APPEND, SETRANGE, INCRBYFLOAT,
/// SETBIT) on missing keys queue their creation with the batch's other new
/// keys; later commands of the batch on those keys must see them.
#[test]
fn keys_created_by_read_modify_write_commands_in_a_batch_match_redis() {
    Differential::each_protocol_pair(14, |d, _| {
        let steps: &[&[&str]] = &[
            &["INCR", "n1"],
            &["INCR", "n1"],
            &["GET", "n1"],
            &["INCRBY", "n2", "5"],
            &["DEL", "n2"],
            &["DECR", "n2"],
            &["APPEND", "n3", "x"],
            &["APPEND", "n3", "y"],
            &["SETRANGE", "n4", "2", "y"],
            &["INCRBYFLOAT", "n5", "1.5"],
            &["SETBIT", "n6", "3", "1"],
            &["EXPIRE", "n1", "100"],
            &["TTL", "n1"],
            &["INCR", "n7"],
            &["SET", "n7", "v"],
            &["INCR", "n8"],
            &["MSET", "n8", "5", "n9", "x"],
            &["INCR", "n8"],
            &["INCR", "n9"],
            &["EXISTS", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9"],
            &["DBSIZE"],
            &["MGET", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9"],
        ];
        in_multi_then_in_one_batch(d, &["FLUSHDB"], steps);
        d.check(&["MGET", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9"]);
        d.check(&["TTL", "n1"]);
    });
}

/// Runs `steps` inside MULTI/EXEC, then again pipelined (one batch, no
/// MULTI), each time after `reset`, comparing every reply with Redis's.
fn in_multi_then_in_one_batch(d: &mut Differential, reset: &[&str], steps: &[&[&str]]) {
    d.check(reset);
    d.check(&["MULTI"]);
    for step in steps {
        d.check(step);
    }
    d.check(&["EXEC"]);
    d.check(reset);
    d.check_pipeline(steps);
}

#[test]
fn watch_matches_redis() {
    Differential::each_protocol_pair(11, |a, b| {
        // Unchanged: EXEC runs.
        a.check(&["SET", "w", "1"]);
        a.check(&["WATCH", "w", "other"]);
        a.check(&["MULTI"]);
        a.check(&["INCR", "w"]);
        a.check(&["EXEC"]);
        // Changed by another client: EXEC answers nil and runs nothing.
        a.check(&["WATCH", "w"]);
        b.check(&["SET", "w", "10"]);
        a.check(&["MULTI"]);
        a.check(&["INCR", "w"]);
        a.check(&["EXEC"]);
        a.check(&["GET", "w"]);
        // Changed by the watching client itself.
        a.check(&["WATCH", "w"]);
        a.check(&["APPEND", "w", "0"]);
        a.check(&["MULTI"]);
        a.check(&["GET", "w"]);
        a.check(&["EXEC"]);
        // A key created after WATCH.
        a.check(&["WATCH", "fresh"]);
        b.check(&["LPUSH", "fresh", "x"]);
        a.check(&["MULTI"]);
        a.check(&["EXEC"]);
        // UNWATCH and DISCARD forget the watched keys.
        a.check(&["WATCH", "w"]);
        a.check(&["UNWATCH"]);
        b.check(&["SET", "w", "11"]);
        a.check(&["MULTI"]);
        a.check(&["GET", "w"]);
        a.check(&["EXEC"]);
        a.check(&["WATCH", "w"]);
        a.check(&["MULTI"]);
        a.check(&["DISCARD"]);
        b.check(&["SET", "w", "12"]);
        a.check(&["MULTI"]);
        a.check(&["GET", "w"]);
        a.check(&["EXEC"]);
        // Changed by a script (another client's EVAL).
        a.check(&["WATCH", "w"]);
        b.check(&["EVAL", "return redis.call('INCR', KEYS[1])", "1", "w"]);
        a.check(&["MULTI"]);
        a.check(&["GET", "w"]);
        a.check(&["EXEC"]);
        // A script that only reads changes nothing.
        a.check(&["WATCH", "w"]);
        b.check(&["EVAL", "return redis.call('GET', KEYS[1])", "1", "w"]);
        a.check(&["MULTI"]);
        a.check(&["GET", "w"]);
        a.check(&["EXEC"]);
        // FLUSHDB touches every watched key of the database.
        a.check(&["SET", "f", "1"]);
        a.check(&["WATCH", "f"]);
        b.check(&["FLUSHDB"]);
        a.check(&["MULTI"]);
        a.check(&["PING"]);
        a.check(&["EXEC"]);
        // A key that expires after WATCH fails EXEC (Redis 7).
        a.check(&["SET", "e", "v", "PX", "100"]);
        a.check(&["WATCH", "e"]);
        std::thread::sleep(Duration::from_millis(250));
        a.check(&["MULTI"]);
        a.check(&["PING"]);
        a.check(&["EXEC"]);
    });
}

fn reply(c: &mut RawClient, args: &[&str]) -> String {
    show(&c.call(args))
}

#[test]
fn watch_sees_sql_writes_and_exec_is_one_transaction() {
    let c = shared();
    let mut a = c.raw();
    a.call(&["SET", "sqlw", "1"]);
    assert_eq!(reply(&mut a, &["WATCH", "sqlw"]), "+OK\\r\\n");
    c.psql("SELECT kv.set('sqlw', '2')");
    a.call(&["MULTI"]);
    a.call(&["SET", "sqlw", "3"]);
    assert_eq!(reply(&mut a, &["EXEC"]), "*-1\\r\\n", "a SQL write fails EXEC");
    assert_eq!(reply(&mut a, &["GET", "sqlw"]), "$1\\r\\n2\\r\\n");
    // A rolled-back SQL write changes nothing.
    assert_eq!(reply(&mut a, &["WATCH", "sqlw"]), "+OK\\r\\n");
    c.psql("BEGIN; SELECT kv.set('sqlw', 'rolled'); ROLLBACK;");
    a.call(&["MULTI"]);
    a.call(&["SET", "sqlw", "4"]);
    assert_eq!(reply(&mut a, &["EXEC"]), "*1\\r\\n+OK\\r\\n");
    // EXEC is atomic: a SQL reader never sees half of it.
    a.call(&["MULTI"]);
    for i in 0..50 {
        a.call(&["RPUSH", "atomic:l", &i.to_string()]);
    }
    a.call(&["SET", "atomic:done", "1"]);
    let exec = a.call(&["EXEC"]);
    assert!(exec.starts_with(b"*51\r\n"), "{}", show(&exec));
    assert_eq!(c.psql("SELECT kv.llen('atomic:l')").trim(), "50");
}

#[test]
fn watch_sees_writes_from_another_worker() {
    let c = PgCluster::start_with(&["pgkv.workers = 2"]);
    let mut a = c.client_on_worker(0);
    let mut b = c.client_on_worker(1);
    a.call(&["SET", "xw", "1"]);
    assert_eq!(reply(&mut a, &["WATCH", "xw"]), "+OK\\r\\n");
    assert_eq!(reply(&mut b, &["INCR", "xw"]), ":2\\r\\n");
    a.call(&["MULTI"]);
    a.call(&["INCR", "xw"]);
    assert_eq!(reply(&mut a, &["EXEC"]), "*-1\\r\\n");
    // Optimistic locking from both workers at once: no increment lost.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let mut r = c.redis();
            std::thread::spawn(move || {
                let mut done = 0;
                while done < 50 {
                    let _: () = redis::cmd("WATCH").arg("xw:counter").query(&mut r).unwrap();
                    let v: Option<i64> = redis::cmd("GET").arg("xw:counter").query(&mut r).unwrap();
                    let res: Option<(String,)> =
                        redis::pipe().atomic().cmd("SET").arg("xw:counter").arg(v.unwrap_or(0) + 1).query(&mut r).unwrap();
                    if res.is_some() {
                        done += 1;
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(reply(&mut a, &["GET", "xw:counter"]), "$3\\r\\n200\\r\\n");

    // SET NX and MSETNX on a missing key: exactly one of the clients on
    // both workers wins each round.
    for round in 0..30 {
        let key = format!("xw:lock:{round}");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let racers: Vec<_> = (0..6)
            .map(|i| {
                let mut r = c.redis();
                let (key, barrier) = (key.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let set: Option<String> = redis::cmd("SET").arg(&key).arg(i).arg("NX").arg("PX").arg(60000).query(&mut r).unwrap();
                    let msetnx: i64 = redis::cmd("MSETNX").arg(format!("{key}:m")).arg(i).arg(format!("{key}:n")).arg(i).query(&mut r).unwrap();
                    (set.is_some() as i32, msetnx as i32)
                })
            })
            .collect();
        let results: Vec<(i32, i32)> = racers.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(results.iter().map(|r| r.0).sum::<i32>(), 1, "SET NX winners in round {round}");
        assert_eq!(results.iter().map(|r| r.1).sum::<i32>(), 1, "MSETNX winners in round {round}");
    }
}

/// One WATCH case: after `setup`, a client watches `k` and another runs
/// `cmd`; `touches` says whether Redis then fails the watcher's EXEC.
struct WatchCase {
    setup: &'static [&'static [&'static str]],
    cmd: &'static [&'static str],
    touches: bool,
}

const fn case(setup: &'static [&'static [&'static str]], cmd: &'static [&'static str], touches: bool) -> WatchCase {
    WatchCase { setup, cmd, touches }
}

const STR: &[&str] = &["SET", "k", "a"];
const STR_TTL: &[&str] = &["SET", "k", "a", "EX", "1000"];
const LIST: &[&str] = &["RPUSH", "k", "a", "b"];
const SRC_LIST: &[&str] = &["RPUSH", "s", "a", "b"];
const HASH: &[&str] = &["HSET", "k", "f", "v"];
const SET: &[&str] = &["SADD", "k", "a", "b"];
const SET1: &[&str] = &["SADD", "k", "a"];
const SRC_SET: &[&str] = &["SADD", "s", "a", "b"];
const ZSET: &[&str] = &["ZADD", "k", "1", "a", "2", "b"];
const SRC_ZSET: &[&str] = &["ZADD", "s", "1", "a", "2", "b"];
const SRC_STR: &[&str] = &["SET", "s", "x"];

/// Every write command, where it changes the watched key and where it
/// does not (Redis's `signalModifiedKey` is called only for a change).
const WATCH_CASES: &[WatchCase] = &[
    // Strings.
    case(&[], &["APPEND", "k", "x"], true),
    case(&[STR], &["APPEND", "k", ""], true),
    case(&[], &["BITFIELD", "k", "SET", "u8", "0", "1"], true),
    case(&[STR], &["BITFIELD", "k", "GET", "u8", "0"], false),
    // Writes that leave every field as it was touch nothing, unless the
    // string grew (random test seed 2589); "a" is 97.
    case(&[STR], &["BITFIELD", "k", "SET", "u8", "0", "97"], false),
    case(&[STR], &["BITFIELD", "k", "INCRBY", "i8", "0", "0", "INCRBY", "u8", "0", "-9223372036854775808"], false),
    case(&[STR], &["BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "300"], false),
    case(&[STR], &["BITFIELD", "k", "INCRBY", "u8", "16", "0"], true),
    case(&[STR], &["BITFIELD", "k", "SET", "u8", "0", "98"], true),
    case(&[SRC_STR], &["BITOP", "OR", "k", "s"], true),
    case(&[], &["BITOP", "OR", "k", "m"], false),
    case(&[STR], &["BITOP", "OR", "k", "m"], true),
    case(&[], &["DECR", "k"], true),
    case(&[], &["DECRBY", "k", "2"], true),
    case(&[], &["INCR", "k"], true),
    case(&[], &["INCRBY", "k", "2"], true),
    case(&[], &["INCRBYFLOAT", "k", "1.5"], true),
    case(&[STR], &["GETDEL", "k"], true),
    case(&[], &["GETDEL", "k"], false),
    case(&[STR], &["GETEX", "k", "EX", "100"], true),
    case(&[STR], &["GETEX", "k"], false),
    case(&[STR], &["GETEX", "k", "PERSIST"], false),
    case(&[STR_TTL], &["GETEX", "k", "PERSIST"], true),
    case(&[], &["GETSET", "k", "v"], true),
    case(&[], &["MSET", "s", "1", "k", "2"], true),
    case(&[], &["MSETNX", "s", "1", "k", "2"], true),
    case(&[SRC_STR], &["MSETNX", "s", "1", "k", "2"], false),
    case(&[], &["PSETEX", "k", "100000", "v"], true),
    case(&[], &["SETEX", "k", "100", "v"], true),
    case(&[STR], &["SET", "k", "v"], true),
    case(&[STR], &["SET", "k", "v", "NX"], false),
    case(&[], &["SET", "k", "v", "XX"], false),
    case(&[STR], &["SET", "k", "v", "XX", "GET"], true),
    case(&[], &["SETBIT", "k", "7", "1"], true),
    case(&[STR], &["SETBIT", "k", "1", "1"], false),
    case(&[STR], &["SETBIT", "k", "0", "1"], true),
    case(&[], &["SETNX", "k", "v"], true),
    case(&[STR], &["SETNX", "k", "v"], false),
    case(&[STR], &["SETRANGE", "k", "0", "x"], true),
    case(&[STR], &["SETRANGE", "k", "0", ""], false),
    case(&[], &["SETRANGE", "k", "3", ""], false),
    // Keys.
    case(&[SRC_STR], &["COPY", "s", "k"], true),
    case(&[SRC_STR, STR], &["COPY", "s", "k"], false),
    case(&[SRC_STR, STR], &["COPY", "s", "k", "REPLACE"], true),
    case(&[], &["COPY", "m", "k"], false),
    case(&[STR], &["DEL", "k"], true),
    case(&[], &["DEL", "k"], false),
    case(&[STR], &["UNLINK", "m", "k"], true),
    case(&[], &["UNLINK", "k"], false),
    case(&[STR], &["EXPIRE", "k", "100"], true),
    case(&[], &["EXPIRE", "k", "100"], false),
    case(&[STR_TTL], &["EXPIRE", "k", "100", "NX"], false),
    case(&[STR], &["EXPIRE", "k", "-1"], true),
    case(&[STR], &["PEXPIRE", "k", "100000"], true),
    case(&[STR], &["EXPIREAT", "k", "4102444800"], true),
    case(&[STR], &["PEXPIREAT", "k", "4102444800000"], true),
    case(&[STR], &["MOVE", "k", "6"], true),
    case(&[], &["MOVE", "k", "6"], false),
    case(&[STR_TTL], &["PERSIST", "k"], true),
    case(&[STR], &["PERSIST", "k"], false),
    case(&[STR], &["RENAME", "k", "d"], true),
    case(&[SRC_STR], &["RENAME", "s", "k"], true),
    case(&[STR], &["RENAME", "k", "k"], false),
    case(&[SRC_STR], &["RENAMENX", "s", "k"], true),
    case(&[SRC_STR, STR], &["RENAMENX", "s", "k"], false),
    case(&[STR], &["FLUSHDB"], true),
    case(&[], &["FLUSHDB"], false),
    case(&[STR], &["SWAPDB", "5", "6"], true),
    case(&[], &["SWAPDB", "5", "6"], false),
    case(&[&["SELECT", "6"], STR, &["SELECT", "5"]], &["SWAPDB", "5", "6"], true),
    case(&[&["SELECT", "6"], STR, &["SELECT", "5"]], &["SWAPDB", "6", "7"], false),
    case(&[SRC_LIST], &["SORT", "s", "ALPHA", "STORE", "k"], true),
    case(&[], &["SORT", "m", "STORE", "k"], false),
    case(&[STR], &["SORT", "m", "STORE", "k"], true),
    // Lists.
    case(&[SRC_LIST], &["BLMOVE", "s", "k", "LEFT", "RIGHT", "0.01"], true),
    case(&[], &["BLMOVE", "m", "k", "LEFT", "RIGHT", "0.01"], false),
    case(&[LIST], &["BLMPOP", "0.01", "1", "k", "LEFT"], true),
    case(&[], &["BLMPOP", "0.01", "1", "k", "LEFT"], false),
    case(&[LIST], &["BLPOP", "k", "0.01"], true),
    case(&[], &["BLPOP", "k", "0.01"], false),
    case(&[LIST], &["BRPOP", "k", "0.01"], true),
    case(&[], &["BRPOP", "k", "0.01"], false),
    case(&[SRC_LIST], &["BRPOPLPUSH", "s", "k", "0.01"], true),
    case(&[], &["BRPOPLPUSH", "m", "k", "0.01"], false),
    case(&[LIST], &["LINSERT", "k", "BEFORE", "a", "x"], true),
    case(&[LIST], &["LINSERT", "k", "BEFORE", "zz", "x"], false),
    case(&[], &["LINSERT", "k", "BEFORE", "a", "x"], false),
    case(&[SRC_LIST], &["LMOVE", "s", "k", "LEFT", "RIGHT"], true),
    case(&[LIST], &["LMOVE", "k", "k", "LEFT", "RIGHT"], true),
    case(&[], &["LMOVE", "m", "k", "LEFT", "RIGHT"], false),
    case(&[SRC_LIST], &["RPOPLPUSH", "s", "k"], true),
    case(&[], &["RPOPLPUSH", "m", "k"], false),
    case(&[LIST], &["LMPOP", "1", "k", "RIGHT"], true),
    case(&[], &["LMPOP", "1", "k", "RIGHT"], false),
    case(&[LIST], &["LPOP", "k"], true),
    case(&[LIST], &["LPOP", "k", "0"], false),
    case(&[], &["LPOP", "k"], false),
    case(&[LIST], &["RPOP", "k", "5"], true),
    case(&[], &["RPOP", "k"], false),
    case(&[], &["LPUSH", "k", "a"], true),
    case(&[], &["RPUSH", "k", "a"], true),
    case(&[LIST], &["LPUSHX", "k", "a"], true),
    case(&[], &["LPUSHX", "k", "a"], false),
    case(&[LIST], &["RPUSHX", "k", "a"], true),
    case(&[], &["RPUSHX", "k", "a"], false),
    case(&[LIST], &["LREM", "k", "0", "a"], true),
    case(&[LIST], &["LREM", "k", "0", "zz"], false),
    case(&[LIST], &["LSET", "k", "0", "x"], true),
    case(&[LIST], &["LTRIM", "k", "0", "-1"], true),
    case(&[LIST], &["LTRIM", "k", "5", "10"], true),
    case(&[], &["LTRIM", "k", "0", "-1"], false),
    // Hashes.
    case(&[HASH], &["HDEL", "k", "f"], true),
    case(&[HASH], &["HDEL", "k", "zz"], false),
    case(&[HASH], &["HINCRBY", "k", "n", "1"], true),
    case(&[HASH], &["HINCRBYFLOAT", "k", "n", "1.5"], true),
    case(&[HASH], &["HMSET", "k", "f", "v"], true),
    case(&[HASH], &["HSET", "k", "f", "v"], true),
    case(&[HASH], &["HSETNX", "k", "g", "v"], true),
    case(&[HASH], &["HSETNX", "k", "f", "v"], false),
    // Sets.
    case(&[SET], &["SADD", "k", "c"], true),
    case(&[SET], &["SADD", "k", "a", "b"], false),
    case(&[SET], &["SREM", "k", "a"], true),
    case(&[SET], &["SREM", "k", "zz"], false),
    case(&[SRC_SET], &["SMOVE", "s", "k", "a"], true),
    case(&[SRC_SET], &["SMOVE", "s", "k", "zz"], false),
    case(&[SET], &["SMOVE", "k", "k", "a"], false),
    case(&[SET1], &["SPOP", "k"], true),
    case(&[SET], &["SPOP", "k", "0"], false),
    case(&[], &["SPOP", "k"], false),
    case(&[SRC_SET], &["SDIFFSTORE", "k", "s"], true),
    case(&[SRC_SET], &["SINTERSTORE", "k", "s"], true),
    case(&[SRC_SET], &["SINTERSTORE", "k", "s", "m"], false),
    case(&[SRC_SET, STR], &["SINTERSTORE", "k", "s", "m"], true),
    case(&[SRC_SET], &["SUNIONSTORE", "k", "s"], true),
    case(&[], &["SUNIONSTORE", "k", "m"], false),
    // Sorted sets.
    case(&[], &["ZADD", "k", "1", "a"], true),
    case(&[ZSET], &["ZADD", "k", "1", "a"], false),
    case(&[ZSET], &["ZADD", "k", "5", "a"], true),
    case(&[ZSET], &["ZADD", "k", "NX", "5", "a"], false),
    case(&[ZSET], &["ZADD", "k", "XX", "5", "zz"], false),
    case(&[ZSET], &["ZADD", "k", "INCR", "0", "a"], false),
    case(&[ZSET], &["ZADD", "k", "INCR", "1", "a"], true),
    case(&[ZSET], &["ZINCRBY", "k", "1", "a"], true),
    case(&[ZSET], &["ZINCRBY", "k", "0", "a"], false),
    case(&[ZSET], &["ZREM", "k", "a"], true),
    case(&[ZSET], &["ZREM", "k", "zz"], false),
    case(&[ZSET], &["ZREMRANGEBYLEX", "k", "-", "+"], true),
    case(&[ZSET], &["ZREMRANGEBYLEX", "k", "[x", "[y"], false),
    case(&[ZSET], &["ZREMRANGEBYRANK", "k", "0", "0"], true),
    case(&[ZSET], &["ZREMRANGEBYRANK", "k", "5", "6"], false),
    case(&[ZSET], &["ZREMRANGEBYSCORE", "k", "1", "1"], true),
    case(&[ZSET], &["ZREMRANGEBYSCORE", "k", "100", "200"], false),
    case(&[ZSET], &["ZPOPMAX", "k"], true),
    case(&[], &["ZPOPMAX", "k"], false),
    case(&[ZSET], &["ZPOPMIN", "k", "5"], true),
    case(&[ZSET], &["ZPOPMIN", "k", "0"], false),
    case(&[ZSET], &["BZPOPMAX", "k", "0.01"], true),
    case(&[], &["BZPOPMAX", "k", "0.01"], false),
    case(&[ZSET], &["BZPOPMIN", "k", "0.01"], true),
    case(&[], &["BZPOPMIN", "k", "0.01"], false),
    case(&[ZSET], &["BZMPOP", "0.01", "1", "k", "MIN"], true),
    case(&[], &["BZMPOP", "0.01", "1", "k", "MIN"], false),
    case(&[ZSET], &["ZMPOP", "1", "k", "MAX", "COUNT", "2"], true),
    case(&[], &["ZMPOP", "1", "k", "MAX"], false),
    case(&[SRC_ZSET], &["ZRANGESTORE", "k", "s", "0", "-1"], true),
    case(&[SRC_ZSET], &["ZRANGESTORE", "k", "s", "5", "6"], false),
    case(&[SRC_ZSET, STR], &["ZRANGESTORE", "k", "s", "5", "6"], true),
    case(&[SRC_ZSET], &["ZDIFFSTORE", "k", "1", "s"], true),
    case(&[SRC_ZSET], &["ZINTERSTORE", "k", "2", "s", "m"], false),
    case(&[SRC_ZSET], &["ZUNIONSTORE", "k", "1", "s"], true),
];

/// Write commands with no case above: FLUSHALL would empty the databases
/// the other tests of this file use at the same time (FLUSHDB's cases
/// cover its epoch).
const WATCH_EXEMPT: &[&str] = &["flushall"];

#[test]
fn watch_is_touched_exactly_where_redis_touches() {
    Differential::each_protocol_pair(5, |a, b| {
        let mut touched = 0;
        for c in WATCH_CASES {
            for db in ["6", "5"] {
                b.check(&["SELECT", db]);
                b.check(&["DEL", "k", "s", "d", "m"]);
            }
            for step in c.setup {
                b.check(step);
            }
            a.check(&["WATCH", "k"]);
            b.check(c.cmd);
            if c.cmd[0] == "SWAPDB" {
                b.check(c.cmd);
            }
            a.check(&["MULTI"]);
            a.check(&["PING"]);
            let exec = show(&a.check(&["EXEC"]));
            let failed = exec.starts_with("*-1") || exec.starts_with("_");
            assert_eq!(failed, c.touches, "EXEC after WATCH k; {:?}: {exec}", c.cmd);
            touched += failed as usize;
        }
        assert!(touched > 0 && touched < WATCH_CASES.len());
        // The watcher's own FLUSHDB or SWAPDB, in the same batch as WATCH
        // and EXEC: a flush counts for a key that existed.
        for (setup, db_cmd) in [
            (&[STR][..], &["FLUSHDB"][..]),
            (&[], &["FLUSHDB"]),
            (&[STR], &["SWAPDB", "5", "6"]),
            (&[], &["SWAPDB", "5", "6"]),
        ] {
            b.check(&["DEL", "k"]);
            for step in setup {
                b.check(step);
            }
            let steps = [&["WATCH", "k"][..], db_cmd, &["MULTI"], &["PING"], &["EXEC"]];
            a.check_pipeline(&steps);
        }
        a.check(&["SWAPDB", "5", "6"]);
        // The watcher's own writes before WATCH, in the same batch, do not
        // count, whether EXEC comes in that batch or a later one.
        let before: &[&[&str]] = &[&["SET", "k", "v"], &["WATCH", "k"], &["MULTI"], &["PING"], &["EXEC"]];
        a.check_pipeline(before);
        let flushed: &[&[&str]] = &[&["FLUSHDB"], &["SET", "k", "w"], &["WATCH", "k"], &["MULTI"], &["PING"], &["EXEC"]];
        a.check_pipeline(flushed);
        a.check_pipeline(&before[..2]);
        a.check_pipeline(&before[2..]);
        a.check_pipeline(&flushed[..3]);
        a.check_pipeline(&flushed[3..]);
        // But a write after WATCH counts, in the batch that also wrote the
        // key before WATCH, whether EXEC comes then or later.
        let twice: &[&[&str]] = &[&["SET", "k", "v"], &["WATCH", "k"], &["SET", "k", "w"], &["MULTI"], &["PING"], &["EXEC"]];
        a.check_pipeline(twice);
        a.check_pipeline(&twice[..3]);
        a.check_pipeline(&twice[3..]);
        // And so does a flush after WATCH in a batch that had flushed the
        // database before it (random test seed 2200), or flushed another
        // database after it (which does not count).
        let reflushed: &[&[&str]] = &[&["FLUSHDB"], &["SET", "k", "v"], &["WATCH", "k"], &["FLUSHDB"], &["MULTI"], &["PING"], &["EXEC"]];
        a.check_pipeline(reflushed);
        a.check_pipeline(&reflushed[..4]);
        a.check_pipeline(&reflushed[4..]);
        let elsewhere: &[&[&str]] = &[
            &["FLUSHDB"],
            &["SET", "k", "v"],
            &["WATCH", "k"],
            &["SELECT", "6"],
            &["FLUSHDB"],
            &["SELECT", "5"],
            &["MULTI"],
            &["PING"],
            &["EXEC"],
        ];
        a.check_pipeline(elsewhere);
    });
    // Every write command pgkv serves has a case.
    let mut missing = Vec::new();
    for (name, write) in command_flags() {
        if write && !WATCH_EXEMPT.contains(&name.as_str()) && !WATCH_CASES.iter().any(|c| c.cmd[0].eq_ignore_ascii_case(&name)) {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "write commands without a WATCH case: {missing:?}");
}

/// Each command COMMAND lists, with whether it has the `write` flag.
fn command_flags() -> Vec<(String, bool)> {
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        other => panic!("not a string: {other:?}"),
    };
    let all: redis::Value = redis::cmd("COMMAND").query(&mut shared().redis()).unwrap();
    let redis::Value::Array(all) = all else { panic!("COMMAND: {all:?}") };
    all.iter()
        .map(|info| {
            let redis::Value::Array(info) = info else { panic!("COMMAND entry: {info:?}") };
            let redis::Value::Array(flags) = &info[2] else { panic!("flags: {:?}", info[2]) };
            (text(&info[0]), flags.iter().any(|f| text(f) == "write"))
        })
        .collect()
}
