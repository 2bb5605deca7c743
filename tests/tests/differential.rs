//! Differential tests: the same commands go to pgkv and to Debian's
//! redis-server 7.0, in RESP2 and in RESP3, and every reply must be
//! byte-identical. The real Redis is always right.

use pgkv_tests::{shared, shared_redis_port, Differential};

/// Runs `body` once per protocol, with keys prefixed so runs don't collide.
fn both_protocols(test: &str, body: impl Fn(&mut Differential, &dyn Fn(&str) -> String)) {
    for proto in [2u8, 3] {
        let mut d = Differential::new(shared().redis_port, shared_redis_port(), proto);
        let k = |name: &str| format!("diff:{test}:{proto}:{name}");
        body(&mut d, &k);
    }
}

#[test]
fn connection_commands_match_redis() {
    both_protocols("conn", |d, _k| {
        d.check(&["PING"]);
        d.check(&["ping", "hello"]);
        d.check(&["PING", "a", "b"]);
        d.check(&["ECHO", "x\x00y"]);
        d.check(&["ECHO"]);
        d.check(&["ECHO", "a", "b"]);
        d.check(&["SELECT", "15"]);
        d.check(&["SELECT", "0"]);
        for bad in ["16", "-1", "abc", "1.5", "99999999999", "", "+1", "01"] {
            d.check(&["SELECT", bad]);
        }
        d.check(&["SELECT"]);
        d.check(&["AUTH", "pw"]);
        d.check(&["AUTH", "default", "anything"]);
        d.check(&["AUTH", "someone", "pw"]);
        d.check(&["AUTH", "a", "b", "c"]);
        d.check(&["AUTH"]);
        d.check(&["CLIENT", "GETNAME"]);
        d.check(&["CLIENT", "SETNAME", "worker-1"]);
        d.check(&["CLIENT", "GETNAME"]);
        d.check(&["CLIENT", "SETNAME", "has space"]);
        d.check(&["CLIENT", "SETNAME", "new\nline"]);
        d.check(&["CLIENT", "SETNAME", ""]);
        d.check(&["CLIENT", "GETNAME"]);
        d.check(&["CLIENT", "SETNAME"]);
        d.check(&["CLIENT", "GETNAME", "extra"]);
        d.check(&["client", "nosuchsub"]);
        d.check(&["CLIENT"]);
        d.check(&["HELLO", "4"]);
        d.check(&["HELLO", "1"]);
        d.check(&["HELLO", "abc"]);
        d.check(&["HELLO", "3", "SETNAME"]);
        d.check(&["HELLO", "3", "bogus"]);
        d.check(&["HELLO", "3", "AUTH", "default"]);
        d.check(&["HELLO", "3", "AUTH", "nobody", "pw"]);
        d.check(&["HELLO", "2", "SETNAME", "bad name"]);
    });
}

#[test]
fn unknown_commands_match_redis() {
    both_protocols("unknown", |d, _k| {
        d.check(&["NOSUCH"]);
        d.check(&["nosuch", "a", "b c", "d\r\ne"]);
        let long = "x".repeat(300);
        d.check(&[long.as_str(), long.as_str(), "y"]);
        d.check(&["NOSUCH", "a".repeat(100).as_str(), "b".repeat(100).as_str(), "c"]);
        d.check(&["COMMAND", "NOSUCH"]);
    });
}

#[test]
fn get_set_del_exists_match_redis() {
    both_protocols("strings", |d, k| {
        let (a, b) = (k("a"), k("b"));
        d.check(&["GET", &a]);
        d.check(&["SET", &a, "1"]);
        d.check(&["GET", &a]);
        d.check(&["SET", &a, "2", "NX"]);
        d.check(&["SET", &a, "3", "XX"]);
        d.check(&["GET", &a]);
        d.check(&["SET", &b, "1", "XX"]);
        d.check(&["SET", &b, "1", "NX", "GET"]);
        d.check(&["SET", &b, "2", "NX", "GET"]);
        d.check(&["SET", &b, "3", "XX", "GET"]);
        d.check(&["SET", &b, "4", "GET"]);
        d.check(&["GET", &b]);
        d.check(&["EXISTS", &a, &b, &a, &k("none")]);
        d.check(&["DEL", &a, &a, &k("none")]);
        d.check(&["EXISTS", &a]);
        d.check(&["DEL", &b]);
        d.check(&["DEL", &b]);
        d.check(&["SET", &k("empty"), ""]);
        d.check(&["GET", &k("empty")]);
        d.check(&["SET", "diff:bin:\x00\u{ff}", "\x00\r\n"]);
        d.check(&["GET", "diff:bin:\x00\u{ff}"]);
        d.check(&["DEL", "diff:bin:\x00\u{ff}"]);
        d.check(&["GET"]);
        d.check(&["GET", &a, &b]);
        d.check(&["SET", &a]);
        d.check(&["DEL"]);
        d.check(&["EXISTS"]);
    });
}

