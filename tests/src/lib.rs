//! Test harness for pgkv: scratch PostgreSQL 16 clusters with pgkv preloaded,
//! a reference redis-server, free ports, and a differential runner that sends
//! the same commands to both and compares the raw reply bytes.
//!
//! Every server is started by the test that needs it and stopped when its
//! handle drops (or, for the shared cluster, when the test binary exits).

use bytes::BytesMut;
use pgkv_resp::{decode, encode_request};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The OS user postgres runs as when the tests run as root.
const PG_OS_USER: &str = "pgkv";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the repo").to_path_buf()
}

fn pg_bindir() -> PathBuf {
    let pg_config = std::env::var("PG_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".pgkv/pg/pgserver/pginstall/bin/pg_config"));
    let out = Command::new(&pg_config).arg("--bindir").output().unwrap_or_else(|e| panic!("{}: {e}", pg_config.display()));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// A command run as the postgres OS user.
fn pg_command(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", PG_OS_USER, "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run_ok(mut c: Command) -> String {
    let out = c.output().expect("spawn");
    assert!(out.status.success(), "{c:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A port nobody listens on right now.
/// A port free now, below the kernel's ephemeral range: a port the kernel
/// picked (`bind` to port 0) can be handed out again as the local port of
/// any test's outgoing connection before the server binds it, and the
/// server then cannot listen there (a cluster that never answered PING).
pub fn free_port() -> u16 {
    use rand::Rng;
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let low: u16 = range.split_whitespace().next().and_then(|p| p.parse().ok()).unwrap_or(32768);
    let mut rng = rand::thread_rng();
    for _ in 0..1000 {
        let port = rng.gen_range(10_000..low.max(10_001));
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn wait_for_ping(port: u16, what: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        // A server still starting (or being restarted after a crash) may
        // accept and then reset the connection: that is "not yet".
        if let Ok(mut c) = RawClient::try_connect(port) {
            if let Some(reply) = c.try_call(&[b"PING"]) {
                if reply == b"+PONG\r\n" || reply.starts_with(b"-NOAUTH") {
                    return;
                }
            }
        }
        assert!(Instant::now() < deadline, "{what} did not answer PING on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A scratch cluster: its own data directory and ports, pgkv preloaded and
/// created. Stopped (immediately) and deleted on drop.
pub struct PgCluster {
    pub dir: PathBuf,
    pub pg_port: u16,
    pub redis_port: u16,
    bindir: PathBuf,
}

impl PgCluster {
    pub fn start() -> PgCluster {
        Self::start_with(&[])
    }

    /// Starts a cluster with extra postgresql.conf lines.
    pub fn start_with(extra_conf: &[&str]) -> PgCluster {
        let c = Self::start_without_extension(extra_conf);
        c.psql("CREATE EXTENSION pgkv");
        wait_for_ping(c.redis_port, "pgkv", Duration::from_secs(30));
        c
    }

    /// Starts a cluster whose workers are loaded but `CREATE EXTENSION pgkv`
    /// has not run.
    pub fn start_without_extension(extra_conf: &[&str]) -> PgCluster {
        let bindir = pg_bindir();
        let base = repo_root().join(".pgkv/tmp");
        std::fs::create_dir_all(&base).unwrap();
        let dir = base.join(format!("cluster-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            run_ok({
                let mut c = Command::new("chown");
                c.arg(PG_OS_USER).arg(&dir);
                c
            });
        }
        let data = dir.join("data");
        let mut initdb = pg_command(&bindir.join("initdb"));
        initdb.arg("-D").arg(&data).args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
        run_ok(initdb);
        let cluster = PgCluster { dir, pg_port: free_port(), redis_port: free_port(), bindir };
        let mut conf = format!(
            "\nshared_preload_libraries = 'pgkv'\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             pgkv.port = {}\nfsync = on\nsynchronous_commit = on\n",
            cluster.pg_port,
            cluster.dir.display(),
            cluster.redis_port
        );
        for line in extra_conf {
            conf.push_str(line);
            conf.push('\n');
        }
        let conf_path = data.join("postgresql.conf");
        let mut existing = std::fs::read_to_string(&conf_path).unwrap();
        existing.push_str(&conf);
        std::fs::write(&conf_path, existing).unwrap();
        cluster.pg_ctl(&["start", "-w", "-t", "60"]);
        cluster
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    pub fn pg_ctl(&self, args: &[&str]) {
        let mut c = pg_command(&self.bindir.join("pg_ctl"));
        c.arg("-D").arg(self.dir.join("data")).arg("-l").arg(self.log_path()).args(args);
        c.stdout(Stdio::null());
        let status = c.status().expect("pg_ctl");
        assert!(status.success(), "pg_ctl {args:?} failed; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Restarts the cluster; `mode` is a pg_ctl shutdown mode (`immediate`
    /// simulates a crash: no shutdown checkpoint).
    pub fn restart(&self, mode: &str) {
        self.pg_ctl(&["restart", "-w", "-m", mode, "-t", "60"]);
        wait_for_ping(self.redis_port, "pgkv after restart", Duration::from_secs(60));
    }

    /// Simulates a crash of the whole server: SIGKILL to the postmaster and
    /// every process it started, at once, with no chance to clean up.
    pub fn kill_all(&self) {
        let mut victims = vec![self.postmaster_pid()];
        victims.extend(self.children().into_iter().map(|(pid, _)| pid));
        for pid in &victims {
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while victims.iter().any(|p| std::path::Path::new(&format!("/proc/{p}/stat")).exists()
            && !std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default().contains(") Z "))
        {
            assert!(Instant::now() < deadline, "processes survived SIGKILL");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn postmaster_pid(&self) -> i32 {
        let pid_file = std::fs::read_to_string(self.dir.join("data/postmaster.pid")).expect("postmaster.pid");
        pid_file.lines().next().unwrap().trim().parse().unwrap()
    }

    /// The postmaster's child processes: pid and process title
    /// ("postgres: walwriter ", "postgres: pgkv worker 0 ", ...).
    pub fn children(&self) -> Vec<(i32, String)> {
        let pm = self.postmaster_pid();
        let mut out = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            let ppid: i32 = stat.rsplit(')').next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
            if ppid == pm {
                let title = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                out.push((pid, String::from_utf8_lossy(&title).replace('\0', " ")));
            }
        }
        out
    }

    /// Sends `signal` to the children whose process title contains one of
    /// `titles`; returns how many it signalled.
    pub fn signal_children(&self, titles: &[&str], signal: i32) -> usize {
        let pids: Vec<i32> = self.children().into_iter().filter(|(_, t)| titles.iter().any(|w| t.contains(w))).map(|(p, _)| p).collect();
        for pid in &pids {
            unsafe { libc::kill(*pid, signal) };
        }
        pids.len()
    }

    /// Starts the cluster again (crash recovery after `kill_all`). The dead
    /// postmaster's lock file is removed, as a reboot would leave no process
    /// behind it (here it may linger as a zombie nobody reaps).
    pub fn start_again(&self) {
        let _ = std::fs::remove_file(self.dir.join("data/postmaster.pid"));
        let _ = std::fs::remove_file(self.dir.join(format!(".s.PGSQL.{}.lock", self.pg_port)));
        let _ = std::fs::remove_file(self.dir.join(format!(".s.PGSQL.{}", self.pg_port)));
        self.pg_ctl(&["start", "-w", "-t", "120"]);
        wait_for_ping(self.redis_port, "pgkv after recovery", Duration::from_secs(60));
    }

    /// Runs SQL through psql and returns its unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        let mut c = Command::new(self.bindir.join("psql"));
        c.args(["-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.dir)
            .args(["-p", &self.pg_port.to_string(), "-U", "postgres", "-d", "postgres", "-c", sql]);
        run_ok(c).trim_end().to_string()
    }

    /// A Postgres client connection.
    pub fn sql(&self) -> postgres::Client {
        postgres::Client::connect(&format!("host=127.0.0.1 port={} user=postgres dbname=postgres", self.pg_port), postgres::NoTls)
            .expect("connect to postgres")
    }

    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.redis_port)
    }

    /// A real Redis client connection (the `redis` crate).
    pub fn redis(&self) -> redis::Connection {
        redis::Client::open(self.redis_url()).unwrap().get_connection().expect("connect to pgkv")
    }

    pub fn raw(&self) -> RawClient {
        RawClient::connect(self.redis_port)
    }

    /// A raw client served by worker `worker` of a cluster with
    /// `pgkv.workers = 2`: connects until the kernel hands one to it (client
    /// ids are worker + 1 + n * workers).
    pub fn client_on_worker(&self, worker: i64) -> RawClient {
        for _ in 0..200 {
            let mut r = self.raw();
            let id = r.call(&["CLIENT", "ID"]);
            let id: i64 = std::str::from_utf8(&id[1..id.len() - 2]).unwrap().parse().unwrap();
            if (id - 1) % 2 == worker {
                return r;
            }
        }
        panic!("no connection landed on worker {worker}");
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let mut c = pg_command(&self.bindir.join("pg_ctl"));
        c.arg("-D").arg(self.dir.join("data")).args(["stop", "-m", "immediate", "-w"]);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        let _ = c.status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static SHARED: OnceLock<PgCluster> = OnceLock::new();

extern "C" fn stop_shared() {
    if let Some(c) = SHARED.get() {
        // Statics are never dropped; stop the cluster by hand at exit.
        let c = c as *const PgCluster as *mut PgCluster;
        unsafe { std::ptr::drop_in_place(c) };
    }
}

/// One cluster shared by the tests of a test binary, for tests that only
/// need a running server. Stopped when the binary exits.
pub fn shared() -> &'static PgCluster {
    SHARED.get_or_init(|| {
        unsafe { libc::atexit(stop_shared) };
        PgCluster::start()
    })
}

/// The reference: Debian's redis-server 7.0, without persistence.
pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> RedisServer {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        let server = RedisServer { port, child };
        wait_for_ping(port, "redis-server", Duration::from_secs(10));
        server
    }

    pub fn raw(&self) -> RawClient {
        RawClient::connect(self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static SHARED_REDIS: OnceLock<std::sync::Mutex<Option<RedisServer>>> = OnceLock::new();

extern "C" fn stop_shared_redis() {
    if let Some(m) = SHARED_REDIS.get() {
        if let Ok(mut g) = m.lock() {
            g.take();
        }
    }
}

/// The port of a redis-server shared by a test binary.
/// Starts `n` threads, each with a Redis connection of its own to `url`,
/// running `f(thread index, connection)`; join the handles for what each
/// returned.
pub fn spawn_clients<T, F>(url: &str, n: usize, f: F) -> Vec<std::thread::JoinHandle<T>>
where
    T: Send + 'static,
    F: Fn(usize, redis::Connection) -> T + Send + Sync + 'static,
{
    let f = std::sync::Arc::new(f);
    (0..n)
        .map(|t| {
            let (url, f) = (url.to_string(), f.clone());
            std::thread::spawn(move || f(t, redis::Client::open(url).unwrap().get_connection().unwrap()))
        })
        .collect()
}

pub fn shared_redis_port() -> u16 {
    let m = SHARED_REDIS.get_or_init(|| {
        unsafe { libc::atexit(stop_shared_redis) };
        std::sync::Mutex::new(Some(RedisServer::start()))
    });
    m.lock().unwrap().as_ref().unwrap().port
}

/// A client that sends raw bytes and reads whole raw replies, for checks
/// where byte-exactness matters.
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
}

impl RawClient {
    pub fn connect(port: u16) -> RawClient {
        Self::try_connect(port).unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"))
    }

    /// A client connecting to `ip` rather than the loopback address.
    pub fn connect_to(ip: std::net::IpAddr, port: u16) -> RawClient {
        let stream = TcpStream::connect((ip, port)).unwrap_or_else(|e| panic!("connect to {ip}:{port}: {e}"));
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream.set_nodelay(true).unwrap();
        RawClient { stream, buf: BytesMut::new() }
    }

    fn try_connect(port: u16) -> std::io::Result<RawClient> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(RawClient { stream, buf: BytesMut::new() })
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Writes what the server takes; false once it has closed the connection.
    pub fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// Reads one complete reply and returns its exact bytes. Panics on
    /// timeout; returns an empty vector if the server closed the connection.
    pub fn read_reply(&mut self) -> Vec<u8> {
        loop {
            if let Some((_, used)) = decode(&self.buf).expect("server sent invalid RESP") {
                return self.buf.split_to(used).to_vec();
            }
            let mut chunk = [0u8; 65536];
            let n = match self.stream.read(&mut chunk) {
                // A signal to the test process (with a read timeout set,
                // Linux reports EINTR instead of restarting the read).
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => other.expect("read reply"),
            };
            if n == 0 {
                assert!(self.buf.is_empty(), "connection closed inside a reply");
                return Vec::new();
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads one reply if it arrives within `timeout`; `None` if nothing does.
    pub fn try_read_reply(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        if decode(&self.buf).expect("server sent invalid RESP").is_some() {
            return Some(self.read_reply());
        }
        self.stream.set_read_timeout(Some(timeout)).unwrap();
        let mut chunk = [0u8; 65536];
        let got = match self.stream.read(&mut chunk) {
            Ok(n) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            _ => false,
        };
        self.stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        got.then(|| self.read_reply())
    }

    /// True when the server has closed the connection (after any replies).
    pub fn is_closed(&mut self) -> bool {
        self.stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut chunk = [0u8; 1024];
        matches!(self.stream.read(&mut chunk), Ok(0) | Err(_))
    }

    /// Like `call`, but `None` when the connection fails before a whole
    /// reply arrives.
    pub fn try_call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Option<Vec<u8>> {
        let mut out = BytesMut::new();
        encode_request(args, &mut out);
        self.stream.write_all(&out).ok()?;
        loop {
            if let Ok(Some((_, used))) = decode(&self.buf) {
                return Some(self.buf.split_to(used).to_vec());
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Sends one command as a multibulk request and returns the raw reply.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        self.send_command(args);
        self.read_reply()
    }

    /// Sends one command without waiting for its reply.
    pub fn send_command<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        let mut out = BytesMut::new();
        encode_request(args, &mut out);
        self.send(&out);
    }
}

/// Runs command sequences against pgkv and the reference redis-server and
/// compares every reply byte for byte.
pub struct Differential {
    pub pgkv: RawClient,
    pub redis: RawClient,
}

impl Differential {
    /// Both connections switched to `proto` (2 or 3).
    pub fn new(pgkv_port: u16, redis_port: u16, proto: u8) -> Differential {
        let mut d = Differential { pgkv: RawClient::connect(pgkv_port), redis: RawClient::connect(redis_port) };
        if proto == 3 {
            d.pgkv.call(&["HELLO", "3"]);
            d.redis.call(&["HELLO", "3"]);
        }
        d
    }

    /// Sends `args` to both servers; panics with both replies if they differ.
    pub fn check<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        let ours = self.pgkv.call(args);
        let theirs = self.redis.call(args);
        assert_eq!(
            show(&ours),
            show(&theirs),
            "reply differs for {:?}",
            args.iter().map(|a| String::from_utf8_lossy(a.as_ref()).into_owned()).collect::<Vec<_>>()
        );
        ours
    }

    /// Both shared servers, switched to `proto` and to database `db`, which
    /// is flushed first: each test family owns a database.
    pub fn shared(proto: u8, db: u8) -> Differential {
        let mut d = Differential::new(shared().redis_port, shared_redis_port(), proto);
        d.check(&["SELECT", &db.to_string()]);
        d.check(&["FLUSHDB"]);
        d
    }

    /// Runs `body` on `Differential::shared(proto, db)` in RESP2, then in RESP3.
    pub fn each_protocol(db: u8, body: impl Fn(&mut Differential)) {
        for proto in [2, 3] {
            body(&mut Differential::shared(proto, db));
        }
    }

    /// `each_protocol` with two clients on database `db`: one that blocks or
    /// watches, and one that acts on it.
    pub fn each_protocol_pair(db: u8, body: impl Fn(&mut Differential, &mut Differential)) {
        for proto in [2, 3] {
            let mut a = Differential::shared(proto, db);
            let mut b = Differential::shared(proto, db);
            body(&mut a, &mut b);
        }
    }

    /// Like `check`, for replies whose element order Redis leaves undefined
    /// (KEYS, SMEMBERS of a hash-table set): compares the elements sorted.
    pub fn check_unordered<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        let ours = self.pgkv.call(args);
        let theirs = self.redis.call(args);
        assert_eq!(
            sorted_reply(&ours),
            sorted_reply(&theirs),
            "reply differs (ignoring order) for {:?}",
            args.iter().map(|a| String::from_utf8_lossy(a.as_ref()).into_owned()).collect::<Vec<_>>()
        );
    }

    /// Sends a command to both and compares the next `replies` replies (a
    /// SUBSCRIBE to n channels answers n times).
    pub fn check_n<A: AsRef<[u8]>>(&mut self, args: &[A], replies: usize) {
        let mut out = BytesMut::new();
        encode_request(args, &mut out);
        self.check_raw(&out, replies);
    }

    /// Compares the next reply each server sends without being asked
    /// (a pub/sub message, a blocked command's answer).
    pub fn check_pushed(&mut self) -> Vec<u8> {
        let ours = self.pgkv.read_reply();
        let theirs = self.redis.read_reply();
        assert_eq!(show(&ours), show(&theirs), "pushed reply differs");
        ours
    }

    /// Sends `cmds` to both as one pipelined write (one batch for pgkv) and
    /// compares every reply.
    pub fn check_pipeline<C: AsRef<[A]>, A: AsRef<[u8]>>(&mut self, cmds: &[C]) {
        let mut out = BytesMut::new();
        for cmd in cmds {
            encode_request(cmd.as_ref(), &mut out);
        }
        self.check_raw(&out, cmds.len());
    }

    /// Sends the same raw bytes to both and compares the next `replies` replies.
    pub fn check_raw(&mut self, bytes: &[u8], replies: usize) {
        self.pgkv.send(bytes);
        self.redis.send(bytes);
        for i in 0..replies {
            let ours = self.pgkv.read_reply();
            let theirs = self.redis.read_reply();
            assert_eq!(show(&ours), show(&theirs), "reply {i} differs for raw input {:?}", String::from_utf8_lossy(bytes));
        }
    }
}

/// A reply with the elements of its top-level aggregate sorted, rendered
/// readably.
pub fn sorted_reply(raw: &[u8]) -> String {
    use pgkv_resp::{Frame, Protocol};
    let (frame, _) = decode(raw).expect("valid RESP").expect("a whole reply");
    let kind = raw.first().copied().unwrap_or(b'?') as char;
    let mut items: Vec<Vec<u8>> = match frame {
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => {
            v.iter().map(|f| pgkv_resp::to_bytes(f, Protocol::Resp3).to_vec()).collect()
        }
        Frame::Map(m) => m
            .iter()
            .map(|(k, v)| {
                let mut b = pgkv_resp::to_bytes(k, Protocol::Resp3).to_vec();
                b.extend_from_slice(&pgkv_resp::to_bytes(v, Protocol::Resp3));
                b
            })
            .collect(),
        _ => return show(raw),
    };
    items.sort();
    format!("{kind}{}", items.iter().map(|i| show(i)).collect::<Vec<_>>().join(" | "))
}

/// Reply bytes in a form whose diff is readable.
pub fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

/// A key unique to one test, so tests can share servers.
pub fn key(test: &str, name: &str) -> String {
    format!("{test}:{name}")
}
