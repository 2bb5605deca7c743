//! Differential tests of the keyspace commands against redis-server 7.0,
//! in RESP2 and RESP3.

use pgkv_tests::{Differential, PgCluster, RedisServer};

#[test]
fn type_rename_copy_move_match_redis() {
    Differential::each_protocol(1, |d| {
        d.check(&["SET", "s", "v"]);
        d.check(&["HSET", "h", "f", "v"]);
        d.check(&["SADD", "t", "m"]);
        for k in ["s", "h", "t", "none"] {
            d.check(&["TYPE", k]);
        }
        d.check(&["RENAME", "none", "x"]);
        d.check(&["RENAMENX", "none", "x"]);
        d.check(&["RENAME", "s", "s"]);
        d.check(&["RENAMENX", "s", "s"]);
        d.check(&["RENAME", "s", "s2"]);
        d.check(&["GET", "s2"]);
        d.check(&["EXISTS", "s"]);
        d.check(&["RENAMENX", "s2", "h"]);
        d.check(&["RENAME", "s2", "h"]);
        d.check(&["TYPE", "h"]);
        d.check(&["GET", "h"]);
        d.check(&["SET", "c", "1", "EX", "1000"]);
        d.check(&["COPY", "c", "c2"]);
        d.check(&["COPY", "c", "c2"]);
        d.check(&["COPY", "c", "c"]);
        d.check(&["COPY", "c", "c2", "REPLACE"]);
        d.check(&["TTL", "c2"]);
        d.check(&["COPY", "t", "t2"]);
        d.check(&["SMEMBERS", "t2"]);
        d.check(&["COPY", "c", "c", "DB", "9"]);
        d.check(&["COPY", "c", "c", "DB", "16"]);
        d.check(&["COPY", "c", "c", "DB", "x"]);
        d.check(&["COPY", "c", "c", "DB"]);
        d.check(&["COPY", "c", "c3", "BOGUS"]);
        d.check(&["COPY", "none", "c4"]);
        d.check(&["MOVE", "c", "1"]);
        d.check(&["MOVE", "c", "16"]);
        d.check(&["MOVE", "c", "-1"]);
        d.check(&["MOVE", "c", "abc"]);
        d.check(&["MOVE", "c", "9"]);
        d.check(&["MOVE", "none", "9"]);
        d.check(&["EXISTS", "c"]);
        d.check(&["SELECT", "9"]);
        d.check(&["GET", "c"]);
        d.check(&["MOVE", "c", "1"]);
        d.check(&["SELECT", "1"]);
        d.check(&["DBSIZE"]);
        d.check(&["TOUCH", "c", "h", "none", "h"]);
        d.check(&["UNLINK", "c", "h", "none"]);
        d.check(&["DBSIZE"]);
        d.check(&["SELECT", "9"]);
        d.check(&["FLUSHDB"]);
        d.check(&["SELECT", "1"]);
    });
}

#[test]
fn keys_scan_and_patterns_match_redis() {
    Differential::each_protocol(6, |d| {
        for k in ["user:1", "user:2", "user:10", "admin", "a*b", "a?c", "", "hello", "hallo", "hxllo", "h\\llo"] {
            d.check(&["SET", k, "v"]);
        }
        d.check(&["SADD", "user:set", "x"]);
        for p in ["*", "user:*", "user:?", "h[ae]llo", "h[^e]llo", "h[a-f]llo", "a\\*b", "*o", "user:1*", "[", "h\\\\llo", "nomatch*"] {
            d.check_unordered(&["KEYS", p]);
        }
        d.check(&["KEYS"]);
        d.check(&["SCAN", "abc"]);
        d.check(&["SCAN", " 0"]);
        d.check(&["SCAN", "-"]);
        d.check(&["SCAN", "99999999999999999999"]);
        // strtoul accepts a sign: the iteration is then simply over.
        assert!(d.pgkv.call(&["SCAN", "-1"]).starts_with(b"*2\r\n$1\r\n0\r\n"));
        assert!(d.pgkv.call(&["SCAN", "+0"]).starts_with(b"*2\r\n"));
        d.check(&["SCAN", "0", "COUNT", "0"]);
        d.check(&["SCAN", "0", "COUNT", "x"]);
        d.check(&["SCAN", "0", "BOGUS", "1"]);
        d.check(&["SCAN", "0", "MATCH"]);
        d.check(&["DBSIZE"]);
        d.check(&["RANDOMKEY", "x"]);
        d.check(&["FLUSHDB", "bogus"]);
        d.check(&["FLUSHDB", "ASYNC", "x"]);
        d.check(&["FLUSHDB", "SYNC"]);
        d.check(&["RANDOMKEY"]);
        d.check(&["DBSIZE"]);
        d.check(&["SCAN", "0"]);
        d.check(&["KEYS", "*"]);
    });
}