#[test]
fn set_options_are_parsed_as_redis_parses_them() {
    both_protocols("setopts", |d, k| {
        let a = k("a");
        let ok_cases: &[&[&str]] = &[
            &["EX", "100"],
            &["PX", "100000"],
            &["EXAT", "9999999999"],
            &["PXAT", "9999999999000"],
            &["KEEPTTL"],
            &["ex", "10", "ex", "20"],
            &["NX", "NX"],
            &["XX", "XX"],
            &["GET", "GET"],
            &["xx", "get", "px", "5000"],
            &["KEEPTTL", "KEEPTTL"],
        ];
        let error_cases: &[&[&str]] = &[
            &["NX", "XX"],
            &["XX", "NX"],
            &["EX", "10", "PX", "10"],
            &["PX", "10", "EX", "10"],
            &["EX", "10", "KEEPTTL"],
            &["KEEPTTL", "EX", "10"],
            &["EXAT", "10", "PXAT", "10"],
            &["EX"],
            &["EX", "0"],
            &["EX", "-5"],
            &["PX", "0"],
            &["EX", "abc"],
            &["EX", "1.5"],
            &["EX", "9223372036854775807"],
            &["PX", "9223372036854775807"],
            &["EXAT", "0"],
            &["PXAT", "-1"],
            &["EX", "10", "BOGUS"],
            &["PERSIST"],
            &["GET", "PX"],
            &["NXX"],
        ];
        for opts in ok_cases.iter().chain(error_cases) {
            let mut cmd = vec!["SET", a.as_str(), "v"];
            cmd.extend_from_slice(opts);
            d.check(&cmd);
        }
        d.check(&["GET", &a]);
    });
}

#[test]
fn expiry_through_set_matches_redis() {
    both_protocols("setexp", |d, k| {
        let a = k("a");
        d.check(&["SET", &a, "v", "PX", "100"]);
        d.check(&["GET", &a]);
        std::thread::sleep(std::time::Duration::from_millis(250));
        d.check(&["GET", &a]);
        d.check(&["EXISTS", &a]);
        d.check(&["SET", &a, "v", "XX"]);
        d.check(&["SET", &a, "v", "PXAT", "1"]);
        d.check(&["GET", &a]);
        d.check(&["SET", &a, "v", "NX", "GET"]);
        // KEEPTTL keeps the TTL: the key is still gone after it runs out.
        d.check(&["SET", &a, "v", "PX", "100"]);
        d.check(&["SET", &a, "w", "KEEPTTL"]);
        d.check(&["GET", &a]);
        std::thread::sleep(std::time::Duration::from_millis(250));
        d.check(&["GET", &a]);
        d.check(&["DEL", &a]);
    });
}

#[test]
fn command_info_and_docs_match_redis() {
    let commands = [
        "get", "set", "del", "exists", "ping", "echo", "select", "auth", "hello", "quit", "info",
        "client|id", "client|getname", "client|setname", "command|count", "command|info", "command|docs",
    ];
    both_protocols("command", |d, _k| {
        for c in commands {
            d.check(&["COMMAND", "INFO", c]);
            d.check(&["COMMAND", "DOCS", c]);
        }
        d.check(&["COMMAND", "INFO", "GET", "nosuchcommand", "Set"]);
        d.check(&["COMMAND", "DOCS", "nosuchcommand"]);
        d.check(&["COMMAND", "DOCS", "get", "nosuch", "del"]);
        d.check(&["COMMAND", "COUNT", "extra"]);
    });
}

