//! Randomized differential test: seeded random command sequences over a
//! small key space, in pipelines of random length (so pgkv runs them in
//! batches of every size), go to pgkv and to Debian's redis-server 7.0 in
//! RESP2 and in RESP3, and every reply must match the reference.
//!
//! The key space is ten keys in two databases, so commands keep meeting
//! keys of every type, in every encoding Redis would pick (intsets,
//! listpacks and their conversions), with and without expiry times, and
//! the same keys are read, written, moved and deleted many times in one
//! batch. Arguments are drawn from small pools with the edge cases in them
//! (overflowing numbers, infinities, -0, empty and long strings), and a
//! few percent of commands get one argument swapped for junk or lose their
//! last one, for the error paths.
//!
//! A failure names the seed; `PGKV_RANDOM_SEEDS=first..last` (or one
//! number) and `PGKV_RANDOM_STEPS=n` run other or longer sequences.

use pgkv_tests::{shared, shared_redis_port, show, sorted_reply, Differential, RawClient};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::cell::RefCell;

/// How two replies are compared.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Cmp {
    /// Byte for byte.
    Exact,
    /// Elements of the top-level aggregate in any order (a hash-table
    /// set's members, KEYS, a count that returns the whole collection).
    Unordered,
    /// Byte for byte, except that any two positive integers are equal (a
    /// TTL counts down between the two servers' replies).
    Positive,
}

/// One command to send, how to compare its reply, and whether junk may be
/// swapped into its arguments (not for commands whose reply would then be
/// random, nor for blocking ones whose timeout could turn into "forever").
struct Cmd {
    args: Vec<String>,
    cmp: Cmp,
    mutable: bool,
}

const KEYS: &[&str] = &["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"];
const DBS: [&str; 2] = ["2", "3"];

