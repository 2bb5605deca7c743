//! Blocking commands: differential replies, wake-ups from other clients,
//! SQL transactions (only at commit) and another worker, FIFO fairness,
//! many consumers, CLIENT UNBLOCK.

use pgkv_tests::{shared, show, Differential, PgCluster, RawClient};
use std::time::{Duration, Instant};

const QUIET: Duration = Duration::from_millis(300);

#[test]
fn immediate_replies_timeouts_and_errors_match_redis() {
    Differential::each_protocol_pair(7, |d, _| {
        d.check(&["RPUSH", "l1", "a", "b", "c"]);
        d.check(&["BLPOP", "none", "l1", "0"]);
        d.check(&["BRPOP", "none", "l1", "0"]);
        d.check(&["BLMOVE", "l1", "l2", "LEFT", "RIGHT", "0"]);
        d.check(&["BRPOPLPUSH", "l2", "l1", "0"]);
        d.check(&["BLMPOP", "0", "2", "none", "l1", "LEFT", "COUNT", "5"]);
        d.check(&["ZADD", "z1", "1", "a", "2", "b", "3", "c"]);
        d.check(&["BZPOPMIN", "none", "z1", "0"]);
        d.check(&["BZPOPMAX", "z1", "0"]);
        d.check(&["BZMPOP", "0", "1", "z1", "MIN", "COUNT", "9"]);
        d.check(&["SET", "str", "x"]);
        d.check(&["BLPOP", "str", "0"]);
        d.check(&["BZPOPMIN", "str", "0"]);
        d.check(&["BLMOVE", "str", "l2", "LEFT", "LEFT", "0"]);
        // With data there, a valid timeout pops at once; a bad one errors.
        for t in ["x", "-1", "1e400", "", " 1", "0x10", "inf", "-0.0001", "1.5", "-1e400", "nan"] {
            d.check(&["RPUSH", "l1", "t"]);
            d.check(&["ZADD", "z1", "1", "t"]);
            d.check(&["BLPOP", "l1", t]);
            d.check(&["BZPOPMIN", "z1", t]);
        }
        d.check(&["BLMOVE", "a", "b", "UP", "LEFT", "0"]);
        d.check(&["BLMPOP", "0", "0", "l1", "LEFT"]);
        d.check(&["BLMPOP", "0", "1", "l1", "MIDDLE"]);
        d.check(&["BLMPOP", "x", "1", "l1", "LEFT"]);
        d.check(&["BZMPOP", "0", "1", "z1", "MIN", "COUNT", "0"]);
        d.check(&["BLPOP", "l1"]);
        // Timeouts: a null of each command's kind.
        d.check(&["BLPOP", "empty1", "empty2", "0.05"]);
        d.check(&["BRPOPLPUSH", "empty1", "l2", "0.05"]);
        d.check(&["BLMOVE", "empty1", "l2", "LEFT", "LEFT", "0.05"]);
        d.check(&["BZPOPMAX", "empty1", "0.05"]);
        d.check(&["BLMPOP", "0.05", "1", "empty1", "RIGHT"]);
        d.check(&["BZMPOP", "0.05", "1", "empty1", "MAX"]);
        // Inside MULTI nothing blocks: the timeout reply comes at once.
        d.check(&["MULTI"]);
        d.check(&["BLPOP", "empty1", "0"]);
        d.check(&["BLMOVE", "empty1", "l2", "LEFT", "LEFT", "0"]);
        d.check(&["BZPOPMIN", "empty1", "0"]);
        d.check(&["EXEC"]);
        // Pipelined behind other commands, a command that blocks answers
        // after them, and they all answer: reads, writes, errors.
        let steps: &[&[&str]] = &[
            &["SADD", "s1", "d", "10"],
            &["GET", "str"],
            &["LPUSH", "str", "x"],
            &["BLPOP", "empty1", "0.05"],
            &["PING"],
            &["BZPOPMIN", "empty1", "z1", "0.05"],
            &["ECHO", "after"],
        ];
        d.check_pipeline(steps);
    });
}