#[test]
fn command_list_getkeys_and_help_match_redis() {
    let getkeys: &[&[&str]] = &[
        &["SET", "a", "b"],
        &["set", "a", "b", "EX", "10"],
        &["GET", "a"],
        &["MSET", "a", "1", "b", "2", "a", "3"],
        &["MSET", "a", "1", "b"],
        &["DEL", "a", "b", "c"],
        &["LMOVE", "a", "b", "LEFT", "RIGHT"],
        &["RPOPLPUSH", "a", "b"],
        &["RENAME", "a", "b"],
        &["COPY", "a", "b", "DB", "1"],
        &["OBJECT", "ENCODING", "k"],
        &["BLPOP", "a", "b", "0"],
        &["ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"],
        &["ZUNIONSTORE", "d", "5", "a"],
        &["ZUNIONSTORE", "d", "0", "a"],
        &["ZUNIONSTORE", "d", "-1", "a"],
        &["ZUNIONSTORE", "d", "1x", "a"],
        &["ZINTER", "2", "a", "b"],
        &["ZDIFF", "3", "a", "b"],
        &["SINTERCARD", "2", "a", "b", "LIMIT", "1"],
        &["LMPOP", "2", "a", "b", "LEFT"],
        &["LMPOP", "0", "a", "LEFT"],
        &["LMPOP", " 1", "a", "LEFT"],
        &["BLMPOP", "0", "1", "a", "LEFT"],
        &["BZMPOP", "0", "2", "a", "b", "MIN"],
        &["EVAL", "return 1", "2", "x", "y", "z"],
        &["EVAL", "return 1", "0"],
        &["EVAL", "return 1", "5", "a"],
        &["EVAL", "return 1", "-1"],
        &["EVALSHA", "abc", "1", "k"],
        &["FCALL", "f", "1", "k", "arg"],
        &["SORT", "a"],
        &["SORT", "a", "BY", "x", "STORE", "d"],
        &["SORT", "a", "LIMIT", "0", "1", "GET", "store", "STORE", "d1", "STORE", "d2"],
        &["SORT", "a", "STORE"],
        &["SORT_RO", "a", "BY", "x"],
        &["GETEX", "a", "PERSIST"],
        &["BITOP", "AND", "d", "a", "b"],
        &["BITFIELD", "k", "GET", "u8", "0"],
        &["BITFIELD", "k", "GET", "u8", "0", "OVERFLOW", "SAT", "INCRBY", "u8", "0", "1"],
        &["BITFIELD", "k", "GET", "u8"],
        &["BITFIELD_RO", "k", "GET", "u8", "0"],
        &["SET", "a", "b", "GET"],
        &["SET", "a", "b", "gEt", "NX"],
        &["ZRANGESTORE", "d", "s", "0", "-1"],
        &["GETKEYS-NONE"],
        &["PING"],
        &["ping", "x"],
        &["CLIENT", "LIST"],
        &["CLIENT", "NOSUCH"],
        &["CONFIG", "GET", "x"],
        &["NOSUCH", "a"],
        &["SET", "a"],
        &["GET", "a", "b"],
    ];
    both_protocols("command-keys", |d, _k| {
        for cmd in getkeys {
            for sub in ["GETKEYS", "GETKEYSANDFLAGS"] {
                let mut args = vec!["COMMAND", sub];
                args.extend(cmd.iter().copied());
                d.check(&args);
            }
        }
        d.check(&["COMMAND", "GETKEYS"]);
        d.check(&["COMMAND", "HELP"]);
        d.check(&["COMMAND", "HELP", "x"]);
        d.check(&["COMMAND", "help"]);
        for c in ["command|list", "command|getkeys", "command|getkeysandflags", "command|help"] {
            d.check(&["COMMAND", "INFO", c]);
        }
        d.check(&["COMMAND", "LIST", "FILTERBY", "MODULE", "x"]);
        d.check(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "nosuch"]);
        d.check(&["COMMAND", "LIST", "FILTERBY", "NOSUCH", "x"]);
        d.check(&["COMMAND", "LIST", "FILTERBY", "PATTERN"]);
        d.check(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "x", "y"]);
        d.check(&["COMMAND", "LIST", "extra"]);
        d.check(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "nomatch*"]);
        // pgkv lists the commands it serves: Redis's list, less the rest
        // (and in another order).
        let names = |client: &mut pgkv_tests::RawClient, filter: &[&str]| {
            let mut args = vec!["COMMAND", "LIST"];
            args.extend(filter);
            let reply = String::from_utf8(client.call(&args)).unwrap();
            let mut names: Vec<String> =
                reply.split("\r\n").filter(|l| !l.is_empty() && !l.starts_with(['*', '$'])).map(str::to_string).collect();
            names.sort();
            names
        };
        let ours_all = names(&mut d.pgkv, &[]);
        assert!(ours_all.len() > 150 && ours_all.contains(&"config|get".to_string()), "{ours_all:?}");
        for filter in [&[][..], &["FILTERBY", "PATTERN", "z*"], &["FILTERBY", "PATTERN", "CONFIG|*"], &["FILTERBY", "ACLCAT", "SortedSet"], &["FILTERBY", "aclcat", "write"]] {
            let ours = names(&mut d.pgkv, filter);
            let theirs: Vec<String> = names(&mut d.redis, filter).into_iter().filter(|n| ours_all.contains(n)).collect();
            assert!(!ours.is_empty(), "{filter:?}");
            assert_eq!(ours, theirs, "COMMAND LIST {filter:?}");
        }
    });
}

