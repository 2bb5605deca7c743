#!/usr/bin/env python3
"""pgkv vs redis-server, measured in the same run with redis-benchmark.

Starts a scratch PG16 cluster with pgkv (synchronous_commit = on, fsync on:
every acknowledged write is durable) and Debian's redis-server without
persistence, each on a free port. For every command and client/pipeline
setting it runs redis-benchmark against both, interleaved, for several
rounds, and reports the median ops/s, the pgkv/Redis ratio, p50/p99 latency
and the server CPU time per 1000 commands. Then, at -c 50, reads of large
collections that Redis answers in O(1) or O(log N) (random members, a LIMIT
page, the last ranks, a rank, a count, an intersection with a small set).
Results go to stdout and to target/bench/results.csv.

    make bench                      # the full matrix (about 10 minutes)
    scripts/bench.py --quick        # one round, fewer requests
"""
import argparse
import csv
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_CONFIG = os.environ.get("PG_CONFIG", os.path.join(ROOT, ".pgkv/pg/pgserver/pginstall/bin/pg_config"))
OS_USER = os.environ.get("PGKV_OS_USER", "pgkv")

TESTS = ["set", "get", "incr", "lpush", "rpop", "hset", "sadd", "zadd", "mset", "lrange_100"]
# (label, clients, pipeline, requests per run)
SETTINGS = [("c50-P1", 50, 1, 50000), ("c50-P16", 50, 16, 200000), ("c1-P1", 1, 1, 5000)]
# Reads of large collections (about 95,000 members each, filled by
# redis-benchmark's own HSET, SADD and ZADD with -r 100000) that Redis
# answers in O(1) or O(log N), at -c 50 -P 1: (name, command, requests
# per run). A rank still costs pgkv the members it counts (about 100 ranks
# a second here), hence its few requests.
LARGE = [
    ("srandmember", ["SRANDMEMBER", "myset"], 20000),
    ("srandmember_10", ["SRANDMEMBER", "myset", "10"], 20000),
    ("hrandfield", ["HRANDFIELD", "myhash"], 20000),
    ("zrandmember", ["ZRANDMEMBER", "myzset"], 20000),
    ("sinter_small", ["SINTER", "small", "myset"], 20000),
    ("zrangebyscore_limit", ["ZRANGEBYSCORE", "myzset", "-inf", "+inf", "LIMIT", "0", "10"], 20000),
    ("zrange_last_10", ["ZRANGE", "myzset", "-10", "-1"], 20000),
    ("zrevrank", ["ZREVRANK", "myzset", "element:__rand_int__"], 1000),
    ("zcount_all", ["ZCOUNT", "myzset", "-inf", "+inf"], 20000),
]
LARGE_LABEL = "large-c50-P1"


