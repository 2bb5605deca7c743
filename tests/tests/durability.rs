//! Nothing acknowledged is lost when the server crashes: a write load from
//! 20 clients, SIGKILL to every Postgres process, crash recovery, and every
//! write that got a reply must be there, and a MULTI/EXEC is whole or absent.

use pgkv_tests::{PgCluster, RawClient};
use redis::Commands;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
struct Acked {
    sets: Vec<(String, String)>,
    incrs: i64,
    pushes: i64,
    hsets: Vec<String>,
    /// MULTI/EXEC blocks acknowledged: each sets three keys together.
    execs: Vec<i64>,
}

#[test]
fn acknowledged_writes_survive_kill_9_of_every_postgres_process() {
    let c = PgCluster::start();
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..20)
        .map(|t| {
            let url = c.redis_url();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut acked = Acked::default();
                let Ok(mut r) = redis::Client::open(url).unwrap().get_connection() else { return acked };
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (k, v) = (format!("d:{t}:{i}"), format!("v{i}"));
                    if r.set::<_, _, ()>(&k, &v).is_err() {
                        break;
                    }
                    acked.sets.push((k, v));
                    if r.incr::<_, _, i64>(format!("d:counter:{t}"), 1).is_err() {
                        break;
                    }
                    acked.incrs += 1;
                    if r.rpush::<_, _, i64>(format!("d:list:{t}"), i).is_err() {
                        break;
                    }
                    acked.pushes += 1;
                    if r.hset::<_, _, _, i64>(format!("d:hash:{t}"), format!("f{i}"), i).is_err() {
                        break;
                    }
                    acked.hsets.push(format!("f{i}"));
                    let exec: redis::RedisResult<()> = redis::pipe()
                        .atomic()
                        .set(format!("d:tx:{t}:{i}:a"), i)
                        .set(format!("d:tx:{t}:{i}:b"), i)
                        .incr(format!("d:tx:{t}:sum"), 1)
                        .query(&mut r);
                    if exec.is_err() {
                        break;
                    }
                    acked.execs.push(i);
                    i += 1;
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    c.kill_all();
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<Acked> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let total: usize = acked.iter().map(|a| a.sets.len()).sum();
    assert!(total > 100, "the load ran ({total} acknowledged SETs)");
    c.start_again();
    let mut r = c.redis();
    for (t, a) in acked.iter().enumerate() {
        for (k, v) in &a.sets {
            let got: Option<String> = r.get(k).unwrap();
            assert_eq!(got.as_deref(), Some(v.as_str()), "acknowledged SET {k} lost");
        }
        // A write can commit and lose its reply in the crash, never the
        // other way round: at most one extra per client.
        let n: i64 = r.get::<_, Option<i64>>(format!("d:counter:{t}")).unwrap().unwrap_or(0);
        assert!(n == a.incrs || n == a.incrs + 1, "counter {t}: {n} for {} acknowledged INCRs", a.incrs);
        let len: i64 = r.llen(format!("d:list:{t}")).unwrap();
        assert!(len == a.pushes || len == a.pushes + 1, "list {t}: {len} for {} acknowledged RPUSHes", a.pushes);
        let fields: Vec<String> = r.hkeys(format!("d:hash:{t}")).unwrap();
        for f in &a.hsets {
            assert!(fields.contains(f), "acknowledged HSET {f} lost");
        }
        // MULTI/EXEC: every acknowledged block whole; the one in flight at
        // the crash whole or absent, never half.
        let sum: i64 = r.get::<_, Option<i64>>(format!("d:tx:{t}:sum")).unwrap().unwrap_or(0);
        let blocks = a.execs.len() as i64;
        assert!(sum == blocks || sum == blocks + 1, "client {t}: {sum} EXEC increments for {blocks} acknowledged");
        for i in 0..=(a.execs.last().copied().unwrap_or(-1) + 1) {
            let a_: Option<i64> = r.get(format!("d:tx:{t}:{i}:a")).unwrap();
            let b_: Option<i64> = r.get(format!("d:tx:{t}:{i}:b")).unwrap();
            assert_eq!(a_.is_some(), b_.is_some(), "EXEC {t}/{i} half applied");
            if a.execs.contains(&i) {
                assert_eq!(a_, Some(i), "acknowledged EXEC {t}/{i} lost");
            }
        }
    }
}

/// Processes that flush the WAL on their own: with them stopped, only the
/// worker's own flush (for a lone client) would reach the disk.
const FLUSHERS: [&str; 4] = ["pgkv flusher", "walwriter", "background writer", "checkpointer"];

/// EVAL of a script that keeps the worker busy for a while (no keys, no
/// writes; 50 million loops take about 0.3 s here).
fn slow_script(loops: u32) -> Vec<u8> {
    let script = "local n = 0 for i = 1, tonumber(ARGV[1]) do n = n + i end return 1";
    let mut out = bytes::BytesMut::new();
    pgkv_resp::encode_request(&["EVAL", script, "0", &loops.to_string()], &mut out);
    out.to_vec()
}

/// Stops the processes that flush WAL on their own, then keeps the worker
/// busy with a script for about 0.3 s, so that commands other clients send
/// now gather into one batch behind it. The script runs once first: its
/// first run stores it, a write.
fn stop_flushers_behind_a_script(c: &PgCluster, busy: &mut RawClient) {
    busy.send(&slow_script(1));
    assert_eq!(busy.read_reply(), b":1\r\n");
    assert_eq!(c.signal_children(&FLUSHERS, libc::SIGSTOP), FLUSHERS.len(), "{:?}", c.children());
    busy.send(&slow_script(50_000_000));
    std::thread::sleep(Duration::from_millis(50));
}

/// A write's reply leaves only once its commit is on disk, and so does the
/// reply of a read that may have seen it. A batch of several clients
/// commits without waiting; the flusher process writes the WAL. With the
/// flusher and every other process that flushes WAL on its own stopped
/// (SIGSTOP), the replies wait; when they run again, both arrive.
#[test]
fn replies_wait_for_the_wal_flush() {
    let c = PgCluster::start_with(&["autovacuum = off"]);
    let (mut busy, mut writer, mut reader) = (c.raw(), c.raw(), c.raw());
    assert_eq!(writer.call(&["SET", "flush:k", "before"]), b"+OK\r\n");
    // While a script runs, a write and a read of the same key arrive: the
    // next batch holds both.
    stop_flushers_behind_a_script(&c, &mut busy);
    writer.send_command(&["SET", "flush:k", "after"]);
    reader.send_command(&["GET", "flush:k"]);
    assert_eq!(busy.read_reply(), b":1\r\n");
    let early = writer.try_read_reply(Duration::from_millis(600));
    let early_read = reader.try_read_reply(Duration::from_millis(100));
    // The commit is visible at once: a SQL session sees it.
    let seen = c.psql("SELECT convert_from(value, 'UTF8') FROM kv.keys WHERE key = 'flush:k'");
    c.signal_children(&FLUSHERS, libc::SIGCONT);
    assert_eq!(early, None, "SET acknowledged before its WAL flush");
    assert_eq!(early_read, None, "a read of an unflushed write answered before the flush");
    assert_eq!(seen, "after");
    assert_eq!(writer.read_reply(), b"+OK\r\n");
    // One batch runs its clients' commands in the order of the worker's
    // connection table, which reuses freed slots: usually the SET comes
    // first, but the GET may, and then reads the old value. Its reply
    // waited for the flush either way.
    let read = reader.read_reply();
    assert!(read == b"$5\r\nafter\r\n" || read == b"$6\r\nbefore\r\n", "{}", pgkv_tests::show(&read));
    // Nothing stays held once the WAL is flushed.
    assert_eq!(reader.call(&["GET", "flush:k"]), b"$5\r\nafter\r\n");
}

/// Held replies go out as soon as their flush is done, even while a long
/// batch of other clients runs: between two of its commands, the worker
/// sends them to the clients outside that batch.
#[test]
fn held_replies_leave_during_a_long_batch() {
    let c = PgCluster::start_with(&["autovacuum = off"]);
    let (mut busy, mut writer, mut other, mut long) = (c.raw(), c.raw(), c.raw(), c.raw());
    // A write batched with another client's command: its reply is held.
    stop_flushers_behind_a_script(&c, &mut busy);
    writer.send_command(&["SET", "held:k", "v"]);
    other.send_command(&["PING"]);
    assert_eq!(busy.read_reply(), b":1\r\n");
    std::thread::sleep(Duration::from_millis(100));
    // Then one pipelined batch of 400 short scripts, a second or more.
    long.send(&slow_script(300_000).repeat(400));
    std::thread::sleep(Duration::from_millis(200));
    c.signal_children(&FLUSHERS, libc::SIGCONT);
    assert_eq!(writer.read_reply(), b"+OK\r\n");
    assert_eq!(other.read_reply(), b"+PONG\r\n");
    assert_eq!(long.try_read_reply(Duration::from_millis(1)), None, "the long batch was over before the held reply left");
    for _ in 0..400 {
        assert_eq!(long.read_reply(), b":1\r\n");
    }
}

/// A lone client's write commits synchronously (no hand-off to the
/// flusher, whose wake-ups would add to its latency): it is acknowledged
/// even with the flusher stopped, and it is on disk.
#[test]
fn a_lone_clients_write_is_flushed_by_the_worker() {
    let c = PgCluster::start_with(&["autovacuum = off"]);
    let mut r = c.raw();
    // A connection's first events (accepted, writable) are behind it.
    assert_eq!(r.call(&["PING"]), b"+PONG\r\n");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c.signal_children(&FLUSHERS, libc::SIGSTOP), FLUSHERS.len(), "{:?}", c.children());
    r.send_command(&["SET", "lone:k", "v"]);
    let acked = r.try_read_reply(Duration::from_millis(2000));
    c.signal_children(&FLUSHERS, libc::SIGCONT);
    assert_eq!(acked.as_deref(), Some(b"+OK\r\n".as_slice()), "a lone write waited for the stopped flusher");
    c.kill_all();
    c.start_again();
    assert_eq!(c.raw().call(&["GET", "lone:k"]), b"$1\r\nv\r\n");
}
