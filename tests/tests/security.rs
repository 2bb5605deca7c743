//! `pgkv.auth = 'postgres'`: RESP clients log in as PostgreSQL roles and
//! their commands run with those roles' privileges.

use pgkv_tests::{show, PgCluster};

#[test]
fn clients_log_in_as_postgres_roles_and_keep_their_privileges() {
    let c = PgCluster::start_with(&["pgkv.auth = 'postgres'"]);
    c.psql(
        "CREATE ROLE app LOGIN PASSWORD 'app-secret'; GRANT pgkv_client, pgkv_redis TO app; \
         CREATE ROLE outsider LOGIN PASSWORD 'pw'; \
         CREATE ROLE ghost NOLOGIN PASSWORD 'pw'; GRANT pgkv_client TO ghost; \
         CREATE ROLE expired LOGIN PASSWORD 'pw' VALID UNTIL '2001-01-01'; GRANT pgkv_client TO expired; \
         CREATE ROLE reader LOGIN PASSWORD 'read-only'; GRANT pgkv_client TO reader; \
         GRANT SELECT ON ALL TABLES IN SCHEMA kv TO reader; \
         CREATE ROLE plain LOGIN PASSWORD 'plain'; GRANT pgkv_client TO plain;",
    );
    let verifier = c.psql("SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'app'");
    assert_eq!(verifier.trim(), "SCRAM-SHA-256$", "PG16 stores SCRAM verifiers");

    let mut r = c.raw();
    assert_eq!(show(&r.call(&["GET", "k"])), show(b"-NOAUTH Authentication required.\r\n"));
    let wrongpass = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    for (user, pass) in [("app", "not-it"), ("outsider", "pw"), ("ghost", "pw"), ("expired", "pw"), ("nobody", "x"), ("default", "x")] {
        assert_eq!(show(&r.call(&["AUTH", user, pass])), show(wrongpass), "AUTH {user}");
    }
    assert_eq!(show(&r.call(&["GET", "k"])), show(b"-NOAUTH Authentication required.\r\n"));
    assert!(c.log().contains("AUTH failed for user \"app\""), "failed logins are logged");
    assert!(!c.log().contains("not-it"), "the log never shows a password");

    assert_eq!(r.call(&["AUTH", "app", "app-secret"]), b"+OK\r\n");
    assert_eq!(r.call(&["SET", "k", "1"]), b"+OK\r\n");
    assert_eq!(r.call(&["INCR", "k"]), b":2\r\n");
    assert_eq!(r.call(&["RPUSH", "l", "a"]), b":1\r\n");

    let mut h = c.raw();
    let hello = h.call(&["HELLO", "3", "AUTH", "app", "app-secret"]);
    assert!(hello.starts_with(b"%7\r\n"), "{}", show(&hello));
    assert_eq!(h.call(&["GET", "k"]), b"$1\r\n2\r\n");
    let mut h2 = c.raw();
    assert_eq!(show(&h2.call(&["HELLO", "3", "AUTH", "app", "bad"])), show(wrongpass));

    // A role that may only read the kv tables: reads work, every kind of
    // write fails with Postgres's error, and nothing changes.
    let mut ro = c.raw();
    assert_eq!(ro.call(&["AUTH", "reader", "read-only"]), b"+OK\r\n");
    assert_eq!(ro.call(&["GET", "k"]), b"$1\r\n2\r\n");
    assert_eq!(ro.call(&["LRANGE", "l", "0", "-1"]), b"*1\r\n$1\r\na\r\n");
    // Expiry is the server's doing: a read-only client's GET of an expired
    // key answers nil (and removes it) instead of failing.
    assert_eq!(r.call(&["SET", "short", "v", "PX", "1"]), b"+OK\r\n");
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(show(&ro.call(&["GET", "short"])), show(b"$-1\r\n"));
    for cmd in [&["SET", "k", "9"][..], &["INCR", "k"], &["RPUSH", "l", "b"], &["DEL", "k"], &["FLUSHDB"], &["HSET", "h", "f", "v"]] {
        let reply = ro.call(cmd);
        assert!(reply.starts_with(b"-ERR PostgreSQL error: permission denied"), "{cmd:?}: {}", show(&reply));
    }
    assert_eq!(r.call(&["GET", "k"]), b"$1\r\n2\r\n");
    assert_eq!(r.call(&["LLEN", "l"]), b":1\r\n");
    // A pgkv_client member with no rights on the tables may log in, and
    // can do nothing: the tables are closed unless granted.
    let mut p = c.raw();
    assert_eq!(p.call(&["AUTH", "plain", "plain"]), b"+OK\r\n");
    let reply = p.call(&["GET", "k"]);
    assert!(reply.starts_with(b"-ERR PostgreSQL error: permission denied"), "{}", show(&reply));
    // The read-only client's failures did not disturb the others.
    assert_eq!(r.call(&["INCR", "k"]), b":3\r\n");

    // List elements are read straight from kv.lists's index only where the
    // role may read the table without row-level security in the way;
    // otherwise Postgres's statement decides, with its own policies and
    // errors.
    c.psql(
        "CREATE ROLE keysonly LOGIN PASSWORD 'pw'; GRANT pgkv_client TO keysonly; GRANT SELECT ON kv.keys TO keysonly; \
         ALTER TABLE kv.lists ENABLE ROW LEVEL SECURITY; CREATE POLICY everyone ON kv.lists USING (true); \
         CREATE POLICY no_a ON kv.lists AS RESTRICTIVE FOR SELECT TO reader USING (value <> 'a');",
    );
    assert_eq!(r.call(&["RPUSH", "l", "b"]), b":2\r\n");
    assert_eq!(r.call(&["LRANGE", "l", "0", "-1"]), b"*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_eq!(show(&ro.call(&["LRANGE", "l", "0", "-1"])), show(b"*1\r\n$1\r\nb\r\n"));
    assert_eq!(show(&ro.call(&["LINDEX", "l", "0"])), show(b"$-1\r\n"));
    let mut k = c.raw();
    assert_eq!(k.call(&["AUTH", "keysonly", "pw"]), b"+OK\r\n");
    assert_eq!(k.call(&["LLEN", "l"]), b":2\r\n");
    let reply = k.call(&["LRANGE", "l", "0", "-1"]);
    assert!(reply.starts_with(b"-ERR PostgreSQL error: permission denied for table lists"), "{}", show(&reply));
    // The same for hashes and sets read whole.
    assert_eq!(r.call(&["HSET", "h", "f", "1", "g", "2"]), b":2\r\n");
    assert_eq!(r.call(&["SADD", "s", "a", "b"]), b":2\r\n");
    c.psql(
        "ALTER TABLE kv.hashes ENABLE ROW LEVEL SECURITY; CREATE POLICY everyone ON kv.hashes USING (true); \
         CREATE POLICY no_f ON kv.hashes AS RESTRICTIVE FOR SELECT TO reader USING (field <> 'f'); \
         ALTER TABLE kv.sets ENABLE ROW LEVEL SECURITY; CREATE POLICY everyone ON kv.sets USING (true); \
         CREATE POLICY no_a ON kv.sets AS RESTRICTIVE FOR SELECT TO reader USING (member <> 'a');",
    );
    assert_eq!(r.call(&["HGETALL", "h"]), b"*4\r\n$1\r\nf\r\n$1\r\n1\r\n$1\r\ng\r\n$1\r\n2\r\n");
    assert_eq!(show(&ro.call(&["HGETALL", "h"])), show(b"*2\r\n$1\r\ng\r\n$1\r\n2\r\n"));
    assert_eq!(show(&ro.call(&["SMEMBERS", "s"])), show(b"*1\r\n$1\r\nb\r\n"));
    assert_eq!(r.call(&["ZADD", "z", "1", "a", "2", "b", "3", "c"]), b":3\r\n");
    c.psql(
        "ALTER TABLE kv.zsets ENABLE ROW LEVEL SECURITY; CREATE POLICY everyone ON kv.zsets USING (true); \
         CREATE POLICY no_b ON kv.zsets AS RESTRICTIVE FOR SELECT TO reader USING (member <> 'b');",
    );
    assert_eq!(show(&ro.call(&["ZRANGE", "z", "0", "-1"])), show(b"*2\r\n$1\r\na\r\n$1\r\nc\r\n"));
    assert_eq!(show(&ro.call(&["ZRANGEBYSCORE", "z", "2", "3"])), show(b"*1\r\n$1\r\nc\r\n"));
    assert_eq!(show(&ro.call(&["HSCAN", "h", "0"])), show(b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\ng\r\n$1\r\n2\r\n"));
    assert_eq!(show(&ro.call(&["ZSCAN", "z", "0"])), show(b"*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nc\r\n$1\r\n3\r\n"));
    for cmd in [&["HGETALL", "h"][..], &["SMEMBERS", "s"], &["ZRANGE", "z", "0", "-1"], &["ZRANGEBYSCORE", "z", "-inf", "+inf"]] {
        let reply = k.call(cmd);
        assert!(reply.starts_with(b"-ERR PostgreSQL error: permission denied for table"), "{cmd:?}: {}", show(&reply));
    }
}

/// This machine's address on its default route (not loopback).
fn outside_address() -> std::net::IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    probe.connect("192.0.2.1:9").expect("a default route to probe with");
    let ip = probe.local_addr().unwrap().ip();
    assert!(!ip.is_loopback() && !ip.is_unspecified(), "this test needs a non-loopback interface, found {ip}");
    ip
}

#[test]
fn protected_mode_refuses_other_hosts_until_a_password_is_set() {
    let c = PgCluster::start_with(&["pgkv.listen_addresses = '*'"]);
    let ip = outside_address();
    let read_all = |s: &mut std::net::TcpStream| {
        use std::io::Read;
        s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    };
    let mut outside = std::net::TcpStream::connect((ip, c.redis_port)).unwrap();
    std::io::Write::write_all(&mut outside, b"PING\r\n").unwrap();
    let reply = read_all(&mut outside);
    assert!(reply.starts_with(b"-DENIED Redis is running in protected mode"), "{}", show(&reply));
    // Loopback clients are served.
    assert_eq!(c.raw().call(&["PING"]), b"+PONG\r\n");
    // With a password configured, other hosts may connect (and must AUTH).
    c.psql("ALTER SYSTEM SET pgkv.password = 'pw'");
    c.psql("SELECT pg_reload_conf()");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut outside = pgkv_tests::RawClient::connect_to(ip, c.redis_port);
    assert_eq!(show(&outside.call(&["PING"])), show(b"-NOAUTH Authentication required.\r\n"));
    assert_eq!(outside.call(&["AUTH", "pw"]), b"+OK\r\n");
    assert_eq!(outside.call(&["PING"]), b"+PONG\r\n");
}

#[test]
fn clients_past_the_output_and_query_buffer_limits_are_disconnected() {
    let c = PgCluster::start_with(&["pgkv.output_limit = '1MB'", "pgkv.client_query_buffer_limit = '1MB'"]);
    let mut r = c.raw();
    // Written from SQL: a 2 MB SET would itself pass the query buffer limit.
    c.psql("SELECT kv.set('big', repeat('x', 2097152))");
    assert_eq!(r.call(&["STRLEN", "big"]), b":2097152\r\n");
    r.send(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");
    assert!(r.is_closed(), "a 2 MB reply passes the 1 MB limit");
    let mut other = c.raw();
    assert_eq!(other.call(&["GETRANGE", "big", "0", "2"]), b"$3\r\nxxx\r\n");
    let info = String::from_utf8(other.call(&["INFO", "stats"])).unwrap();
    assert!(info.contains("pgkv_output_limit_disconnections:1\r\n"), "{info}");
    // An unfinished 3 MB argument: the client is dropped once 1 MB waits.
    let mut q = c.raw();
    q.send(b"*3\r\n$3\r\nSET\r\n$1\r\nq\r\n$3000000\r\n");
    let chunk = vec![b'y'; 64 * 1024];
    for _ in 0..24 {
        if !q.try_send(&chunk) {
            break;
        }
    }
    assert!(q.is_closed(), "past client_query_buffer_limit");
    assert_eq!(other.call(&["EXISTS", "q"]), b":0\r\n");
}