#[test]
fn a_full_scan_returns_every_key_once() {
    let c = pgkv_tests::shared();
    let mut r = c.redis();
    let _: () = redis::cmd("SELECT").arg(7).query(&mut r).unwrap();
    let _: () = redis::cmd("FLUSHDB").query(&mut r).unwrap();
    for i in 0..500 {
        let _: () = redis::cmd("SET").arg(format!("scan:{i}")).arg(i).query(&mut r).unwrap();
    }
    let _: () = redis::cmd("HSET").arg("scan:hash").arg("f").arg("v").query(&mut r).unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let (next, keys): (String, Vec<String>) =
            redis::cmd("SCAN").arg(&cursor).arg("MATCH").arg("scan:*").arg("COUNT").arg(37).query(&mut r).unwrap();
        // Keys written during the iteration may or may not be returned;
        // the ones present all along must be.
        let _: () = redis::cmd("SET").arg(format!("late:{calls}")).arg(1).query(&mut r).unwrap();
        for k in keys {
            assert!(seen.insert(k.clone()), "{k} returned twice");
        }
        calls += 1;
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 501);
    assert!(calls >= 501 / 37, "COUNT is honoured: {calls} calls");
    let (_, only_hashes): (String, Vec<String>) = redis::cmd("SCAN").arg(0).arg("TYPE").arg("hash").arg("COUNT").arg(1000).query(&mut r).unwrap();
    assert_eq!(only_hashes, vec!["scan:hash".to_string()]);
}

#[test]
fn expire_family_matches_redis() {
    Differential::each_protocol(3, |d| {
        d.check(&["SET", "k", "v"]);
        d.check(&["TTL", "k"]);
        d.check(&["PTTL", "k"]);
        d.check(&["TTL", "none"]);
        d.check(&["PTTL", "none"]);
        d.check(&["EXPIRETIME", "k"]);
        d.check(&["EXPIRETIME", "none"]);
        d.check(&["EXPIRE", "none", "100"]);
        d.check(&["EXPIRE", "k", "100", "XX"]);
        d.check(&["EXPIRE", "k", "100", "GT"]);
        d.check(&["EXPIRE", "k", "100", "LT"]);
        d.check(&["PERSIST", "k"]);
        d.check(&["EXPIRE", "k", "100", "NX"]);
        d.check(&["TTL", "k"]);
        d.check(&["EXPIRE", "k", "200", "NX"]);
        d.check(&["EXPIRE", "k", "50", "GT"]);
        d.check(&["EXPIRE", "k", "500", "GT"]);
        d.check(&["TTL", "k"]);
        d.check(&["EXPIRE", "k", "1000", "LT"]);
        d.check(&["EXPIRE", "k", "10", "LT"]);
        d.check(&["TTL", "k"]);
        d.check(&["EXPIRE", "k", "10", "nx", "xx"]);
        d.check(&["EXPIRE", "k", "10", "gt", "lt"]);
        d.check(&["EXPIRE", "k", "10", "nx", "gt"]);
        d.check(&["EXPIRE", "k", "10", "bogus"]);
        d.check(&["EXPIRE", "k", "abc"]);
        d.check(&["EXPIRE", "k", "9223372036854775807"]);
        d.check(&["PEXPIRE", "k", "9223372036854775807"]);
        d.check(&["EXPIRE", "k", "-9223372036854775808"]);
        d.check(&["PEXPIREAT", "k", "99999999999500"]);
        d.check(&["EXPIRETIME", "k"]);
        d.check(&["PEXPIRETIME", "k"]);
        d.check(&["EXPIREAT", "k", "99999999999"]);
        d.check(&["PEXPIRETIME", "k"]);
        d.check(&["PERSIST", "k"]);
        d.check(&["PERSIST", "k"]);
        d.check(&["PERSIST", "none"]);
        d.check(&["TTL", "k"]);
        d.check(&["EXPIRE", "k", "-1"]);
        d.check(&["EXISTS", "k"]);
        d.check(&["SET", "k", "v"]);
        d.check(&["PEXPIREAT", "k", "1"]);
        d.check(&["GET", "k"]);
        d.check(&["SET", "k", "v", "EX", "100"]);
        d.check(&["SET", "k", "w"]);
        d.check(&["TTL", "k"]);
        d.check(&["HSET", "h", "f", "v"]);
        d.check(&["EXPIRE", "h", "100"]);
        d.check(&["TTL", "h"]);
        d.check(&["HSET", "h", "g", "v"]);
        d.check(&["TTL", "h"]);
    });
}

