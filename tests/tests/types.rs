//! Differential tests of the string, hash and set families against
//! redis-server 7.0 in RESP2 and RESP3 (random command sequences: random.rs).

use pgkv_tests::Differential;

#[test]
fn string_commands_match_redis() {
    Differential::each_protocol(2, |d| {
        d.check(&["SETNX", "a", "1"]);
        d.check(&["SETNX", "a", "2"]);
        d.check(&["SETEX", "b", "100", "v"]);
        d.check(&["TTL", "b"]);
        d.check(&["SETEX", "b", "0", "v"]);
        d.check(&["SETEX", "b", "-1", "v"]);
        d.check(&["SETEX", "b", "x", "v"]);
        d.check(&["PSETEX", "b", "100000", "v"]);
        d.check(&["PSETEX", "b", "0", "v"]);
        d.check(&["GETSET", "a", "3"]);
        d.check(&["GETSET", "new", "x"]);
        d.check(&["GETDEL", "new"]);
        d.check(&["GETDEL", "new"]);
        d.check(&["GETEX", "a"]);
        d.check(&["GETEX", "a", "EX", "100"]);
        d.check(&["TTL", "a"]);
        d.check(&["GETEX", "a", "PERSIST"]);
        d.check(&["TTL", "a"]);
        d.check(&["GETEX", "a", "PX", "0"]);
        d.check(&["GETEX", "a", "NX"]);
        d.check(&["GETEX", "a", "KEEPTTL"]);
        d.check(&["GETEX", "a", "EX", "10", "PERSIST"]);
        d.check(&["GETEX", "a", "PERSIST", "EX", "10"]);
        d.check(&["GETEX", "a", "EXAT", "1"]);
        d.check(&["GETEX", "a"]);
        d.check(&["GETEX", "none", "EX", "10"]);
        // The expiry is read only once the key is found and is a string.
        d.check(&["GETEX", "none", "EX", "abc"]);
        d.check(&["GETEX", "none", "PX", "-1"]);
        d.check(&["RPUSH", "getex-list", "x"]);
        d.check(&["GETEX", "getex-list", "EX", "abc"]);
        d.check(&["GETEX", "getex-list", "EXAT", "0"]);
        d.check(&["GETEX", "getex-list", "EX", "10", "EX"]);
        d.check(&["SET", "getex-list", "x", "EX", "abc"]);
        d.check(&["SET", "getex-list", "x", "EX", "0", "GET"]);
        d.check(&["MSET", "m1", "1", "m2", "2", "m1", "3"]);
        d.check(&["MSET", "m1"]);
        d.check(&["MSET", "m1", "1", "m2"]);
        d.check(&["MGET", "m1", "m2", "none"]);
        d.check(&["MSETNX", "m1", "x", "m9", "y"]);
        d.check(&["MSETNX", "m8", "x", "m9", "y"]);
        d.check(&["MSETNX", "m8"]);
        d.check(&["MGET", "m8", "m9"]);
        d.check(&["APPEND", "ap", "hello"]);
        d.check(&["APPEND", "ap", " world"]);
        d.check(&["APPEND", "ap", ""]);
        d.check(&["GET", "ap"]);
        d.check(&["STRLEN", "ap"]);
        d.check(&["STRLEN", "none"]);
        for (s, e) in [("0", "4"), ("-5", "-1"), ("-1", "-5"), ("5", "2"), ("0", "-100"), ("-100", "100"), ("100", "200"), ("3", "3"), ("x", "1"), ("0", "99999999999999999999")] {
            d.check(&["GETRANGE", "ap", s, e]);
            d.check(&["SUBSTR", "ap", s, e]);
        }
        d.check(&["GETRANGE", "none", "0", "-1"]);
        d.check(&["SETRANGE", "sr", "5", "abc"]);
        d.check(&["GET", "sr"]);
        d.check(&["SETRANGE", "sr", "0", "XY"]);
        d.check(&["GET", "sr"]);
        d.check(&["SETRANGE", "sr", "1", ""]);
        d.check(&["SETRANGE", "none2", "3", ""]);
        d.check(&["EXISTS", "none2"]);
        d.check(&["SETRANGE", "sr", "-1", "x"]);
        d.check(&["SETRANGE", "sr", "536870911", "xy"]);
        d.check(&["SETRANGE", "sr", "x", "y"]);
        d.check(&["HSET", "hash", "f", "v"]);
        for cmd in [
            vec!["GETSET", "hash", "x"],
            vec!["GETDEL", "hash"],
            vec!["GETEX", "hash"],
            vec!["APPEND", "hash", "x"],
            vec!["STRLEN", "hash"],
            vec!["GETRANGE", "hash", "0", "1"],
            vec!["SETRANGE", "hash", "0", "x"],
            vec!["INCR", "hash"],
            vec!["INCRBYFLOAT", "hash", "1"],
            vec!["SET", "hash", "x", "GET"],
            vec!["MGET", "hash", "m1"],
        ] {
            d.check(&cmd);
        }
    });
}

#[test]
fn counters_match_redis() {
    Differential::each_protocol(9, |d| {
        d.check(&["INCR", "n"]);
        d.check(&["INCRBY", "n", "41"]);
        d.check(&["DECR", "n"]);
        d.check(&["DECRBY", "n", "-10"]);
        d.check(&["INCRBY", "n", "x"]);
        d.check(&["INCRBY", "n", "1.5"]);
        d.check(&["DECRBY", "n", "-9223372036854775808"]);
        d.check(&["SET", "max", "9223372036854775807"]);
        d.check(&["INCR", "max"]);
        d.check(&["SET", "min", "-9223372036854775808"]);
        d.check(&["DECR", "min"]);
        d.check(&["SET", "bad", "12 "]);
        d.check(&["INCR", "bad"]);
        d.check(&["SET", "lead", "01"]);
        d.check(&["INCR", "lead"]);
        d.check(&["SET", "ttl", "5", "EX", "100"]);
        d.check(&["INCR", "ttl"]);
        d.check(&["TTL", "ttl"]);
        d.check(&["INCRBYFLOAT", "f", "10.5"]);
        d.check(&["INCRBYFLOAT", "f", "0.1"]);
        d.check(&["INCRBYFLOAT", "f", "-5"]);
        d.check(&["INCRBYFLOAT", "f", "1e3"]);
        d.check(&["INCRBYFLOAT", "f", "3.0e-3"]);
        d.check(&["INCRBYFLOAT", "f", "abc"]);
        d.check(&["INCRBYFLOAT", "f", "inf"]);
        d.check(&["INCRBYFLOAT", "f", "nan"]);
        d.check(&["INCRBYFLOAT", "f", " 1"]);
        d.check(&["INCRBYFLOAT", "g", "5.0e3"]);
        d.check(&["INCRBYFLOAT", "g", "-5000"]);
        d.check(&["INCRBYFLOAT", "h", "1.7976931348623157e308"]);
        d.check(&["INCRBYFLOAT", "h", "1.7976931348623157e308"]);
        d.check(&["SET", "s", "hello"]);
        d.check(&["INCRBYFLOAT", "s", "1"]);
        d.check(&["INCRBYFLOAT", "i", "0.1"]);
        d.check(&["INCRBYFLOAT", "i", "0.2"]);
        d.check(&["INCRBYFLOAT", "i", "-0.3"]);
        d.check(&["GET", "i"]);
    });
}

#[test]
fn hash_commands_match_redis() {
    Differential::each_protocol(4, |d| {
        d.check(&["HSET", "h", "f1", "v1", "f2", "v2"]);
        d.check(&["HSET", "h", "f1", "new", "f3", "v3", "f3", "v4"]);
        d.check(&["HSET", "h", "f1"]);
        d.check(&["HMSET", "h", "f4", "v4"]);
        d.check(&["HMSET", "h", "f4"]);
        d.check(&["HGETALL", "h"]);
        d.check(&["HKEYS", "h"]);
        d.check(&["HVALS", "h"]);
        d.check(&["HLEN", "h"]);
        d.check(&["HGET", "h", "f1"]);
        d.check(&["HGET", "h", "nope"]);
        d.check(&["HGET", "none", "f"]);
        d.check(&["HMGET", "h", "f1", "nope", "f2"]);
        d.check(&["HMGET", "none", "a", "b"]);
        d.check(&["HSETNX", "h", "f1", "x"]);
        d.check(&["HSETNX", "h", "f9", "x"]);
        d.check(&["HEXISTS", "h", "f9"]);
        d.check(&["HEXISTS", "h", "nope"]);
        d.check(&["HEXISTS", "none", "f"]);
        d.check(&["HSTRLEN", "h", "f1"]);
        d.check(&["HSTRLEN", "h", "nope"]);
        d.check(&["HDEL", "h", "f1", "f1", "nope"]);
        d.check(&["HGETALL", "h"]);
        d.check(&["HSET", "h", "f1", "back"]);
        d.check(&["HGETALL", "h"]);
        d.check(&["HDEL", "h", "f2", "f3", "f4", "f9", "f1"]);
        d.check(&["EXISTS", "h"]);
        d.check(&["HGETALL", "h"]);
        d.check(&["HLEN", "h"]);
        d.check(&["HINCRBY", "c", "n", "5"]);
        d.check(&["HINCRBY", "c", "n", "-10"]);
        d.check(&["HINCRBY", "c", "n", "x"]);
        d.check(&["HSET", "c", "s", "abc", "big", "9223372036854775807"]);
        d.check(&["HINCRBY", "c", "s", "1"]);
        d.check(&["HINCRBY", "c", "big", "1"]);
        d.check(&["HINCRBYFLOAT", "c", "fl", "10.5"]);
        d.check(&["HINCRBYFLOAT", "c", "fl", "0.1"]);
        d.check(&["HINCRBYFLOAT", "c", "s", "1"]);
        d.check(&["HINCRBYFLOAT", "c", "fl", "x"]);
        d.check(&["HINCRBYFLOAT", "c", "fl", "inf"]);
        d.check(&["HINCRBYFLOAT", "none", "f", "inf"]);
        d.check(&["EXISTS", "none"]);
        d.check(&["HGETALL", "c"]);
        d.check(&["HSCAN", "c", "0"]);
        d.check(&["HSCAN", "c", "0", "MATCH", "f*"]);
        d.check(&["HSCAN", "c", "0", "COUNT", "1"]);
        d.check(&["HSCAN", "c", "x"]);
        d.check(&["HSCAN", "c", "0", "TYPE", "hash"]);
        d.check(&["HSCAN", "none", "0"]);
        d.check(&["HRANDFIELD", "none"]);
        d.check(&["HRANDFIELD", "none", "3"]);
        d.check(&["HRANDFIELD", "c", "0"]);
        d.check(&["HRANDFIELD", "c", "x"]);
        d.check(&["HRANDFIELD", "c", "1", "bogus"]);
        d.check(&["HRANDFIELD", "c", "1", "WITHVALUES", "x"]);
        d.check(&["HRANDFIELD", "c", "100", "WITHVALUES"]);
        d.check(&["HRANDFIELD", "c", "100"]);
        d.check(&["SET", "str", "v"]);
        for cmd in [
            vec!["HSET", "str", "f", "v"],
            vec!["HGET", "str", "f"],
            vec!["HGETALL", "str"],
            vec!["HLEN", "str"],
            vec!["HDEL", "str", "f"],
            vec!["HINCRBY", "str", "f", "1"],
            vec!["HMGET", "str", "f"],
            vec!["HRANDFIELD", "str"],
        ] {
            d.check(&cmd);
        }
        d.check(&["HSET", "bin", "\x00\u{7f}", "\r\n"]);
        d.check(&["HGETALL", "bin"]);
    });
}