#[test]
fn a_push_from_another_client_wakes_the_blocked_one() {
    Differential::each_protocol_pair(8, |a, b| {
        a.pgkv.send(b"*3\r\n$5\r\nBLPOP\r\n$2\r\nwk\r\n$1\r\n0\r\n");
        a.redis.send(b"*3\r\n$5\r\nBLPOP\r\n$2\r\nwk\r\n$1\r\n0\r\n");
        std::thread::sleep(Duration::from_millis(100));
        b.check(&["RPUSH", "wk", "v1", "v2"]);
        a.check_pushed();
        b.check(&["LRANGE", "wk", "0", "-1"]);
        // BLMOVE woken by a push moves the element.
        let blmove = b"*6\r\n$6\r\nBLMOVE\r\n$3\r\nsrc\r\n$3\r\ndst\r\n$5\r\nRIGHT\r\n$4\r\nLEFT\r\n$1\r\n0\r\n";
        a.pgkv.send(blmove);
        a.redis.send(blmove);
        std::thread::sleep(Duration::from_millis(100));
        b.check(&["LPUSH", "src", "m"]);
        a.check_pushed();
        b.check(&["LRANGE", "dst", "0", "-1"]);
        // A sorted-set pop woken by ZADD.
        let bz = b"*3\r\n$8\r\nBZPOPMIN\r\n$2\r\nzw\r\n$1\r\n0\r\n";
        a.pgkv.send(bz);
        a.redis.send(bz);
        std::thread::sleep(Duration::from_millis(100));
        b.check(&["ZADD", "zw", "2.5", "m"]);
        a.check_pushed();
        // A push inside MULTI wakes the client when EXEC commits.
        a.pgkv.send(b"*3\r\n$5\r\nBRPOP\r\n$2\r\nmx\r\n$1\r\n0\r\n");
        a.redis.send(b"*3\r\n$5\r\nBRPOP\r\n$2\r\nmx\r\n$1\r\n0\r\n");
        std::thread::sleep(Duration::from_millis(100));
        b.check(&["MULTI"]);
        b.check(&["LPUSH", "mx", "1", "2"]);
        b.check(&["EXEC"]);
        a.check_pushed();
        // The client that was blocked is usable again.
        a.check(&["LRANGE", "mx", "0", "-1"]);
    });
}

