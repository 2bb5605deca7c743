//! One RESP client: its socket, buffers, request parser and session. Pure
//! I/O: nothing here touches Postgres.

use crate::session::{Origin, Session};
use bytes::{Buf, Bytes, BytesMut};
use mio::net::TcpStream;
use pgkv_resp::{Frame, Limits, Protocol, RequestParser};
use std::collections::VecDeque;
use std::io::{self, Read, Write};

/// Most bytes read from one client per loop iteration, so one fast writer
/// cannot starve the others. Reading resumes next iteration without waiting
/// for a new readiness edge.
const READ_BUDGET: usize = 1 << 20;

/// Most commands taken from one client per batch.
pub const COMMANDS_PER_BATCH: usize = 1024;


/// A client whose unsent replies exceed this is not read from until it
/// catches up, so its pipeline cannot grow the worker's memory without bound.
const OUTPUT_HIGH_WATER: usize = 64 << 20;

pub struct Conn {
    stream: TcpStream,
    inbuf: BytesMut,
    pub outbuf: BytesMut,
    parser: RequestParser,
    pub session: Session,
    /// More bytes may be waiting in the socket (read budget hit).
    pub readable: bool,
    /// Read until the socket says it would block, rather than stopping at
    /// a short read: the readiness did not come from an event whose mask
    /// was seen (a new client, one whose events a busy batch skipped), or
    /// that event said the peer closed its side, which only a read of 0
    /// bytes confirms.
    read_to_block: bool,
    /// The peer closed its side: answer what it sent, then drop.
    pub eof: bool,
    /// The socket failed: drop now.
    pub broken: bool,
    /// The last parse found no complete command in the buffer.
    pub drained: bool,
    /// Close once `outbuf` is flushed (QUIT, protocol error).
    pub closing: bool,
    /// A protocol error to answer after the commands parsed before it.
    pub protocol_error: Option<Vec<u8>>,
    pub net_in: u64,
    pub net_out: u64,
    /// When the client last sent something (for pgkv.timeout).
    pub last_activity: std::time::Instant,
    /// Parked by a blocking command: no further command runs until it is
    /// served, times out or is unblocked.
    pub parked: bool,
    /// Commands parsed for a batch in which an earlier command of this
    /// client parked it, handed back unrun (`hand_back`): they come before
    /// anything still in `inbuf`.
    pending: VecDeque<Vec<Bytes>>,
    /// Since when a subscriber's unsent output has been over the soft limit.
    soft_limit_since: Option<std::time::Instant>,
    pub created: std::time::Instant,
    /// The last command's name, for CLIENT LIST.
    pub last_cmd: &'static str,
    /// Output past this position of the stream (`queued_total`) waits for
    /// a WAL flush (see `durable`); None: everything may be sent.
    limit: Option<u64>,
    /// Held batches with output for this client, and the last one's number.
    holds: u32,
    hold_seq: u64,
}

/// Redis's `client-output-buffer-limit` for one class of client, in bytes:
/// (hard, soft, soft seconds); 0 disables a limit.
fn output_limits(pubsub: bool) -> (usize, usize, u64) {
    use crate::gucs::*;
    let kb = |v: i32| v.max(0) as usize * 1024;
    if pubsub {
        (kb(PUBSUB_OUTPUT_LIMIT_KB.get()), kb(PUBSUB_OUTPUT_SOFT_LIMIT_KB.get()), PUBSUB_OUTPUT_SOFT_SECONDS.get().max(0) as u64)
    } else {
        (kb(OUTPUT_LIMIT_KB.get()), 0, 0)
    }
}