#[test]
fn protocol_errors_match_redis() {
    let inputs: &[&[u8]] = &[
        b"*abc\r\n",
        b"*3000000000\r\n",
        b"*1\r\n$-1\r\n",
        b"*1\r\n$abc\r\n",
        b"*1\r\n$600000000\r\n",
        b"*2\r\n$4\r\nECHO\r\n:1\r\n",
        b"*1\r\n+PING\r\n",
        b"SET k \"unterminated\r\n",
        b"SET k \"a\"b\r\n",
        b"SET k 'a\r\n",
    ];
    for input in inputs {
        let mut d = Differential::new(shared().redis_port, shared_redis_port(), 2);
        d.check_raw(input, 1);
        assert!(d.pgkv.is_closed(), "pgkv closes after {:?}", String::from_utf8_lossy(input));
        assert!(d.redis.is_closed());
    }
    let mut d = Differential::new(shared().redis_port, shared_redis_port(), 2);
    d.check_raw(&[b'a'; 70 * 1024], 1);
}

#[test]
fn inline_and_empty_requests_match_redis() {
    both_protocols("inline", |d, k| {
        let a = k("a");
        d.check_raw(format!("SET {a} \"x y\\x41\\n\"\r\nGET {a}\r\n").as_bytes(), 2);
        d.check_raw(format!("\r\n\r\nSET {a} 'it\\'s'\nGET {a}\r\n").as_bytes(), 2);
        d.check_raw(b"*0\r\n*-1\r\nPING\r\n", 1);
        d.check_raw(b"   PING   \r\n", 1);
    });
}

#[test]
fn pipelined_mixed_commands_match_redis() {
    both_protocols("pipeline", |d, k| {
        let mut cmds = Vec::new();
        for i in 0..200 {
            let key = k(&(i % 7).to_string());
            let cmd: Vec<String> = match i % 5 {
                0 => vec!["SET".into(), key, i.to_string()],
                1 => vec!["GET".into(), key],
                2 => vec!["SET".into(), key, "v".into(), "NX".into(), "GET".into()],
                3 => vec!["DEL".into(), key],
                _ => vec!["EXISTS".into(), key.clone(), key],
            };
            cmds.push(cmd);
        }
        d.check_pipeline(&cmds);
    });
}

/// Existing keys that a batch only overwrites (SET, SETEX, PSETEX, MSET,
/// MSETNX) are locked without copying their payloads; keys the batch also
/// reads keep them. Both must answer as Redis does, in the batch and after.
#[test]
fn overwritten_keys_in_one_batch_match_redis() {
    both_protocols("overwrite", |d, k| {
        let keys: Vec<String> = ["a", "b", "c", "d", "e", "l", "h", "t"].iter().map(|n| k(n)).collect();
        let [a, b, c, dd, e, l, h, t] = keys.iter().map(String::as_str).collect::<Vec<_>>()[..] else { unreachable!() };
        let mut del = vec!["DEL"];
        del.extend(keys.iter().map(String::as_str));
        d.check(&del);
        for key in [a, b, c, dd, e] {
            d.check(&["SET", key, "old"]);
        }
        d.check(&["SET", t, "old", "EX", "1000"]);
        d.check(&["RPUSH", l, "x", "y"]);
        d.check(&["HSET", h, "f", "v"]);
        let fresh = k("fresh");
        d.check(&["DEL", &fresh]);
        let steps: &[&[&str]] = &[
            &["SET", a, "new-a"],
            &["MSET", b, "new-b", c, "new-c"],
            &["SETEX", dd, "100", "new-d"],
            &["PSETEX", e, "100000", "new-e"],
            &["SET", l, "list now a string"],
            &["SET", h, "hash too", "KEEPTTL"],
            &["SET", t, "kept", "KEEPTTL"],
            &["MSETNX", a, "no", &fresh, "no"],
            &["GET", c],
            &["SET", c, "again"],
            &["APPEND", c, "+"],
            &["SET", a, "with-get", "GET"],
        ];
        d.check_pipeline(steps);
        for key in [a, b, c, dd, e, l, h, t] {
            d.check(&["GET", key]);
            d.check(&["TYPE", key]);
        }
        d.check(&["TTL", t]);
        d.check(&["TTL", dd]);
        d.check(&["HGET", h, "f"]);
        d.check(&["LLEN", l]);
        // And again, with the keys' rows now overwritten once.
        let again: Vec<Vec<&str>> = [a, b, c, dd, e, l, h, t].iter().map(|key| vec!["SET", *key, "third"]).collect();
        d.check_pipeline(&again);
        d.check(&["MGET", a, b, c, dd, e, l, h, t]);
    });
}

