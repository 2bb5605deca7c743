//! Clients parked by a blocking command, in Redis's order: per key, first
//! blocked is first served.
//!
//! A parked client keeps its command. A command of this worker that
//! writes a key someone waits on serves them right after it, in its batch
//! (`xact::serve_ready`, through `waiting_on`). When another process's
//! commit may have given a key data (it sets bits in this worker's shared
//! bloom filter), the worker runs the parked commands of that key again,
//! oldest first, in one batch. A command that still finds nothing stays
//! parked where it was.

use crate::session::BlockRequest;
use crate::shared;
use bytes::Bytes;
use foldhash::HashMap;
use std::collections::VecDeque;

pub struct Parked {
    pub argv: Vec<Bytes>,
    pub request: BlockRequest,
    pub db: i16,
    /// Order of parking, for fairness across keys.
    pub seq: u64,
}

#[derive(Default)]
pub struct Blocked {
    /// By connection key.
    parked: HashMap<usize, Parked>,
    /// Connection keys waiting on each (db, key), oldest first.
    queues: HashMap<(i16, Bytes), VecDeque<usize>>,
    /// The keys of `queues` by their hash (`shared::key_hash`), which is
    /// what a transaction's touches record.
    hashed: HashMap<u64, Vec<(i16, Bytes)>>,
    /// Newly parked clients, to be run once more in a fresh snapshot (see
    /// `crate::shared` for why no wake-up is lost).
    recheck: Vec<usize>,
    next_seq: u64,
    /// The generation of the shared bloom filter last read.
    pub seen_generation: u64,
}

impl Blocked {
    pub fn len(&self) -> usize {
        self.parked.len()
    }

    pub fn is_parked(&self, conn: usize) -> bool {
        self.parked.contains_key(&conn)
    }

    pub fn get(&self, conn: usize) -> Option<&Parked> {
        self.parked.get(&conn)
    }

    /// Parks `conn`, or keeps it where it is when it already waits.
    pub fn park(&mut self, conn: usize, db: i16, argv: Vec<Bytes>, request: BlockRequest) {
        if self.parked.contains_key(&conn) {
            return;
        }
        for key in &request.keys {
            let q = self.queues.entry((db, key.clone())).or_insert_with(|| {
                self.hashed.entry(shared::key_hash(db, key)).or_default().push((db, key.clone()));
                VecDeque::new()
            });
            if !q.contains(&conn) {
                q.push_back(conn);
            }
        }
        self.next_seq += 1;
        self.parked.insert(conn, Parked { argv, request, db, seq: self.next_seq });
        self.recheck.push(conn);
    }

    pub fn unpark(&mut self, conn: usize) -> Option<Parked> {
        let p = self.parked.remove(&conn)?;
        for key in &p.request.keys {
            if let Some(q) = self.queues.get_mut(&(p.db, key.clone())) {
                q.retain(|c| *c != conn);
                if q.is_empty() {
                    self.queues.remove(&(p.db, key.clone()));
                    let h = shared::key_hash(p.db, key);
                    if let Some(keys) = self.hashed.get_mut(&h) {
                        keys.retain(|k| !(k.0 == p.db && k.1 == *key));
                        if keys.is_empty() {
                            self.hashed.remove(&h);
                        }
                    }
                }
            }
        }
        self.recheck.retain(|c| *c != conn);
        Some(p)
    }

    /// The clients to run again, in serving order: those waiting on a key
    /// whose hash is ready, key by key in each key's FIFO order, plus the
    /// newly parked ones.
    pub fn due(&mut self, ready: &dyn Fn(u64) -> bool) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        // Keys ordered by their oldest waiter, so service follows blocking order.
        let mut keys: Vec<(&(i16, Bytes), &VecDeque<usize>)> = self
            .queues
            .iter()
            .filter(|((db, key), _)| ready(shared::key_hash(*db, key)))
            .collect();
        keys.sort_by_key(|(_, q)| q.front().and_then(|c| self.parked.get(c)).map_or(u64::MAX, |p| p.seq));
        for (_, q) in keys {
            for c in q {
                if !out.contains(c) {
                    out.push(*c);
                }
            }
        }
        for c in self.recheck.drain(..) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    /// The clients waiting on the key whose hash is `hash`, oldest first,
    /// each with that key.
    pub fn waiting_on(&self, hash: u64) -> Vec<(usize, Bytes)> {
        let Some(keys) = self.hashed.get(&hash) else { return Vec::new() };
        keys.iter().flat_map(|k| self.queues.get(k).into_iter().flatten().map(|c| (*c, k.1.clone()))).collect()
    }

    /// Clients whose deadline has passed.
    pub fn expired(&self, now_ms: i64) -> Vec<usize> {
        let mut out: Vec<(u64, usize)> = self
            .parked
            .iter()
            .filter(|(_, p)| p.request.deadline_ms > 0 && p.request.deadline_ms <= now_ms)
            .map(|(c, p)| (p.seq, *c))
            .collect();
        out.sort_unstable();
        out.into_iter().map(|(_, c)| c).collect()
    }

    /// The earliest deadline, unix ms.
    pub fn next_deadline(&self) -> Option<i64> {
        self.parked.values().map(|p| p.request.deadline_ms).filter(|d| *d > 0).min()
    }

    pub fn has_recheck(&self) -> bool {
        !self.recheck.is_empty()
    }
}
