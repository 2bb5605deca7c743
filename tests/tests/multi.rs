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
    d.check_pipeline(&steps.iter().map(|s| s.to_vec()).collect::<Vec<_>>());
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