#[test]
fn object_encoding_and_time_match_redis() {
    Differential::each_protocol(8, |d| {
        d.check(&["SET", "int", "12345"]);
        d.check(&["SET", "neg", "-1"]);
        d.check(&["SET", "notint", "012"]);
        d.check(&["SET", "short", "hello"]);
        d.check(&["SET", "long", &"x".repeat(45)]);
        d.check(&["SET", "edge", &"x".repeat(44)]);
        d.check(&["SADD", "ints", "3", "1", "2"]);
        d.check(&["SADD", "strs", "a", "b"]);
        d.check(&["HSET", "small", "f", "v"]);
        d.check(&["HSET", "bigval", "f", &"v".repeat(65)]);
        for k in ["int", "neg", "notint", "short", "long", "edge", "ints", "strs", "small", "bigval", "none"] {
            d.check(&["OBJECT", "ENCODING", k]);
        }
        d.check(&["OBJECT", "ENCODING"]);
        d.check(&["OBJECT", "NOSUCH", "x"]);
        d.check(&["TIME", "x"]);
    });
}

#[test]
fn swapdb_and_flushall_match_redis() {
    let pg = PgCluster::start();
    let redis = RedisServer::start();
    for proto in [2, 3] {
        let mut d = Differential::new(pg.redis_port, redis.port, proto);
        d.check(&["SET", "a", "0"]);
        d.check(&["SELECT", "1"]);
        d.check(&["SET", "b", "1"]);
        d.check(&["SWAPDB", "0", "1"]);
        d.check(&["GET", "a"]);
        d.check(&["GET", "b"]);
        d.check(&["SWAPDB", "1", "1"]);
        d.check(&["SWAPDB", "0", "16"]);
        d.check(&["SWAPDB", "x", "1"]);
        d.check(&["SWAPDB", "1", "y"]);
        d.check(&["SWAPDB", "-1", "0"]);
        d.check(&["SWAPDB", "99999999999", "0"]);
        d.check(&["SELECT", "0"]);
        d.check(&["GET", "b"]);
        d.check(&["FLUSHALL", "x"]);
        d.check(&["FLUSHALL", "ASYNC"]);
        d.check(&["DBSIZE"]);
        d.check(&["SELECT", "1"]);
        d.check(&["DBSIZE"]);
    }
}