/// LPOP/RPOP of a list that more pops of the batch target read their
/// elements ahead in one statement and queue the deletions. Every other
/// command of the batch must see each pop as done: pushes reusing a popped
/// position, reads, LSET, moves, emptied lists, other statements between
/// pops, and the state left for the next batch.
#[test]
fn batched_pops_match_redis() {
    both_protocols("pops", |d, k| {
        let (l1, l2, l3, h, s) = (k("l1"), k("l2"), k("l3"), k("h"), k("s"));
        d.check(&["DEL", &l1, &l2, &l3, &h, &s]);
        let elements: Vec<String> = (0..40).map(|i| format!("e{i}")).collect();
        for l in [&l1, &l2, &l3] {
            let mut cmd = vec!["RPUSH", l.as_str()];
            cmd.extend(elements.iter().map(|e| e.as_str()));
            d.check(&cmd);
        }
        d.check(&["SET", &s, "string"]);
        let mut cmds: Vec<Vec<String>> = Vec::new();
        let mut add = |words: &[&str]| cmds.push(words.iter().map(|w| w.to_string()).collect());
        for _ in 0..5 {
            add(&["RPOP", &l1]);
        }
        add(&["LPOP", &l1]);
        add(&["LPOP", &l1, "3"]);
        add(&["LLEN", &l1]);
        add(&["RPUSH", &l1, "pushed"]);
        add(&["RPOP", &l1]);
        add(&["RPOP", &l1]);
        add(&["LINDEX", &l1, "-1"]);
        add(&["LRANGE", &l1, "-3", "-1"]);
        add(&["RPOP", &l1]);
        add(&["LSET", &l1, "-1", "changed"]);
        add(&["RPOP", &l1]);
        add(&["RPOP", &l1, "2"]);
        add(&["LMOVE", &l1, &l2, "RIGHT", "LEFT"]);
        add(&["RPOP", &l1, "0"]);
        add(&["RPOP", &l1, "-1"]);
        add(&["RPOP", &s]);
        add(&["LPOP", &l1, "2"]);
        // Two lists in turn, with a statement (HSET) and a cached read between.
        for i in 0..6 {
            add(&["RPOP", &l2]);
            add(&["LPOP", &l3]);
            if i == 2 {
                add(&["HSET", &h, "f", "v"]);
                add(&["GET", &s]);
            }
        }
        // More pops than l3 has: it is emptied and removed, then made again.
        for _ in 0..40 {
            add(&["LPOP", &l3]);
        }
        add(&["EXISTS", &l3]);
        add(&["RPUSH", &l3, "new"]);
        add(&["RPOP", &l3]);
        add(&["RPOP", &l3]);
        add(&["LRANGE", &l1, "0", "-1"]);
        add(&["RPOP", &l1, "100"]);
        d.check_pipeline(&cmds);
        for key in [&l1, &l2, &l3] {
            d.check(&["EXISTS", key]);
            d.check(&["LRANGE", key, "0", "-1"]);
        }
    });
}

