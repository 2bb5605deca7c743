//! End-to-end tests of the foundation: the worker, group commit, RESP2/RESP3,
//! the SQL functions, durability, and failure isolation. Each talks to a
//! scratch PG16 cluster with pgkv preloaded, through the `redis` client crate
//! or raw bytes where byte-exactness matters.

use pgkv_tests::{key, shared, show, spawn_clients, PgCluster};
use redis::Commands;
use std::time::{Duration, Instant};

#[test]
fn binary_keys_and_values_round_trip() {
    let mut r = shared().redis();
    let k: &[u8] = b"bin:\x00\xff\r\n key";
    let v: &[u8] = b"\x00\xff\x00value\r\n\xfe";
    let _: () = r.set(k, v).unwrap();
    let got: Vec<u8> = r.get(k).unwrap();
    assert_eq!(got, v);
    let missing: Option<Vec<u8>> = r.get(b"bin:\x00\xfe").unwrap();
    assert_eq!(missing, None);
}

#[test]
fn pipelining_1000_commands_answers_each_in_order() {
    let mut r = shared().redis();
    let mut p = redis::pipe();
    for i in 0..500 {
        p.set(key("pipe", &i.to_string()), format!("v{i}")).ignore();
    }
    for i in 0..500 {
        p.get(key("pipe", &i.to_string()));
    }
    let values: Vec<String> = p.query(&mut r).unwrap();
    assert_eq!(values.len(), 500);
    for (i, v) in values.iter().enumerate() {
        assert_eq!(v, &format!("v{i}"));
    }
}