struct Gen {
    rng: RefCell<StdRng>,
    long: String,
    longer: String,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen { rng: RefCell::new(StdRng::seed_from_u64(seed)), long: "v".repeat(70), longer: "w".repeat(300) }
    }

    /// A number in `0..n`.
    fn roll(&self, n: i64) -> i64 {
        self.rng.borrow_mut().gen_range(0..n)
    }

    /// A number in `lo..=hi`.
    fn between(&self, lo: i64, hi: i64) -> i64 {
        self.rng.borrow_mut().gen_range(lo..=hi)
    }

    fn pick<'a>(&self, from: &[&'a str]) -> &'a str {
        from.choose(&mut *self.rng.borrow_mut()).unwrap()
    }

    fn chance(&self, p: f64) -> bool {
        self.rng.borrow_mut().gen_bool(p)
    }

    fn key(&self) -> String {
        self.pick(KEYS).to_string()
    }

    fn keys(&self, max: i64) -> Vec<String> {
        let n = self.between(1, max);
        (0..n).map(|_| self.key()).collect()
    }

    /// A string value: numbers in every form, text, empty, binary, long.
    fn value(&self) -> String {
        match self.roll(20) {
            0 => self.long.clone(),
            1 => self.longer.clone(),
            _ => self
                .pick(&[
                    "a", "b", "c", "abc", "0", "1", "-1", "7", "10", "3.5", "-0", "1e3", "", "9223372036854775807",
                    "-9223372036854775808", "x y", "\u{0}\u{7f}", " 1", "0x10", "12",
                ])
                .to_string(),
        }
    }

    /// A member, field or list element: a few short strings and integers
    /// (so that sets can be intsets), sometimes one longer than a
    /// listpack entry may be.
    fn member(&self) -> String {
        if self.chance(0.03) {
            return self.long.clone();
        }
        if self.chance(0.4) {
            return self.pick(&["1", "2", "3", "10", "-5", "100", "0"]).to_string();
        }
        self.pick(&["a", "b", "c", "d", "e", "aa", "B", ""]).to_string()
    }

    fn members(&self, max: i64) -> Vec<String> {
        let n = self.between(1, max);
        (0..n).map(|_| self.member()).collect()
    }

    fn score(&self) -> String {
        self.pick(&["0", "1", "-1", "2", "2.5", "3", "-0", "1e3", "inf", "-inf", "+inf", "0.1", "10", "1.5e300", "007"])
            .to_string()
    }

    fn score_bound(&self) -> String {
        self.pick(&["-inf", "+inf", "0", "(0", "1", "(1", "2.5", "(2.5", "-1", "3", "(10", "inf", "1e3"]).to_string()
    }

    fn lex_bound(&self) -> String {
        self.pick(&["-", "+", "[a", "(a", "[b", "(c", "[1", "(10", "[", "(", "[aa", "[e"]).to_string()
    }

    fn small_int(&self) -> String {
        self.between(-4, 6).to_string()
    }

    fn index(&self) -> String {
        self.pick(&["0", "1", "2", "-1", "-2", "-3", "3", "5", "10", "-10", "-100", "100"]).to_string()
    }

    fn count(&self) -> String {
        self.pick(&["0", "1", "2", "3", "5", "10", "-1"]).to_string()
    }

    fn increment(&self) -> String {
        self.pick(&["1", "-1", "0", "5", "100", "-100", "9223372036854775807", "-9223372036854775808", "2"]).to_string()
    }

    fn float(&self) -> String {
        self.pick(&["1", "0.1", "-0.1", "1.5", "1e3", "-2", "0", "3.0e-2", "5.0e3", "inf", "1.7976931348623157e308"])
            .to_string()
    }

    fn bit_offset(&self) -> String {
        self.between(0, 40).to_string()
    }

    /// An expiry far enough away that nothing expires during the test.
    fn seconds(&self) -> String {
        self.pick(&["100", "1000", "5000", "100000"]).to_string()
    }

    fn with(&self, args: &mut Vec<String>, p: f64, extra: &[&str]) {
        if self.chance(p) {
            args.extend(extra.iter().map(|s| s.to_string()));
        }
    }

    /// One random command. The weights lean towards writes and the reads
    /// that show their effects.
    fn command(&self) -> Cmd {
        let family = self.roll(100);
        let (args, cmp) = match family {
            0..=19 => self.string_command(),
            20..=35 => self.list_command(),
            36..=49 => self.hash_command(),
            50..=63 => self.set_command(),
            64..=83 => self.zset_command(),
            _ => self.key_command(),
        };
        let mutable = cmp != Cmp::Unordered && !blocks(&args[0]) && !args[0].ends_with("RANDMEMBER") && args[0] != "SPOP";
        Cmd { args, cmp, mutable }
    }

    fn string_command(&self) -> (Vec<String>, Cmp) {
        let k = self.key();
        let e = Cmp::Exact;
        let a: Vec<String> = match self.roll(27) {
            0..=3 => {
                let mut a = vec!["SET".into(), k, self.value()];
                let flag = self.pick(&["", "", "NX", "XX"]);
                if !flag.is_empty() {
                    a.push(flag.into());
                }
                self.with(&mut a, 0.2, &["GET"]);
                match self.roll(6) {
                    0 => a.extend(["EX".into(), self.seconds()]),
                    1 => a.extend(["PX".into(), "500000".into()]),
                    2 => a.push("KEEPTTL".into()),
                    _ => {}
                }
                a
            }
            4 => vec!["GET".into(), k],
            5 => vec!["GETDEL".into(), k],
            6 => {
                let mut a = vec!["GETEX".into(), k];
                match self.roll(3) {
                    0 => a.push("PERSIST".into()),
                    1 => a.extend(["EX".into(), self.seconds()]),
                    _ => {}
                }
                a
            }
            7 => vec!["GETSET".into(), k, self.value()],
            8 => vec!["SETNX".into(), k, self.value()],
            9 => vec!["SETEX".into(), k, self.seconds(), self.value()],
            10 => vec!["PSETEX".into(), k, "300000".into(), self.value()],
            11 | 12 => {
                let cmd = self.pick(&["MSET", "MSET", "MSETNX"]);
                let mut a = vec![cmd.to_string()];
                for key in self.keys(3) {
                    a.push(key);
                    a.push(self.value());
                }
                a
            }
            13 => {
                let mut a = vec!["MGET".to_string()];
                a.extend(self.keys(4));
                a
            }
            14 => vec!["APPEND".into(), k, self.value()],
            15 => vec!["STRLEN".into(), k],
            16 => vec![self.pick(&["GETRANGE", "SUBSTR"]).into(), k, self.index(), self.index()],
            17 => vec!["SETRANGE".into(), k, self.pick(&["0", "1", "3", "10", "80"]).into(), self.value()],
            18 => vec![self.pick(&["INCR", "DECR"]).into(), k],
            19 => vec![self.pick(&["INCRBY", "DECRBY"]).into(), k, self.increment()],
            20 => vec!["INCRBYFLOAT".into(), k, self.float()],
            21 => vec!["SETBIT".into(), k, self.bit_offset(), self.pick(&["0", "1"]).into()],
            22 => vec!["GETBIT".into(), k, self.bit_offset()],
            23 => {
                let mut a = vec!["BITCOUNT".into(), k];
                if self.chance(0.6) {
                    a.extend([self.index(), self.index()]);
                    self.with(&mut a, 0.5, &[self.pick(&["BYTE", "BIT"])]);
                }
                a
            }
            24 => {
                let mut a = vec!["BITPOS".into(), k, self.pick(&["0", "1"]).into()];
                if self.chance(0.6) {
                    a.push(self.index());
                    if self.chance(0.6) {
                        a.push(self.index());
                        self.with(&mut a, 0.5, &[self.pick(&["BYTE", "BIT"])]);
                    }
                }
                a
            }
            25 => {
                let op = self.pick(&["AND", "OR", "XOR", "NOT"]);
                let mut a = vec!["BITOP".into(), op.into(), k];
                a.extend(self.keys(if op == "NOT" { 1 } else { 3 }));
                a
            }
            _ => match self.roll(2) {
                0 => {
                    let mut a = vec!["BITFIELD".into(), k];
                    for _ in 0..self.between(1, 3) {
                        let ty = self.pick(&["u8", "i8", "u4", "i5", "u1", "i64", "u63"]).to_string();
                        let off = self.pick(&["0", "3", "#1", "8"]).to_string();
                        match self.roll(4) {
                            0 => a.extend(["GET".into(), ty, off]),
                            1 => a.extend(["SET".into(), ty, off, self.increment()]),
                            2 => a.extend(["INCRBY".into(), ty, off, self.increment()]),
                            _ => a.extend(["OVERFLOW".into(), self.pick(&["WRAP", "SAT", "FAIL"]).into()]),
                        }
                    }
                    a
                }
                _ => {
                    let mut a = vec!["LCS".into(), k, self.key()];
                    match self.roll(3) {
                        0 => a.push("LEN".into()),
                        1 => {
                            a.push("IDX".into());
                            self.with(&mut a, 0.5, &["MINMATCHLEN", "1"]);
                            self.with(&mut a, 0.5, &["WITHMATCHLEN"]);
                        }
                        _ => {}
                    }
                    a
                }
            },
        };
        (a, e)
    }

    fn list_command(&self) -> (Vec<String>, Cmp) {
        let k = self.key();
        let a: Vec<String> = match self.roll(22) {
            0..=3 => {
                let mut a = vec![self.pick(&["LPUSH", "RPUSH", "LPUSHX", "RPUSHX", "RPUSH"]).to_string(), k];
                a.extend(self.members(4));
                a
            }
            4 | 5 => {
                let mut a = vec![self.pick(&["LPOP", "RPOP"]).to_string(), k];
                self.with(&mut a, 0.4, &[self.count().as_str()]);
                a
            }
            6 | 7 => vec!["LRANGE".into(), k, self.index(), self.index()],
            8 => vec!["LINDEX".into(), k, self.index()],
            9 => vec!["LINSERT".into(), k, self.pick(&["BEFORE", "AFTER"]).into(), self.member(), self.member()],
            10 => vec!["LLEN".into(), k],
            11 => {
                let (from, to) = (self.pick(&["LEFT", "RIGHT"]), self.pick(&["LEFT", "RIGHT"]));
                vec!["LMOVE".into(), k, self.key(), from.into(), to.into()]
            }
            12 => vec!["RPOPLPUSH".into(), k, self.key()],
            13 => {
                let keys = self.keys(3);
                let mut a = vec!["LMPOP".into(), keys.len().to_string()];
                a.extend(keys);
                a.push(self.pick(&["LEFT", "RIGHT"]).into());
                self.with(&mut a, 0.5, &["COUNT", self.pick(&["1", "2", "5"])]);
                a
            }
            14 | 15 => {
                let mut a = vec!["LPOS".into(), k, self.member()];
                self.with(&mut a, 0.4, &["RANK", self.pick(&["1", "-1", "2", "-2"])]);
                self.with(&mut a, 0.4, &["COUNT", self.pick(&["0", "1", "2"])]);
                self.with(&mut a, 0.3, &["MAXLEN", self.pick(&["0", "1", "3"])]);
                a
            }
            16 => vec!["LREM".into(), k, self.small_int(), self.member()],
            17 => vec!["LSET".into(), k, self.index(), self.member()],
            18 => vec!["LTRIM".into(), k, self.index(), self.index()],
            19 => {
                // Blocking pops on lists that may be empty: a short timeout.
                let keys = self.keys(2);
                let mut a = vec![self.pick(&["BLPOP", "BRPOP"]).to_string()];
                a.extend(keys);
                a.push("0.01".into());
                a
            }
            20 => vec!["BLMOVE".into(), k, self.key(), "LEFT".into(), "RIGHT".into(), "0.01".into()],
            _ => vec!["BLMPOP".into(), "0.01".into(), "1".into(), k, "RIGHT".into(), "COUNT".into(), "2".into()],
        };
        (a, Cmp::Exact)
    }

    fn hash_command(&self) -> (Vec<String>, Cmp) {
        let k = self.key();
        let mut cmp = Cmp::Exact;
        let a: Vec<String> = match self.roll(16) {
            0..=3 => {
                let mut a = vec![self.pick(&["HSET", "HSET", "HMSET"]).to_string(), k];
                for _ in 0..self.between(1, 3) {
                    a.push(self.member());
                    a.push(self.value());
                }
                a
            }
            4 => vec!["HSETNX".into(), k, self.member(), self.value()],
            5 => vec!["HGET".into(), k, self.member()],
            6 => {
                let mut a = vec!["HMGET".into(), k];
                a.extend(self.members(3));
                a
            }
            7 => {
                let mut a = vec!["HDEL".into(), k];
                a.extend(self.members(3));
                a
            }
            8 => vec!["HEXISTS".into(), k, self.member()],
            9 => {
                // A hash Redis converted to a hash table (a long value,
                // many fields) has no defined order: compared as a set.
                cmp = Cmp::Unordered;
                vec![self.pick(&["HGETALL", "HKEYS", "HVALS"]).into(), k]
            }
            10 => vec!["HLEN".into(), k],
            11 => vec!["HINCRBY".into(), k, self.member(), self.increment()],
            12 => vec!["HINCRBYFLOAT".into(), k, self.member(), self.float()],
            13 => vec!["HSTRLEN".into(), k, self.member()],
            14 => {
                cmp = Cmp::Unordered;
                let mut a = vec!["HRANDFIELD".into(), k, "100".into()];
                self.with(&mut a, 0.5, &["WITHVALUES"]);
                a
            }
            _ => {
                cmp = Cmp::Unordered;
                vec!["HGETALL".into(), k]
            }
        };
        (a, cmp)
    }

    fn set_command(&self) -> (Vec<String>, Cmp) {
        let k = self.key();
        let mut cmp = Cmp::Exact;
        let a: Vec<String> = match self.roll(17) {
            0..=3 => {
                let mut a = vec!["SADD".into(), k];
                a.extend(self.members(4));
                a
            }
            4 | 5 => {
                let mut a = vec!["SREM".into(), k];
                a.extend(self.members(3));
                a
            }
            6 => vec!["SCARD".into(), k],
            7 => vec!["SISMEMBER".into(), k, self.member()],
            8 => {
                let mut a = vec!["SMISMEMBER".into(), k];
                a.extend(self.members(3));
                a
            }
            9 | 10 => {
                cmp = Cmp::Unordered;
                let mut a = vec![self.pick(&["SMEMBERS", "SINTER", "SUNION", "SDIFF"]).to_string(), k];
                if a[0] != "SMEMBERS" {
                    a.extend(self.keys(2));
                }
                a
            }
            11 | 12 => {
                let mut a = vec![self.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]).to_string(), k];
                a.extend(self.keys(3));
                a
            }
            13 => {
                let keys = self.keys(3);
                let mut a = vec!["SINTERCARD".into(), keys.len().to_string()];
                a.extend(keys);
                self.with(&mut a, 0.4, &["LIMIT", self.pick(&["0", "1", "2"])]);
                a
            }
            14 => vec!["SMOVE".into(), k, self.key(), self.member()],
            15 => {
                cmp = Cmp::Unordered;
                vec!["SRANDMEMBER".into(), k, "100".into()]
            }
            _ => {
                cmp = Cmp::Unordered;
                vec!["SPOP".into(), k, "100".into()]
            }
        };
        (a, cmp)
    }

    fn zset_command(&self) -> (Vec<String>, Cmp) {
        let k = self.key();
        let mut cmp = Cmp::Exact;
        let a: Vec<String> = match self.roll(30) {
            0..=4 => {
                let mut a = vec!["ZADD".to_string(), k];
                for flag in [["NX", "XX"].as_slice(), &["GT", "LT"], &["CH"], &["INCR"]] {
                    if self.chance(0.15) {
                        a.push(self.pick(flag).into());
                    }
                }
                for _ in 0..self.between(1, 3) {
                    a.push(self.score());
                    a.push(self.member());
                }
                a
            }
            5 => vec!["ZINCRBY".into(), k, self.score(), self.member()],
            6 => {
                let mut a = vec!["ZREM".into(), k];
                a.extend(self.members(3));
                a
            }
            7 => vec!["ZCARD".into(), k],
            8 => vec!["ZSCORE".into(), k, self.member()],
            9 => {
                let mut a = vec!["ZMSCORE".into(), k];
                a.extend(self.members(3));
                a
            }
            10 => vec![self.pick(&["ZRANK", "ZREVRANK"]).into(), k, self.member()],
            11..=13 => {
                let mut a = vec!["ZRANGE".to_string(), k];
                match self.roll(3) {
                    0 => a.extend([self.index(), self.index()]),
                    1 => {
                        a.extend([self.score_bound(), self.score_bound(), "BYSCORE".into()]);
                    }
                    _ => {
                        a.extend([self.lex_bound(), self.lex_bound(), "BYLEX".into()]);
                    }
                }
                self.with(&mut a, 0.3, &["REV"]);
                if a.len() > 4 && self.chance(0.3) {
                    a.extend(["LIMIT".into(), self.pick(&["0", "1", "2"]).into(), self.pick(&["1", "2", "-1", "0"]).into()]);
                }
                self.with(&mut a, 0.4, &["WITHSCORES"]);
                a
            }
            14 => {
                let mut a = vec![self.pick(&["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]).to_string(), k, self.score_bound(), self.score_bound()];
                self.with(&mut a, 0.4, &["WITHSCORES"]);
                self.with(&mut a, 0.3, &["LIMIT", "1", "2"]);
                a
            }
            15 => {
                let mut a = vec![self.pick(&["ZRANGEBYLEX", "ZREVRANGEBYLEX"]).to_string(), k, self.lex_bound(), self.lex_bound()];
                self.with(&mut a, 0.3, &["LIMIT", "0", "2"]);
                a
            }
            16 => {
                let mut a = vec!["ZREVRANGE".to_string(), k, self.index(), self.index()];
                self.with(&mut a, 0.4, &["WITHSCORES"]);
                a
            }
            17 => vec!["ZCOUNT".into(), k, self.score_bound(), self.score_bound()],
            18 => vec!["ZLEXCOUNT".into(), k, self.lex_bound(), self.lex_bound()],
            19 => {
                let mut a = vec![self.pick(&["ZPOPMIN", "ZPOPMAX"]).to_string(), k];
                self.with(&mut a, 0.4, &[self.count().as_str()]);
                a
            }
            20 => {
                let keys = self.keys(3);
                let mut a = vec!["ZMPOP".into(), keys.len().to_string()];
                a.extend(keys);
                a.push(self.pick(&["MIN", "MAX"]).into());
                self.with(&mut a, 0.5, &["COUNT", self.pick(&["1", "2", "5"])]);
                a
            }
            21 => vec!["ZREMRANGEBYRANK".into(), k, self.index(), self.index()],
            22 => vec!["ZREMRANGEBYSCORE".into(), k, self.score_bound(), self.score_bound()],
            23 => vec!["ZREMRANGEBYLEX".into(), k, self.lex_bound(), self.lex_bound()],
            24 | 25 => {
                let op = self.pick(&["ZUNION", "ZINTER", "ZDIFF", "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]);
                let store = op.ends_with("STORE");
                let keys = self.keys(3);
                let mut a = vec![op.to_string()];
                if store {
                    a.push(k);
                }
                a.push(keys.len().to_string());
                a.extend(keys.iter().cloned());
                if op != "ZDIFF" && op != "ZDIFFSTORE" {
                    if self.chance(0.3) {
                        a.push("WEIGHTS".into());
                        for _ in &keys {
                            a.push(self.pick(&["1", "2", "-1", "0", "0.5", "inf"]).into());
                        }
                    }
                    self.with(&mut a, 0.3, &["AGGREGATE", self.pick(&["SUM", "MIN", "MAX"])]);
                }
                if !store {
                    self.with(&mut a, 0.5, &["WITHSCORES"]);
                }
                a
            }
            26 => {
                let keys = self.keys(3);
                let mut a = vec!["ZINTERCARD".into(), keys.len().to_string()];
                a.extend(keys);
                self.with(&mut a, 0.4, &["LIMIT", self.pick(&["0", "1", "2"])]);
                a
            }
            27 => {
                let mut a = vec!["ZRANGESTORE".into(), k, self.key()];
                if self.chance(0.5) {
                    a.extend([self.index(), self.index()]);
                } else {
                    a.extend([self.score_bound(), self.score_bound(), "BYSCORE".into()]);
                }
                self.with(&mut a, 0.3, &["REV"]);
                a
            }
            28 => {
                cmp = Cmp::Unordered;
                let mut a = vec!["ZRANDMEMBER".into(), k, "100".into()];
                self.with(&mut a, 0.5, &["WITHSCORES"]);
                a
            }
            _ => vec![self.pick(&["BZPOPMIN", "BZPOPMAX"]).into(), k, self.key(), "0.01".into()],
        };
        (a, cmp)
    }

    fn key_command(&self) -> (Vec<String>, Cmp) {
        let k = self.key();
        let mut cmp = Cmp::Exact;
        let a: Vec<String> = match self.roll(24) {
            0 | 1 => {
                let mut a = vec![self.pick(&["DEL", "UNLINK", "DEL"]).to_string()];
                a.extend(self.keys(2));
                a
            }
            2 => {
                let mut a = vec![self.pick(&["EXISTS", "TOUCH"]).to_string()];
                a.extend(self.keys(3));
                a
            }
            3 | 4 => vec!["TYPE".into(), k],
            5 => vec![self.pick(&["RENAME", "RENAMENX"]).into(), k, self.key()],
            6 => {
                let mut a = vec!["COPY".into(), k, self.key()];
                self.with(&mut a, 0.3, &["DB", self.pick(&DBS)]);
                self.with(&mut a, 0.5, &["REPLACE"]);
                a
            }
            7 => vec!["MOVE".into(), k, self.pick(&DBS).into()],
            8 => vec!["DBSIZE".into()],
            9 => {
                cmp = Cmp::Unordered;
                vec!["KEYS".into(), self.pick(&["*", "k[0-4]", "k?", "*9"]).into()]
            }
            10 => vec!["PERSIST".into(), k],
            11 | 12 => {
                let mut a = vec![self.pick(&["EXPIRE", "PEXPIRE"]).to_string(), k];
                let t = if a[0] == "EXPIRE" { self.seconds() } else { "400000".to_string() };
                a.push(if self.chance(0.1) { self.pick(&["0", "-1"]).into() } else { t });
                // GT and LT only with absolute times: the same relative
                // time given twice compares equal or not depending on
                // whether the clock's millisecond moved in between.
                if self.chance(0.3) {
                    a.push(self.pick(&["NX", "XX"]).into());
                }
                a
            }
            13 => {
                let mut a = vec!["EXPIREAT".into(), k, self.pick(&["4102444800", "4102444900", "1", "0"]).into()];
                if self.chance(0.3) {
                    a.push(self.pick(&["NX", "XX", "GT", "LT"]).into());
                }
                a
            }
            14 | 15 => {
                cmp = Cmp::Positive;
                vec![self.pick(&["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"]).into(), k]
            }
            // OBJECT ENCODING is left out: pgkv derives it from the value
            // each time, Redis fixes it when the value is written (README).
            16 | 17 => vec!["TYPE".into(), k],
            18 | 19 => {
                let mut a = vec![self.pick(&["SORT", "SORT_RO"]).to_string(), k];
                self.with(&mut a, 0.3, &["LIMIT", self.pick(&["0", "1"]), self.pick(&["2", "-1", "10"])]);
                self.with(&mut a, 0.4, &["ALPHA"]);
                self.with(&mut a, 0.3, &["DESC"]);
                if a[0] == "SORT" && self.chance(0.3) {
                    a.extend(["STORE".into(), self.key()]);
                }
                a
            }
            20 => vec!["SELECT".into(), self.pick(&DBS).into()],
            21 => vec!["SWAPDB".into(), DBS[0].into(), DBS[1].into()],
            22 => {
                let s = self.pick(&[
                    "return redis.call('INCR', KEYS[1])",
                    "return redis.call('TYPE', KEYS[1])",
                    "return {redis.call('EXISTS', KEYS[1]), redis.pcall('LPUSH', KEYS[1], 'x')}",
                    "return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')",
                    "return redis.call('HGETALL', KEYS[1])",
                    "return redis.pcall('GET', KEYS[1])",
                ]);
                if s.contains("HGETALL") {
                    cmp = Cmp::Unordered;
                }
                vec!["EVAL".into(), s.into(), "1".into(), k]
            }
            _ => {
                // Any deterministic data command, run by a script (a lex
                // range only through `lex_guarded`, which a script skips).
                let mut inner = self.command();
                while inner.cmp != Cmp::Exact || blocks(&inner.args[0]) || lex_range(&inner.args) || inner.args[0] == "EVAL" || inner.args[0] == "SELECT" || inner.args[0] == "SWAPDB" {
                    inner = self.command();
                }
                let mut a = vec!["EVAL".into(), "return redis.call(unpack(ARGV))".into(), "0".into()];
                a.extend(inner.args);
                a
            }
        };
        (a, cmp)
    }

    /// Swaps one argument for junk, or drops the last one, a few percent
    /// of the time: the error paths.
    fn mutate(&self, cmd: &mut Cmd) {
        if !cmd.mutable || cmd.args.len() < 2 || !self.chance(0.04) {
            return;
        }
        if self.chance(0.3) {
            cmd.args.pop();
        } else {
            let at = self.between(1, cmd.args.len() as i64 - 1) as usize;
            cmd.args[at] = self.pick(&["abc", "-1", "0", "99999999999999999999", "", "1.5", "nan", "-inf"]).into();
        }
    }

    /// The next pipeline: single commands, sometimes a MULTI/EXEC block
    /// (sometimes with a queuing error, or discarded), sometimes a WATCH.
    fn pipeline(&self) -> Vec<Cmd> {
        let len = *[1usize, 1, 2, 3, 5, 8, 13, 20].choose(&mut *self.rng.borrow_mut()).unwrap();
        let mut out = Vec::new();
        while out.len() < len {
            match self.roll(40) {
                0 | 1 => {
                    let plain = |args: Vec<String>| Cmd { args, cmp: Cmp::Exact, mutable: false };
                    out.push(plain(vec!["MULTI".into()]));
                    for _ in 0..self.between(0, 4) {
                        let mut c = self.command();
                        if c.cmp != Cmp::Exact {
                            continue;
                        }
                        self.mutate(&mut c);
                        c.mutable = false;
                        out.push(lex_guarded(c));
                    }
                    if self.chance(0.1) {
                        out.push(plain(vec!["NOSUCHCOMMAND".into()]));
                    }
                    out.push(plain(vec![self.pick(&["EXEC", "EXEC", "EXEC", "DISCARD"]).into()]));
                }
                2 => {
                    let mut args = vec!["WATCH".to_string()];
                    args.extend(self.keys(2));
                    out.push(Cmd { args, cmp: Cmp::Exact, mutable: false });
                }
                3 => out.push(Cmd { args: vec!["UNWATCH".into()], cmp: Cmp::Exact, mutable: false }),
                4 if self.chance(0.1) => out.push(Cmd { args: vec!["FLUSHDB".into()], cmp: Cmp::Exact, mutable: false }),
                _ => {
                    let mut c = self.command();
                    self.mutate(&mut c);
                    out.push(lex_guarded(c));
                }
            }
        }
        out
    }
}

/// Whether `name` is one of the blocking commands the generator makes
/// (BITCOUNT, BITOP and the rest of the B's are not).
fn blocks(name: &str) -> bool {
    ["BLPOP", "BRPOP", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX"].contains(&name)
}

/// Whether the command reads or removes a lex range of a sorted set.
fn lex_range(args: &[String]) -> bool {
    let name = args[0].to_ascii_uppercase();
    name.contains("LEX") || (name == "ZRANGE" && args.iter().any(|a| a.eq_ignore_ascii_case("BYLEX")))
}

/// Runs a lex-range command (ZRANGEBYLEX, ZLEXCOUNT, ZREMRANGEBYLEX, ZRANGE
/// BYLEX, ...) through a script that first looks at the sorted set's
/// lowest and highest scores. Redis leaves these commands' result
/// unspecified when the scores differ (its walk of the score order stops
/// on the first member out of range), so the script then answers that
/// instead of running it.
fn lex_guarded(c: Cmd) -> Cmd {
    const GUARD: &str = "local lo = redis.pcall('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES') \
                         local hi = redis.pcall('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES') \
                         if type(lo) == 'table' and lo[2] ~= nil and lo[2] ~= hi[2] then return 'unspecified: mixed scores' end \
                         return redis.pcall(unpack(ARGV))";
    if !lex_range(&c.args) || c.args.len() < 2 {
        return c;
    }
    let mut args = vec!["EVAL".to_string(), GUARD.to_string(), "1".to_string(), c.args[1].clone()];
    args.extend(c.args);
    Cmd { args, ..c }
}

/// `PGKV_RANDOM_SEEDS` as a range ("1..40") or one seed; by default the
/// seeds CI runs.
fn seeds() -> std::ops::RangeInclusive<u64> {
    match std::env::var("PGKV_RANDOM_SEEDS") {
        Ok(s) => match s.split_once("..") {
            Some((a, b)) => a.parse().unwrap()..=b.parse().unwrap(),
            None => {
                let one = s.parse().unwrap();
                one..=one
            }
        },
        Err(_) => 1..=20,
    }
}

fn steps() -> usize {
    std::env::var("PGKV_RANDOM_STEPS").ok().map_or(300, |s| s.parse().unwrap())
}

fn positive_int(reply: &str) -> bool {
    reply.strip_prefix(':').and_then(|r| r.strip_suffix("\\r\\n")).and_then(|n| n.parse::<i64>().ok()).is_some_and(|n| n > 0)
}

/// A sorted-set reply with every score of -0 written as 0. Redis stores a
/// whole-number score of a listpack-encoded set as an integer, so -0 comes
/// back as 0 there; pgkv follows the set's size after each write, not the
/// encoding history (an earlier long member, a skiplist that shrank), as
/// the README says, so the two may differ on -0 alone.
fn without_minus_zero(reply: &[u8]) -> Vec<u8> {
    let text = show(reply);
    text.replace("$2\\r\\n-0\\r\\n", "$1\\r\\n0\\r\\n").replace(",-0\\r\\n", ",0\\r\\n").into_bytes()
}

fn compare(cmp: Cmp, name: &str, ours: &[u8], theirs: &[u8]) -> bool {
    let zset = name.starts_with('Z') || name.starts_with("BZ");
    match cmp {
        Cmp::Exact if zset => ours == theirs || without_minus_zero(ours) == without_minus_zero(theirs),
        Cmp::Exact => ours == theirs,
        Cmp::Unordered => sorted_reply(ours) == sorted_reply(theirs),
        Cmp::Positive => ours == theirs || (positive_int(&show(ours)) && positive_int(&show(theirs))),
    }
}

/// Writes the sequence for scripts/replay_random.py; returns its path.
fn write_trace(seed: u64, proto: u8, trace: &[String]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("pgkv-random-{seed}-resp{proto}.txt"));
    let _ = std::fs::write(&path, trace.join("\n") + "\n");
    path
}

fn run(seed: u64, proto: u8) {
    let mut d = Differential::new(shared().redis_port, shared_redis_port(), proto);
    d.check(&["FLUSHALL"]);
    d.check(&["SELECT", DBS[0]]);
    let gen = Gen::new(seed * 2 + proto as u64);
    let mut history: Vec<String> = Vec::new();
    // The same, exactly, for scripts/replay_random.py: each argument in hex
    // ("-" for an empty one).
    let mut trace: Vec<String> = Vec::new();
    let mut sent = 0;
    // Whole scans between pipelines, drawn apart from the commands so the
    // seeds' sequences stay what they were.
    let mut scans = StdRng::seed_from_u64(seed ^ 0x5ca2);
    while sent < steps() {
        if scans.gen_bool(0.1) {
            let args = scan_command(&mut scans);
            history.push(format!("| (whole) {}", args.join(" ")));
            let (ours, theirs) = (scan_all(&mut d.pgkv, &args), scan_all(&mut d.redis, &args));
            if ours != theirs {
                let from = history.len().saturating_sub(80);
                panic!(
                    "seed {seed}, RESP{proto}: a whole {} differs\n  pgkv:  {:?}\n  redis: {:?}\nthe last commands, newest last:\n{}",
                    args.join(" "),
                    ours.map(|v| v.iter().map(|i| i.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect::<Vec<_>>()).collect::<Vec<_>>()).map_err(|e| show(&e)),
                    theirs.map(|v| v.iter().map(|i| i.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect::<Vec<_>>()).collect::<Vec<_>>()).map_err(|e| show(&e)),
                    history[from..].join("\n")
                );
            }
        }
        let pipeline = gen.pipeline();
        let mut bytes = bytes::BytesMut::new();
        for c in &pipeline {
            pgkv_resp::encode_request(&c.args, &mut bytes);
        }
        d.pgkv.send(&bytes);
        d.redis.send(&bytes);
        for (i, c) in pipeline.iter().enumerate() {
            let (ours, theirs) = (d.pgkv.read_reply(), d.redis.read_reply());
            history.push(format!("{}{}", if i == 0 { "| " } else { "  " }, readable(&c.args)));
            trace.push(format!("{} {}", if i == 0 { "|" } else { " " }, in_hex(&c.args)));
            if !compare(c.cmp, &c.args[0].to_ascii_uppercase(), &ours, &theirs) {
                // Read what the rest of the pipeline answers, then show the
                // keys of the current database as each server has them.
                for _ in i + 1..pipeline.len() {
                    d.pgkv.read_reply();
                    d.redis.read_reply();
                }
                let from = history.len().saturating_sub(80);
                let log = write_trace(seed, proto, &trace);
                panic!(
                    "seed {seed}, RESP{proto}, command {sent}: replies differ ({:?} comparison)\n  pgkv:  {}\n  redis: {}\n\
                     the last commands, newest last (| starts a pipeline):\n{}\n\
                     the keys after the pipeline (pgkv, then Redis):\n{}\
                     every command of the sequence, for scripts/replay_random.py: {}",
                    c.cmp,
                    show(&ours),
                    show(&theirs),
                    history[from..].join("\n"),
                    contents(&mut d),
                    log.display()
                );
            }
            sent += 1;
        }
    }
    if std::env::var_os("PGKV_RANDOM_KEEP").is_some() {
        write_trace(seed, proto, &trace);
    }
    same_keys(&mut d);
}

/// What a whole SCAN (or HSCAN, SSCAN, ZSCAN) iteration returns: the
/// union of its pages, sorted, each element (or field and value, member
/// and score) once. The cursors are pgkv's own (README), so only the union
/// compares; Redis may return an element twice.
fn scan_all(client: &mut RawClient, args: &[String]) -> Result<Vec<Vec<Vec<u8>>>, Vec<u8>> {
    let pairs = matches!(args[0].as_str(), "HSCAN" | "ZSCAN");
    let mut out: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut cursor = b"0".to_vec();
    loop {
        let mut call: Vec<Vec<u8>> = args.iter().map(|a| a.clone().into_bytes()).collect();
        call.insert(if args[0] == "SCAN" { 1 } else { 2 }, cursor.clone());
        let reply = client.call(&call);
        let Ok(Some((pgkv_resp::Frame::Array(page), _))) = pgkv_resp::decode(&reply) else { return Err(reply) };
        let [pgkv_resp::Frame::Bulk(next), pgkv_resp::Frame::Array(items)] = &page[..] else { return Err(reply) };
        let items: Vec<Vec<u8>> = items.iter().map(|f| if let pgkv_resp::Frame::Bulk(b) = f { b.to_vec() } else { format!("{f:?}").into_bytes() }).collect();
        for item in items.chunks(if pairs { 2 } else { 1 }) {
            let mut item = item.to_vec();
            // A score of -0, as in `without_minus_zero`.
            if args[0] == "ZSCAN" && item.get(1).is_some_and(|s| s == b"-0") {
                item[1] = b"0".to_vec();
            }
            out.push(item);
        }
        cursor = next.to_vec();
        if cursor == b"0" {
            break;
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// A random whole-iteration scan of the current database or of one key,
/// with MATCH, COUNT and (SCAN) TYPE options.
fn scan_command(rng: &mut StdRng) -> Vec<String> {
    let mut args: Vec<String> = match rng.gen_range(0..4) {
        0 => vec!["SCAN".into()],
        n => vec![["HSCAN", "SSCAN", "ZSCAN"][n - 1].into(), KEYS.choose(rng).unwrap().to_string()],
    };
    if rng.gen_bool(0.4) {
        args.extend(["MATCH".into(), ["*", "k[0-4]", "k?", "*a*", "1*", "[a-c]"].choose(rng).unwrap().to_string()]);
    }
    if rng.gen_bool(0.5) {
        args.extend(["COUNT".into(), ["1", "3", "10", "1000"].choose(rng).unwrap().to_string()]);
    }
    if args[0] == "SCAN" && rng.gen_bool(0.3) {
        args.extend(["TYPE".into(), ["string", "list", "hash", "set", "zset", "none"].choose(rng).unwrap().to_string()]);
    }
    args
}

/// A command as a failure report shows it: arguments quoted, long ones
/// by their length.
fn readable(args: &[String]) -> String {
    args.iter().map(|a| if a.len() > 40 { format!("<{} bytes>", a.len()) } else { format!("{a:?}") }).collect::<Vec<_>>().join(" ")
}

/// A command exactly, for a trace file: each argument in hex, "-" for an
/// empty one (what scripts/replay_random.py reads).
fn in_hex(args: &[String]) -> String {
    args.iter().map(|a| if a.is_empty() { "-".to_string() } else { a.bytes().map(|b| format!("{b:02x}")).collect() }).collect::<Vec<_>>().join(" ")
}

/// What a sequence left behind, in both databases, must be the same.
fn same_keys(d: &mut Differential) {
    for db in DBS {
        d.check(&["SELECT", db]);
        d.check_unordered(&["KEYS", "*"]);
        for k in KEYS {
            let ty = d.check(&["TYPE", k]);
            if let Some((read, cmp)) = read_back(&ty, k) {
                let (ours, theirs) = (d.pgkv.call(&read), d.redis.call(&read));
                assert!(compare(cmp, read[0], &ours, &theirs), "{k} differs: {} against {}", show(&ours), show(&theirs));
            }
        }
    }
}

/// One client of `run_clients`: its connection to each server, its
/// CLIENT ID there, and the commands sent whose replies are still to
/// come.
struct Client {
    d: Differential,
    ids: (String, String),
    pending: std::collections::VecDeque<Cmd>,
    /// Parked by a blocking command on both servers.
    blocked: bool,
}

/// Whether CLIENT LIST (asked on `control`) shows client `id` blocked.
fn listed_blocked(control: &mut RawClient, id: &str) -> bool {
    let list = control.call(&["CLIENT", "LIST"]);
    let text = String::from_utf8_lossy(&list).into_owned();
    let prefix = format!("id={id} ");
    let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("client {id} is not in CLIENT LIST"));
    line.split(' ').any(|f| f.strip_prefix("flags=").is_some_and(|flags| flags.contains('b')))
}

/// The next reply on `conn`, or `None` while its client is blocked
/// (CLIENT LIST on `control` says so and no reply has come).
///
/// A client listed blocked may be blocked on a later command of its
/// pipeline, the one asked about having been answered meanwhile: the
/// servers send a reply before they answer a CLIENT LIST that ran after
/// it (pgkv holds replies until their WAL flush, then sends them in the
/// order their batches ran), so a reply sent by then is read here.
fn reply_unless_blocked(conn: &mut RawClient, control: &mut RawClient, id: &str) -> Option<Vec<u8>> {
    loop {
        if let Some(reply) = conn.try_read_reply(std::time::Duration::from_millis(2)) {
            return Some(reply);
        }
        if listed_blocked(control, id) {
            return conn.try_read_reply(std::time::Duration::from_millis(2));
        }
    }
}

/// The integer of a CLIENT ID reply.
fn client_id(reply: &[u8]) -> String {
    String::from_utf8_lossy(&reply[1..reply.len() - 2]).into_owned()
}

/// Several clients, each with its own pipelines, WATCH and MULTI state,
/// database and protocol, taking turns: one client sends a pipeline and
/// every reply it can give is read before the next turn. A blocking
/// command (with a long timeout here) parks its client until a later turn
/// of another client serves it, on both servers alike; its reply and
/// those of the commands it held back (the rest of its pipeline) are then
/// read before the next turn, as Redis runs them before it answers the
/// serving client. A turn is
/// taken by a client that is not blocked; when all are, one is unblocked
/// (CLIENT UNBLOCK). Replies compare as in `run`.
fn run_clients(seed: u64) {
    let gen = Gen::new(seed + 1_000_000);
    let (pgkv_port, redis_port) = (shared().redis_port, shared_redis_port());
    let mut control = Differential::new(pgkv_port, redis_port, 2);
    control.check(&["FLUSHALL"]);
    let mut clients: Vec<Client> = (0..3)
        .map(|_| {
            let mut d = Differential::new(pgkv_port, redis_port, *[2u8, 3].choose(&mut *gen.rng.borrow_mut()).unwrap());
            d.check(&["SELECT", DBS[0]]);
            let ids = (client_id(&d.pgkv.call(&["CLIENT", "ID"])), client_id(&d.redis.call(&["CLIENT", "ID"])));
            Client { d, ids, pending: Default::default(), blocked: false }
        })
        .collect();
    let mut history: Vec<String> = Vec::new();
    // Each pipeline exactly (arguments in hex), for a failure's report.
    let trace: std::cell::RefCell<Vec<String>> = Default::default();
    let mut sent = 0;
    let fail = |history: &[String], what: String| -> ! {
        let path = std::env::temp_dir().join(format!("pgkv-random-clients-{seed}.txt"));
        std::fs::write(&path, history.join("\n")).unwrap();
        std::fs::write(path.with_extension("hex"), trace.borrow().join("\n")).unwrap();
        panic!(
            "seed {seed} (several clients): {what}\nthe last commands, newest last (c<n>| starts client n's pipeline):\n{}\nall of them: {}",
            history[history.len().saturating_sub(80)..].join("\n"),
            path.display()
        );
    };
    // Reads what client `c` answers until it has answered everything sent
    // or is blocked on both servers.
    let drain = |c: usize, clients: &mut Vec<Client>, control: &mut Differential, history: &mut Vec<String>| {
        let client = &mut clients[c];
        while let Some(cmd) = client.pending.front() {
            let name = cmd.args[0].to_ascii_uppercase();
            let (ours, theirs) = if blocks(&name) {
                let ours = reply_unless_blocked(&mut client.d.pgkv, &mut control.pgkv, &client.ids.0);
                let theirs = reply_unless_blocked(&mut client.d.redis, &mut control.redis, &client.ids.1);
                match (ours, theirs) {
                    (Some(o), Some(t)) => (o, t),
                    (None, None) => {
                        client.blocked = true;
                        history.push(format!("   (c{c} blocked)"));
                        return;
                    }
                    (o, t) => fail(history, format!("c{c}'s {name}: pgkv {}, Redis {}", o.map_or("blocked".into(), |r| show(&r)), t.map_or("blocked".into(), |r| show(&r)))),
                }
            } else {
                (client.d.pgkv.read_reply(), client.d.redis.read_reply())
            };
            client.blocked = false;
            if !compare(cmd.cmp, &name, &ours, &theirs) {
                fail(history, format!("c{c}'s {name}: replies differ ({:?} comparison)\n  pgkv:  {}\n  redis: {}", cmd.cmp, show(&ours), show(&theirs)));
            }
            client.pending.pop_front();
        }
    };
    while sent < steps() {
        let ready: Vec<usize> = (0..clients.len()).filter(|c| !clients[*c].blocked).collect();
        let Some(&c) = ready.choose(&mut *gen.rng.borrow_mut()) else {
            // Everyone waits: one is let go, with the timeout's reply.
            let c = gen.roll(clients.len() as i64) as usize;
            let ids = clients[c].ids.clone();
            let (ours, theirs) = (control.pgkv.call(&["CLIENT", "UNBLOCK", &ids.0]), control.redis.call(&["CLIENT", "UNBLOCK", &ids.1]));
            assert_eq!(show(&ours), show(&theirs), "CLIENT UNBLOCK of c{c}");
            history.push(format!("   (c{c} unblocked)"));
            drain(c, &mut clients, &mut control, &mut history);
            continue;
        };
        let mut pipeline = gen.pipeline();
        let anyone_blocked = clients.iter().any(|c| c.blocked);
        let mut bytes = bytes::BytesMut::new();
        for (i, cmd) in pipeline.iter_mut().enumerate() {
            // SWAPDB makes every waited-on key of both databases ready at
            // once, and Redis goes through them in its hash table's order
            // (a random seed per process): which key a client waiting on
            // two is served from is then Redis's chance.
            if anyone_blocked && cmd.args[0] == "SWAPDB" {
                cmd.args = vec!["PING".into()];
            }
            // A STORE command replacing an existing key leaves that key's
            // waiters blocked in Redis 7.0 (no `dbAdd`), and later writes
            // to the key do not ready it there either; pgkv serves them at
            // the next write (README, blocking commands).
            let stores = ["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE", "ZRANGESTORE"];
            if anyone_blocked && (stores.contains(&cmd.args[0].as_str()) || (cmd.args[0] == "SORT" && cmd.args.iter().any(|a| a == "STORE"))) {
                cmd.args = vec!["PING".into()];
            }
            // Long enough never to pass during the test: only another
            // client (or CLIENT UNBLOCK) ends the wait.
            match cmd.args[0].as_str() {
                "BLMPOP" => cmd.args[1] = "100".into(),
                name if blocks(name) => *cmd.args.last_mut().unwrap() = "100".into(),
                _ => {}
            }
            let start = if i == 0 { format!("c{c}|") } else { "   ".into() };
            history.push(format!("{start} {}", readable(&cmd.args)));
            trace.borrow_mut().push(format!("{start} {}", in_hex(&cmd.args)));
            pgkv_resp::encode_request(&cmd.args, &mut bytes);
        }
        sent += pipeline.len();
        clients[c].d.pgkv.send(&bytes);
        clients[c].d.redis.send(&bytes);
        clients[c].pending.extend(pipeline);
        drain(c, &mut clients, &mut control, &mut history);
        // Clients this turn served answer now, and run what they held back
        // (which may serve others in turn).
        loop {
            let mut changed = false;
            for other in 0..clients.len() {
                if clients[other].blocked {
                    drain(other, &mut clients, &mut control, &mut history);
                    changed |= !clients[other].blocked;
                }
            }
            if !changed {
                break;
            }
        }
    }
    for c in 0..clients.len() {
        if clients[c].blocked {
            let ids = clients[c].ids.clone();
            control.pgkv.call(&["CLIENT", "UNBLOCK", &ids.0]);
            control.redis.call(&["CLIENT", "UNBLOCK", &ids.1]);
            drain(c, &mut clients, &mut control, &mut history);
        }
    }
    same_keys(&mut control);
}

/// The command that reads a key of type `ty` (TYPE's reply) whole, and how
/// its reply compares; `None` for no key.
fn read_back<'k>(ty: &[u8], k: &'k str) -> Option<(Vec<&'k str>, Cmp)> {
    Some(match ty {
        b"+string\r\n" => (vec!["GET", k], Cmp::Exact),
        b"+list\r\n" => (vec!["LRANGE", k, "0", "-1"], Cmp::Exact),
        b"+hash\r\n" => (vec!["HGETALL", k], Cmp::Unordered),
        b"+set\r\n" => (vec!["SMEMBERS", k], Cmp::Unordered),
        b"+zset\r\n" => (vec!["ZRANGE", k, "0", "-1", "WITHSCORES"], Cmp::Exact),
        _ => return None,
    })
}

/// Every key of the current database and what it holds, as pgkv and as
/// Redis have it, for a failure's report.
fn contents(d: &mut Differential) -> String {
    let mut out = String::new();
    for k in KEYS {
        for (name, client) in [("pgkv ", &mut d.pgkv), ("redis", &mut d.redis)] {
            let ty = client.call(&["TYPE", k]);
            let held = read_back(&ty, k).map_or(String::new(), |(read, _)| format!(" {}", show(&client.call(&read))));
            out += &format!("  {name} {k} {}{held}\n", show(&ty));
        }
    }
    out
}

/// The two tests share both servers and the two databases (and start
/// with FLUSHALL): one runs at a time.
static SERVERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Random sequences, one batch size after another, against Redis.
#[test]
fn random_command_sequences_match_redis() {
    let _servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    for seed in seeds() {
        for proto in [2u8, 3] {
            run(seed, proto);
        }
    }
}

/// Random sequences from several clients taking turns (`run_clients`).
#[test]
fn random_clients_taking_turns_match_redis() {
    let _servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    for seed in seeds() {
        run_clients(seed);
    }
}