/// SET and MSET are queued and sent as one upsert per batch; key rows
/// changed by other writes are written back at its end. Everything a
/// later command of the same batch does with those keys must behave as if
/// each write had happened at once: reads, read-modify-writes, type
/// changes, deletes, TTLs, renames, counts, and (last) the state left
/// behind for the next batch.
#[test]
fn queued_writes_in_one_batch_match_redis() {
    both_protocols("queued", |d, k| {
        let (a, b, c, h, n) = (k("a"), k("b"), k("c"), k("h"), k("n"));
        let mut cmds: Vec<Vec<String>> = Vec::new();
        let mut add = |words: &[&str]| cmds.push(words.iter().map(|w| w.to_string()).collect());
        add(&["DEL", &a, &b, &c, &h, &n]);
        add(&["SET", &a, "1"]);
        add(&["GET", &a]);
        add(&["INCR", &a]);
        add(&["GET", &a]);
        add(&["SET", &a, "x"]);
        add(&["APPEND", &a, "yz"]);
        add(&["STRLEN", &a]);
        add(&["MSET", &b, "1", &c, "2", &b, "3"]);
        add(&["MGET", &a, &b, &c]);
        add(&["EXISTS", &a, &b, &c, &n]);
        add(&["HSET", &h, "f", "v"]);
        add(&["SET", &h, "now a string"]);
        add(&["TYPE", &h]);
        add(&["HGET", &h, "f"]);
        add(&["GET", &h]);
        add(&["HSET", &h, "f", "v"]);
        add(&["SET", &b, "v", "EX", "100"]);
        add(&["TTL", &b]);
        add(&["SET", &b, "w", "KEEPTTL"]);
        add(&["TTL", &b]);
        add(&["SET", &b, "w2"]);
        add(&["TTL", &b]);
        add(&["SET", &c, "gone"]);
        add(&["DEL", &c]);
        add(&["GET", &c]);
        add(&["SET", &c, "back"]);
        add(&["GETDEL", &c]);
        add(&["EXISTS", &c]);
        add(&["SET", &n, "renamed"]);
        add(&["RENAME", &n, &c]);
        add(&["GET", &c]);
        add(&["GET", &n]);
        add(&["SET", &n, "old", "GET"]);
        add(&["SET", &n, "new", "GET"]);
        add(&["SET", &n, "nx", "NX"]);
        add(&["SET", &n, "xx", "XX"]);
        add(&["GET", &n]);
        add(&["SETEX", &a, "50", "e"]);
        add(&["TTL", &a]);
        add(&["PERSIST", &a]);
        add(&["TTL", &a]);
        // Many keys in one batch: the multi-row write-back of INCR and EXPIRE.
        for i in 0..20 {
            let key = k(&format!("m{i}"));
            add(&["SET", &key, &i.to_string()]);
            add(&["INCRBY", &key, "10"]);
            add(&["EXPIRE", &key, "1000"]);
        }
        // List pushes are queued too; every other list command must see them.
        let (l1, l2, l3) = (k("l1"), k("l2"), k("l3"));
        add(&["DEL", &l1, &l2, &l3, &k("list0"), &k("list1"), &k("list2")]);
        add(&["RPUSH", &l1, "a", "b", "c"]);
        add(&["LPUSH", &l1, "z"]);
        add(&["LLEN", &l1]);
        add(&["LRANGE", &l1, "0", "-1"]);
        add(&["RPUSH", &l1, "d"]);
        add(&["LINDEX", &l1, "-1"]);
        add(&["LSET", &l1, "0", "y"]);
        add(&["RPOP", &l1]);
        add(&["LPUSH", &l1, "x"]);
        add(&["LPOP", &l1, "2"]);
        add(&["LMOVE", &l1, &l2, "RIGHT", "LEFT"]);
        add(&["RPUSH", &l2, "tail"]);
        add(&["LRANGE", &l2, "0", "-1"]);
        add(&["LINSERT", &l2, "BEFORE", "tail", "mid"]);
        add(&["RPUSHX", &l3, "no"]);
        add(&["RPUSH", &l3, "gone"]);
        add(&["SET", &l3, "a string now"]);
        add(&["GET", &l3]);
        add(&["LLEN", &l3]);
        add(&["RPUSH", &l2, "x"]);
        add(&["DEL", &l2]);
        add(&["RPUSH", &l2, "again"]);
        add(&["TYPE", &l2]);
        for i in 0..10 {
            add(&["RPUSH", &k(&format!("list{}", i % 3)), &i.to_string()]);
        }
        d.check_pipeline(&cmds);
        // What the batch left behind, read in later batches.
        for key in [&a, &b, &c, &h, &n] {
            d.check(&["GET", key]);
            d.check(&["TYPE", key]);
            d.check(&["TTL", key]);
        }
        for key in [&l1, &l2, &l3, &k("list0"), &k("list1"), &k("list2")] {
            d.check(&["TYPE", key]);
            d.check(&["LRANGE", key, "0", "-1"]);
        }
        for i in 0..20 {
            let key = k(&format!("m{i}"));
            d.check(&["GET", &key]);
            d.check(&["TTL", &key]);
        }
    });
}