/// Redis serves blocked clients right after the command that makes their
/// key ready (`handleClientsBlockedOnKeys` after every command; an EXEC or
/// a script counts as one), before the next command of the pushing
/// client's pipeline: the pusher's own LLEN or RPOP sees the list already
/// served. Key by key in the order they became ready, each key's clients
/// in blocking order, each served from that key; a client whose key now
/// holds another type keeps waiting. pgkv runs a batch as one
/// transaction, and serves its waiters inside it at the same points.
#[test]
fn blocked_clients_are_served_right_after_the_command_that_readies_their_key() {
    let _timing = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    type Cmds<'a> = &'a [&'a [&'a str]];
    // What blocks, in this order, each on its own connection; then the
    // other client's pipeline; then what is read back.
    let cases: &[(Cmds, Cmds, Cmds)] = &[
        (&[&["BLPOP", "k", "0"]], &[&["LPUSH", "k", "x"], &["RPOP", "k"]], &[&["EXISTS", "k"]]),
        (&[&["BLPOP", "k", "0"]], &[&["RPUSH", "k", "x", "y"], &["LLEN", "k"], &["LPOP", "k"]], &[]),
        (&[&["BLPOP", "k", "0"]], &[&["LPUSH", "k", "x"], &["DEL", "k"], &["LPUSH", "k", "y"], &["LRANGE", "k", "0", "-1"]], &[]),
        (&[&["BLPOP", "k", "0"], &["BRPOP", "k", "0"]], &[&["RPUSH", "k", "a"], &["LLEN", "k"], &["RPUSH", "k", "b", "c"], &["LRANGE", "k", "0", "-1"]], &[]),
        // Another type: the list waiter stays (and times out), the sorted
        // set waiter on the same key is served.
        (&[&["BLPOP", "k", "0.2"], &["BZPOPMIN", "k", "0"]], &[&["ZADD", "k", "1", "a", "2", "b"], &["ZCARD", "k"]], &[&["TYPE", "k"]]),
        (&[&["BLPOP", "k", "0.2"]], &[&["SET", "k", "v"], &["DEL", "k"]], &[&["EXISTS", "k"]]),
        (&[&["BLPOP", "k1", "k2", "0"]], &[&["SET", "k1", "s"], &["RPUSH", "k2", "x"], &["GET", "k1"]], &[&["EXISTS", "k2"]]),
        // Redis 7.0 makes a key ready when it is added, not when SORT ...
        // STORE or ZUNIONSTORE and the like replace an existing one: the
        // waiter keeps waiting (and times out).
        (&[&["BLPOP", "k", "0.2"]], &[&["RPUSH", "src", "x"], &["SET", "k", "s"], &["SORT", "src", "ALPHA", "STORE", "k"], &["LLEN", "k"]], &[&["LRANGE", "k", "0", "-1"]]),
        (&[&["BZPOPMIN", "k", "0.2"]], &[&["ZADD", "src", "1", "x"], &["SET", "k", "s"], &["ZUNIONSTORE", "k", "1", "src"], &["ZRANGESTORE", "k", "src", "0", "-1"]], &[&["ZCARD", "k"]]),
        (&[&["BLPOP", "k", "0"]], &[&["RPUSH", "src", "x"], &["SORT", "src", "ALPHA", "STORE", "k"], &["LLEN", "k"]], &[&["EXISTS", "k"]]),
        // Keys in the order they became ready, not the order named.
        (&[&["BLPOP", "k1", "k2", "0"]], &[&["MULTI"], &["LPUSH", "k2", "x"], &["LPUSH", "k1", "y"], &["EXEC"], &["LRANGE", "k1", "0", "-1"]], &[&["EXISTS", "k2"]]),
        (&[&["BLPOP", "k1", "0"]], &[&["EVAL", "redis.call('RPUSH', KEYS[1], 'a', 'b'); return redis.call('LLEN', KEYS[1])", "1", "k1"], &["LLEN", "k1"]], &[]),
        // BLMOVE's push serves the next waiter in turn.
        (&[&["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"], &["BLPOP", "dst", "0"]], &[&["LPUSH", "src", "m"], &["LLEN", "dst"], &["EXISTS", "src"]], &[]),
        (&[&["BRPOPLPUSH", "src", "dst", "0"]], &[&["SET", "dst", "s"], &["LPUSH", "src", "m"], &["LRANGE", "src", "0", "-1"]], &[]),
        (&[&["BLMPOP", "0", "2", "k1", "k2", "RIGHT", "COUNT", "2"]], &[&["RPUSH", "k2", "a", "b", "c"], &["LRANGE", "k2", "0", "-1"]], &[]),
        (&[&["BZMPOP", "0", "1", "z", "MAX", "COUNT", "2"], &["BZPOPMIN", "z", "0"]], &[&["ZADD", "z", "1", "a", "2", "b", "3", "c"], &["ZRANGE", "z", "0", "-1"]], &[]),
    ];
    let c = shared();
    for proto in [2, 3] {
        for (waits, pipeline, after) in cases {
            let mut b = Differential::shared(proto, 9);
            let mut waiters: Vec<Differential> = Vec::new();
            for cmd in waits.iter() {
                let mut w = Differential::new(c.redis_port, pgkv_tests::shared_redis_port(), proto);
                w.check(&["SELECT", "9"]);
                let id = (w.pgkv.call(&["CLIENT", "ID"]), w.redis.call(&["CLIENT", "ID"]));
                w.pgkv.send_command(cmd);
                w.redis.send_command(cmd);
                wait_parked(&mut b.pgkv, &id.0);
                wait_parked(&mut b.redis, &id.1);
                waiters.push(w);
            }
            b.check_pipeline(pipeline);
            for w in &mut waiters {
                w.check_pushed();
            }
            for cmd in after.iter() {
                b.check(cmd);
            }
        }
        // A waiter whose command comes in the pusher's batch (no wait
        // between them): pgkv runs a batch's clients in connection order,
        // not arrival order (they are concurrent, so either order is
        // Redis's for some arrival), so the push serves it, or the pusher's
        // RPOP takes the element and the waiter times out. Never both, and
        // the element is never lost.
        for _ in 0..20 {
            let mut a = pgkv_tests::RawClient::connect(c.redis_port);
            let mut b = pgkv_tests::RawClient::connect(c.redis_port);
            for client in [&mut a, &mut b] {
                client.call(&["SELECT", "9"]);
            }
            b.call(&["DEL", "k"]);
            a.send_command(&["BLPOP", "k", "0.1"]);
            let mut bytes = bytes::BytesMut::new();
            pgkv_resp::encode_request(&["LPUSH", "k", "x"], &mut bytes);
            pgkv_resp::encode_request(&["RPOP", "k"], &mut bytes);
            b.send(&bytes);
            let (pushed, popped, served) = (b.read_reply(), b.read_reply(), a.read_reply());
            assert_eq!(show(&pushed), show(b":1\r\n"));
            let outcomes = [(show(b"$-1\r\n"), show(b"*2\r\n$1\r\nk\r\n$1\r\nx\r\n")), (show(b"$1\r\nx\r\n"), show(b"*-1\r\n"))];
            assert!(outcomes.contains(&(show(&popped), show(&served))), "RPOP {} and BLPOP {}", show(&popped), show(&served));
            assert_eq!(show(&b.call(&["EXISTS", "k"])), show(b":0\r\n"));
        }
        // CLIENT UNBLOCK before the push in one pipeline: the client is
        // gone before the push can serve it.
        let mut b = Differential::shared(proto, 9);
        let mut a = Differential::new(c.redis_port, pgkv_tests::shared_redis_port(), proto);
        a.check(&["SELECT", "9"]);
        let id = (a.pgkv.call(&["CLIENT", "ID"]), a.redis.call(&["CLIENT", "ID"]));
        a.pgkv.send_command(&["BLPOP", "k", "0"]);
        a.redis.send_command(&["BLPOP", "k", "0"]);
        wait_parked(&mut b.pgkv, &id.0);
        wait_parked(&mut b.redis, &id.1);
        for (client, id) in [(&mut b.pgkv, &id.0), (&mut b.redis, &id.1)] {
            let id = String::from_utf8_lossy(&id[1..id.len() - 2]).into_owned();
            let mut bytes = bytes::BytesMut::new();
            pgkv_resp::encode_request(&["CLIENT", "UNBLOCK", &id], &mut bytes);
            pgkv_resp::encode_request(&["LPUSH", "k", "x"], &mut bytes);
            client.send(&bytes);
            assert_eq!(show(&client.read_reply()), show(b":1\r\n"));
            assert_eq!(show(&client.read_reply()), show(b":1\r\n"));
        }
        a.check_pushed();
        b.check(&["LRANGE", "k", "0", "-1"]);
    }
}