#[test]
fn config_get_and_set_match_redis() {
    let pg = PgCluster::start();
    let redis = RedisServer::start();
    for proto in [2, 3] {
        let mut d = Differential::new(pg.redis_port, redis.port, proto);
        for name in [
            "save", "appendonly", "hash-max-listpack-entries", "hash-max-ziplist-entries", "zset-max-listpack-value",
            "set-max-intset-entries", "list-max-listpack-size", "maxmemory", "maxmemory-policy", "timeout", "databases",
            "notify-keyspace-events", "nosuchparam", "HZ",
        ] {
            d.check(&["CONFIG", "GET", name]);
        }
        d.check_unordered(&["CONFIG", "GET", "*max*entries*"]);
        d.check_unordered(&["CONFIG", "GET", "save", "appendonly", "save"]);
        d.check(&["CONFIG", "GET"]);
        d.check(&["CONFIG", "SET", "appendonly", "maybe"]);
        d.check(&["CONFIG", "SET", "hash-max-listpack-entries", "x"]);
        d.check(&["CONFIG", "SET", "databases", "3"]);
        d.check(&["CONFIG", "SET", "appendfsync", "sometimes"]);
        d.check(&["CONFIG", "SET", "maxmemory-policy", "bogus"]);
        d.check(&["CONFIG", "SET", "maxmemory", "1x"]);
        d.check(&["CONFIG", "SET", "nonexist", "1"]);
        d.check(&["CONFIG", "SET", "save"]);
        d.check(&["CONFIG", "SET", "save", "1", "save", "2"]);
        d.check(&["CONFIG", "SET", "save", "3600 1 300 100", "hash-max-ziplist-entries", "64", "maxmemory", "1gb"]);
        d.check(&["CONFIG", "SET", "appendfsync", "EVERYSEC", "hz", "0"]);
        for name in ["save", "hash-max-listpack-entries", "hash-max-ziplist-entries", "maxmemory", "appendfsync", "hz"] {
            d.check(&["CONFIG", "GET", name]);
        }
        d.check(&["HSET", "h", "a", "1"]);
        d.check(&["OBJECT", "ENCODING", "h"]);
        d.check(&["CONFIG", "SET", "hash-max-listpack-entries", "0", "appendfsync", "always", "hz", "10", "save", "", "maxmemory", "0"]);
        // Redis converts an encoding when the value is written next; a
        // new hash shows the new threshold in both.
        d.check(&["HSET", "h2", "a", "1"]);
        d.check(&["OBJECT", "ENCODING", "h2"]);
        d.check(&["DEL", "h2"]);
        d.check(&["CONFIG", "SET", "hash-max-listpack-entries", "512"]);
        d.check(&["CONFIG", "RESETSTAT"]);
        d.check(&["DEL", "h"]);
    }
    // appendfsync maps to synchronous_commit, which survives a restart.
    let mut c = pg.raw();
    assert_eq!(c.call(&["CONFIG", "SET", "appendfsync", "everysec"]), b"+OK\r\n");
    pg.restart("fast");
    let mut c = pg.raw();
    assert_eq!(c.call(&["CONFIG", "GET", "appendfsync"]), b"*2\r\n$11\r\nappendfsync\r\n$8\r\neverysec\r\n");
}

/// A batch's reads are looked up ahead through the hash index directly
/// (`store::direct`), not SQL: binary keys, the same key in two databases,
/// keys and payloads large enough to be compressed or stored out of line,
/// expired, missing and wrong-type keys, all in one pipelined batch.
#[test]
fn reads_looked_up_ahead_match_redis() {
    let binary: &[u8] = b"ra:\x00\xff\r\n";
    let long_key = [b"ra:".as_slice(), &vec![b'k'; 2600]].concat();
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let compressible = vec![b'v'; 100_000];
    // Databases no other test of this file uses (`Differential::shared`
    // flushes its database, and KEYS/SCAN tests count every key).
    Differential::each_protocol(13, |d| {
        d.check(&[b"SET".as_slice(), binary, b"bin"]);
        d.check(&[b"SET".as_slice(), &long_key, b"long"]);
        d.check(&[b"SET".as_slice(), b"ra:big", &big]);
        d.check(&[b"SET".as_slice(), b"ra:zip", &compressible]);
        d.check(&["SET", "ra:gone", "x", "PX", "1"]);
        d.check(&["HSET", "ra:hash", "f", "v"]);
        d.check(&["SELECT", "14"]);
        d.check(&["SET", "ra:both", "seven"]);
        d.check(&["SELECT", "13"]);
        d.check(&["SET", "ra:both", "six"]);
        std::thread::sleep(std::time::Duration::from_millis(20));
        d.check_pipeline(&[
            vec![b"GET".as_slice(), binary],
            vec![b"GET".as_slice(), &long_key],
            vec![b"STRLEN".as_slice(), b"ra:big"],
            vec![b"GET".as_slice(), b"ra:big"],
            vec![b"GET".as_slice(), b"ra:zip"],
            vec![b"GET".as_slice(), b"ra:gone"],
            vec![b"GET".as_slice(), b"ra:missing"],
            vec![b"GET".as_slice(), b"ra:hash"],
            vec![b"GET".as_slice(), b"ra:both"],
            vec![b"MGET".as_slice(), b"ra:both", binary, b"ra:missing", b"ra:hash"],
            vec![b"EXISTS".as_slice(), b"ra:both", b"ra:gone", &long_key],
        ]);
        d.check(&["SELECT", "14"]);
        d.check_pipeline(&[vec!["GET", "ra:both"], vec!["EXISTS", "ra:big"]]);
        d.check(&["SELECT", "13"]);
    });
}
