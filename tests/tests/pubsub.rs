//! Pub/sub: differential tests against redis-server 7.0 in RESP2 and RESP3,
//! delivery at commit from SQL, large/binary/duplicate messages, slow
//! subscribers, and two workers.

use pgkv_tests::{shared, show, Differential, PgCluster, RawClient};
use std::time::Duration;

fn both(body: impl Fn(&mut Differential, &mut Differential, u8)) {
    for proto in [2, 3] {
        let mut sub = Differential::shared(proto, 0);
        let mut publisher = Differential::shared(proto, 0);
        body(&mut sub, &mut publisher, proto);
    }
}

const QUIET: Duration = Duration::from_millis(300);

#[test]
fn subscribe_publish_and_introspection_match_redis() {
    both(|sub, p, proto| {
        let t = format!("ps{proto}");
        let (a, b) = (format!("{t}:a"), format!("{t}:b"));
        sub.check_n(&["SUBSCRIBE", &a, &b], 2);
        sub.check_n(&["SUBSCRIBE", &a], 1);
        p.check(&["PUBLISH", &a, "hello"]);
        sub.check_pushed();
        p.check(&["PUBLISH", &format!("{t}:none"), "x"]);
        p.check(&["PUBSUB", "NUMSUB", &a, &b, &format!("{t}:none")]);
        p.check(&["PUBSUB", "NUMSUB"]);
        p.check_unordered(&["PUBSUB", "CHANNELS", &format!("{t}:*")]);
        p.check(&["PUBSUB", "CHANNELS", &format!("{t}:a")]);
        // RESP2 subscribed mode allows only a few commands; RESP3 all.
        sub.check(&["GET", "x"]);
        sub.check(&["CONFIG", "GET", "maxclients"]);
        sub.check(&["PING"]);
        sub.check(&["PING", "hi"]);
        sub.check(&["SUBSCRIBE"]);
        sub.check_n(&["PSUBSCRIBE", &format!("{t}:*"), &format!("{t}:?")], 2);
        p.check(&["PUBLISH", &a, "two"]);
        // message first, then one pmessage per matching pattern (in an
        // order Redis leaves to its dict).
        sub.check_pushed();
        let mut ours = vec![sub.pgkv.read_reply(), sub.pgkv.read_reply()];
        let mut theirs = vec![sub.redis.read_reply(), sub.redis.read_reply()];
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs);
        p.check(&["PUBSUB", "NUMPAT"]);
        sub.check_n(&["UNSUBSCRIBE", &a], 1);
        sub.check_n(&["PUNSUBSCRIBE", &format!("{t}:?")], 1);
        sub.check_n(&["PUNSUBSCRIBE"], 1);
        sub.check_n(&["UNSUBSCRIBE"], 1);
        sub.check_n(&["UNSUBSCRIBE"], 1);
        sub.check_n(&["PUNSUBSCRIBE"], 1);
        // No longer subscribed: every command works again.
        sub.check(&["GET", "x"]);
        sub.check(&["PING"]);
        p.check(&["PUBLISH", &a, "nobody"]);
        // Shard channels: counted apart from channels and patterns.
        let s = format!("{t}:s");
        sub.check_n(&["SSUBSCRIBE", &s, &a], 2);
        p.check(&["SPUBLISH", &s, "sm"]);
        sub.check_pushed();
        p.check(&["PUBLISH", &s, "plain"]);
        p.check(&["PUBSUB", "SHARDNUMSUB", &s, &b]);
        p.check_unordered(&["PUBSUB", "SHARDCHANNELS", &format!("{t}:*")]);
        sub.check(&["GET", "x"]);
        sub.check_n(&["SUNSUBSCRIBE", &a], 1);
        sub.check_n(&["SUNSUBSCRIBE"], 1);
        sub.check_n(&["SUNSUBSCRIBE"], 1);
        sub.check(&["PUBLISH"]);
        sub.check(&["PUBSUB", "NUMPAT", "x"]);
        sub.check(&["PUBSUB", "CHANNELS", "a", "b"]);
    });
}