def fill_large(server):
    """The large collections of `LARGE`, the same way on both servers."""
    subprocess.run(["redis-benchmark", "-p", str(server.port), "-t", "hset,sadd,zadd", "-c", "50", "-P", "16", "-n", "300000", "-r", "100000",
                    "-q"], capture_output=True, timeout=600, check=True)
    subprocess.run(["redis-cli", "-p", str(server.port), "SADD", "small", "element:1", "element:2", "element:3", "none"], capture_output=True,
                   timeout=60, check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_pg(cmd):
    return ["runuser", "-u", OS_USER, "--"] + cmd if os.geteuid() == 0 else cmd


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ping(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
        if out.stdout.strip() == "PONG":
            return
        time.sleep(0.1)
    sys.exit(f"nothing answered PING on port {port}")


class Pgkv:
    def __init__(self, workers):
        bindir = subprocess.check_output([PG_CONFIG, "--bindir"], text=True).strip()
        self.bindir = bindir
        os.makedirs(os.path.join(ROOT, ".pgkv/tmp"), exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="bench-", dir=os.path.join(ROOT, ".pgkv/tmp"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, OS_USER)
        self.data = os.path.join(self.dir, "data")
        subprocess.check_call(as_pg([f"{bindir}/initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"]),
                              stdout=subprocess.DEVNULL)
        self.pg_port, self.port = free_port(), free_port()
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"""
shared_preload_libraries = 'pgkv'
listen_addresses = '127.0.0.1'
port = {self.pg_port}
unix_socket_directories = '{self.dir}'
pgkv.port = {self.port}
pgkv.workers = {workers}
synchronous_commit = on
fsync = on
shared_buffers = 256MB
""")
        subprocess.check_call(as_pg([f"{bindir}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "start"]),
                              stdout=subprocess.DEVNULL)
        self.psql("CREATE EXTENSION pgkv")
        wait_ping(self.port)

    def psql(self, sql):
        return subprocess.check_output([f"{self.bindir}/psql", "-X", "-qAt", "-h", self.dir, "-p", str(self.pg_port), "-U", "postgres",
                                        "-d", "postgres", "-c", sql], text=True).strip()

    def pids(self):
        # The workers, and the flusher, which has no database connection and
        # so is not in pg_stat_activity: the postmaster's child by that name.
        pids = [int(p) for p in self.psql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pgkv'").split()]
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    title = f.read()
            except OSError:
                continue
            if ppid == postmaster and title.startswith(b"postgres: pgkv flusher"):
                pids.append(int(entry))
        return pids

    def stop(self):
        subprocess.call(as_pg([f"{self.bindir}/pg_ctl", "-D", self.data, "-m", "immediate", "stop"]), stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL)
        wait_ping(self.port)

    def pids(self):
        return [self.proc.pid]

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def run(server, test, clients, pipeline, requests, command=None):
    """One redis-benchmark run of `test` (or of `command`, named `test`)."""
    before = sum(cpu_seconds(p) for p in server.pids())
    what = command if command else ["-t", test]
    out = subprocess.run(["redis-benchmark", "-p", str(server.port), "-c", str(clients), "-P", str(pipeline), "-n", str(requests), "-r",
                          "100000", "--csv", "-q"] + what, capture_output=True, text=True, timeout=600)
    after = sum(cpu_seconds(p) for p in server.pids())
    rows = [r for r in csv.reader(out.stdout.splitlines()) if r and r[0] != "test"]
    if not rows:
        # redis-benchmark stops at an error reply; report it and go on.
        print(f"{test} failed: {(out.stderr or out.stdout).strip()[-300:]}", file=sys.stderr)
        return {"rps": 0.0, "p50": 0.0, "p99": 0.0, "cpu_us_per_1k": 0.0}
    # For lrange_100 the fill (LPUSH) comes first: keep the LRANGE row.
    row = rows[-1]
    rps, p50, p99 = float(row[1]), float(row[4]), float(row[6])
    cmds = requests
    return {"rps": rps, "p50": p50, "p99": p99, "cpu_us_per_1k": (after - before) * 1e6 / cmds * 1000}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one round, a tenth of the requests")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--tests", default=",".join(TESTS))
    ap.add_argument("--no-large", action="store_true", help="skip the large-collection reads")
    args = ap.parse_args()
    rounds = 1 if args.quick else args.rounds
    scale = 0.1 if args.quick else 1.0
    tests = args.tests.split(",")
    pg, redis = Pgkv(args.workers), Redis()
    results = {}
    large = [] if args.no_large else LARGE
    try:
        for rnd in range(rounds):
            for label, c, p, n in SETTINGS:
                for t in tests:
                    n_run = max(int(n * scale), 1000)
                    for name, server in (("redis", redis), ("pgkv", pg)):
                        results.setdefault((t, label, name), []).append(run(server, t, c, p, n_run))
                    print(f"round {rnd + 1}: {t} {label} done", file=sys.stderr)
            if large and rnd == 0:
                for server in (redis, pg):
                    fill_large(server)
            for t, command, n in large:
                n_run = max(int(n * scale), 200)
                for name, server in (("redis", redis), ("pgkv", pg)):
                    results.setdefault((t, LARGE_LABEL, name), []).append(run(server, t, 50, 1, n_run, command))
                print(f"round {rnd + 1}: {t} {LARGE_LABEL} done", file=sys.stderr)
    finally:
        pg.stop()
        redis.stop()
    os.makedirs(os.path.join(ROOT, "target/bench"), exist_ok=True)
    path = os.path.join(ROOT, "target/bench/results.csv")
    header = ["test", "setting", "redis_rps", "pgkv_rps", "ratio", "redis_p50_ms", "pgkv_p50_ms", "redis_p99_ms", "pgkv_p99_ms",
              "redis_cpu_us_per_1k", "pgkv_cpu_us_per_1k"]
    lines = []
    runs = [(label, tests) for label, *_ in SETTINGS] + ([(LARGE_LABEL, [t for t, *_ in large])] if large else [])
    for label, names in runs:
        for t in names:
            med = lambda name, k: statistics.median(r[k] for r in results[(t, label, name)])
            r_rps, p_rps = med("redis", "rps"), med("pgkv", "rps")
            lines.append([t, label, round(r_rps), round(p_rps), round(p_rps / r_rps, 3) if r_rps else 0, med("redis", "p50"), med("pgkv", "p50"),
                          med("redis", "p99"), med("pgkv", "p99"), round(med("redis", "cpu_us_per_1k")), round(med("pgkv", "cpu_us_per_1k"))])
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(lines)
    print(f"| {' | '.join(header)} |")
    print("|" + "---|" * len(header))
    for l in lines:
        print(f"| {' | '.join(str(x) for x in l)} |")
    print(f"\nmedian of {rounds} interleaved round(s); CSV: {path}")


if __name__ == "__main__":
    main()