impl Conn {
    pub fn new(stream: TcpStream, id: u64, authenticated: bool) -> Conn {
        let _ = stream.set_nodelay(true);
        Conn {
            stream,
            inbuf: BytesMut::with_capacity(16 * 1024),
            outbuf: BytesMut::new(),
            parser: RequestParser::new(),
            session: Session::new(id, Origin::Resp, authenticated),
            readable: true,
            read_to_block: true,
            eof: false,
            broken: false,
            drained: false,
            closing: false,
            protocol_error: None,
            net_in: 0,
            net_out: 0,
            last_activity: std::time::Instant::now(),
            parked: false,
            pending: VecDeque::new(),
            soft_limit_since: None,
            created: std::time::Instant::now(),
            last_cmd: "NULL",
            limit: None,
            holds: 0,
            hold_seq: 0,
        }
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// This connection as CLIENT LIST shows it.
    pub fn info(&self) -> crate::cmd::clients::ClientInfo {
        use std::os::fd::AsRawFd;
        let s = &self.session;
        let mut flags = String::new();
        if self.parked {
            flags.push('b');
        }
        if s.subs.any() {
            flags.push('P');
        }
        if s.multi.is_some() {
            flags.push('x');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        crate::cmd::clients::ClientInfo {
            id: s.id,
            addr: self.stream.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
            laddr: self.stream.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            fd: self.stream.as_raw_fd(),
            name: s.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default(),
            age: self.created.elapsed().as_secs(),
            idle: self.last_activity.elapsed().as_secs(),
            flags,
            db: s.db,
            sub: s.subs.channels.len(),
            psub: s.subs.patterns.len(),
            ssub: s.subs.shard.len(),
            multi: s.multi.as_ref().map_or(-1, |m| m.queued.len() as i64),
            qbuf: self.inbuf.len(),
            obl: self.outbuf.len(),
            cmd: self.last_cmd.to_string(),
            resp: s.proto.version(),
            pubsub: s.subs.any(),
        }
    }

    /// Notes a readiness event: readable, and, if the peer closed its
    /// side, to be read until a read of 0 bytes says so.
    pub fn on_event(&mut self, ev: &mio::event::Event) {
        if ev.is_readable() || ev.is_read_closed() {
            self.readable = true;
            self.read_to_block |= ev.is_read_closed();
        }
        if ev.is_writable() {
            self.flush();
        }
    }

    /// Readable without an event seen (its events were skipped): read
    /// until the socket would block.
    pub fn read_again(&mut self) {
        self.readable = true;
        self.read_to_block = true;
    }

    /// Reads what the socket has, up to the budget.
    pub fn fill(&mut self) {
        if !self.readable || self.eof || self.closing {
            return;
        }
        let mut chunk = [0u8; 16 * 1024];
        let mut taken = 0;
        loop {
            if taken >= READ_BUDGET {
                return; // still readable
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    self.readable = false;
                    self.read_to_block = false;
                    return;
                }
                Ok(n) => {
                    self.inbuf.extend_from_slice(&chunk[..n]);
                    taken += n;
                    self.net_in += n as u64;
                    self.last_activity = std::time::Instant::now();
                    if self.inbuf.len() > crate::gucs::QUERY_BUFFER_LIMIT_KB.get().max(1024) as usize * 1024 {
                        pgrx::log!("pgkv: closing client {} that reached the query buffer limit", self.session.id);
                        self.broken = true;
                        self.inbuf = BytesMut::new();
                        return;
                    }
                    // A short read emptied the socket. With edge-triggered
                    // readiness, anything that arrives from now on raises
                    // a new event: no need for the read that would answer
                    // "would block" (one wasted syscall per command under
                    // -c 50).
                    if n < chunk.len() && !self.read_to_block {
                        self.readable = false;
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    self.read_to_block = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.broken = true;
                    self.readable = false;
                    return;
                }
            }
        }
    }

    /// Whether this client can contribute commands to the next batch.
    pub fn accepts_commands(&self) -> bool {
        !self.closing && !self.parked && (self.protocol_error.is_none() || !self.pending.is_empty()) && self.outbuf.len() < OUTPUT_HIGH_WATER
    }

    /// Applies the output buffer limits (pgkv.output_limit for normal
    /// clients, pgkv.pubsub_output_* for subscribers, as Redis's
    /// client-output-buffer-limit) after output was queued. Returns false
    /// when the client was dropped.
    pub fn check_output_limit(&mut self) -> bool {
        if self.broken {
            return false;
        }
        let (hard, soft, soft_seconds) = output_limits(self.session.subs.any());
        let len = self.outbuf.len();
        let over_soft = soft > 0 && len > soft;
        let since = match (over_soft, self.soft_limit_since) {
            (false, _) => {
                self.soft_limit_since = None;
                None
            }
            (true, None) => {
                self.soft_limit_since = Some(std::time::Instant::now());
                self.soft_limit_since
            }
            (true, Some(t)) => Some(t),
        };
        let soft_expired = since.is_some_and(|t| t.elapsed().as_secs() >= soft_seconds);
        if (hard > 0 && len > hard) || soft_expired {
            pgrx::log!("pgkv: closing client {} for overcoming of output buffer limits ({} bytes unsent)", self.session.id, len);
            crate::stats::with(|r| r.client_output_limit_disconnections += 1);
            self.broken = true;
            self.outbuf = BytesMut::new();
            return false;
        }
        true
    }

    /// Parses the next complete command, if any. A protocol error is kept and
    /// answered after the commands before it.
    pub fn next_command(&mut self, auth_required: bool) -> Option<Vec<Bytes>> {
        if let Some(argv) = self.pending.pop_front() {
            return Some(argv);
        }
        let limits = Limits {
            auth_required: auth_required && !self.session.authenticated,
            max_bulk_len: crate::gucs::PROTO_MAX_BULK_LEN.get() as i64,
        };
        match self.parser.next(&mut self.inbuf, limits) {
            Ok(Some(cmd)) => Some(cmd),
            Ok(None) => {
                self.drained = true;
                None
            }
            Err(e) => {
                self.protocol_error = Some(e.reply_text());
                self.inbuf.clear();
                self.drained = true;
                None
            }
        }
    }

    /// True when complete commands may still be buffered.
    pub fn has_buffered_input(&self) -> bool {
        (!self.inbuf.is_empty() || !self.pending.is_empty()) && self.accepts_commands()
    }

    /// Gives back commands a batch took but did not run, because an
    /// earlier command of this client in it parked the client (Redis reads
    /// nothing more from a blocked client): they run, in order, once it is
    /// served, times out or is unblocked.
    pub fn hand_back(&mut self, commands: Vec<Vec<Bytes>>) {
        for argv in commands.into_iter().rev() {
            self.pending.push_front(argv);
        }
        self.drained = false;
    }

    /// A protocol error found after commands that were handed back waits
    /// for them (and, as they wait, for the client to be served).
    pub fn protocol_error_due(&self) -> bool {
        self.protocol_error.is_some() && !self.parked && self.pending.is_empty()
    }

    pub fn push_reply(&mut self, frame: &Frame, proto: Protocol) {
        pgkv_resp::encode(frame, proto, &mut self.outbuf);
    }

    /// Bytes ever queued for this client: sent ones and `outbuf`.
    pub fn queued_total(&self) -> u64 {
        self.net_out + self.outbuf.len() as u64
    }

    /// Output of held batch `seq` follows: what is queued so far may still
    /// be sent, the rest waits for `release`. False when this batch already
    /// holds this client.
    pub fn hold(&mut self, seq: u64) -> bool {
        if self.hold_seq == seq {
            return false;
        }
        self.hold_seq = seq;
        if self.holds == 0 {
            self.limit = Some(self.queued_total());
        }
        self.holds += 1;
        true
    }

    /// The oldest held batch for this client is durable; its output ended
    /// at `end`.
    pub fn release(&mut self, end: u64) {
        self.holds -= 1;
        self.limit = if self.holds == 0 { None } else { Some(end) };
    }

    /// Writes as much as the socket takes, up to the hold limit.
    pub fn flush(&mut self) {
        loop {
            let sendable = match self.limit {
                None => self.outbuf.len(),
                Some(l) => (l.saturating_sub(self.net_out) as usize).min(self.outbuf.len()),
            };
            if sendable == 0 {
                break;
            }
            match self.stream.write(&self.outbuf[..sendable]) {
                Ok(0) => {
                    self.broken = true;
                    return;
                }
                Ok(n) => {
                    self.outbuf.advance(n);
                    self.net_out += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.broken = true;
                    self.outbuf.clear();
                    return;
                }
            }
        }
        if self.outbuf.is_empty() && self.outbuf.capacity() > 1 << 20 {
            // Give back the memory a burst of large replies left behind.
            self.outbuf = BytesMut::new();
        }
    }

    /// Done with this client: nothing more to send, or it is gone.
    pub fn finished(&self) -> bool {
        self.broken || (self.outbuf.is_empty() && (self.closing || (self.eof && self.drained)))
    }
}