#[test]
fn hrandfield_counts_follow_redis() {
    Differential::each_protocol(10, |d| {
        d.check(&["HSET", "h", "a", "1", "b", "2", "c", "3"]);
        for count in ["2", "3", "5", "-5", "-1"] {
            let ours = d.pgkv.call(&["HRANDFIELD", "h", count]);
            let theirs = d.redis.call(&["HRANDFIELD", "h", count]);
            assert_eq!(ours.len() > 0, theirs.len() > 0);
            assert_eq!(&ours[..3], &theirs[..3], "the same number of elements for count {count}");
        }
    });
}

#[test]
fn set_commands_match_redis() {
    Differential::each_protocol(5, |d| {
        d.check(&["SADD", "s", "3", "1", "2", "2"]);
        d.check(&["SADD", "s", "1", "10"]);
        d.check(&["SMEMBERS", "s"]);
        d.check(&["SCARD", "s"]);
        d.check(&["SISMEMBER", "s", "10"]);
        d.check(&["SISMEMBER", "s", "11"]);
        d.check(&["SMISMEMBER", "s", "1", "99", "2"]);
        d.check(&["SMISMEMBER", "none", "1"]);
        d.check(&["SREM", "s", "10", "99"]);
        d.check(&["SMEMBERS", "s"]);
        d.check(&["SADD", "w", "apple", "banana", "cherry"]);
        d.check_unordered(&["SMEMBERS", "w"]);
        d.check(&["SADD", "x", "banana", "kiwi"]);
        d.check_unordered(&["SINTER", "w", "x"]);
        d.check_unordered(&["SUNION", "w", "x", "s"]);
        d.check_unordered(&["SDIFF", "w", "x"]);
        d.check(&["SINTER", "w", "none"]);
        d.check_unordered(&["SUNION", "none", "x"]);
        d.check(&["SDIFF", "none", "x"]);
        d.check(&["SINTERSTORE", "dst", "w", "x"]);
        d.check(&["SMEMBERS", "dst"]);
        d.check(&["SUNIONSTORE", "dst", "s", "s"]);
        d.check(&["SMEMBERS", "dst"]);
        d.check(&["SDIFFSTORE", "dst", "s", "s"]);
        d.check(&["EXISTS", "dst"]);
        d.check(&["SINTERCARD", "2", "w", "x"]);
        d.check(&["SINTERCARD", "2", "w", "x", "LIMIT", "0"]);
        d.check(&["SINTERCARD", "1", "w", "LIMIT", "2"]);
        d.check(&["SINTERCARD", "0", "w"]);
        d.check(&["SINTERCARD", "3", "w", "x"]);
        d.check(&["SINTERCARD", "1", "w", "LIMIT", "-1"]);
        d.check(&["SINTERCARD", "1", "w", "BOGUS", "1"]);
        d.check(&["SINTERCARD", "x", "w"]);
        d.check(&["SMOVE", "w", "x", "apple"]);
        d.check(&["SMOVE", "w", "x", "apple"]);
        d.check(&["SMOVE", "none", "x", "apple"]);
        d.check(&["SMOVE", "x", "x", "kiwi"]);
        d.check(&["SMOVE", "x", "fresh", "kiwi"]);
        d.check(&["SMEMBERS", "fresh"]);
        d.check(&["SPOP", "none"]);
        d.check(&["SPOP", "none", "2"]);
        d.check(&["SPOP", "fresh", "-1"]);
        d.check(&["SPOP", "fresh", "x"]);
        d.check(&["SPOP", "fresh", "0"]);
        d.check(&["SPOP", "fresh", "1", "2"]);
        d.check(&["SPOP", "fresh"]);
        d.check(&["EXISTS", "fresh"]);
        d.check(&["SRANDMEMBER", "none"]);
        d.check(&["SRANDMEMBER", "none", "5"]);
        d.check(&["SRANDMEMBER", "s", "0"]);
        d.check(&["SRANDMEMBER", "s", "10"]);
        d.check(&["SRANDMEMBER", "s", "x"]);
        d.check(&["SRANDMEMBER", "s", "1", "2"]);
        d.check(&["SSCAN", "s", "0"]);
        d.check(&["SSCAN", "s", "0", "MATCH", "1*"]);
        d.check(&["SSCAN", "s", "x"]);
        d.check(&["SET", "str", "v"]);
        for cmd in [
            vec!["SADD", "str", "m"],
            vec!["SMEMBERS", "str"],
            vec!["SCARD", "str"],
            vec!["SISMEMBER", "str", "m"],
            vec!["SINTER", "s", "str"],
            vec!["SINTER", "none", "str"],
            vec!["SUNIONSTORE", "d2", "str"],
            vec!["SMOVE", "str", "s", "m"],
            vec!["SMOVE", "s", "str", "1"],
            vec!["SPOP", "str"],
        ] {
            d.check(&cmd);
        }
        // Intersections and differences with a set far larger than the
        // others, which pgkv probes rather than reads: 2000 members, and
        // small sets partly inside it.
        let mut big: Vec<String> = vec!["SADD".into(), "big".into()];
        big.extend((0..2000).map(|i| format!("b{i}")));
        d.check(&big);
        d.check(&["SADD", "few", "b7", "b1999", "nope", "b0"]);
        d.check(&["SADD", "ints", "1", "2", "3"]);
        d.check(&["SADD", "ints2", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27"]);
        d.check_unordered(&["SINTER", "big", "few"]);
        d.check_unordered(&["SINTER", "few", "big", "big"]);
        d.check(&["SINTER", "big", "few", "none"]);
        d.check(&["SINTER", "big", "few", "str"]);
        d.check(&["SINTER", "ints", "ints2"]);
        d.check(&["SINTERCARD", "2", "big", "few"]);
        d.check(&["SINTERCARD", "2", "few", "big", "LIMIT", "2"]);
        d.check(&["SINTERCARD", "3", "big", "few", "ints"]);
        d.check_unordered(&["SDIFF", "few", "big"]);
        d.check(&["SDIFF", "ints", "ints2", "big"]);
        d.check(&["SDIFF", "few", "few", "big"]);
        d.check(&["SINTERSTORE", "dst", "big", "few"]);
        d.check_unordered(&["SMEMBERS", "dst"]);
        d.check(&["SDIFFSTORE", "dst", "few", "big"]);
        d.check(&["SMEMBERS", "dst"]);
        d.check(&["SDIFFSTORE", "dst", "few", "big", "few"]);
        d.check(&["EXISTS", "dst"]);
        d.check(&["SUNIONSTORE", "dst", "few", "big"]);
        d.check(&["SCARD", "dst"]);
    });
}

#[test]
fn deleting_a_big_collection_frees_its_members_in_the_background() {
    let c = pgkv_tests::shared();
    let mut r = c.redis();
    let _: () = redis::cmd("SELECT").arg(11).query(&mut r).unwrap();
    for chunk in 0..20 {
        let mut cmd = redis::cmd("SADD");
        cmd.arg("big");
        for i in 0..1000 {
            cmd.arg(chunk * 1000 + i);
        }
        let _: i64 = cmd.query(&mut r).unwrap();
    }
    let id = c.psql("SELECT id FROM kv.keys WHERE db = 11 AND key = 'big'::bytea");
    let start = std::time::Instant::now();
    let n: i64 = redis::cmd("DEL").arg("big").query(&mut r).unwrap();
    assert_eq!(n, 1);
    assert!(start.elapsed() < std::time::Duration::from_millis(500), "DEL does not free members inline");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let left = || c.psql(&format!("SELECT (SELECT count(*) FROM kv.sets WHERE id = {id}) + (SELECT count(*) FROM kv.garbage WHERE id = {id})"));
    while left() != "0" {
        assert!(std::time::Instant::now() < deadline, "the sweep never freed the members");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn list_commands_match_redis() {
    Differential::each_protocol(13, |d| {
        d.check(&["RPUSH", "l", "a", "b", "c"]);
        d.check(&["LPUSH", "l", "z", "y"]);
        d.check(&["LRANGE", "l", "0", "-1"]);
        d.check(&["LLEN", "l"]);
        for (s, e) in [("0", "0"), ("-2", "-1"), ("1", "100"), ("5", "10"), ("-100", "1"), ("3", "1"), ("-1", "-3"), ("x", "1")] {
            d.check(&["LRANGE", "l", s, e]);
        }
        for i in ["0", "4", "5", "-1", "-5", "-6", "x"] {
            d.check(&["LINDEX", "l", i]);
        }
        d.check(&["LINDEX", "none", "x"]);
        d.check(&["LSET", "l", "1", "Y"]);
        d.check(&["LSET", "l", "-1", "C"]);
        d.check(&["LSET", "l", "10", "x"]);
        d.check(&["LSET", "none", "0", "x"]);
        d.check(&["LSET", "l", "x", "x"]);
        d.check(&["LRANGE", "l", "0", "-1"]);
        d.check(&["LPUSHX", "none", "a"]);
        d.check(&["RPUSHX", "l", "d", "e"]);
        d.check(&["LPOP", "l"]);
        d.check(&["RPOP", "l"]);
        d.check(&["LPOP", "l", "2"]);
        d.check(&["RPOP", "l", "2"]);
        d.check(&["LPOP", "l", "0"]);
        d.check(&["LPOP", "l", "-1"]);
        d.check(&["LPOP", "l", "x"]);
        d.check(&["LPOP", "l", "1", "2"]);
        d.check(&["LPOP", "none"]);
        d.check(&["LPOP", "none", "2"]);
        d.check(&["LPOP", "none", "0"]);
        d.check(&["RPOP", "l", "100"]);
        d.check(&["EXISTS", "l"]);
        d.check(&["RPUSH", "m", "a", "b", "a", "c", "a"]);
        d.check(&["LINSERT", "m", "BEFORE", "a", "X"]);
        d.check(&["LINSERT", "m", "AFTER", "c", "Y"]);
        d.check(&["LINSERT", "m", "AFTER", "nope", "Y"]);
        d.check(&["LINSERT", "m", "MIDDLE", "a", "Y"]);
        d.check(&["LINSERT", "none", "BEFORE", "a", "Y"]);
        d.check(&["LRANGE", "m", "0", "-1"]);
        d.check(&["LPOS", "m", "a"]);
        d.check(&["LPOS", "m", "a", "RANK", "2"]);
        d.check(&["LPOS", "m", "a", "RANK", "-1"]);
        d.check(&["LPOS", "m", "a", "COUNT", "0"]);
        d.check(&["LPOS", "m", "a", "COUNT", "2", "RANK", "-1"]);
        d.check(&["LPOS", "m", "a", "MAXLEN", "2"]);
        d.check(&["LPOS", "m", "a", "COUNT", "0", "MAXLEN", "4"]);
        d.check(&["LPOS", "m", "nope"]);
        d.check(&["LPOS", "m", "nope", "COUNT", "1"]);
        d.check(&["LPOS", "none", "a"]);
        d.check(&["LPOS", "none", "a", "COUNT", "1"]);
        d.check(&["LPOS", "m", "a", "RANK", "0"]);
        d.check(&["LPOS", "m", "a", "COUNT", "-1"]);
        d.check(&["LPOS", "m", "a", "MAXLEN", "-1"]);
        d.check(&["LPOS", "m", "a", "BOGUS", "1"]);
        d.check(&["LPOS", "m", "a", "RANK"]);
        d.check(&["LREM", "m", "1", "a"]);
        d.check(&["LREM", "m", "-1", "a"]);
        d.check(&["LRANGE", "m", "0", "-1"]);
        d.check(&["LREM", "m", "0", "a"]);
        d.check(&["LREM", "m", "0", "nope"]);
        d.check(&["LREM", "m", "x", "a"]);
        d.check(&["LRANGE", "m", "0", "-1"]);
        d.check(&["RPUSH", "t", "1", "2", "3", "4", "5", "6"]);
        d.check(&["LTRIM", "t", "1", "-2"]);
        d.check(&["LRANGE", "t", "0", "-1"]);
        d.check(&["LTRIM", "t", "1", "100"]);
        d.check(&["LRANGE", "t", "0", "-1"]);
        d.check(&["LPUSH", "t", "0"]);
        d.check(&["LRANGE", "t", "0", "-1"]);
        d.check(&["LTRIM", "t", "5", "1"]);
        d.check(&["EXISTS", "t"]);
        // Trims that keep everything, cut one end only, or both, with
        // pushes and pops at both ends in between (the head moves).
        d.check(&["RPUSH", "t", "a", "b", "c", "d", "e", "f", "g", "h"]);
        for (from, to) in [("0", "-1"), ("-100", "100"), ("0", "-2"), ("1", "-1"), ("2", "3"), ("0", "0")] {
            d.check(&["LPUSH", "t", "l1", "l2"]);
            d.check(&["RPUSH", "t", "r1"]);
            d.check(&["LPOP", "t"]);
            d.check(&["LTRIM", "t", from, to]);
            d.check(&["LRANGE", "t", "0", "-1"]);
            d.check(&["LINDEX", "t", "-1"]);
        }
        d.check(&["LTRIM", "none", "0", "1"]);
        d.check(&["RPUSH", "src", "a", "b", "c"]);
        d.check(&["LMOVE", "src", "dst", "LEFT", "RIGHT"]);
        d.check(&["LMOVE", "src", "dst", "RIGHT", "LEFT"]);
        d.check(&["LMOVE", "src", "src", "LEFT", "RIGHT"]);
        d.check(&["LRANGE", "src", "0", "-1"]);
        d.check(&["LRANGE", "dst", "0", "-1"]);
        d.check(&["LMOVE", "src", "dst", "UP", "LEFT"]);
        d.check(&["LMOVE", "none", "dst", "LEFT", "LEFT"]);
        d.check(&["RPOPLPUSH", "src", "dst"]);
        d.check(&["RPOPLPUSH", "src", "dst"]);
        d.check(&["EXISTS", "src"]);
        d.check(&["LRANGE", "dst", "0", "-1"]);
        d.check(&["LMPOP", "2", "none", "dst", "LEFT"]);
        d.check(&["LMPOP", "2", "none", "dst", "RIGHT", "COUNT", "2"]);
        d.check(&["LMPOP", "1", "none", "LEFT"]);
        d.check(&["LMPOP", "0", "dst", "LEFT"]);
        d.check(&["LMPOP", "3", "dst", "LEFT"]);
        d.check(&["LMPOP", "1", "dst", "UP"]);
        d.check(&["LMPOP", "1", "dst", "LEFT", "COUNT", "0"]);
        d.check(&["LMPOP", "1", "dst", "LEFT", "COUNT", "1", "COUNT", "1"]);
        d.check(&["LMPOP", "x", "dst", "LEFT"]);
        d.check(&["SET", "str", "v"]);
        for cmd in [
            vec!["LPUSH", "str", "a"],
            vec!["LPUSHX", "str", "a"],
            vec!["LRANGE", "str", "0", "-1"],
            vec!["LPOP", "str"],
            vec!["LLEN", "str"],
            vec!["LINDEX", "str", "0"],
            vec!["LMOVE", "str", "dst", "LEFT", "LEFT"],
            vec!["RPUSH", "ok", "x"],
            vec!["LMOVE", "ok", "str", "LEFT", "LEFT"],
            vec!["LRANGE", "ok", "0", "-1"],
            vec!["LMPOP", "2", "none", "str", "LEFT"],
        ] {
            d.check(&cmd);
        }
    });
}

#[test]
fn sorted_set_commands_match_redis() {
    Differential::each_protocol(14, |d| {
        d.check(&["ZADD", "z", "1", "a", "2", "b", "3", "c"]);
        d.check(&["ZADD", "z", "1.5", "a", "2", "b", "-inf", "min", "+inf", "max"]);
        d.check(&["ZADD", "z", "CH", "1", "a", "9", "new"]);
        d.check(&["ZADD", "z", "NX", "100", "a", "4", "d"]);
        d.check(&["ZADD", "z", "XX", "100", "nope", "5", "d"]);
        d.check(&["ZADD", "z", "GT", "1", "d", "6", "c"]);
        d.check(&["ZADD", "z", "LT", "CH", "0", "d", "60", "c"]);
        d.check(&["ZADD", "z", "XX", "NX", "1", "a"]);
        d.check(&["ZADD", "z", "GT", "LT", "1", "a"]);
        d.check(&["ZADD", "z", "NX", "GT", "1", "a"]);
        d.check(&["ZADD", "z", "INCR", "1", "a", "2", "b"]);
        d.check(&["ZADD", "z", "INCR", "2.5", "a"]);
        d.check(&["ZADD", "z", "INCR", "NX", "2.5", "a"]);
        d.check(&["ZADD", "z", "INCR", "XX", "1", "zz"]);
        d.check(&["ZADD", "z", "1"]);
        d.check(&["ZADD", "z"]);
        d.check(&["ZADD", "z", "x", "a"]);
        d.check(&["ZADD", "z", "nan", "a"]);
        d.check(&["ZADD", "z", "1", "a", "bad", "b"]);
        d.check(&["ZADD", "none", "XX", "1", "a"]);
        // Without conditions: same scores (nothing changes), CH, a member
        // named twice, -0 against 0, many members, some already there.
        d.check(&["ZADD", "z", "1.5", "a", "2", "b"]);
        d.check(&["ZADD", "z", "CH", "1.5", "a", "7", "b", "8", "b2"]);
        d.check(&["ZADD", "z", "CH", "1", "dup", "2", "dup"]);
        d.check(&["ZADD", "z", "1", "dup2", "1", "dup2"]);
        d.check(&["ZADD", "z", "0", "zero"]);
        d.check(&["ZADD", "z", "CH", "-0", "zero"]);
        d.check(&["ZADD", "z", "CH", "1", "m1", "2", "m2", "3", "m3", "4", "m4", "5", "m5", "6", "m6", "7", "m7", "8", "m8", "9", "a", "7", "b"]);
        d.check(&["ZADD", "z", "1", "m1", "2", "m2", "3", "m3", "4", "m4", "5", "m5", "6", "m6", "7", "m7", "8", "m8", "1", "m1"]);
        d.check(&["ZADD", "fresh", "CH", "3", "x", "1", "y"]);
        d.check(&["ZRANGE", "fresh", "0", "-1", "WITHSCORES"]);
        d.check(&["SET", "zstr", "v"]);
        d.check(&["ZADD", "zstr", "1", "x"]);
        d.check(&["ZADD", "zstr", "CH", "1", "x", "2", "y"]);
        d.check(&["EXISTS", "none"]);
        d.check(&["ZINCRBY", "z", "0.1", "a"]);
        d.check(&["ZINCRBY", "z", "x", "a"]);
        d.check(&["ZINCRBY", "z", "-inf", "max"]);
        d.check(&["ZINCRBY", "z", "1", "fresh"]);
        d.check(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]);
        d.check(&["ZCARD", "z"]);
        d.check(&["ZCARD", "none"]);
        d.check(&["ZSCORE", "z", "a"]);
        d.check(&["ZSCORE", "z", "min"]);
        d.check(&["ZSCORE", "z", "nope"]);
        d.check(&["ZMSCORE", "z", "a", "nope", "max"]);
        d.check(&["ZMSCORE", "none", "a"]);
        d.check(&["ZRANK", "z", "c"]);
        d.check(&["ZREVRANK", "z", "c"]);
        d.check(&["ZRANK", "z", "nope"]);
        d.check(&["ZRANK", "none", "a"]);
        for (lo, hi) in [("-inf", "+inf"), ("1", "3"), ("(1", "3"), ("1", "(3"), ("(1.5", "(4"), ("3", "1"), ("(2", "(2"), ("2", "2"), ("x", "1"), ("1", "(x"), ("(", "5"), ("", "5"), (" 1", "5"), ("1e400", "inf")] {
            d.check(&["ZCOUNT", "z", lo, hi]);
            d.check(&["ZRANGEBYSCORE", "z", lo, hi]);
            d.check(&["ZRANGEBYSCORE", "z", lo, hi, "WITHSCORES", "LIMIT", "1", "2"]);
            d.check(&["ZREVRANGEBYSCORE", "z", hi, lo, "WITHSCORES"]);
            d.check(&["ZRANGE", "z", lo, hi, "BYSCORE", "REV", "LIMIT", "0", "3"]);
        }
        for (s, e) in [("0", "-1"), ("1", "2"), ("-2", "-1"), ("5", "1"), ("-100", "100"), ("100", "200"), ("x", "1")] {
            d.check(&["ZRANGE", "z", s, e]);
            d.check(&["ZRANGE", "z", s, e, "REV", "WITHSCORES"]);
            d.check(&["ZREVRANGE", "z", s, e, "WITHSCORES"]);
        }
        d.check(&["ZRANGE", "z", "0", "1", "LIMIT", "0", "1"]);
        d.check(&["ZRANGE", "z", "0", "1", "BYLEX"]);
        d.check(&["ZRANGE", "z", "[a", "[b", "BYLEX", "WITHSCORES"]);
        d.check(&["ZRANGE", "z", "0", "1", "BOGUS"]);
        d.check(&["ZRANGE", "z", "0", "1", "REV", "REV"]);
        d.check(&["ZRANGEBYSCORE", "z", "0", "1", "BYSCORE"]);
        d.check(&["ZREVRANGE", "z", "0", "1", "REV"]);
        d.check(&["ZRANGEBYSCORE", "z", "-inf", "inf", "LIMIT", "-1", "2"]);
        d.check(&["ZRANGEBYSCORE", "z", "-inf", "inf", "LIMIT", "2", "-1"]);
        d.check(&["ZRANGEBYSCORE", "z", "-inf", "inf", "LIMIT", "2", "0"]);
        d.check(&["ZRANGEBYSCORE", "z", "-inf", "inf", "LIMIT", "x", "0"]);
        d.check(&["ZRANGE", "none", "0", "-1"]);
        d.check(&["ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e"]);
        for (lo, hi) in [("-", "+"), ("[b", "[d"), ("(b", "(d"), ("[b", "+"), ("-", "(c"), ("+", "-"), ("b", "d"), ("[d", "[b"), ("-x", "+")] {
            d.check(&["ZLEXCOUNT", "lex", lo, hi]);
            d.check(&["ZRANGEBYLEX", "lex", lo, hi]);
            d.check(&["ZRANGEBYLEX", "lex", lo, hi, "LIMIT", "1", "2"]);
            d.check(&["ZREVRANGEBYLEX", "lex", hi, lo]);
        }
        d.check(&["ZRANGESTORE", "dst", "z", "0", "2"]);
        d.check(&["ZRANGE", "dst", "0", "-1", "WITHSCORES"]);
        d.check(&["ZRANGESTORE", "dst", "z", "(1", "+inf", "BYSCORE", "LIMIT", "1", "2"]);
        d.check(&["ZRANGE", "dst", "0", "-1", "WITHSCORES"]);
        d.check(&["ZRANGESTORE", "dst", "z", "5", "1"]);
        d.check(&["EXISTS", "dst"]);
        d.check(&["ZRANGESTORE", "dst", "z", "0", "1", "WITHSCORES"]);
        d.check(&["ZREMRANGEBYLEX", "lex", "[b", "(d"]);
        d.check(&["ZRANGE", "lex", "0", "-1"]);
        d.check(&["ZREMRANGEBYRANK", "z", "0", "1"]);
        d.check(&["ZREMRANGEBYRANK", "z", "-1", "-1"]);
        d.check(&["ZREMRANGEBYRANK", "z", "5", "1"]);
        d.check(&["ZREMRANGEBYSCORE", "z", "(2", "5"]);
        d.check(&["ZREMRANGEBYSCORE", "z", "x", "5"]);
        d.check(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]);
        d.check(&["ZADD", "p", "1", "a", "2", "b", "3", "c", "4", "d"]);
        d.check(&["ZPOPMIN", "p"]);
        d.check(&["ZPOPMAX", "p"]);
        d.check(&["ZPOPMIN", "p", "1"]);
        d.check(&["ZPOPMAX", "p", "10"]);
        d.check(&["ZPOPMIN", "p"]);
        d.check(&["ZPOPMIN", "p", "-1"]);
        d.check(&["ZPOPMIN", "p", "x"]);
        d.check(&["ZPOPMIN", "p", "1", "2"]);
        d.check(&["ZADD", "p", "1", "a", "2", "b", "3", "c"]);
        d.check(&["ZPOPMIN", "p", "0"]);
        d.check(&["ZMPOP", "2", "none", "p", "MIN"]);
        d.check(&["ZMPOP", "1", "p", "MAX", "COUNT", "5"]);
        d.check(&["ZMPOP", "1", "p", "MAX"]);
        d.check(&["ZMPOP", "0", "p", "MAX"]);
        d.check(&["ZMPOP", "1", "p", "UP"]);
        d.check(&["ZMPOP", "1", "p", "MIN", "COUNT", "0"]);
        d.check(&["ZMPOP", "3", "p", "MIN"]);
        d.check(&["ZRANDMEMBER", "none"]);
        d.check(&["ZRANDMEMBER", "none", "2"]);
        d.check(&["ZRANDMEMBER", "lex", "0"]);
        d.check(&["ZRANDMEMBER", "lex", "1", "bogus"]);
        d.check_unordered(&["ZRANDMEMBER", "lex", "10", "WITHSCORES"]);
        d.check(&["ZSCAN", "lex", "0"]);
        d.check(&["ZSCAN", "lex", "0", "MATCH", "a*"]);
        d.check(&["ZADD", "s1", "1", "a", "2", "b", "3", "c"]);
        d.check(&["ZADD", "s2", "10", "b", "20", "c", "30", "d"]);
        d.check(&["SADD", "plain", "c", "d", "e"]);
        d.check(&["ZSCAN", "s1", "0"]);
        d.check(&["ZUNION", "2", "s1", "s2", "WITHSCORES"]);
        d.check(&["ZUNION", "3", "s1", "s2", "plain", "WITHSCORES"]);
        d.check(&["ZINTER", "2", "s1", "s2", "WITHSCORES"]);
        d.check(&["ZINTER", "2", "s1", "s2", "WEIGHTS", "2", "0.5", "WITHSCORES"]);
        d.check(&["ZINTER", "2", "s1", "s2", "AGGREGATE", "MAX", "WITHSCORES"]);
        d.check(&["ZUNION", "2", "s1", "s2", "AGGREGATE", "MIN", "WITHSCORES"]);
        d.check(&["ZDIFF", "2", "s1", "s2", "WITHSCORES"]);
        d.check(&["ZDIFF", "1", "s1"]);
        // -0 and 0 are one score: the member orders them (random seed 1212;
        // with a member this long, the scores come back as stored, -0 too).
        let long = "v".repeat(70);
        d.check(&["ZADD", "zero", "1e3", &long, "-0", "c", "0", "3", "0", "b"]);
        d.check(&["ZDIFF", "1", "zero"]);
        d.check(&["ZUNION", "2", "zero", "s1"]);
        d.check(&["ZINTER", "1", "zero"]);
        d.check(&["ZUNIONSTORE", "zero2", "1", "zero"]);
        d.check(&["ZRANGE", "zero2", "0", "-1"]);
        d.check(&["ZUNIONSTORE", "out", "2", "s1", "s2"]);
        d.check(&["ZRANGE", "out", "0", "-1", "WITHSCORES"]);
        d.check(&["ZINTERSTORE", "out", "2", "s1", "none"]);
        d.check(&["EXISTS", "out"]);
        d.check(&["ZDIFFSTORE", "out", "2", "s2", "s1"]);
        d.check(&["ZRANGE", "out", "0", "-1", "WITHSCORES"]);
        d.check(&["ZINTERCARD", "2", "s1", "s2"]);
        d.check(&["ZINTERCARD", "2", "s1", "s2", "LIMIT", "1"]);
        d.check(&["ZINTERCARD", "0", "s1"]);
        d.check(&["ZINTERCARD", "2", "s1", "s2", "LIMIT", "-1"]);
        d.check(&["ZUNION", "0", "s1"]);
        d.check(&["ZUNION", "3", "s1", "s2"]);
        d.check(&["ZUNION", "2", "s1", "s2", "WEIGHTS", "1"]);
        d.check(&["ZUNION", "2", "s1", "s2", "WEIGHTS", "1", "x"]);
        d.check(&["ZUNION", "2", "s1", "s2", "AGGREGATE", "AVG"]);
        d.check(&["ZDIFF", "2", "s1", "s2", "WEIGHTS", "1", "1"]);
        d.check(&["ZUNIONSTORE", "out", "2", "s1", "s2", "WITHSCORES"]);
        d.check(&["ZADD", "inf", "inf", "a", "-inf", "b"]);
        d.check(&["ZUNION", "2", "inf", "inf", "WITHSCORES"]);
        d.check(&["ZUNION", "2", "inf", "s1", "WEIGHTS", "0", "1", "WITHSCORES"]);
        d.check(&["SET", "str", "v"]);
        for cmd in [
            vec!["ZADD", "str", "1", "a"],
            vec!["ZSCORE", "str", "a"],
            vec!["ZRANGE", "str", "0", "-1"],
            vec!["ZCARD", "str"],
            vec!["ZUNION", "2", "s1", "str"],
            vec!["ZPOPMIN", "str"],
            vec!["ZINCRBY", "str", "1", "a"],
        ] {
            d.check(&cmd);
        }
        // A score of -0: a small zset (a listpack in Redis) reads it back
        // as 0, a large one (a skiplist) as -0; replies of ZINCRBY and ZADD
        // INCR show the sum as computed.
        d.check(&["ZADD", "nz", "-0", "a", "0", "b"]);
        d.check(&["ZINCRBY", "nz", "-0", "c"]);
        d.check(&["ZADD", "nz", "INCR", "-0", "d"]);
        d.check(&["ZADD", "nz", "NX", "-0", "e"]);
        d.check(&["ZRANGE", "nz", "0", "-1", "WITHSCORES"]);
        d.check(&["ZSCORE", "nz", "c"]);
        d.check(&["ZUNIONSTORE", "nz2", "1", "nz", "WEIGHTS", "-1"]);
        d.check(&["ZRANGESTORE", "nz3", "nz", "0", "-1"]);
        d.check(&["ZRANGE", "nz2", "0", "-1", "WITHSCORES"]);
        d.check(&["ZRANGE", "nz3", "0", "-1", "WITHSCORES"]);
        let mut big = vec!["ZADD", "bigz"];
        let members: Vec<String> = (0..130).map(|i| format!("m{i:03}")).collect();
        for m in &members {
            big.extend(["1", m.as_str()]);
        }
        d.check(&big);
        d.check(&["ZADD", "bigz", "-0", "neg"]);
        d.check(&["ZSCORE", "bigz", "neg"]);
        d.check(&["ZRANGE", "bigz", "0", "0", "WITHSCORES"]);
        d.check(&["ZADD", "longz", "-0", &"x".repeat(65)]);
        d.check(&["ZRANGE", "longz", "0", "-1", "WITHSCORES"]);
        // ZUNION/ZINTER combine their inputs smallest first (a stable sort
        // by size): sums of doubles show the order.
        d.check(&["ZADD", "o1", "0.1", "m", "1", "a1"]);
        d.check(&["ZADD", "o2", "0.2", "m", "1", "b1"]);
        d.check(&["ZADD", "o3", "0.3", "m"]);
        for keys in [["o1", "o2", "o3"], ["o2", "o1", "o3"], ["o3", "o2", "o1"]] {
            let mut cmd = vec!["ZUNION", "3"];
            cmd.extend(keys);
            cmd.push("WITHSCORES");
            d.check(&cmd);
            cmd[0] = "ZINTER";
            d.check(&cmd);
            d.check(&["ZINTERSTORE", "ostore", "3", keys[0], keys[1], keys[2]]);
            d.check(&["ZSCORE", "ostore", "m"]);
        }
        // 0 times infinity: NaN, which becomes 0 in a union and in an
        // intersection's first input, but never wins MIN or MAX, and makes
        // a sum 0.
        d.check(&["ZADD", "n1", "5", "m"]);
        d.check(&["ZADD", "n2", "inf", "m", "1", "x"]);
        for agg in ["SUM", "MIN", "MAX"] {
            d.check(&["ZINTER", "2", "n1", "n2", "WEIGHTS", "1", "0", "AGGREGATE", agg, "WITHSCORES"]);
            d.check(&["ZINTER", "2", "n2", "n1", "WEIGHTS", "0", "1", "AGGREGATE", agg, "WITHSCORES"]);
            d.check(&["ZUNION", "2", "n1", "n2", "WEIGHTS", "1", "0", "AGGREGATE", agg, "WITHSCORES"]);
            d.check(&["ZINTER", "2", "n1", "n2", "WEIGHTS", "-1", "0", "AGGREGATE", agg, "WITHSCORES"]);
        }
        // A small input against a large one, which pgkv probes rather than
        // reads (a set counts as scores of 1).
        let mut huge: Vec<String> = vec!["ZADD".into(), "hugez".into()];
        for i in 0..2000 {
            huge.push(format!("{}", i as f64 / 8.0));
            huge.push(format!("h{i}"));
        }
        d.check(&huge);
        d.check(&["ZADD", "tiny", "2", "h3", "1.5", "h1999", "7", "none"]);
        d.check(&["SADD", "tinys", "h4", "h8", "zz"]);
        d.check(&["ZINTER", "2", "hugez", "tiny", "WITHSCORES"]);
        d.check(&["ZINTER", "2", "hugez", "tiny", "WEIGHTS", "0.5", "3", "AGGREGATE", "MAX", "WITHSCORES"]);
        d.check(&["ZINTER", "3", "tiny", "hugez", "hugez", "WITHSCORES"]);
        d.check(&["ZINTER", "2", "hugez", "tinys", "WITHSCORES"]);
        d.check(&["ZINTER", "2", "hugez", "nokey"]);
        d.check(&["ZINTERCARD", "2", "hugez", "tiny"]);
        d.check(&["ZINTERCARD", "2", "tiny", "hugez", "LIMIT", "1"]);
        d.check(&["ZDIFF", "2", "tiny", "hugez", "WITHSCORES"]);
        d.check(&["ZDIFF", "3", "tinys", "nokey", "hugez", "WITHSCORES"]);
        d.check(&["ZINTERSTORE", "zdst", "2", "tiny", "hugez", "WEIGHTS", "2", "1"]);
        d.check(&["ZRANGE", "zdst", "0", "-1", "WITHSCORES"]);
        d.check(&["ZDIFFSTORE", "zdst", "2", "tiny", "hugez"]);
        d.check(&["ZRANGE", "zdst", "0", "-1", "WITHSCORES"]);
        // Ranks in a large set, counted from whichever end is nearer, with
        // ties on the score (the member decides) and infinities at the ends.
        d.check(&["ZADD", "hugez", "100", "tie", "100", "h800b", "-inf", "bottom", "inf", "top"]);
        for m in ["bottom", "h0", "h3", "h799", "h800", "h800b", "tie", "h801", "h1000", "h1998", "h1999", "top", "nope"] {
            d.check(&["ZRANK", "hugez", m]);
            d.check(&["ZREVRANK", "hugez", m]);
        }
        // Rank ranges near either end, read from the nearer one.
        for (start, stop) in [("0", "4"), ("-5", "-1"), ("1995", "2010"), ("-3", "100000"), ("1000", "1002"), ("-1000", "-998"), ("802", "801")] {
            d.check(&["ZRANGE", "hugez", start, stop, "WITHSCORES"]);
            d.check(&["ZRANGE", "hugez", start, stop, "REV", "WITHSCORES"]);
            d.check(&["ZREVRANGE", "hugez", start, stop]);
        }
        d.check(&["ZRANGESTORE", "zdst", "hugez", "-4", "-2"]);
        d.check(&["ZRANGE", "zdst", "0", "-1", "WITHSCORES"]);
        d.check(&["ZREMRANGEBYRANK", "hugez", "-3", "-2"]);
        d.check(&["ZREMRANGEBYRANK", "hugez", "1", "2"]);
        d.check(&["ZRANGE", "hugez", "-3", "-1", "WITHSCORES"]);
        d.check(&["ZRANGE", "hugez", "0", "3", "WITHSCORES"]);
        // Score ranges with LIMIT, read a page at a time; exclusive ends
        // at ties, at 0 and -0, and at the infinities.
        d.check(&["ZADD", "hugez", "0", "zero", "-0", "negzero", "100", "tie2"]);
        for (min, max) in [("-inf", "+inf"), ("(-inf", "(inf"), ("100", "100"), ("(100", "100.25"), ("99.875", "(100"), ("(0", "0.5"), ("-1", "(0"), ("0", "0"), ("(0", "(0"), ("-0", "(0.125"), ("inf", "inf"), ("(inf", "+inf"), ("-inf", "(-inf"), ("5", "4")] {
            for limit in [["0", "3"], ["2", "2"], ["0", "-1"], ["-1", "2"], ["1000", "5"]] {
                d.check(&["ZRANGEBYSCORE", "hugez", min, max, "WITHSCORES", "LIMIT", limit[0], limit[1]]);
                d.check(&["ZREVRANGEBYSCORE", "hugez", max, min, "LIMIT", limit[0], limit[1]]);
                d.check(&["ZRANGE", "hugez", max, min, "BYSCORE", "REV", "LIMIT", limit[0], limit[1]]);
            }
            d.check(&["ZRANGEBYSCORE", "hugez", min, max]);
            d.check(&["ZCOUNT", "hugez", min, max]);
        }
        d.check(&["ZRANGESTORE", "zdst", "hugez", "(99", "200", "BYSCORE", "LIMIT", "3", "4"]);
        d.check(&["ZRANGE", "zdst", "0", "-1", "WITHSCORES"]);
        d.check(&["ZREMRANGEBYSCORE", "hugez", "(100", "101"]);
        d.check(&["ZRANGEBYSCORE", "hugez", "99.5", "101.5", "WITHSCORES"]);
    });
}

#[test]
fn bitmap_commands_match_redis() {
    Differential::each_protocol(1, |d| {
        d.check(&["FLUSHDB"]);
        d.check(&["SETBIT", "b", "7", "1"]);
        d.check(&["SETBIT", "b", "7", "1"]);
        d.check(&["SETBIT", "b", "100", "1"]);
        d.check(&["SETBIT", "b", "100", "0"]);
        d.check(&["GET", "b"]);
        d.check(&["SETBIT", "b", "-1", "1"]);
        d.check(&["SETBIT", "b", "4294967296", "1"]);
        d.check(&["SETBIT", "b", "x", "1"]);
        d.check(&["SETBIT", "b", "1", "2"]);
        d.check(&["SETBIT", "b", "1", "x"]);
        d.check(&["SETBIT", "zero", "15", "0"]);
        d.check(&["GET", "zero"]);
        for i in ["0", "7", "8", "100", "99999"] {
            d.check(&["GETBIT", "b", i]);
        }
        d.check(&["GETBIT", "none", "3"]);
        d.check(&["GETBIT", "b", "-1"]);
        d.check(&["SET", "s", "foobar"]);
        d.check(&["BITCOUNT", "s"]);
        for (a, b) in [("0", "0"), ("1", "1"), ("-2", "-1"), ("5", "30"), ("-1", "-5"), ("3", "1"), ("-100", "100")] {
            d.check(&["BITCOUNT", "s", a, b]);
            d.check(&["BITCOUNT", "s", a, b, "BIT"]);
            d.check(&["BITCOUNT", "s", a, b, "BYTE"]);
        }
        d.check(&["BITCOUNT", "s", "1"]);
        d.check(&["BITCOUNT", "s", "1", "2", "BOGUS"]);
        d.check(&["BITCOUNT", "s", "x", "2"]);
        d.check(&["BITCOUNT", "none"]);
        d.check(&["BITCOUNT", "none", "1"]);
        d.check(&["SET", "p", "\u{0}\u{ff}\u{f0}"]);
        d.check(&["SET", "ones", "\u{ff}\u{ff}"]);
        d.check(&["SET", "empty", ""]);
        for k in ["p", "ones", "none", "empty"] {
            for bit in ["0", "1"] {
                d.check(&["BITPOS", k, bit]);
                d.check(&["BITPOS", k, bit, "1"]);
                d.check(&["BITPOS", k, bit, "0", "-1"]);
                d.check(&["BITPOS", k, bit, "2", "-1"]);
                d.check(&["BITPOS", k, bit, "7", "15", "BIT"]);
                d.check(&["BITPOS", k, bit, "9", "-1", "BIT"]);
                d.check(&["BITPOS", k, bit, "5", "1"]);
            }
        }
        d.check(&["BITPOS", "p", "2"]);
        d.check(&["BITPOS", "p", "1", "0", "1", "BOGUS"]);
        d.check(&["BITPOS", "p", "1", "0", "1", "BIT", "x"]);
        d.check(&["SET", "k1", "foobar"]);
        d.check(&["SET", "k2", "abcdef"]);
        d.check(&["SET", "k3", "xy"]);
        for op in ["AND", "OR", "XOR"] {
            d.check(&["BITOP", op, "dst", "k1", "k2", "k3"]);
            d.check(&["GET", "dst"]);
        }
        d.check(&["BITOP", "NOT", "dst", "k3"]);
        d.check(&["GET", "dst"]);
        d.check(&["BITOP", "NOT", "dst", "k1", "k2"]);
        d.check(&["BITOP", "NAND", "dst", "k1"]);
        d.check(&["BITOP", "AND", "dst", "none", "none2"]);
        d.check(&["EXISTS", "dst"]);
        d.check(&["BITFIELD", "bf", "SET", "u8", "0", "255", "GET", "u8", "0", "GET", "i8", "0"]);
        d.check(&["BITFIELD", "bf", "INCRBY", "u8", "0", "10", "OVERFLOW", "SAT", "INCRBY", "u8", "0", "300"]);
        d.check(&["BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "300", "GET", "u8", "0"]);
        d.check(&["BITFIELD", "bf", "SET", "i5", "#3", "-7", "GET", "i5", "#3", "INCRBY", "i5", "#3", "-100"]);
        d.check(&["BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "i5", "#3", "-100", "SET", "u4", "1", "-1"]);
        d.check(&["BITFIELD", "bf", "OVERFLOW", "WRAP", "SET", "u3", "2", "-1", "SET", "i64", "10", "-9223372036854775808"]);
        d.check(&["BITFIELD", "bf", "INCRBY", "i64", "10", "-1", "GET", "i64", "10", "GET", "u63", "3"]);
        d.check(&["GET", "bf"]);
        // Redis's overflow checks in int64 arithmetic, wrap-arounds and
        // all (SET of the lowest int64 into an i5 saturates to 15).
        let values = [
            "-9223372036854775808", "-9223372036854775807", "-4611686018427387904", "-17", "-16", "-1", "0", "1", "15", "16",
            "255", "256", "4611686018427387904", "9223372036854775806", "9223372036854775807",
        ];
        for t in ["i1", "i5", "i8", "i63", "i64", "u1", "u5", "u8", "u63"] {
            for policy in ["WRAP", "SAT", "FAIL"] {
                for v in values {
                    d.check(&["BITFIELD", "edge", "OVERFLOW", policy, "SET", t, "3", v, "GET", t, "3", "INCRBY", t, "3", v, "GET", t, "3"]);
                    d.check(&["BITFIELD", "edge", "OVERFLOW", policy, "INCRBY", t, "3", v, "INCRBY", t, "3", v]);
                }
            }
        }
        d.check(&["GET", "edge"]);
        d.check(&["BITFIELD", "bf", "GET", "u64", "0"]);
        d.check(&["BITFIELD", "bf", "GET", "i65", "0"]);
        d.check(&["BITFIELD", "bf", "GET", "x8", "0"]);
        d.check(&["BITFIELD", "bf", "GET", "u8", "-1"]);
        d.check(&["BITFIELD", "bf", "GET", "u8"]);
        d.check(&["BITFIELD", "bf", "OVERFLOW", "BOGUS"]);
        d.check(&["BITFIELD", "bf", "SET", "u8", "0", "x"]);
        d.check(&["BITFIELD", "bf", "BOGUS"]);
        d.check(&["BITFIELD", "none", "GET", "u8", "0"]);
        d.check(&["EXISTS", "none"]);
        d.check(&["BITFIELD", "bf"]);
        d.check(&["BITFIELD_RO", "bf", "GET", "u8", "0", "GET", "i4", "#1"]);
        d.check(&["BITFIELD_RO", "bf", "SET", "u8", "0", "1"]);
        d.check(&["BITFIELD_RO", "bf", "INCRBY", "u8", "0", "1"]);
        d.check(&["BITFIELD_RO", "bf"]);
        d.check(&["HSET", "h", "f", "v"]);
        for cmd in [
            vec!["SETBIT", "h", "1", "1"],
            vec!["GETBIT", "h", "1"],
            vec!["BITCOUNT", "h"],
            vec!["BITPOS", "h", "1"],
            vec!["BITOP", "AND", "dst", "h"],
            vec!["BITFIELD", "h", "GET", "u8", "0"],
        ] {
            d.check(&cmd);
        }
    });
}

#[test]
fn sort_and_lcs_match_redis() {
    Differential::each_protocol(3, |d| {
        d.check(&["FLUSHDB"]);
        d.check(&["RPUSH", "l", "3", "1", "10", "2", "-1.5"]);
        d.check(&["SORT", "l"]);
        d.check(&["SORT", "l", "DESC"]);
        d.check(&["SORT", "l", "ALPHA"]);
        d.check(&["SORT", "l", "ALPHA", "DESC", "LIMIT", "1", "2"]);
        for (o, c) in [("0", "0"), ("-1", "2"), ("3", "-1"), ("10", "2"), ("1", "100")] {
            d.check(&["SORT", "l", "LIMIT", o, c]);
        }
        d.check(&["SORT", "l", "LIMIT", "x", "1"]);
        d.check(&["SORT", "l", "BOGUS"]);
        d.check(&["RPUSH", "words", "banana", "apple", "cherry"]);
        d.check(&["SORT", "words"]);
        d.check(&["SORT", "words", "ALPHA"]);
        d.check(&["MSET", "w_banana", "2", "w_apple", "3", "w_cherry", "1"]);
        d.check(&["HSET", "h_banana", "name", "B"]);
        d.check(&["HSET", "h_apple", "name", "A"]);
        d.check(&["SORT", "words", "BY", "w_*"]);
        d.check(&["SORT", "words", "BY", "w_*", "DESC", "GET", "#", "GET", "w_*", "GET", "h_*->name", "GET", "nope_*"]);
        d.check(&["SORT", "words", "BY", "nosort"]);
        d.check(&["SORT", "words", "BY", "h_*->name", "ALPHA"]);
        d.check(&["SORT", "words", "BY", "w_*", "STORE", "dst"]);
        d.check(&["LRANGE", "dst", "0", "-1"]);
        d.check(&["SORT", "words", "BY", "w_*", "GET", "nope_*", "STORE", "dst"]);
        d.check(&["LRANGE", "dst", "0", "-1"]);
        d.check(&["SORT", "none", "STORE", "dst"]);
        d.check(&["EXISTS", "dst"]);
        d.check(&["SORT_RO", "words", "ALPHA"]);
        d.check(&["SORT_RO", "words", "STORE", "dst"]);
        d.check(&["SADD", "s", "5", "2", "9"]);
        d.check(&["SORT", "s"]);
        d.check(&["SORT", "s", "BY", "nosort", "STORE", "dst"]);
        d.check(&["LRANGE", "dst", "0", "-1"]);
        d.check(&["ZADD", "z", "1", "c", "2", "a", "3", "b"]);
        d.check(&["SORT", "z", "BY", "nosort"]);
        d.check(&["SORT", "z", "BY", "nosort", "DESC"]);
        d.check(&["SORT", "z", "ALPHA"]);
        d.check(&["SET", "str", "v"]);
        d.check(&["SORT", "str"]);
        d.check(&["RPUSH", "bad", "1", "x"]);
        d.check(&["SORT", "bad"]);
        d.check(&["SET", "a", "ohmytext"]);
        d.check(&["SET", "b", "mynewtext"]);
        d.check(&["LCS", "a", "b"]);
        d.check(&["LCS", "a", "b", "LEN"]);
        d.check(&["LCS", "a", "b", "IDX"]);
        d.check(&["LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"]);
        d.check(&["LCS", "a", "b", "IDX", "WITHMATCHLEN"]);
        d.check(&["LCS", "a", "b", "IDX", "LEN"]);
        d.check(&["LCS", "a", "b", "BOGUS"]);
        d.check(&["LCS", "a", "none"]);
        d.check(&["LCS", "a", "l"]);
        d.check(&["SET", "c", "abcabcabc"]);
        d.check(&["SET", "e", "cbacbaabc"]);
        d.check(&["LCS", "c", "e", "IDX", "WITHMATCHLEN"]);
    });
}

/// Iterates a member scan to the end, adding a member between calls.
fn full_scan(r: &mut redis::Connection, cmd: &str, key: &str, count: usize, grow: impl Fn(&mut redis::Connection, usize)) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let (next, items): (String, Vec<String>) = redis::cmd(cmd).arg(key).arg(&cursor).arg("COUNT").arg(count).query(r).unwrap();
        seen.extend(items);
        calls += 1;
        grow(r, calls);
        if next == "0" {
            return (seen, calls);
        }
        cursor = next;
    }
}

#[test]
fn member_scans_of_large_collections_have_real_cursors() {
    let c = pgkv_tests::shared();
    let mut r = c.redis();
    let _: () = redis::cmd("SELECT").arg(6).query(&mut r).unwrap();
    let _: () = redis::cmd("FLUSHDB").query(&mut r).unwrap();
    let mut hset = redis::cmd("HSET");
    hset.arg("bigh");
    let mut sadd = redis::cmd("SADD");
    sadd.arg("bigs");
    let mut zadd = redis::cmd("ZADD");
    zadd.arg("bigz");
    for i in 0..700 {
        hset.arg(format!("f{i}")).arg(i);
        sadd.arg(format!("m{i}"));
        zadd.arg(i % 13).arg(format!("z{i}"));
    }
    let _: i64 = hset.query(&mut r).unwrap();
    let _: i64 = sadd.query(&mut r).unwrap();
    let _: i64 = zadd.query(&mut r).unwrap();
    // Deleting a member mid-scan must not make the scan skip others.
    let (fields, calls) = full_scan(&mut r, "HSCAN", "bigh", 50, |r, n| {
        let _: i64 = redis::cmd("HSET").arg("bigh").arg(format!("late{n}")).arg(1).query(r).unwrap();
        if n == 3 {
            let _: i64 = redis::cmd("HDEL").arg("bigh").arg("f1").query(r).unwrap();
        }
    });
    let names: std::collections::HashSet<&String> = fields.iter().step_by(2).collect();
    for i in 2..700 {
        assert!(names.contains(&format!("f{i}")), "f{i} missing from HSCAN");
    }
    assert!(calls >= 700 / 50, "COUNT is honoured: {calls} calls");
    let (members, calls) = full_scan(&mut r, "SSCAN", "bigs", 64, |r, n| {
        let _: i64 = redis::cmd("SREM").arg("bigs").arg(format!("m{}", 699 - n)).query(r).unwrap();
    });
    let unique: std::collections::HashSet<&String> = members.iter().collect();
    assert_eq!(unique.len(), members.len(), "no member twice");
    for i in 0..600 {
        assert!(unique.contains(&format!("m{i}")), "m{i} missing from SSCAN");
    }
    assert!(calls > 5);
    let (pairs, _) = full_scan(&mut r, "ZSCAN", "bigz", 100, |_, _| {});
    assert_eq!(pairs.len(), 1400);
    for pair in pairs.chunks(2) {
        let i: usize = pair[0][1..].parse().unwrap();
        assert_eq!(pair[1], (i % 13).to_string(), "{pair:?}");
    }
    // ZSCAN walks the members' hashes, not their scores: members whose
    // scores change mid-scan, and members added and removed, do not make
    // it skip or repeat the others.
    let (pairs, calls) = full_scan(&mut r, "ZSCAN", "bigz", 40, |r, n| {
        let mut zadd = redis::cmd("ZADD");
        zadd.arg("bigz");
        for i in 0..700 {
            zadd.arg(1000 - i - n).arg(format!("z{i}"));
        }
        zadd.arg(n).arg(format!("late{n}"));
        let _: i64 = zadd.query(r).unwrap();
        let _: i64 = redis::cmd("ZREM").arg("bigz").arg(format!("late{}", n - 1)).query(r).unwrap();
    });
    let members: Vec<&String> = pairs.iter().step_by(2).collect();
    let unique: std::collections::HashSet<&&String> = members.iter().collect();
    assert_eq!(unique.len(), members.len(), "no member twice");
    for i in 0..700 {
        assert!(unique.contains(&&format!("z{i}")), "z{i} missing from ZSCAN");
    }
    assert!(calls >= 700 / 40, "COUNT is honoured: {calls} calls");
    let _: i64 = redis::cmd("DEL").arg("bigh").arg("bigs").arg("bigz").query(&mut r).unwrap();

    // A large zset is paged in the order of its members' hashes (kv.zsets's
    // primary key is (id, hash, member)), the cursor being the next hash:
    // members that share a hash come in one page, whatever COUNT says, so
    // a page never ends between them.
    let mut zadd = redis::cmd("ZADD");
    zadd.arg("hashz");
    for i in 0..300 {
        zadd.arg(i).arg(format!("h{i}"));
    }
    let _: i64 = zadd.query(&mut r).unwrap();
    let hash = |m: &str| -> i64 { c.psql(&format!("SELECT kv.zset_member_hash('{m}')")).trim().parse().unwrap() };
    // The hash a member is stored with is kv.zset_member_hash's.
    let stored = c.psql("SELECT z.hash FROM kv.zsets z JOIN kv.keys k USING (id) WHERE k.db = 6 AND k.key = 'hashz' AND z.member = 'h7'");
    assert_eq!(stored.trim().parse::<i64>().unwrap(), hash("h7"));
    // Three members given one hash (a collision XXH3 would take 2^31
    // members to make likely): ZSCAN finds them, COUNT 1 or not.
    c.psql(
        "UPDATE kv.zsets z SET hash = 4242 FROM kv.keys k \
         WHERE k.db = 6 AND k.key = 'hashz' AND z.id = k.id AND z.member IN ('h1', 'h2', 'h3')",
    );
    let mut cursor = "0".to_string();
    let mut pages = Vec::new();
    loop {
        let (next, items): (String, Vec<String>) = redis::cmd("ZSCAN").arg("hashz").arg(&cursor).arg("COUNT").arg(1).query(&mut r).unwrap();
        pages.push(items.into_iter().step_by(2).collect::<Vec<String>>());
        if next == "0" {
            break;
        }
        cursor = next;
    }
    let shared = pages.iter().find(|p| p.contains(&"h1".to_string())).expect("h1 in a page");
    assert_eq!(shared.len(), 3, "{shared:?}");
    assert!(shared.contains(&"h2".to_string()) && shared.contains(&"h3".to_string()), "{shared:?}");
    let all: std::collections::HashSet<String> = pages.into_iter().flatten().collect();
    assert_eq!(all.len(), 300);
    let _: i64 = redis::cmd("DEL").arg("hashz").query(&mut r).unwrap();
}

/// HSET, SADD and ZADD pipelined into one batch answer from the members
/// read ahead and queue their writes (`store::members`): new and existing
/// members, a member named twice, a collection created by the batch, a
/// statement (HDEL, SREM, ZREM) between queued writes, a field too long to
/// queue, and the insertion order HGETALL and SMEMBERS report afterwards.
#[test]
fn queued_member_writes_match_redis() {
    let long_field = "f".repeat(1500);
    let big_value = "v".repeat(20_000);
    // A database no other test of this file uses.
    Differential::each_protocol(7, |d| {
        d.check(&["HSET", "qm:h", "a", "1", "b", "2"]);
        d.check(&["SADD", "qm:s", "a", "b"]);
        d.check(&["ZADD", "qm:z", "1", "a", "2", "b"]);
        d.check(&["SET", "qm:str", "x"]);
        d.check_pipeline(&[
            vec!["HSET", "qm:h", "a", "10"],
            vec!["HSET", "qm:h", "c", "3"],
            vec!["HSET", "qm:h", "c", "30", "d", "4", "c", "31"],
            vec!["HMSET", "qm:h", "e", "5", "a", "11"],
            vec!["HGET", "qm:h", "c"],
            vec!["HLEN", "qm:h"],
            vec!["SADD", "qm:s", "b", "c"],
            vec!["SADD", "qm:s", "c", "d", "d", "e"],
            vec!["SCARD", "qm:s"],
            vec!["SISMEMBER", "qm:s", "d"],
            vec!["ZADD", "qm:z", "1", "a", "3", "b", "4", "c"],
            vec!["ZADD", "qm:z", "CH", "5", "c", "6", "d"],
            vec!["ZADD", "qm:z", "ch", "5", "c"],
            vec!["ZSCORE", "qm:z", "c"],
            vec!["ZADD", "qm:z", "NX", "9", "a", "9", "e"],
            vec!["ZADD", "qm:z", "INCR", "1", "a"],
            vec!["ZINCRBY", "qm:z", "2", "a"],
            vec!["ZINCRBY", "qm:z", "2", "new"],
            vec!["ZINCRBY", "qm:z", "-2", "new"],
            vec!["ZADD", "qm:z", "GT", "CH", "1", "a", "100", "b", "7", "x"],
            vec!["ZADD", "qm:z", "XX", "LT", "1", "a", "1", "y"],
            vec!["ZADD", "qm:z", "1", "dup", "2", "dup"],
            vec!["ZINCRBY", "qm:zinc", "5", "m"],
            vec!["ZINCRBY", "qm:zinc", "5", "m"],
            vec!["ZSCORE", "qm:zinc", "m"],
            vec!["ZCARD", "qm:z"],
            vec!["HSET", "qm:new", "x", "1", "y", "2"],
            vec!["HSET", "qm:new", "x", "3"],
            vec!["SADD", "qm:newset", "m", "m"],
            vec!["ZADD", "qm:newz", "1", "m", "0", "n"],
            vec!["ZADD", "qm:newz", "0", "n"],
            vec!["HSET", "qm:str", "a", "1"],
            vec!["SADD", "qm:str", "a"],
            vec!["ZADD", "qm:str", "1", "a"],
        ]);
        d.check(&["HGETALL", "qm:h"]);
        d.check(&["HGETALL", "qm:new"]);
        d.check(&["SMEMBERS", "qm:newset"]);
        d.check(&["ZRANGE", "qm:z", "0", "-1", "WITHSCORES"]);
        d.check(&["ZRANGE", "qm:newz", "0", "-1", "WITHSCORES"]);
        d.check(&["ZRANGE", "qm:zinc", "0", "-1", "WITHSCORES"]);
        // The members' read-ahead answers a member on a page the visibility
        // map has all-visible from the index alone: vacuum, so that the
        // probes below find the members written above on such pages.
        // Each in a batch of its own: a set member wrongly thought absent
        // would fail its insert, and the batch's re-run would hide it.
        pgkv_tests::shared().psql("VACUUM kv.hashes, kv.sets, kv.zsets");
        d.check(&["HSET", "qm:h", "b", "20", "zz", "1"]);
        d.check(&["SADD", "qm:s", "b", "zz"]);
        // Statements between queued writes, and fields and values written
        // at once.
        d.check_pipeline(&[
            vec!["HSET", "qm:h", "f", "6"],
            vec!["HDEL", "qm:h", "f", "a"],
            vec!["HSET", "qm:h", "a", "12", "f", "7"],
            vec!["HSET", "qm:h", "g", "8"],
            // Redis keeps a hash with a long field or value unordered.
            vec!["HSET", "qm:hl", "a", "1", long_field.as_str(), "long"],
            vec!["HSET", "qm:hl", "big", big_value.as_str(), "b", "2"],
            vec!["HSET", "qm:hl", "b", "3", "c", "4"],
            vec!["HGET", "qm:hl", long_field.as_str()],
            vec!["HSTRLEN", "qm:hl", "big"],
            vec!["HMGET", "qm:hl", "a", "b", "c"],
            vec!["HLEN", "qm:hl"],
            vec!["SADD", "qm:s", "f"],
            vec!["SREM", "qm:s", "f", "a"],
            vec!["SADD", "qm:s", "a", "f", "g"],
            vec!["ZADD", "qm:z", "7", "f"],
            vec!["ZREM", "qm:z", "f", "a"],
            vec!["ZADD", "qm:z", "8", "a", "9", "f"],
            vec!["DEL", "qm:new"],
            vec!["HSET", "qm:new", "z", "1"],
            vec!["HLEN", "qm:h"],
            vec!["SCARD", "qm:s"],
            vec!["ZCARD", "qm:z"],
        ]);
        d.check(&["HGETALL", "qm:h"]);
        d.check(&["HGETALL", "qm:new"]);
        d.check_unordered(&["SMEMBERS", "qm:s"]);
        d.check(&["ZRANGE", "qm:z", "0", "-1", "WITHSCORES"]);
        // In MULTI, and queued writes a later read in the batch must see.
        d.check(&["MULTI"]);
        d.check(&["HSET", "qm:m", "a", "1"]);
        d.check(&["SADD", "qm:ms", "a"]);
        d.check(&["HSET", "qm:m", "a", "2", "b", "3"]);
        d.check(&["HGETALL", "qm:m"]);
        d.check(&["SMEMBERS", "qm:ms"]);
        d.check(&["EXEC"]);
    });
}

/// Elements, members and values big enough that PostgreSQL stores them
/// compressed (in the row, or out of line) or out of line uncompressed
/// come back whole from every read: the range reads (LRANGE, HGETALL,
/// SMEMBERS, ZRANGE, the SCANs), which read them in place and detoast only
/// such values, and the single reads.
#[test]
fn compressed_and_out_of_line_values_read_back_whole() {
    let c = pgkv_tests::shared();
    let mut r = c.redis();
    let _: () = redis::cmd("SELECT").arg(12).query(&mut r).unwrap();
    let _: () = redis::cmd("FLUSHDB").query(&mut r).unwrap();
    // Incompressible (xorshift bytes): out of line, uncompressed.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let random: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    // Compressible: compressed, out of line (200 kB) or in the row (6 kB,
    // small enough compressed for a member's index entry).
    let long: Vec<u8> = (0..200 * 1024).map(|i| b"pgkv"[i % 4] ^ (i / 4096) as u8).collect();
    let member: Vec<u8> = (0..6 * 1024).map(|i| b"member"[i % 6] ^ (i / 1024) as u8).collect();
    let small = b"small".to_vec();
    let values = [small.clone(), random.clone(), long.clone(), member.clone()];

    let _: i64 = redis::cmd("RPUSH").arg("l").arg(&values[..]).query(&mut r).unwrap();
    let got: Vec<Vec<u8>> = redis::cmd("LRANGE").arg("l").arg(0).arg(-1).query(&mut r).unwrap();
    assert!(got == values, "LRANGE");
    let got: Vec<u8> = redis::cmd("LINDEX").arg("l").arg(2).query(&mut r).unwrap();
    assert!(got == long, "LINDEX");

    let _: i64 = redis::cmd("HSET").arg("h").arg("a").arg(&random).arg("b").arg(&long).arg(&member).arg(&small).query(&mut r).unwrap();
    let got: Vec<Vec<u8>> = redis::cmd("HGETALL").arg("h").query(&mut r).unwrap();
    let want = vec![b"a".to_vec(), random.clone(), b"b".to_vec(), long.clone(), member.clone(), small.clone()];
    assert!(got == want, "HGETALL");
    let (_, got): (String, Vec<Vec<u8>>) = redis::cmd("HSCAN").arg("h").arg(0).query(&mut r).unwrap();
    assert!(got == want, "HSCAN");
    let got: Vec<u8> = redis::cmd("HGET").arg("h").arg(&member).query(&mut r).unwrap();
    assert!(got == small, "HGET by a compressed field");

    let _: i64 = redis::cmd("SADD").arg("s").arg(&member).arg(&small).query(&mut r).unwrap();
    let mut got: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg("s").query(&mut r).unwrap();
    got.sort();
    let mut want = vec![member.clone(), small.clone()];
    want.sort();
    assert!(got == want, "SMEMBERS");
    let (_, mut got): (String, Vec<Vec<u8>>) = redis::cmd("SSCAN").arg("s").arg(0).query(&mut r).unwrap();
    got.sort();
    assert!(got == want, "SSCAN");
    let is: bool = redis::cmd("SISMEMBER").arg("s").arg(&member).query(&mut r).unwrap();
    assert!(is, "SISMEMBER of a compressed member");

    let _: i64 = redis::cmd("ZADD").arg("z").arg(1).arg(&member).arg(2).arg(&small).query(&mut r).unwrap();
    let got: Vec<Vec<u8>> = redis::cmd("ZRANGE").arg("z").arg(0).arg(-1).query(&mut r).unwrap();
    assert!(got == vec![member.clone(), small.clone()], "ZRANGE");
    let got: Vec<Vec<u8>> = redis::cmd("ZRANGEBYSCORE").arg("z").arg("(0").arg(1).query(&mut r).unwrap();
    assert!(got == vec![member.clone()], "ZRANGEBYSCORE");
    let (_, mut got): (String, Vec<Vec<u8>>) = redis::cmd("ZSCAN").arg("z").arg(0).query(&mut r).unwrap();
    got.sort();
    let mut want = vec![member.clone(), b"1".to_vec(), small.clone(), b"2".to_vec()];
    want.sort();
    assert!(got == want, "ZSCAN");

    let _: () = redis::cmd("SET").arg("str").arg(&long).query(&mut r).unwrap();
    let got: i64 = redis::cmd("APPEND").arg("str").arg("!").query(&mut r).unwrap();
    assert_eq!(got as usize, long.len() + 1);
    let got: Vec<u8> = redis::cmd("GETRANGE").arg("str").arg(-3).arg(-1).query(&mut r).unwrap();
    assert_eq!(got, [&long[long.len() - 2..], b"!"].concat());

    // The values are stored as the test means them to be.
    let mut sql = c.sql();
    let row = sql
        .query_one(
            "SELECT count(*) FILTER (WHERE pg_column_compression(l.value) IS NOT NULL),
                    count(*) FILTER (WHERE pg_column_compression(l.value) IS NULL AND length(l.value) > 60000),
                    (SELECT count(*) FROM kv.sets s JOIN kv.keys k ON k.id = s.id
                      WHERE k.db = 12 AND pg_column_compression(s.member) IS NOT NULL)
               FROM kv.lists l JOIN kv.keys k ON k.id = l.id WHERE k.db = 12 AND k.key = 'l'",
            &[],
        )
        .unwrap();
    let (compressed, out_of_line, compressed_members) = (row.get::<_, i64>(0), row.get::<_, i64>(1), row.get::<_, i64>(2));
    assert!(compressed >= 1 && out_of_line == 1 && compressed_members == 1, "{compressed} {out_of_line} {compressed_members}");
}

/// HRANDFIELD, SRANDMEMBER, SPOP and ZRANDMEMBER on collections too large
/// to read whole: every member is equally likely however removals left the
/// numbering (a sampler that took the member after a random number would
/// pick the one after the gap below 1500 times as often), counts behave as
/// in Redis, and the picks come through the index rather than a read of
/// the whole collection.
#[test]
fn random_members_of_large_collections_are_uniform_and_read_through_the_index() {
    use std::collections::{HashMap, HashSet};
    let c = pgkv_tests::shared();
    let mut r = c.redis();
    let _: () = redis::cmd("SELECT").arg(15).query(&mut r).unwrap();
    let _: i64 = redis::cmd("DEL").arg(&["rnd:s", "rnd:h", "rnd:z"]).query(&mut r).unwrap();
    let mut add = (redis::cmd("SADD"), redis::cmd("HSET"), redis::cmd("ZADD"));
    add.0.arg("rnd:s");
    add.1.arg("rnd:h");
    add.2.arg("rnd:z");
    for i in 0..3000 {
        add.0.arg(format!("m{i}"));
        add.1.arg(format!("m{i}")).arg(i);
        add.2.arg(i).arg(format!("m{i}"));
    }
    let _: (i64, i64, i64) = redis::pipe().add_command(add.0).add_command(add.1).add_command(add.2).query(&mut r).unwrap();
    // One gap of 1500 members, then a stretch where one in seven stays.
    let gone: Vec<String> = (500..2500).filter(|i| *i < 2000 || i % 7 != 0).map(|i| format!("m{i}")).collect();
    for cmd in ["SREM", "HDEL", "ZREM"] {
        let key = format!("rnd:{}", &cmd[..1].to_lowercase());
        let _: i64 = redis::cmd(cmd).arg(&key).arg(&gone).query(&mut r).unwrap();
    }
    let kept: HashSet<String> = (0..3000).map(|i| format!("m{i}")).filter(|m| !gone.contains(m)).collect();
    let n = kept.len();
    assert_eq!(n, 1072);

    for (cmd, key) in [("SRANDMEMBER", "rnd:s"), ("HRANDFIELD", "rnd:h"), ("ZRANDMEMBER", "rnd:z")] {
        let draws = 30_000;
        let mut seen: HashMap<String, usize> = HashMap::new();
        for _ in 0..draws / 1000 {
            let mut p = redis::pipe();
            for _ in 0..1000 {
                p.cmd(cmd).arg(key);
            }
            let picks: Vec<String> = p.query(&mut r).unwrap();
            for m in picks {
                assert!(kept.contains(&m), "{cmd} picked {m}, not a member");
                *seen.entry(m).or_default() += 1;
            }
        }
        assert_eq!(seen.len(), n, "{cmd}: every member is picked (28 times each, on average)");
        // Pearson's chi-square against uniform: about n - 1 (sd 46) if
        // uniform; a sampler biased towards the member after the gap gives
        // far more.
        let expected = draws as f64 / n as f64;
        let chi2: f64 = seen.values().map(|&o| (o as f64 - expected).powi(2) / expected).sum();
        let df = (n - 1) as f64;
        assert!(chi2 < df + 8.0 * (2.0 * df).sqrt(), "{cmd}: chi-square {chi2:.0} for {df} degrees of freedom");
    }

    // Counts: positive ones distinct, negative ones may repeat.
    let picked: Vec<String> = redis::cmd("SRANDMEMBER").arg("rnd:s").arg(100).query(&mut r).unwrap();
    assert_eq!(picked.iter().collect::<HashSet<_>>().len(), 100);
    assert!(picked.iter().all(|m| kept.contains(m)));
    let picked: Vec<String> = redis::cmd("SRANDMEMBER").arg("rnd:s").arg(-300).query(&mut r).unwrap();
    assert_eq!(picked.len(), 300);
    assert!(picked.iter().all(|m| kept.contains(m)));
    let pairs: Vec<(String, i64)> = redis::cmd("HRANDFIELD").arg("rnd:h").arg(50).arg("WITHVALUES").query(&mut r).unwrap();
    assert_eq!(pairs.iter().map(|(f, _)| f).collect::<HashSet<_>>().len(), 50);
    assert!(pairs.iter().all(|(f, v)| kept.contains(f) && *f == format!("m{v}")));
    let pairs: Vec<(String, f64)> = redis::cmd("ZRANDMEMBER").arg("rnd:z").arg(-80).arg("WITHSCORES").query(&mut r).unwrap();
    assert_eq!(pairs.len(), 80);
    assert!(pairs.iter().all(|(m, s)| kept.contains(m) && *m == format!("m{s}")));
    let pairs: Vec<(String, f64)> = redis::cmd("ZRANDMEMBER").arg("rnd:z").arg(60).arg("WITHSCORES").query(&mut r).unwrap();
    assert_eq!(pairs.iter().map(|(m, _)| m).collect::<HashSet<_>>().len(), 60);

    // SPOP takes distinct members out.
    let popped: Vec<String> = redis::cmd("SPOP").arg("rnd:s").arg(100).query(&mut r).unwrap();
    assert_eq!(popped.iter().collect::<HashSet<_>>().len(), 100);
    let one: String = redis::cmd("SPOP").arg("rnd:s").query(&mut r).unwrap();
    assert!(!popped.contains(&one) && kept.contains(&one));
    let card: i64 = redis::cmd("SCARD").arg("rnd:s").query(&mut r).unwrap();
    assert_eq!(card, n as i64 - 101);
    let still: Vec<bool> = redis::cmd("SMISMEMBER").arg("rnd:s").arg(&popped).arg(&one).query(&mut r).unwrap();
    assert!(still.iter().all(|b| !b));

    // Through the index: 200 picks from SQL fetch a few rows each, where a
    // whole read would fetch all 971 every time; and an intersection or
    // difference with the large set probes it for the small one's members.
    let mut sql = c.sql();
    let mut t = sql.transaction().unwrap();
    t.batch_execute("SET LOCAL pgkv.sql_db = 15").unwrap();
    for (table, call) in [("sets", "SRANDMEMBER', 'rnd:s"), ("hashes", "HRANDFIELD', 'rnd:h"), ("zsets", "ZRANDMEMBER', 'rnd:z")] {
        let before = rows_fetched(&mut t, table);
        let row = t.query_one(&format!("SELECT count(kv.call('{call}')) FROM generate_series(1, 200)"), &[]).unwrap();
        assert_eq!(row.get::<_, i64>(0), 200);
        let rows = rows_fetched(&mut t, table) - before;
        assert!(rows > 0 && rows < 200 * 40, "{table}: 200 picks fetched {rows} rows");
    }
    t.batch_execute("SELECT kv.call('SADD', 'rnd:few', 'm1', 'm2', 'm3', 'm2002', 'x'); SELECT kv.call('ZADD', 'rnd:fewz', '1', 'm1', '1', 'm2', '1', 'x')").unwrap();
    let before = rows_fetched(&mut t, "zsets");
    let got: String = t.query_one("SELECT kv.call('ZINTER', '2', 'rnd:z', 'rnd:fewz', 'WITHSCORES')::text", &[]).unwrap().get(0);
    let rows = rows_fetched(&mut t, "zsets") - before;
    assert!(rows <= 20 && got.contains("m2"), "ZINTER: {rows} rows fetched for 3 members: {got}");
    // A rank near either end counts the few members on that side.
    let returned = |t: &mut postgres::Transaction| -> i64 {
        let q = "SELECT pg_stat_get_xact_tuples_returned('kv.zsets_by_score'::regclass) + pg_stat_get_xact_tuples_returned('kv.zsets_pkey'::regclass)";
        t.query_one(q, &[]).unwrap().get(0)
    };
    let before = returned(&mut t);
    let ranks: String = t
        .query_one("SELECT format('%s %s %s', kv.call('ZRANK', 'rnd:z', 'm2999'), kv.call('ZREVRANK', 'rnd:z', 'm0'), kv.call('ZREVRANK', 'rnd:z', 'm2998'))", &[])
        .unwrap()
        .get(0);
    assert_eq!(ranks, format!("{} {} 1", n - 1, n - 1));
    let last: String = t.query_one("SELECT kv.call('ZRANGE', 'rnd:z', '-2', '-1')::text", &[]).unwrap().get(0);
    assert_eq!(last, r#"["m2998", "m2999"]"#);
    let page: String = t.query_one("SELECT kv.call('ZRANGEBYSCORE', 'rnd:z', '(0', '+inf', 'LIMIT', '1', '2')::text", &[]).unwrap().get(0);
    assert_eq!(page, r#"["m2", "m3"]"#);
    let counts: String = t
        .query_one("SELECT format('%s %s', kv.call('ZCOUNT', 'rnd:z', '-inf', '+inf'), kv.call('ZCOUNT', 'rnd:z', '(0', '2998'))", &[])
        .unwrap()
        .get(0);
    assert_eq!(counts, format!("{n} {}", n - 2));
    let entries = returned(&mut t) - before;
    assert!(entries <= 50, "three ranks, a rank range, a score page and two wide counts read {entries} index entries of {n}");
    for (call, want) in [("SINTER', 'rnd:s', 'rnd:few", None), ("SINTERCARD', '2', 'rnd:s', 'rnd:few", None), ("SDIFF', 'rnd:few', 'rnd:s", Some("x"))] {
        let before = rows_fetched(&mut t, "sets");
        let got: String = t.query_one(&format!("SELECT kv.call('{call}')::text"), &[]).unwrap().get(0);
        let rows = rows_fetched(&mut t, "sets") - before;
        assert!(rows <= 20, "{call}: {rows} rows fetched for 5 members");
        if let Some(want) = want {
            assert!(got.contains(want), "{call}: {got}");
        }
    }
    t.commit().unwrap();
}

/// Lex ranges (ZRANGEBYLEX, ZREVRANGEBYLEX, ZRANGE BYLEX, ZRANGESTORE,
/// ZLEXCOUNT, ZREMRANGEBYLEX) of a sorted set too large to read whole,
/// whose members share a score as Redis's lex ranges require: the replies
/// match Redis, and a LIMIT page reads its members from the index rather
/// than the whole set.
#[test]
fn lex_ranges_of_large_sorted_sets_match_redis_and_read_only_their_members() {
    Differential::each_protocol(8, |d| {
        // 3000 members sharing score 0 (an autocomplete index), with
        // prefixes of one another and bytes above 0x7f.
        let mut zadd: Vec<Vec<u8>> = vec![b"ZADD".to_vec(), b"lex".to_vec()];
        for i in 0..3000 {
            zadd.push(b"0".to_vec());
            zadd.push(format!("w{:x}", i * 7919 % 3001).into_bytes());
        }
        zadd.extend([b"0".to_vec(), b"w".to_vec(), b"0".to_vec(), b"w\xff".to_vec(), b"0".to_vec(), b"".to_vec()]);
        d.check(&zadd);
        for (min, max) in [("-", "+"), ("[w1", "(w2"), ("(w1", "[w1ff"), ("[w", "[w"), ("(w", "+"), ("-", "(w"), ("[wa", "[w9"), ("+", "-"), ("[x", "+")] {
            d.check(&["ZRANGEBYLEX", "lex", min, max, "LIMIT", "0", "10"]);
            d.check(&["ZRANGEBYLEX", "lex", min, max, "LIMIT", "25", "5"]);
            d.check(&["ZREVRANGEBYLEX", "lex", max, min, "LIMIT", "3", "7"]);
            d.check(&["ZRANGE", "lex", min, max, "BYLEX", "LIMIT", "100", "-1"]);
            d.check(&["ZRANGE", "lex", max, min, "BYLEX", "REV", "LIMIT", "0", "4"]);
            d.check(&["ZRANGEBYLEX", "lex", min, max, "LIMIT", "-1", "5"]);
            d.check(&["ZLEXCOUNT", "lex", min, max]);
        }
        d.check(&["ZRANGEBYLEX", "lex", "[w1", "[w2"]);
        d.check(&["ZRANGESTORE", "dst", "lex", "[w2", "(w3", "BYLEX", "LIMIT", "1", "20"]);
        d.check(&["ZRANGE", "dst", "0", "-1", "WITHSCORES"]);
        d.check(&["ZREMRANGEBYLEX", "lex", "[w10", "(w2"]);
        d.check(&["ZLEXCOUNT", "lex", "-", "+"]);
        d.check(&["ZRANGEBYLEX", "lex", "[w0", "+", "LIMIT", "0", "30"]);
        // One member with another score: Redis leaves lex ranges undefined
        // then; pgkv still answers from the whole set.
        d.check(&["ZADD", "lex", "1", "zz"]);
        d.check(&["ZLEXCOUNT", "lex", "[zz", "[zz"]);
        d.check(&["ZLEXCOUNT", "lex", "-", "+"]);
        d.check(&["ZADD", "lex", "-1", "aa"]);
        d.check(&["ZLEXCOUNT", "lex", "-", "+"]);
        d.check(&["ZLEXCOUNT", "lex", "+", "-"]);
    });

    let c = pgkv_tests::shared();
    let mut sql = c.sql();
    let mut t = sql.transaction().unwrap();
    t.batch_execute("SET LOCAL pgkv.sql_db = 8; SELECT kv.call('DEL', 'lex'); SELECT kv.call('ZREM', 'lex', 'zz')").unwrap();
    t.batch_execute(
        "SELECT kv.call(VARIADIC ARRAY['ZADD', 'lex'] || \
         (SELECT array_agg(x ORDER BY i, x) FROM generate_series(0, 2999) i, LATERAL (VALUES ('0', 0), (format('m%s', lpad(i::text, 5, '0')), 1)) v(x, o)))",
    )
    .unwrap();
    let before = rows_fetched(&mut t, "zsets");
    let page = t.query_one("SELECT kv.call('ZRANGEBYLEX', 'lex', '[m01000', '+', 'LIMIT', '0', '10')::text", &[]).unwrap();
    let page: String = page.get(0);
    assert!(page.contains("m01000") && page.contains("m01009") && !page.contains("m01010"), "{page}");
    let rows = rows_fetched(&mut t, "zsets") - before;
    assert!(rows <= 20, "a page of 10 fetched {rows} rows of 3000");
    t.rollback().unwrap();
}

/// Rows of kv.`table` this transaction has fetched so far, through an
/// index or a sequential scan.
fn rows_fetched(t: &mut postgres::Transaction, table: &str) -> i64 {
    let q = format!("SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0) FROM pg_stat_xact_user_tables WHERE relid = 'kv.{table}'::regclass");
    t.query_one(&q, &[]).unwrap().get(0)
}