/// Numbers with a NUL byte inside: Redis parses most arguments with their
/// length (string2ll, string2ld: refused), but a score range as a C string
/// (zslParseRange: "1\0x" is 1).
#[test]
fn numbers_with_an_embedded_nul_match_redis() {
    both_protocols("nul", |d, k| {
        let (f, g, z, h, i, n, l) = (k("f"), k("g"), k("z"), k("h"), k("i"), k("n"), k("l"));
        d.check(&["DEL", &f, &g, &z, &h, &i, &n, &l]);
        d.check(&["SET", &f, "3.5\0"]);
        d.check(&["INCRBYFLOAT", &f, "1"]);
        d.check(&["INCRBYFLOAT", &g, "1\0"]);
        d.check(&["GET", &f]);
        d.check(&["EXISTS", &g]);
        d.check(&["ZADD", &z, "1\0", "m"]);
        d.check(&["ZADD", &z, "1", "m", "2", "n"]);
        d.check(&["ZINCRBY", &z, "1\0", "m"]);
        for (min, max) in [("1\0", "2"), ("(1\0x", "+inf"), ("-inf", "2\0junk"), ("1x\0", "2"), ("", "(\0")] {
            d.check(&["ZRANGEBYSCORE", &z, min, max]);
            d.check(&["ZCOUNT", &z, min, max]);
            d.check(&["ZRANGE", &z, min, max, "BYSCORE", "WITHSCORES"]);
        }
        d.check(&["HSET", &h, "f", "1\0"]);
        d.check(&["HINCRBYFLOAT", &h, "f", "1"]);
        d.check(&["HINCRBYFLOAT", &h, "g", "1\0"]);
        d.check(&["SET", &i, "1\0"]);
        d.check(&["INCR", &i]);
        d.check(&["INCRBY", &n, "1\0"]);
        d.check(&["EXPIRE", &n, "1\0"]);
        d.check(&["SETRANGE", &n, "1\0", "x"]);
        d.check(&["LRANGE", &l, "0\0", "1"]);
        d.check(&["BLPOP", &l, "0.01\0"]);
    });
}

/// Which error wins when a command has several: ZUNION, ZINTER, ZDIFF,
/// their STORE forms and ZINTERCARD check their keys' types before they
/// read their options; SINTERCARD reads its options first.
#[test]
fn errors_come_in_redis_order() {
    both_protocols("order", |d, k| {
        let (h, z, s) = (k("h"), k("z"), k("s"));
        d.check(&["DEL", &h, &z, &s]);
        d.check(&["HSET", &h, "f", "v"]);
        d.check(&["ZADD", &z, "1", "a"]);
        d.check(&["SADD", &s, "a"]);
        for cmd in ["ZUNION", "ZINTER", "ZDIFF"] {
            d.check(&[cmd, "2", &z, &h, "WEIGHTS", "1"]);
            d.check(&[cmd, "2", &z, &h, "AGGREGATE", "BAD"]);
            d.check(&[cmd, "2", &z, &s, "WEIGHTS", "1"]);
            d.check(&[cmd, "2", &z, &s, "NOSUCH"]);
            d.check(&[&format!("{cmd}STORE"), &k("dst"), "2", &h, &z, "WITHSCORES"]);
            d.check(&[&format!("{cmd}STORE"), &k("dst"), "2", &s, &z, "WITHSCORES"]);
        }
        d.check(&["ZINTERCARD", "2", &z, &h, "LIMIT", "-1"]);
        d.check(&["ZINTERCARD", "2", &z, &s, "LIMIT", "-1"]);
        d.check(&["SINTERCARD", "2", &s, &h, "LIMIT", "-1"]);
        d.check(&["SINTERCARD", "2", &s, &h, "LIMIT", "1"]);
        // A LIMIT that is no number at all gets the negative one's message.
        for limit in ["abc", "1.5", "", "99999999999999999999"] {
            d.check(&["SINTERCARD", "1", &s, "LIMIT", limit]);
            d.check(&["ZINTERCARD", "1", &z, "LIMIT", limit]);
        }
    });
}