#[test]
fn binary_large_and_duplicate_messages_arrive_whole_and_in_order() {
    both(|sub, p, proto| {
        let ch: Vec<u8> = [b"bin\x00\xff".as_slice(), &[proto]].concat();
        sub.check_n(&[&b"SUBSCRIBE"[..], &ch], 1);
        let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        let messages: Vec<Vec<u8>> = vec![b"\x00\r\n\xff".to_vec(), big.clone(), b"same".to_vec(), b"same".to_vec(), Vec::new()];
        // Pipelined: one batch publishes all five, two of them equal.
        let mut out = bytes::BytesMut::new();
        for m in &messages {
            pgkv_resp::encode_request(&[&b"PUBLISH"[..], &ch, m], &mut out);
        }
        p.check_raw(&out, messages.len());
        for m in &messages {
            let got = sub.check_pushed();
            assert!(got.windows(m.len().max(1)).any(|w| m.is_empty() || w == &m[..]), "message arrived whole");
        }
        sub.check_n(&["UNSUBSCRIBE"], 1);
    });
}

fn subscribe(client: &mut RawClient, channel: &str) {
    let reply = client.call(&["SUBSCRIBE", channel]);
    assert!(reply.starts_with(b"*3\r\n$9\r\nsubscribe"), "{}", show(&reply));
}

#[test]
fn sql_publish_is_delivered_at_commit_and_never_on_rollback() {
    let c = shared();
    let mut sub = c.raw();
    subscribe(&mut sub, "sqlpub:ch");
    let mut sql = c.sql();
    let mut tx = sql.transaction().unwrap();
    let n: i64 = tx.query_one("SELECT kv.publish('sqlpub:ch', 'rolled back')", &[]).unwrap().get(0);
    assert_eq!(n, 1, "kv.publish counts the subscriber");
    tx.rollback().unwrap();
    assert_eq!(sub.try_read_reply(QUIET), None, "a rolled-back publish is never delivered");

    let mut tx = sql.transaction().unwrap();
    tx.execute("SELECT kv.publish('sqlpub:ch', 'first')", &[]).unwrap();
    tx.execute("SELECT kv.publish('sqlpub:ch'::bytea, '\\x00ff'::bytea)", &[]).unwrap();
    tx.execute("SELECT kv.publish('sqlpub:ch', 'first')", &[]).unwrap();
    let big = "x".repeat(100_000);
    tx.execute("SELECT kv.publish('sqlpub:ch', $1)", &[&big]).unwrap();
    assert_eq!(sub.try_read_reply(QUIET), None, "nothing before COMMIT");
    tx.commit().unwrap();
    let expect = |m: &[u8]| {
        let mut e = b"*3\r\n$7\r\nmessage\r\n$9\r\nsqlpub:ch\r\n".to_vec();
        e.extend_from_slice(format!("${}\r\n", m.len()).as_bytes());
        e.extend_from_slice(m);
        e.extend_from_slice(b"\r\n");
        e
    };
    assert_eq!(show(&sub.read_reply()), show(&expect(b"first")));
    assert_eq!(show(&sub.read_reply()), show(&expect(b"\x00\xff")));
    assert_eq!(show(&sub.read_reply()), show(&expect(b"first")), "equal messages are not collapsed");
    assert_eq!(show(&sub.read_reply()), show(&expect(big.as_bytes())), "large message through the spill table");
    // No subscribers: nothing sent, 0 counted.
    let n: i64 = sql.query_one("SELECT kv.publish('sqlpub:nobody', 'x')", &[]).unwrap().get(0);
    assert_eq!(n, 0);
}