/// What a client pipelines after a blocking command: if the command does
/// not block, the rest of the pipeline runs right after it, before any
/// client it served runs what that client held back; if it blocks, the
/// rest waits until the client is served, and clients served together run
/// what they held back in the order they were served (Redis's
/// `processUnblockedClients`), whatever order they connected in.
#[test]
fn commands_after_a_blocking_one_run_when_redis_runs_them() {
    // A database of its own: the other tests here push to "k" in 9.
    let c = shared();
    for proto in [2, 3] {
        // The waiters connect before the pusher, w0 before w1, and block
        // in the other order: w1 is served first.
        let mut waiters: Vec<Differential> = (0..2).map(|_| Differential::new(c.redis_port, pgkv_tests::shared_redis_port(), proto)).collect();
        let mut b = Differential::shared(proto, 10);
        b.check(&["DEL", "q", "k", "out"]);
        b.check(&["RPUSH", "k", "a"]);
        for (n, w) in waiters.iter_mut().enumerate().rev() {
            w.check(&["SELECT", "10"]);
            let id = (w.pgkv.call(&["CLIENT", "ID"]), w.redis.call(&["CLIENT", "ID"]));
            let name = format!("w{n}");
            let mut bytes = bytes::BytesMut::new();
            pgkv_resp::encode_request(&["BLPOP", "q", "0"], &mut bytes);
            pgkv_resp::encode_request(&["RPUSH", "out", &name], &mut bytes);
            pgkv_resp::encode_request(&["LLEN", "q"], &mut bytes);
            w.pgkv.send(&bytes);
            w.redis.send(&bytes);
            wait_parked(&mut b.pgkv, &id.0);
            wait_parked(&mut b.redis, &id.1);
        }
        // Neither client answers anything while it waits.
        for w in &mut waiters {
            assert!(w.pgkv.try_read_reply(Duration::from_millis(50)).is_none(), "a blocked client answered");
        }
        b.check_pipeline(&[
            &["RPUSH", "q", "x", "y"][..],
            &["BLPOP", "k", "0"],
            &["RPUSH", "out", "b"],
            &["BLPOP", "q", "0.05"],
            &["RPUSH", "out", "b2"],
        ]);
        for w in waiters.iter_mut().rev() {
            for _ in 0..3 {
                w.check_pushed();
            }
        }
        b.check(&["LRANGE", "out", "0", "-1"]);
    }
}