#[test]
fn fifty_concurrent_clients_each_see_their_own_writes() {
    let url = shared().redis_url();
    let threads = spawn_clients(&url, 50, |t, mut r| {
        for i in 0..40 {
            let k = format!("conc:{t}:{i}");
            let _: () = r.set(&k, format!("{t}-{i}")).unwrap();
            let v: String = r.get(&k).unwrap();
            assert_eq!(v, format!("{t}-{i}"));
        }
        let n: i64 = redis::cmd("DEL").arg(format!("conc:{t}:0")).arg(format!("conc:{t}:1")).query(&mut r).unwrap();
        assert_eq!(n, 2);
    });
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn hello_3_switches_to_resp3_replies() {
    let mut c = shared().raw();
    let hello = c.call(&["HELLO", "3"]);
    assert!(hello.starts_with(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n"), "{}", pgkv_tests::show(&hello));
    assert_eq!(c.call(&["GET", "resp3:missing"]), b"_\r\n");
    assert_eq!(c.call(&["SET", "resp3:k", "v"]), b"+OK\r\n");
    assert_eq!(c.call(&["GET", "resp3:k"]), b"$1\r\nv\r\n");
    assert!(c.call(&["INFO", "server"]).starts_with(b"="), "INFO is a verbatim string in RESP3");
    let hello2 = c.call(&["HELLO", "2"]);
    assert!(hello2.starts_with(b"*14\r\n"));
    assert_eq!(c.call(&["GET", "resp3:missing"]), b"$-1\r\n");
}

#[test]
fn resp3_through_the_client_crate() {
    let url = format!("{}?protocol=resp3", shared().redis_url());
    let mut r = redis::Client::open(url).unwrap().get_connection().unwrap();
    let _: () = r.set("resp3crate:k", "v").unwrap();
    let v: Option<String> = r.get("resp3crate:k").unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    let none: Option<String> = r.get("resp3crate:missing").unwrap();
    assert_eq!(none, None);
}

#[test]
fn value_written_over_resp_is_read_by_sql_and_back() {
    let c = shared();
    let mut r = c.redis();
    let _: () = r.set("sql:from-resp", "hello from resp").unwrap();
    assert_eq!(c.psql("SELECT kv.get('sql:from-resp')"), "hello from resp");
    assert_eq!(c.psql("SELECT kv.set('sql:from-sql', 'hello from sql')"), "t");
    let v: String = r.get("sql:from-sql").unwrap();
    assert_eq!(v, "hello from sql");
    // bytea forms are binary-safe in both directions.
    c.psql("SELECT kv.set('\\x00ff'::bytea, '\\xff00'::bytea)");
    let v: Vec<u8> = r.get(b"\x00\xff").unwrap();
    assert_eq!(v, b"\xff\x00");
    let _: () = r.set(b"sql:\x01", b"\x00\x01\x02").unwrap();
    assert_eq!(c.psql("SELECT kv.get('\\x73716c3a01'::bytea)"), "\\x000102");
    assert_eq!(c.psql("SELECT kv.del('sql:from-resp', 'sql:from-sql', 'sql:nope')"), "2");
    // kv.call reaches every command through the same dispatcher.
    assert_eq!(c.psql("SELECT kv.call('SET', 'sql:call', 'x', 'GET')"), "");
    assert_eq!(c.psql("SELECT kv.call('GET', 'sql:call')"), "\"x\"");
    assert_eq!(c.psql("SELECT kv.call('EXISTS', 'sql:call', 'sql:call')"), "2");
    assert_eq!(c.psql("SELECT kv.call('GET', 'sql:nope') IS NULL"), "t");
}

#[test]
fn sql_errors_carry_the_redis_error_text() {
    let mut sql = shared().sql();
    let err = sql.query_one("SELECT kv.call('GET')", &[]).unwrap_err();
    let db = err.as_db_error().expect("a database error");
    assert_eq!(db.message(), "ERR wrong number of arguments for 'get' command");
    assert_eq!(db.code().code(), "22000");
    let err = sql.query_one("SELECT kv.call('HELLO', '3')", &[]).unwrap_err();
    assert_eq!(err.as_db_error().unwrap().message(), "ERR This Redis command is not allowed from SQL");
}

#[test]
fn sql_set_in_a_rolled_back_transaction_leaves_nothing() {
    let c = shared();
    let mut sql = c.sql();
    let mut tx = sql.transaction().unwrap();
    tx.execute("SELECT kv.set('rollback:k', 'v')", &[]).unwrap();
    let inside: Option<String> = tx.query_one("SELECT kv.get('rollback:k')", &[]).unwrap().get(0);
    assert_eq!(inside.as_deref(), Some("v"), "the transaction sees its own write");
    // Not committed yet: RESP clients must not see it.
    let mut r = c.redis();
    let during: Option<String> = r.get("rollback:k").unwrap();
    assert_eq!(during, None);
    tx.rollback().unwrap();
    let after: Option<String> = r.get("rollback:k").unwrap();
    assert_eq!(after, None);
    assert_eq!(c.psql("SELECT count(*) FROM kv.keys WHERE key = 'rollback:k'::bytea"), "0");
}

#[test]
fn sql_functions_use_the_database_set_by_pgkv_sql_db() {
    let c = shared();
    let mut sql = c.sql();
    sql.batch_execute("SET pgkv.sql_db = 3; SELECT kv.set('db3:k', 'three')").unwrap();
    let mut r = c.redis();
    let in0: Option<String> = r.get("db3:k").unwrap();
    assert_eq!(in0, None);
    let _: () = redis::cmd("SELECT").arg(3).query(&mut r).unwrap();
    let in3: String = r.get("db3:k").unwrap();
    assert_eq!(in3, "three");
}

#[test]
fn expired_keys_are_absent_and_removed_by_the_active_cycle() {
    let c = shared();
    let mut r = c.redis();
    let _: () = redis::cmd("SET").arg("ttl:k").arg("v").arg("PX").arg(150).query(&mut r).unwrap();
    let _: () = redis::cmd("SET").arg("ttl:never-read").arg("v").arg("PX").arg(150).query(&mut r).unwrap();
    let v: Option<String> = r.get("ttl:k").unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    std::thread::sleep(Duration::from_millis(300));
    let v: Option<String> = r.get("ttl:k").unwrap();
    assert_eq!(v, None);
    assert_eq!(c.psql("SELECT kv.get('ttl:k') IS NULL"), "t");
    // Nobody reads this one: the active cycle must delete the row.
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.psql("SELECT count(*) FROM kv.keys WHERE key = 'ttl:never-read'::bytea") != "0" {
        assert!(Instant::now() < deadline, "active expiry never removed the key");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn acknowledged_writes_survive_an_immediate_restart() {
    let c = PgCluster::start();
    let mut r = c.redis();
    for i in 0..200 {
        let _: () = r.set(format!("durable:{i}"), i).unwrap();
    }
    let _: () = redis::cmd("SET").arg("durable:ttl").arg("x").arg("EX").arg(1000).query(&mut r).unwrap();
    drop(r);
    c.restart("immediate");
    let mut r = c.redis();
    for i in 0..200 {
        let v: i64 = r.get(format!("durable:{i}")).unwrap();
        assert_eq!(v, i);
    }
    let ttl: Option<String> = r.get("durable:ttl").unwrap();
    assert_eq!(ttl.as_deref(), Some("x"));
}

#[test]
fn a_postgres_error_fails_only_its_own_command() {
    let c = shared();
    c.psql(
        "CREATE OR REPLACE FUNCTION public.refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.key = 'iso:boom'::bytea THEN RAISE EXCEPTION 'boom refused'; END IF; RETURN NEW; END $$; \
         DROP TRIGGER IF EXISTS refuse_boom ON kv.keys; \
         CREATE TRIGGER refuse_boom BEFORE INSERT OR UPDATE ON kv.keys FOR EACH ROW EXECUTE FUNCTION public.refuse_boom()",
    );
    let mut a = c.raw();
    // One pipeline, so all three run in the same batch and transaction.
    a.send(b"*3\r\n$3\r\nSET\r\n$7\r\niso:one\r\n$1\r\n1\r\n*3\r\n$3\r\nSET\r\n$8\r\niso:boom\r\n$1\r\nx\r\n*3\r\n$3\r\nSET\r\n$7\r\niso:two\r\n$1\r\n2\r\n");
    assert_eq!(a.read_reply(), b"+OK\r\n");
    let err = a.read_reply();
    assert!(err.starts_with(b"-ERR PostgreSQL error: boom refused"), "{}", pgkv_tests::show(&err));
    assert_eq!(a.read_reply(), b"+OK\r\n");
    let mut r = c.redis();
    let one: String = r.get("iso:one").unwrap();
    let two: String = r.get("iso:two").unwrap();
    assert_eq!((one.as_str(), two.as_str()), ("1", "2"));
    let boom: Option<String> = r.get("iso:boom").unwrap();
    assert_eq!(boom, None);
    c.psql("DROP TRIGGER refuse_boom ON kv.keys; DROP FUNCTION public.refuse_boom()");
    // The worker is still healthy.
    assert_eq!(a.call(&["PING"]), b"+PONG\r\n");
}

#[test]
fn a_row_locked_by_sql_times_out_one_command_without_freezing_others() {
    let c = shared();
    let mut r = c.redis();
    let _: () = r.set("lock:k", "v").unwrap();
    let mut sql = c.sql();
    let mut tx = sql.transaction().unwrap();
    tx.execute("SELECT 1 FROM kv.keys WHERE db = 0 AND key = 'lock:k'::bytea FOR UPDATE", &[]).unwrap();
    let url = c.redis_url();
    let blocked = std::thread::spawn(move || {
        let mut r = redis::Client::open(url).unwrap().get_connection().unwrap();
        let res: redis::RedisResult<()> = r.set("lock:k", "w");
        res
    });
    std::thread::sleep(Duration::from_millis(200));
    let err = blocked.join().unwrap().unwrap_err();
    assert!(err.to_string().contains("lock timeout"), "{err}");
    tx.rollback().unwrap();
    let v: String = r.get("lock:k").unwrap();
    assert_eq!(v, "v");
}

#[test]
fn protocol_errors_get_redis_text_and_close_the_connection() {
    let mut c = shared().raw();
    c.send(b"PING\r\n*1\r\n$x\r\n");
    assert_eq!(c.read_reply(), b"+PONG\r\n");
    assert_eq!(c.read_reply(), b"-ERR Protocol error: invalid bulk length\r\n");
    assert!(c.is_closed());
    // Other clients are unaffected.
    assert_eq!(shared().raw().call(&["PING"]), b"+PONG\r\n");
}

#[test]
fn inline_commands_work_as_telnet_sends_them() {
    let mut c = shared().raw();
    c.send(b"SET inline:k \"a b\"\r\nGET inline:k\r\n");
    assert_eq!(c.read_reply(), b"+OK\r\n");
    assert_eq!(c.read_reply(), b"$3\r\na b\r\n");
}

#[test]
fn quit_answers_ok_then_closes() {
    let mut c = shared().raw();
    c.send(b"QUIT\r\nPING\r\n");
    assert_eq!(c.read_reply(), b"+OK\r\n");
    assert!(c.is_closed());
}

#[test]
fn large_values_survive_partial_reads_and_writes() {
    let c = shared();
    let mut r = c.redis();
    let big: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let _: () = r.set("big:v", &big).unwrap();
    let got: Vec<u8> = r.get("big:v").unwrap();
    assert_eq!(got.len(), big.len());
    assert!(got == big);
    // A client that pipelines reads of the big value and does not read the
    // replies must not stall others.
    let mut slow = c.raw();
    let mut req = Vec::new();
    for _ in 0..8 {
        req.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$5\r\nbig:v\r\n");
    }
    slow.send(&req);
    let start = Instant::now();
    let mut other = c.raw();
    assert_eq!(other.call(&["PING"]), b"+PONG\r\n");
    assert!(start.elapsed() < Duration::from_secs(5));
    for _ in 0..8 {
        assert_eq!(slow.read_reply().len(), big.len() + 12);
    }
}

#[test]
fn auth_is_required_when_a_password_is_set() {
    let c = PgCluster::start_with(&["pgkv.password = 'sekrit'"]);
    let mut raw = c.raw();
    assert_eq!(raw.call(&["GET", "k"]), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(raw.call(&["PING"]), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(raw.call(&["AUTH", "wrong"]), b"-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_eq!(raw.call(&["AUTH", "sekrit"]), b"+OK\r\n");
    assert_eq!(raw.call(&["PING"]), b"+PONG\r\n");
    let mut h = c.raw();
    assert!(h.call(&["HELLO", "3"]).starts_with(b"-NOAUTH HELLO must be called"));
    assert!(h.call(&["HELLO", "3", "AUTH", "default", "sekrit"]).starts_with(b"%7\r\n"));
    let url = format!("redis://:sekrit@127.0.0.1:{}/", c.redis_port);
    let mut r = redis::Client::open(url).unwrap().get_connection().unwrap();
    let _: () = r.set("authed", "yes").unwrap();
    assert!(c.log().contains("AUTH failed"), "a failed AUTH is logged");
    assert!(!c.log().contains("wrong"), "the password itself is never logged");
    // SIGHUP reloads the password.
    c.psql("ALTER SYSTEM SET pgkv.password = ''");
    c.psql("SELECT pg_reload_conf()");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.raw().call(&["PING"]), b"+PONG\r\n");
}

#[test]
fn worker_waits_politely_for_create_extension() {
    let c = PgCluster::start_without_extension(&[]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(std::net::TcpStream::connect(("127.0.0.1", c.redis_port)).is_err(), "no port before the extension exists");
    c.psql("CREATE EXTENSION pgkv");
    pgkv_tests::wait_for_ping(c.redis_port, "pgkv", Duration::from_secs(10));
    let log = c.log();
    assert_eq!(log.matches("waiting for CREATE EXTENSION pgkv").count(), 1, "one log line, not a loop:\n{log}");
}

#[test]
fn a_killed_worker_is_restarted_and_serves_again() {
    let c = PgCluster::start();
    let mut r = c.redis();
    let _: () = r.set("crash:k", "v").unwrap();
    let pid = c.psql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pgkv'");
    assert!(!pid.is_empty());
    let mut old = c.raw();
    unsafe { libc::kill(pid.parse().unwrap(), libc::SIGKILL) };
    assert!(old.is_closed(), "clients of the dead worker see a closed connection");
    pgkv_tests::wait_for_ping(c.redis_port, "restarted worker", Duration::from_secs(30));
    let mut r = c.redis();
    let v: String = r.get("crash:k").unwrap();
    assert_eq!(v, "v");
}

#[test]
fn two_workers_share_the_port() {
    let c = PgCluster::start_with(&["pgkv.workers = 2"]);
    let mut parities = std::collections::HashSet::new();
    let mut conns = Vec::new();
    for _ in 0..40 {
        let mut r = c.redis();
        let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut r).unwrap();
        parities.insert(id % 2);
        conns.push(r);
    }
    assert_eq!(parities.len(), 2, "both workers accepted clients");
    let _: () = conns[0].set("w2:k", "v").unwrap();
    for r in conns.iter_mut() {
        let v: String = r.get("w2:k").unwrap();
        assert_eq!(v, "v");
    }
}

#[test]
fn a_failed_commit_is_never_acknowledged_and_fails_only_its_command() {
    let c = shared();
    c.psql(
        "CREATE OR REPLACE FUNCTION public.refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.key = 'commit:boom'::bytea THEN RAISE EXCEPTION 'refused at commit'; END IF; RETURN NEW; END $$; \
         DROP TRIGGER IF EXISTS refuse_at_commit ON kv.keys; \
         CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT OR UPDATE ON kv.keys DEFERRABLE INITIALLY DEFERRED \
         FOR EACH ROW EXECUTE FUNCTION public.refuse_at_commit()",
    );
    let mut a = c.raw();
    a.send(b"*3\r\n$3\r\nSET\r\n$10\r\ncommit:one\r\n$1\r\n1\r\n*3\r\n$3\r\nSET\r\n$11\r\ncommit:boom\r\n$1\r\nx\r\n*3\r\n$3\r\nSET\r\n$10\r\ncommit:two\r\n$1\r\n2\r\n");
    assert_eq!(a.read_reply(), b"+OK\r\n");
    let err = a.read_reply();
    assert!(err.starts_with(b"-ERR PostgreSQL error: refused at commit"), "{}", pgkv_tests::show(&err));
    assert_eq!(a.read_reply(), b"+OK\r\n");
    c.psql("DROP TRIGGER refuse_at_commit ON kv.keys; DROP FUNCTION public.refuse_at_commit()");
    let mut r = c.redis();
    let got: Vec<Option<String>> = ["commit:one", "commit:boom", "commit:two"].iter().map(|k| r.get(*k).unwrap()).collect();
    assert_eq!(got, vec![Some("1".to_string()), None, Some("2".to_string())]);
}

#[test]
fn sigterm_stops_the_worker_promptly() {
    let c = PgCluster::start();
    let _idle = c.raw();
    let mut busy = c.raw();
    busy.send(b"*2\r\n$3\r\nGET\r\n"); // a request cut in half
    let start = Instant::now();
    c.restart("fast");
    assert!(start.elapsed() < Duration::from_secs(15), "fast shutdown and restart took {:?}", start.elapsed());
    assert!(busy.is_closed());
    assert_eq!(c.raw().call(&["PING"]), b"+PONG\r\n");
}

#[test]
fn concurrent_writers_on_two_workers_and_sql_lose_no_update() {
    let c = PgCluster::start_with(&["pgkv.workers = 2"]);
    let url = c.redis_url();
    let threads = spawn_clients(&url, 16, |t, mut r| {
        for i in 0..100 {
            let mut p = redis::pipe();
            p.cmd("INCR").arg("lu:counter").ignore();
            p.cmd("RPUSH").arg("lu:list").arg(format!("{t}-{i}")).ignore();
            p.cmd("HINCRBY").arg("lu:hash").arg("n").arg(1).ignore();
            p.cmd("SADD").arg("lu:set").arg(format!("{t}-{i}")).ignore();
            let _: () = p.query(&mut r).unwrap();
        }
    });
    let sql = std::thread::spawn({
        let mut sql = c.sql();
        move || {
            for i in 0..100 {
                sql.batch_execute(&format!("SELECT kv.incr('lu:counter'); SELECT kv.rpush('lu:list', 'sql-{i}')")).unwrap();
            }
        }
    });
    for t in threads {
        t.join().unwrap();
    }
    sql.join().unwrap();
    let mut r = c.redis();
    let n: i64 = r.get("lu:counter").unwrap();
    assert_eq!(n, 1700);
    let len: i64 = r.llen("lu:list").unwrap();
    assert_eq!(len, 1700);
    let items: Vec<String> = r.lrange("lu:list", 0, -1).unwrap();
    assert_eq!(items.iter().collect::<std::collections::HashSet<_>>().len(), 1700, "every push is there once");
    let h: i64 = r.hget("lu:hash", "n").unwrap();
    assert_eq!(h, 1600);
    let card: i64 = r.scard("lu:set").unwrap();
    assert_eq!(card, 1600);
}

/// HSET, SADD and ZINCRBY of the same members from many clients on two
/// workers and from SQL: each batch reads the members ahead under the key
/// row's lock (`store::members`), so each member is new exactly once, and
/// no increment is lost.
#[test]
fn overlapping_member_writes_on_two_workers_and_sql_count_each_member_once() {
    let c = PgCluster::start_with(&["pgkv.workers = 2"]);
    let url = c.redis_url();
    let threads = spawn_clients(&url, 8, |_, mut r| {
        let (mut hash_new, mut set_new) = (0i64, 0i64);
        for i in 0..100 {
            let mut p = redis::pipe();
            p.cmd("HSET").arg("ov:hash").arg(format!("f{i}")).arg(i);
            p.cmd("SADD").arg("ov:set").arg(format!("m{i}")).arg(format!("m{}", (i + 1) % 100));
            p.cmd("ZINCRBY").arg("ov:z").arg(1).arg(format!("z{}", i % 10)).ignore();
            let (h, s): (i64, i64) = p.query(&mut r).unwrap();
            hash_new += h;
            set_new += s;
        }
        (hash_new, set_new)
    });
    let sql = std::thread::spawn({
        let mut sql = c.sql();
        move || {
            let (mut hash_new, mut set_new) = (0i64, 0i64);
            for i in 0..100 {
                hash_new += sql.query_one("SELECT kv.hset('ov:hash', $1, 'sql')", &[&format!("f{i}")]).unwrap().get::<_, i64>(0);
                set_new += sql.query_one("SELECT kv.sadd('ov:set', $1)", &[&format!("m{i}")]).unwrap().get::<_, i64>(0);
                sql.batch_execute(&format!("SELECT kv.call('ZINCRBY', 'ov:z', '1', 'z{}')", i % 10)).unwrap();
            }
            (hash_new, set_new)
        }
    });
    let (mut hash_new, mut set_new) = sql.join().unwrap();
    for t in threads {
        let (h, s) = t.join().unwrap();
        hash_new += h;
        set_new += s;
    }
    let mut r = c.redis();
    let hlen: i64 = r.hlen("ov:hash").unwrap();
    assert_eq!((hlen, hash_new), (100, 100), "HLEN, and the fields HSET reported new");
    let scard: i64 = r.scard("ov:set").unwrap();
    assert_eq!((scard, set_new), (100, 100), "SCARD, and the members SADD reported new");
    let scores: Vec<(String, f64)> = r.zrange_withscores("ov:z", 0, -1).unwrap();
    assert_eq!(scores.len(), 10);
    assert!(scores.iter().all(|(_, s)| *s == 90.0), "every increment counted: {scores:?}");
}

/// A batch that waits for a key row another transaction holds locks the
/// row's latest version once that transaction commits, as FOR UPDATE does:
/// an update is built on, a deleted key is absent, and a row renamed away
/// no longer belongs to the key. Redis order: the SQL transaction first.
#[test]
fn a_write_waiting_for_a_row_lock_sees_the_committed_change() {
    let c = PgCluster::start();
    let mut r = c.raw();
    for k in ["wl:upd", "wl:del", "wl:ren"] {
        assert_eq!(r.call(&["SET", k, "10"]), b"+OK\r\n");
    }
    let cases: [(&str, &str, &[u8]); 3] = [
        ("SELECT kv.incr('wl:upd', 5)", "wl:upd", b":16\r\n"),
        ("SELECT kv.del('wl:del')", "wl:del", b":1\r\n"),
        ("SELECT kv.call('RENAME', 'wl:ren', 'wl:moved')", "wl:ren", b":1\r\n"),
    ];
    let mut sql = c.sql();
    for (change, key, want) in cases {
        let mut tx = sql.transaction().unwrap();
        tx.batch_execute(change).unwrap();
        r.send_command(&["INCR", key]);
        // Less than pgkv.lock_timeout (1 s): the INCR waits, then runs.
        assert_eq!(r.try_read_reply(Duration::from_millis(300)), None, "{key}: INCR did not wait for the row lock");
        tx.commit().unwrap();
        assert_eq!(show(&r.read_reply()), show(want), "{key}");
    }
    assert_eq!(r.call(&["GET", "wl:moved"]), b"$2\r\n10\r\n");
    assert_eq!(r.call(&["MGET", "wl:upd", "wl:del", "wl:ren"]), b"*3\r\n$2\r\n16\r\n$1\r\n1\r\n$1\r\n1\r\n");
}

#[test]
fn sql_functions_need_the_pgkv_client_role() {
    let c = shared();
    c.psql("DROP ROLE IF EXISTS pgkv_test_app; CREATE ROLE pgkv_test_app LOGIN");
    let connect = || {
        postgres::Client::connect(&format!("host=127.0.0.1 port={} user=pgkv_test_app dbname=postgres", c.pg_port), postgres::NoTls).unwrap()
    };
    let mut app = connect();
    let err = app.query_one("SELECT kv.get('priv:k')", &[]).unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "42501", "{err}");
    c.psql("GRANT pgkv_client TO pgkv_test_app");
    let mut app = connect();
    app.batch_execute("SELECT kv.set('priv:k', 'v')").unwrap();
    let v: Option<String> = app.query_one("SELECT kv.get('priv:k')", &[]).unwrap().get(0);
    assert_eq!(v.as_deref(), Some("v"));
    // The tables themselves stay closed.
    let err = app.query("SELECT * FROM kv.keys", &[]).unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "42501");
    let err = app.query("SELECT kv.sweep(1)", &[]).unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "42501");
}

#[test]
fn keys_that_look_like_sql_are_just_bytes() {
    let c = shared();
    let mut r = c.redis();
    let evil = "'; DROP TABLE kv.keys; --";
    let _: () = r.set(evil, "x'); DELETE FROM kv.keys; --").unwrap();
    let _: i64 = redis::cmd("HSET").arg(evil).arg(evil).arg(evil).query(&mut r).unwrap_or(0);
    let v: String = r.get(evil).unwrap();
    assert_eq!(v, "x'); DELETE FROM kv.keys; --");
    assert_eq!(c.psql("SELECT count(*) > 0 FROM kv.keys"), "t");
    assert_eq!(c.psql(&format!("SELECT kv.get('{}')", evil.replace('\'', "''"))), "x'); DELETE FROM kv.keys; --");
}

#[test]
fn limits_and_disabled_commands() {
    let c = PgCluster::start_with(&["pgkv.disabled_commands = 'flushall, KEYS'", "pgkv.maxclients = 3", "pgkv.timeout = 1"]);
    let mut a = c.raw();
    assert_eq!(a.call(&["FLUSHALL"]), b"-ERR unknown command 'FLUSHALL', with args beginning with: \r\n");
    assert_eq!(a.call(&["keys", "*"]), b"-ERR unknown command 'keys', with args beginning with: '*' \r\n");
    assert_eq!(a.call(&["PING"]), b"+PONG\r\n");
    // Disabled for RESP clients only: SQL callers are governed by GRANTs.
    assert_eq!(c.psql("SELECT kv.call('FLUSHALL')"), "\"OK\"");
    let _b = c.raw();
    let _c = c.raw();
    let mut d = c.raw();
    assert_eq!(d.read_reply(), b"-ERR max number of clients reached\r\n");
    assert!(d.is_closed());
    // Idle clients are dropped after pgkv.timeout.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(a.is_closed(), "an idle client is disconnected");
    assert_eq!(c.raw().call(&["PING"]), b"+PONG\r\n");
    // A bulk longer than pgkv.proto_max_bulk_len is a protocol error.
    c.psql("ALTER SYSTEM SET pgkv.proto_max_bulk_len = '1MB'");
    c.psql("SELECT pg_reload_conf()");
    std::thread::sleep(Duration::from_millis(500));
    let mut e = c.raw();
    e.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n");
    assert_eq!(e.read_reply(), b"-ERR Protocol error: invalid bulk length\r\n");
}

#[test]
fn random_bytes_from_many_clients_leave_the_worker_serving() {
    use rand::{Rng, SeedableRng};
    let c = shared();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    for _ in 0..50 {
        let mut junk = c.raw();
        let len = rng.gen_range(1..4096);
        let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        junk.send(&bytes);
        // Whatever comes back (error replies, a close), the others are served.
        assert_eq!(c.raw().call(&["PING"]), b"+PONG\r\n");
    }
    let mut r = c.redis();
    let _: () = r.set("junk:after", "fine").unwrap();
    let v: String = r.get("junk:after").unwrap();
    assert_eq!(v, "fine");
}

#[test]
fn idle_and_slow_clients_do_not_slow_down_others() {
    // This test process holds the idle sockets: lift its own fd limit, and
    // stay well inside it (and inside the worker's, which is the same here).
    let limit = unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        lim.rlim_cur as usize
    };
    let target = 5000.min(limit.saturating_sub(300));
    let c = PgCluster::start();
    let pid = c.psql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pgkv'").trim().to_string();
    let rss_kb = || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let rss_before = rss_kb();
    let mut idle = Vec::new();
    for _ in 0..target {
        match std::net::TcpStream::connect(("127.0.0.1", c.redis_port)) {
            Ok(s) => idle.push(s),
            Err(_) => break,
        }
    }
    assert_eq!(idle.len(), target, "opened {} of {target} connections", idle.len());
    // Slow-loris clients: one byte at a time of an endless request.
    let slow: Vec<_> = (0..20)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", c.redis_port)).unwrap();
            std::io::Write::write_all(&mut s, b"*3\r\n$3\r\nSET\r\n").unwrap();
            s
        })
        .collect();
    let mut r = c.raw();
    let start = Instant::now();
    for i in 0..200 {
        for (n, mut s) in slow.iter().enumerate() {
            if i % 10 == n % 10 {
                let _ = std::io::Write::write_all(&mut s, b"1");
            }
        }
        assert_eq!(r.call(&["SET", "busy:k", &i.to_string()]), b"+OK\r\n");
    }
    let per_command = start.elapsed() / 200;
    assert!(per_command < Duration::from_millis(50), "a command took {per_command:?} on average");
    let info = String::from_utf8(r.call(&["INFO", "clients"])).unwrap();
    assert!(info.contains(&format!("connected_clients:{}\r\n", target + slow.len() + 1)), "{info}");
    // Memory grows with the clients, boundedly: well under 64 KB each.
    let grown = rss_kb().saturating_sub(rss_before);
    eprintln!("worker RSS grew by {grown} kB for {} clients", target + slow.len());
    assert!(grown < 64 * (target as u64 + 21), "worker RSS grew by {grown} kB for {target} idle clients");
    drop(idle);
}

/// A client that sends its commands and closes its side at once (`nc`,
/// a shell's `printf | ...`) gets every reply and then a closed
/// connection, whether its FIN arrives with the commands or after the
/// server has read them (the worker stops reading at a short read and
/// relies on the next event, which must then report the close).
#[test]
fn half_closed_clients_get_their_replies_and_are_dropped() {
    use std::io::{Read, Write};
    let c = shared();
    // Without a pause the FIN often arrives before the server looks, in
    // the same readiness event as the commands: try that a few times.
    let pauses = std::iter::repeat(None).take(10).chain([Some(Duration::from_millis(100))]);
    for pause in pauses {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", c.redis_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"SET halfclosed 7\r\nINCR halfclosed\r\n").unwrap();
        if let Some(p) = pause {
            std::thread::sleep(p);
        }
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = Vec::new();
        let started = Instant::now();
        s.read_to_end(&mut out).expect("the server closes the connection");
        assert_eq!(show(&out), show(b"+OK\r\n:8\r\n"), "pause {pause:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "closed promptly ({pause:?})");
    }
}

/// The README's configuration table gives each GUC's default: it must be
/// the one the extension defines (`pg_settings.boot_val`), and every pgkv
/// GUC must be in the table.
#[test]
fn readme_lists_every_guc_with_its_default() {
    let c = shared();
    let mut sql = c.sql();
    let readme = std::fs::read_to_string(pgkv_tests::repo_root().join("README.md")).unwrap();
    let cell = |s: &str| s.trim().trim_matches('`').to_string();
    let mut listed = Vec::new();
    for line in readme.lines().filter(|l| l.starts_with("| `pgkv.")) {
        let cols: Vec<&str> = line.split('|').collect();
        let names: Vec<String> = cols[1].split(" / ").map(cell).collect();
        let defaults: Vec<String> = cols[2].split(" / ").map(cell).collect();
        assert_eq!(names.len(), defaults.len(), "{line}");
        for (name, default) in names.into_iter().zip(defaults) {
            // A GUC hidden from SHOW ALL (pgkv.password) is not in
            // pg_settings: its value here, which the test clusters leave.
            let q = "SELECT coalesce((SELECT boot_val FROM pg_settings WHERE name = $1), current_setting($1)), \
                     coalesce((SELECT unit FROM pg_settings WHERE name = $1), '')";
            let row = sql.query_one(q, &[&name]).unwrap_or_else(|e| panic!("{name} is in the README but not defined: {e}"));
            let (boot, unit): (String, String) = (row.get(0), row.get(1));
            // The README's default in the GUC's own unit.
            let want = if default == "empty" {
                String::new()
            } else if let Some(split) = default.find(|ch: char| !ch.is_ascii_digit()).filter(|_| !unit.is_empty()) {
                let (number, suffix) = default.split_at(split);
                let scale: i64 = match (unit.as_str(), suffix) {
                    ("B", "B") | ("kB", "kB") | ("ms", "ms") | ("s", "s") => 1,
                    ("B", "kB") | ("kB", "MB") => 1024,
                    ("B", "MB") | ("kB", "GB") => 1024 * 1024,
                    ("B", "GB") => 1024 * 1024 * 1024,
                    ("ms", "s") => 1000,
                    ("s", "min") => 60,
                    _ => panic!("{name}: default {default} in unit {unit}"),
                };
                (number.parse::<i64>().unwrap() * scale).to_string()
            } else {
                default
            };
            assert_eq!(boot, want, "{name}: README default vs boot_val (unit {unit:?})");
            listed.push(name);
        }
    }
    let defined: Vec<String> =
        sql.query("SELECT name FROM pg_settings WHERE name LIKE 'pgkv.%' ORDER BY 1", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    let missing: Vec<&String> = defined.iter().filter(|n| !listed.contains(n)).collect();
    assert!(missing.is_empty(), "GUCs missing from the README's table: {missing:?}");
}
