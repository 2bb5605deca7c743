//! Nothing acknowledged is lost when the server crashes: a write load from
//! 20 clients, SIGKILL to every Postgres process, crash recovery, and every
//! write that got a reply must be there, and a MULTI/EXEC is whole or absent.

use pgkv_tests::PgCluster;
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

/// A write's reply leaves only once its commit is on disk, and so does the
/// reply of a read that may have seen it. The batch commits without
/// waiting; the flusher process writes the WAL. With the flusher and every
/// other process that flushes WAL on its own stopped (SIGSTOP), the replies
/// wait; when they run again, both arrive, in order with what followed.
#[test]
fn replies_wait_for_the_wal_flush() {
    let c = PgCluster::start_with(&["autovacuum = off"]);
    let mut writer = c.raw();
    let mut reader = c.raw();
    assert_eq!(writer.call(&["SET", "flush:k", "before"]), b"+OK\r\n");
    let flushers = ["pgkv flusher", "walwriter", "background writer", "checkpointer"];
    assert_eq!(c.signal_children(&flushers, libc::SIGSTOP), flushers.len(), "{:?}", c.children());
    writer.send(b"*3\r\n$3\r\nSET\r\n$7\r\nflush:k\r\n$5\r\nafter\r\n");
    let early = writer.try_read_reply(Duration::from_millis(600));
    reader.send(b"*2\r\n$3\r\nGET\r\n$7\r\nflush:k\r\n");
    let early_read = reader.try_read_reply(Duration::from_millis(300));
    // The commit is visible at once: a SQL session sees it.
    let seen = c.psql("SELECT convert_from(value, 'UTF8') FROM kv.keys WHERE key = 'flush:k'");
    c.signal_children(&flushers, libc::SIGCONT);
    assert_eq!(early, None, "SET acknowledged before its WAL flush");
    assert_eq!(early_read, None, "a read of an unflushed write answered before the flush");
    assert_eq!(seen, "after");
    assert_eq!(writer.read_reply(), b"+OK\r\n");
    assert_eq!(reader.read_reply(), b"$5\r\nafter\r\n");
    // Nothing stays held once the WAL is flushed.
    assert_eq!(reader.call(&["GET", "flush:k"]), b"$5\r\nafter\r\n");
}

/// Held replies go out as soon as their flush is done, even while a long
/// batch of other clients runs: between two of its commands, the worker
/// sends them to the clients outside that batch.
#[test]
fn held_replies_leave_during_a_long_batch() {
    let c = PgCluster::start_with(&["autovacuum = off"]);
    let mut writer = c.raw();
    let mut busy = c.raw();
    let flushers = ["pgkv flusher", "walwriter", "background writer", "checkpointer"];
    assert_eq!(c.signal_children(&flushers, libc::SIGSTOP), flushers.len(), "{:?}", c.children());
    writer.send(b"*3\r\n$3\r\nSET\r\n$6\r\nheld:k\r\n$1\r\nv\r\n");
    // Its batch commits (the reply waits); then, in a batch of its own,
    std::thread::sleep(Duration::from_millis(100));
    // one pipelined batch of 400 short scripts, a second or more of work.
    let script = "local n = 0 for i = 1, 300000 do n = n + i end return 1";
    let one = format!("*3\r\n$4\r\nEVAL\r\n${}\r\n{script}\r\n$1\r\n0\r\n", script.len());
    busy.send(one.repeat(400).as_bytes());
    std::thread::sleep(Duration::from_millis(200));
    c.signal_children(&flushers, libc::SIGCONT);
    assert_eq!(writer.read_reply(), b"+OK\r\n");
    assert_eq!(busy.try_read_reply(Duration::from_millis(1)), None, "the long batch was over before the held reply left");
    for _ in 0..400 {
        assert_eq!(busy.read_reply(), b":1\r\n");
    }
}
