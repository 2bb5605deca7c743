#!/usr/bin/env python3
"""Replays a failing sequence of tests/tests/random.rs against pgkv and a
real redis-server and names the first pipeline after which the two hold
different data.

The random test writes the sequence it ran (each command's arguments in
hex, `-` for an empty one, `|` where a pipeline starts) to a file it names in its failure
message. This script sends the same pipelines to both servers (after
FLUSHALL, SELECT 2 and, for RESP3, HELLO 3, as the test does), and after
each pipeline reads every key of the test's databases through a second
connection: type, contents (set members sorted) and whether it has a TTL.

    scripts/replay_random.py /tmp/pgkv-random-1-resp3.txt --resp 3 \\
        --pgkv-port 6379 --redis-port 6390

Both servers are the caller's (a dev cluster from scripts/cluster.sh and
`redis-server --port 6390 --save ""`); they are
flushed (FLUSHALL, as the test does).
"""

import argparse
import socket

KEYS = [f"k{i}" for i in range(10)]
DBS = ["2", "3"]


def encode(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def send(self, commands):
        self.sock.sendall(b"".join(encode(c) for c in commands))

    def _line(self):
        while b"\r\n" not in self.buf:
            self._more()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _more(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def reply(self):
        """One reply, as its raw bytes."""
        line = self._line()
        kind, rest = line[:1], line[1:]
        out = line + b"\r\n"
        if kind in b"$=!":
            n = int(rest)
            if n >= 0:
                while len(self.buf) < n + 2:
                    self._more()
                out += self.buf[: n + 2]
                self.buf = self.buf[n + 2 :]
        elif kind in b"*~>%|":
            n = int(rest)
            for _ in range(max(n, 0) * (2 if kind in b"%|" else 1)):
                out += self.reply()
        return out

    def call(self, *args):
        self.send([[a.encode() if isinstance(a, str) else a for a in args]])
        return self.reply()


UNORDERED = {b"KEYS", b"HGETALL", b"HKEYS", b"HVALS", b"SMEMBERS", b"SINTER", b"SUNION", b"SDIFF", b"SRANDMEMBER", b"SPOP", b"HRANDFIELD", b"ZRANDMEMBER"}
TIMES = {b"TTL", b"PTTL", b"EXPIRETIME", b"PEXPIRETIME"}


def norm(cmd, reply):
    """A reply as the random test compares it."""
    name = cmd[0].upper()
    if name in UNORDERED:
        return sorted(reply.split(b"\r\n"))
    if name in TIMES and reply.startswith(b":") and int(reply[1:]) > 0:
        return b":positive"
    return reply


def state(c):
    """Every key of the test's databases: type, contents, TTL or not."""
    out = {}
    for db in DBS:
        c.call("SELECT", db)
        for k in KEYS:
            t = c.call("TYPE", k).strip()
            if t == b"+none":
                continue
            read = {
                b"+string": ["GET", k],
                b"+list": ["LRANGE", k, "0", "-1"],
                b"+hash": ["HGETALL", k],
                b"+set": ["SMEMBERS", k],
                b"+zset": ["ZRANGE", k, "0", "-1", "WITHSCORES"],
            }[t]
            body = c.call(*read)
            if t in (b"+set", b"+hash"):
                # No defined order (a hash table); a hash's lines sorted as
                # field-value pairs.
                lines = body.split(b"\r\n")
                step = 4 if t == b"+hash" else 2
                body = b"\r\n".join(sorted(b"\r\n".join(lines[i : i + step]) for i in range(1, len(lines) - 1, step)))
            ttl = c.call("PTTL", k).strip() not in (b":-1", b":-2")
            out[(db, k)] = (t, body, ttl)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace")
    ap.add_argument("--resp", type=int, default=2)
    ap.add_argument("--replies-only", action="store_true", help="compare replies only, not the data after each pipeline (reading it changes nothing a client sees, but it is more traffic)")
    ap.add_argument("--pgkv-port", type=int, default=6379)
    ap.add_argument("--redis-port", type=int, default=6390)
    a = ap.parse_args()

    pipelines = []
    for line in open(a.trace):
        if not line.strip():
            continue
        args = [b"" if h == "-" else bytes.fromhex(h) for h in line[1:].split()]
        if line.startswith("|") or not pipelines:
            pipelines.append([])
        pipelines[-1].append(args)

    names = ("pgkv", "redis")
    clients = [Client(a.pgkv_port), Client(a.redis_port)]
    inspect = [Client(a.pgkv_port), Client(a.redis_port)]
    for c in clients:
        c.call("FLUSHALL")
        c.call("SELECT", DBS[0])
        if a.resp == 3:
            c.call("HELLO", "3")
    before = [{}, {}]
    for n, p in enumerate(pipelines):
        replies = []
        for c in clients:
            c.send(p)
        for _ in p:
            replies.append([c.reply() for c in clients])
        after = [{}, {}] if a.replies_only else [state(i) for i in inspect]
        differs = [i for i, (x, y) in enumerate(replies) if norm(p[i], x) != norm(p[i], y)]
        if after[0] != after[1] or differs:
            print(f"pipeline {n} (of {len(pipelines)}):")
            for i, cmd in enumerate(p):
                mark = "  <> " if i in differs else "     "
                print(mark + " ".join(repr(x)[2:-1] if len(x) <= 60 else f"<{len(x)} bytes>" for x in cmd))
                if i in differs:
                    for name, r in zip(names, replies[i]):
                        print(f"        {name}: {r!r}")
            for key in sorted(set(after[0]) | set(after[1])):
                if after[0].get(key) != after[1].get(key):
                    print(f"  db {key[0]} {key[1]}:")
                    for name, b, s in zip(names, before, after):
                        print(f"    {name} before: {b.get(key)}")
                        print(f"    {name} after:  {s.get(key)}")
            return 1
        before = after
    print(f"no difference in {len(pipelines)} pipelines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