/// Held by the test that keeps both servers busy for a moment, and by the
/// one whose waiters must be seen blocked within their 0.2 s timeouts.
static TIMING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// CLIENT UNBLOCK of a client whose blocking command ran earlier in the
/// same batch: the client is blocked by then, as it is in Redis, which
/// has read the two requests in the order they came. A script keeps both
/// servers busy while the two requests arrive, so that pgkv takes them in
/// one batch.
#[test]
fn client_unblock_sees_a_client_blocked_earlier_in_the_batch() {
    let _timing = TIMING.lock().unwrap_or_else(|e| e.into_inner());
    let c = shared();
    let busy = "local s = redis.call('TIME') \
                repeat local t = redis.call('TIME') until (t[1] - s[1]) * 1000000 + (t[2] - s[2]) > 200000 \
                return 1";
    for proto in [2, 3] {
        for reason in ["TIMEOUT", "ERROR"] {
            let mut x = Differential::new(c.redis_port, pgkv_tests::shared_redis_port(), proto);
            let mut y = Differential::new(c.redis_port, pgkv_tests::shared_redis_port(), proto);
            let mut z = Differential::new(c.redis_port, pgkv_tests::shared_redis_port(), proto);
            for d in [&mut x, &mut y, &mut z] {
                d.check(&["SELECT", "10"]);
            }
            y.check(&["DEL", "ub"]);
            let id = |r: &[u8]| String::from_utf8_lossy(&r[1..r.len() - 2]).into_owned();
            // A batch runs its clients in connection order (CLIENT LIST's),
            // which is arrival order only by chance: the blocking client is
            // the one listed first.
            let list = String::from_utf8_lossy(&z.pgkv.call(&["CLIENT", "LIST"])).into_owned();
            let at = |d: &mut Differential| list.find(&format!("id={} ", id(&d.pgkv.call(&["CLIENT", "ID"])))).unwrap();
            if at(&mut y) < at(&mut x) {
                std::mem::swap(&mut x, &mut y);
            }
            let ids = (x.pgkv.call(&["CLIENT", "ID"]), x.redis.call(&["CLIENT", "ID"]));
            for (zc, xc, yc, xid) in [(&mut z.pgkv, &mut x.pgkv, &mut y.pgkv, id(&ids.0)), (&mut z.redis, &mut x.redis, &mut y.redis, id(&ids.1))] {
                zc.send_command(&["EVAL", busy, "0"]);
                std::thread::sleep(Duration::from_millis(50));
                xc.send_command(&["BLPOP", "ub", "0"]);
                std::thread::sleep(Duration::from_millis(20));
                yc.send_command(&["CLIENT", "UNBLOCK", &xid, reason]);
            }
            z.check_pushed();
            let unblocked = y.check_pushed();
            assert_eq!(show(&unblocked), show(b":1\r\n"));
            x.check_pushed();
            // The client is usable, and nothing was popped.
            x.check(&["RPUSH", "ub", "a"]);
            x.check(&["LRANGE", "ub", "0", "-1"]);
        }
    }
}