#[test]
fn a_subscriber_that_does_not_read_is_disconnected() {
    let c = shared();
    let stalled = std::net::TcpStream::connect(("127.0.0.1", c.redis_port)).unwrap();
    stalled.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    {
        use std::io::Write;
        (&stalled).write_all(b"*2\r\n$9\r\nSUBSCRIBE\r\n$10\r\nslow:flood\r\n").unwrap();
    }
    let mut r = c.redis();
    std::thread::sleep(Duration::from_millis(200));
    let chunk = "y".repeat(1 << 20);
    let mut delivered_to = Vec::new();
    for _ in 0..80 {
        let n: i64 = redis::cmd("PUBLISH").arg("slow:flood").arg(&chunk).query(&mut r).unwrap();
        delivered_to.push(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(delivered_to[0], 1);
    assert_eq!(*delivered_to.last().unwrap(), 0, "the subscriber was dropped before 80 MB queued");
    let info: String = redis::cmd("INFO").arg("stats").query(&mut r).unwrap();
    assert!(!info.contains("pgkv_output_limit_disconnections:0\r\n"), "{info}");
    // The worker still serves everyone else.
    let pong: String = redis::cmd("PING").query(&mut r).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn publisher_and_subscriber_on_different_workers() {
    let c = PgCluster::start_with(&["pgkv.workers = 2"]);
    let mut sub = c.client_on_worker(0);
    let mut psub = c.client_on_worker(0);
    let mut publisher = c.client_on_worker(1);
    subscribe(&mut sub, "w2:ch");
    let r = psub.call(&["PSUBSCRIBE", "w2:*"]);
    assert!(r.starts_with(b"*3\r\n$10\r\npsubscribe"), "{}", show(&r));
    // Counted across workers, delivered in order.
    for i in 0..50 {
        assert_eq!(publisher.call(&["PUBLISH", "w2:ch", &format!("m{i}")]), b":2\r\n");
    }
    for i in 0..50 {
        let m = format!("m{i}");
        let got = sub.read_reply();
        assert_eq!(show(&got), show(format!("*3\r\n$7\r\nmessage\r\n$5\r\nw2:ch\r\n${}\r\n{m}\r\n", m.len()).as_bytes()));
        let got = psub.read_reply();
        assert!(got.starts_with(b"*4\r\n$8\r\npmessage\r\n$4\r\nw2:*\r\n"), "{}", show(&got));
    }
    assert_eq!(publisher.call(&["PUBSUB", "NUMSUB", "w2:ch"]), b"*2\r\n$5\r\nw2:ch\r\n:1\r\n");
    assert_eq!(publisher.call(&["PUBSUB", "NUMPAT"]), b":1\r\n");
    // A large message crosses workers too.
    let big = "z".repeat(200_000);
    assert_eq!(publisher.call(&["PUBLISH", "w2:ch", &big]), b":2\r\n");
    assert!(sub.read_reply().ends_with(format!("{big}\r\n").as_bytes()));
    assert!(psub.read_reply().ends_with(format!("{big}\r\n").as_bytes()));
    // A disconnected subscriber is no longer counted.
    drop(sub);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(publisher.call(&["PUBLISH", "w2:ch", "after"]), b":1\r\n");
}

/// Reads pushed messages until the marker arrives.
fn until_marker(c: &mut RawClient) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let m = c.read_reply();
        if m.windows(8).any(|w| w == b"kmarker!") {
            return out;
        }
        out.push(show(&m));
    }
}

#[test]
fn keyspace_notifications_match_redis() {
    for proto in [2u8, 3] {
        let mut sub = Differential::shared(proto, 12);
        let mut d = Differential::shared(proto, 12);
        d.check(&["CONFIG", "SET", "notify-keyspace-events", "xyz"]);
        d.check(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
        d.check(&["CONFIG", "GET", "notify-keyspace-events"]);
        sub.check_n(&["PSUBSCRIBE", "__key*@12__:*", "kmarker!"], 2);
        let script: &[&[&str]] = &[
            &["SET", "s", "1"],
            &["SET", "s", "2", "EX", "100"],
            &["APPEND", "s", "x"],
            &["SET", "n", "1"],
            &["INCR", "n"],
            &["INCRBYFLOAT", "n", "1.5"],
            &["SETRANGE", "s", "0", "zz"],
            &["GETDEL", "n"],
            &["MSET", "m1", "a", "m2", "b"],
            &["DEL", "m1", "m2", "nosuch"],
            &["SETBIT", "b", "3", "1"],
            &["EXPIRE", "s", "100"],
            &["PERSIST", "s"],
            &["RENAME", "s", "s2"],
            &["EXPIRE", "s2", "0"],
            &["RPUSH", "l", "a", "b", "c"],
            &["LPUSH", "l", "z"],
            &["LPOP", "l"],
            &["LSET", "l", "0", "q"],
            &["LINSERT", "l", "BEFORE", "q", "p"],
            &["LREM", "l", "1", "p"],
            &["LTRIM", "l", "0", "1"],
            &["LMOVE", "l", "l2", "LEFT", "RIGHT"],
            &["RPOP", "l", "5"],
            &["HSET", "h", "f", "1", "g", "2"],
            &["HINCRBY", "h", "f", "5"],
            &["HDEL", "h", "f", "g"],
            &["SADD", "st", "a", "b"],
            &["SADD", "st", "a"],
            &["SREM", "st", "a"],
            &["SINTERSTORE", "st2", "st"],
            &["SPOP", "st"],
            &["ZADD", "z", "1", "a", "2", "b"],
            // Nothing changes: no event.
            &["ZADD", "z", "1", "a", "2", "b"],
            &["ZADD", "z", "INCR", "0", "a"],
            &["ZADD", "z", "CH", "5", "a", "2", "b"],
            &["ZINCRBY", "z", "3", "a"],
            &["ZREM", "z", "a"],
            &["ZUNIONSTORE", "z2", "1", "z"],
            &["ZPOPMIN", "z"],
            &["ZREMRANGEBYSCORE", "z2", "-inf", "+inf"],
            &["SET", "gone", "x", "PX", "200"],
        ];
        for cmd in script {
            events_match(&mut d, &mut sub, cmd);
        }
        // Expiry: the key is gone when touched (or by the active cycle).
        // Its TTL outlasts the check of SET's own events: with 1 ms, pgkv's
        // active cycle sometimes expired it before that check's marker.
        std::thread::sleep(Duration::from_millis(300));
        d.check(&["GET", "gone"]);
        d.check(&["PUBLISH", "kmarker!", "x"]);
        let ours = until_marker(&mut sub.pgkv);
        let theirs = until_marker(&mut sub.redis);
        assert_eq!(ours, theirs, "expired events differ");
        // Class filtering: only list events, only keyevent channels.
        d.check(&["CONFIG", "SET", "notify-keyspace-events", "lE"]);
        d.check(&["CONFIG", "GET", "notify-keyspace-events"]);
        for cmd in [&["SET", "f", "1"][..], &["RPUSH", "fl", "x"], &["DEL", "fl"]] {
            d.check(cmd);
        }
        d.check(&["PUBLISH", "kmarker!", "x"]);
        assert_eq!(until_marker(&mut sub.pgkv), until_marker(&mut sub.redis));
        // `new`: a key added, by any command. `A` leaves it out, and CONFIG
        // GET does not show it after `A`, though it stays on.
        d.check(&["CONFIG", "SET", "notify-keyspace-events", "KEAn"]);
        d.check(&["CONFIG", "GET", "notify-keyspace-events"]);
        d.check(&["FLUSHDB"]);
        let script: &[&[&str]] = &[
            &["SET", "a", "1"],
            &["SET", "a", "2"],
            &["SET", "b", "1", "NX"],
            &["SET", "c", "1", "GET"],
            &["SET", "d", "1", "KEEPTTL"],
            &["SETEX", "e", "100", "v"],
            &["GETSET", "f", "v"],
            &["SETNX", "g", "v"],
            &["MSET", "m", "1", "m", "2", "a", "3"],
            &["MSETNX", "n1", "1", "n1", "2", "n2", "3"],
            &["RENAME", "a", "b"],
            &["RENAME", "b", "new"],
            &["COPY", "new", "c", "REPLACE"],
            &["COPY", "new", "copied"],
            &["BITOP", "OR", "bits", "new"],
            &["BITOP", "OR", "bits", "new"],
            &["RPUSH", "l", "3", "1", "2"],
            &["SORT", "l", "STORE", "sorted"],
            &["SORT", "l", "STORE", "sorted"],
            &["SADD", "s", "x"],
            &["SINTERSTORE", "s2", "s"],
            &["SUNIONSTORE", "s2", "s"],
            &["ZADD", "z", "1", "x"],
            &["ZUNIONSTORE", "z2", "1", "z"],
            &["ZRANGESTORE", "z2", "z", "0", "-1"],
            &["INCR", "counter"],
            &["INCR", "counter"],
        ];
        for cmd in script {
            events_match(&mut d, &mut sub, cmd);
        }
        // In one batch: the worker reads the keys ahead and queues the writes.
        d.check_pipeline(&[vec!["SET", "p1", "x"], vec!["SET", "p1", "y"], vec!["MSET", "p2", "1", "p1", "z"], vec!["INCR", "p3"]]);
        d.check(&["PUBLISH", "kmarker!", "x"]);
        assert_eq!(until_marker(&mut sub.pgkv), until_marker(&mut sub.redis), "events of a pipeline");
        d.check(&["CONFIG", "SET", "notify-keyspace-events", ""]);
        sub.check_n(&["PUNSUBSCRIBE"], 2);
    }
}

/// Runs `cmd` on both servers and compares the events it published.
fn events_match(d: &mut Differential, sub: &mut Differential, cmd: &[&str]) {
    d.check(cmd);
    d.check(&["PUBLISH", "kmarker!", "x"]);
    let ours = until_marker(&mut sub.pgkv);
    let theirs = until_marker(&mut sub.redis);
    assert_eq!(ours, theirs, "events differ for {cmd:?}");
}

#[test]
fn sql_writes_and_active_expiry_emit_keyspace_events() {
    let c = shared();
    let mut sub = c.raw();
    let r = sub.call(&["PSUBSCRIBE", "__keyspace@0__:sqlev*"]);
    assert!(r.starts_with(b"*3\r\n$10\r\npsubscribe"), "{}", show(&r));
    let mut admin = c.raw();
    assert_eq!(admin.call(&["CONFIG", "SET", "notify-keyspace-events", "Kgx$l"]), b"+OK\r\n");
    c.psql("SELECT kv.set('sqlev:a', 'v')");
    let m = sub.read_reply();
    assert_eq!(show(&m), show(b"*4\r\n$8\r\npmessage\r\n$21\r\n__keyspace@0__:sqlev*\r\n$22\r\n__keyspace@0__:sqlev:a\r\n$3\r\nset\r\n"));
    c.psql("BEGIN; SELECT kv.rpush('sqlev:l', 'x'); ROLLBACK;");
    assert_eq!(sub.try_read_reply(QUIET), None, "a rolled-back write emits nothing");
    // Active expiry, with nobody touching the key.
    admin.call(&["SET", "sqlev:t", "v", "PX", "50"]);
    let m = sub.read_reply();
    assert!(m.ends_with(b"$3\r\nset\r\n"), "{}", show(&m));
    let m = sub.read_reply();
    assert!(m.ends_with(b"$6\r\nexpire\r\n"), "{}", show(&m));
    let m = sub.read_reply();
    assert!(m.ends_with(b"$7\r\nexpired\r\n"), "{}", show(&m));
    assert_eq!(admin.call(&["CONFIG", "SET", "notify-keyspace-events", ""]), b"+OK\r\n");
}