/// Waits until CLIENT LIST shows the client whose CLIENT ID reply is `id`
/// as blocked.
fn wait_parked(c: &mut RawClient, id: &[u8]) {
    let id = String::from_utf8_lossy(&id[1..id.len() - 2]).into_owned();
    let start = Instant::now();
    loop {
        let list = c.call(&["CLIENT", "LIST"]);
        let text = String::from_utf8_lossy(&list);
        if text.lines().any(|l| l.contains(&format!("id={id} ")) && l.contains(" flags=b ")) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "client {id} never blocked:\n{text}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn blpop(client: &mut RawClient, key: &str) {
    client.send(format!("*3\r\n$5\r\nBLPOP\r\n${}\r\n{key}\r\n$1\r\n0\r\n", key.len()).as_bytes());
}

fn blocked_clients(c: &mut RawClient) -> usize {
    let info = c.call(&["INFO", "clients"]);
    let text = String::from_utf8_lossy(&info);
    let line = text.lines().find(|l| l.starts_with("blocked_clients:")).unwrap();
    line["blocked_clients:".len()..].trim().parse().unwrap()
}

fn wait_blocked(c: &mut RawClient, n: usize) {
    let start = Instant::now();
    while blocked_clients(c) < n {
        assert!(start.elapsed() < Duration::from_secs(10), "clients never blocked");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_sql_push_wakes_the_client_at_commit_and_never_on_rollback() {
    let c = shared();
    let mut waiter = c.raw();
    let mut admin = c.raw();
    let before = blocked_clients(&mut admin);
    blpop(&mut waiter, "sqlq");
    wait_blocked(&mut admin, before + 1);
    let mut sql = c.sql();

    let mut tx = sql.transaction().unwrap();
    tx.execute("SELECT kv.lpush('sqlq', 'rolled back')", &[]).unwrap();
    tx.rollback().unwrap();
    assert_eq!(waiter.try_read_reply(QUIET), None, "a rolled-back push wakes nobody");

    let mut tx = sql.transaction().unwrap();
    tx.execute("SELECT kv.rpush('sqlq', 'job-1')", &[]).unwrap();
    assert_eq!(waiter.try_read_reply(QUIET), None, "not woken before COMMIT");
    tx.commit().unwrap();
    assert_eq!(show(&waiter.read_reply()), show(b"*2\r\n$4\r\nsqlq\r\n$5\r\njob-1\r\n"));

    // kv.zadd wakes BZPOPMAX the same way.
    waiter.send(b"*3\r\n$8\r\nBZPOPMAX\r\n$4\r\nsqlz\r\n$1\r\n0\r\n");
    wait_blocked(&mut admin, before + 1);
    sql.execute("SELECT kv.zadd('sqlz', 7, 'top')", &[]).unwrap();
    assert_eq!(show(&waiter.read_reply()), show(b"*3\r\n$4\r\nsqlz\r\n$3\r\ntop\r\n$1\r\n7\r\n"));
}

#[test]
fn blocked_clients_are_served_first_come_first_served() {
    let c = shared();
    let mut admin = c.raw();
    let before = blocked_clients(&mut admin);
    let mut waiters: Vec<RawClient> = Vec::new();
    for i in 0..5 {
        let mut w = c.raw();
        blpop(&mut w, "fifo");
        wait_blocked(&mut admin, before + i + 1);
        waiters.push(w);
    }
    for i in 0..5 {
        admin.call(&["RPUSH", "fifo", &format!("item{i}")]);
    }
    for (i, w) in waiters.iter_mut().enumerate() {
        assert_eq!(show(&w.read_reply()), show(format!("*2\r\n$4\r\nfifo\r\n$5\r\nitem{i}\r\n").as_bytes()));
    }
    // One push of several elements serves several clients, oldest first.
    for (i, w) in waiters.iter_mut().enumerate() {
        blpop(w, "fifo2");
        wait_blocked(&mut admin, before + i + 1);
    }
    admin.call(&["RPUSH", "fifo2", "a", "b", "c"]);
    for (w, v) in waiters.iter_mut().zip(["a", "b", "c"]) {
        assert_eq!(show(&w.read_reply()), show(format!("*2\r\n$5\r\nfifo2\r\n$1\r\n{v}\r\n").as_bytes()));
    }
    admin.call(&["RPUSH", "fifo2", "d", "e"]);
    for (w, v) in waiters[3..].iter_mut().zip(["d", "e"]) {
        assert_eq!(show(&w.read_reply()), show(format!("*2\r\n$5\r\nfifo2\r\n$1\r\n{v}\r\n").as_bytes()));
    }
    // CLIENT UNBLOCK, with TIMEOUT (the default) and with ERROR.
    let mut w1 = c.raw();
    let mut w2 = c.raw();
    let id1 = String::from_utf8(w1.call(&["CLIENT", "ID"])[1..].to_vec()).unwrap().trim().to_string();
    let id2 = String::from_utf8(w2.call(&["CLIENT", "ID"])[1..].to_vec()).unwrap().trim().to_string();
    let base = blocked_clients(&mut admin);
    blpop(&mut w1, "unb");
    blpop(&mut w2, "unb");
    wait_blocked(&mut admin, base + 2);
    // CLIENT LIST shows them blocked, on their command.
    let list = String::from_utf8_lossy(&admin.call(&["CLIENT", "LIST", "ID", &id1, &id2])).into_owned();
    assert_eq!(list.matches(" flags=b ").count(), 2, "{list}");
    assert_eq!(list.matches(" cmd=blpop ").count(), 2, "{list}");
    assert_eq!(admin.call(&["CLIENT", "UNBLOCK", &id1]), b":1\r\n");
    assert_eq!(show(&w1.read_reply()), show(b"*-1\r\n"));
    assert_eq!(admin.call(&["CLIENT", "UNBLOCK", &id2, "ERROR"]), b":1\r\n");
    assert_eq!(show(&w2.read_reply()), show(b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"));
    assert_eq!(admin.call(&["CLIENT", "UNBLOCK", &id2]), b":0\r\n");
    assert_eq!(show(&admin.call(&["CLIENT", "UNBLOCK", &id2, "MAYBE"])), show(b"-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"));
    // A disconnected blocked client leaves no trace.
    let mut gone = c.raw();
    blpop(&mut gone, "gone");
    wait_blocked(&mut admin, base + 1);
    drop(gone);
    let start = Instant::now();
    while blocked_clients(&mut admin) > base {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(10));
    }
    admin.call(&["RPUSH", "gone", "kept"]);
    assert_eq!(admin.call(&["LLEN", "gone"]), b":1\r\n");
}

/// 20 consumers loop on BLPOP while 10 000 items are pushed from RESP
/// clients and SQL transactions: every item is popped exactly once.
fn many_consumers(c: &PgCluster, list: &str) {
    use std::sync::{Arc, Mutex};
    const ITEMS: usize = 10_000;
    let popped: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let consumers: Vec<_> = (0..20)
        .map(|_| {
            let mut r = c.redis();
            let popped = popped.clone();
            let list = list.to_string();
            std::thread::spawn(move || loop {
                let got: Option<(String, String)> = redis::cmd("BLPOP").arg(&list).arg(2).query(&mut r).unwrap();
                match got {
                    Some((_, v)) if v == "stop" => return,
                    Some((_, v)) => popped.lock().unwrap().push(v),
                    None => {}
                }
            })
        })
        .collect();
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let list = list.to_string();
            let mut r = c.redis();
            let mut sql = c.sql();
            std::thread::spawn(move || {
                let per = ITEMS / 4;
                let mut i = 0;
                while i < per {
                    if (i / 50) % 2 == 0 {
                        let batch: Vec<String> = (i..(i + 50).min(per)).map(|j| format!("p{p}-{j}")).collect();
                        let _: i64 = redis::cmd("RPUSH").arg(&list).arg(&batch).query(&mut r).unwrap();
                    } else {
                        let mut tx = sql.transaction().unwrap();
                        for j in i..(i + 50).min(per) {
                            tx.execute("SELECT kv.rpush($1, $2)", &[&list, &format!("p{p}-{j}")]).unwrap();
                        }
                        tx.commit().unwrap();
                    }
                    i += 50;
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let start = Instant::now();
    while popped.lock().unwrap().len() < ITEMS {
        assert!(start.elapsed() < Duration::from_secs(60), "only {} of {ITEMS} items popped", popped.lock().unwrap().len());
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut r = c.redis();
    let stops: Vec<&str> = vec!["stop"; 20];
    let _: i64 = redis::cmd("RPUSH").arg(list).arg(&stops).query(&mut r).unwrap();
    for t in consumers {
        t.join().unwrap();
    }
    let mut all = popped.lock().unwrap().clone();
    assert_eq!(all.len(), ITEMS);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), ITEMS, "an item was popped twice");
    let left: i64 = redis::cmd("LLEN").arg(list).query(&mut r).unwrap();
    assert_eq!(left, 0);
}

#[test]
fn many_consumers_pop_every_item_exactly_once() {
    many_consumers(shared(), "many:q");
}

#[test]
fn pushes_on_one_worker_wake_clients_on_the_other() {
    let c = PgCluster::start_with(&["pgkv.workers = 2"]);
    let mut waiter = c.client_on_worker(0);
    let mut pusher = c.client_on_worker(1);
    blpop(&mut waiter, "xw");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(pusher.call(&["RPUSH", "xw", "hello"]), b":1\r\n");
    assert_eq!(show(&waiter.read_reply()), show(b"*2\r\n$2\r\nxw\r\n$5\r\nhello\r\n"));
    many_consumers(&c, "w2many:q");
}
