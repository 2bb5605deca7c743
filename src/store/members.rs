//! Queued member writes: a batch's HSET, SADD and ZADD commands on one
//! collection read its members once and write them together, not a
//! statement or two each.
//!
//! Their replies depend on which members exist (and, for ZADD, on their
//! scores), so the first of them to run reads every member the batch's
//! commands name (`cache::hint_members`), one primary-key probe each
//! (`direct::read_members`, or one statement); each command then answers
//! from that, and queues its write. The writes go out with the batch's
//! other queued writes before the next statement of any kind or at the end
//! of the batch: a member the read found absent is inserted and one it
//! found at a ctid updated there (`direct::write_members`), the rest
//! upserted, one statement per table.
//!
//! Why this is safe: every command that changes a collection's members
//! first locks its key row, so no other transaction can change them while
//! this one runs; and what is known is forgotten whenever a statement
//! runs (`cache::drop_read_ahead`), after the queued writes went out.

use super::cache::{self, Known, MemberValue, PendingMember};
use super::sql::{read, write, Sql, BYTEA_ARRAY, FLOAT8_ARRAY, INT8, INT8_ARRAY};
use super::{bytea_array, direct, Entry, KeyType, Store};
use crate::error::CmdError;
use bytes::Bytes;
use pgrx::datum::DatumWithOid;
use foldhash::{HashMap, HashMapExt};

/// Members and fields up to this size are queued; the primary keys'
/// B-trees take entries of at most 2704 bytes, and a longer one must fail
/// its own command, not the batch's write-out.
const QUEUE_MAX_MEMBER: usize = 1024;

// One primary-key probe per member, the LIMIT keeping each a subquery (a
// join could be planned as a scan of the whole collection).
static HASH_AHEAD: Sql = read(
    "SELECT u.m FROM unnest($2) AS u(m) CROSS JOIN LATERAL (SELECT 1 FROM kv.hashes WHERE id = $1 AND field = u.m LIMIT 1) AS h",
    &[INT8, BYTEA_ARRAY],
);
static SET_AHEAD: Sql = read(
    "SELECT u.m FROM unnest($2) AS u(m) CROSS JOIN LATERAL (SELECT 1 FROM kv.sets WHERE id = $1 AND member = u.m LIMIT 1) AS s",
    &[INT8, BYTEA_ARRAY],
);
static ZSET_AHEAD: Sql = read(
    "SELECT u.m, z.score FROM unnest($2, $3) AS u(m, h) \
     CROSS JOIN LATERAL (SELECT score FROM kv.zsets WHERE id = $1 AND hash = u.h AND member = u.m LIMIT 1) AS z",
    &[INT8, BYTEA_ARRAY, INT8_ARRAY],
);
static HASH_QUEUED: Sql = write(
    "INSERT INTO kv.hashes (id, field, value, seq) SELECT * FROM unnest($1, $2, $3, $4) \
     ON CONFLICT (id, field) DO UPDATE SET value = EXCLUDED.value",
    &[INT8_ARRAY, BYTEA_ARRAY, BYTEA_ARRAY, INT8_ARRAY],
);
// Only members known to be new are queued: a plain insert.
static SET_QUEUED: Sql = write("INSERT INTO kv.sets (id, member, seq) SELECT * FROM unnest($1, $2, $3)", &[INT8_ARRAY, BYTEA_ARRAY, INT8_ARRAY]);
static ZSET_QUEUED: Sql = write(
    "INSERT INTO kv.zsets (id, member, score, hash) SELECT * FROM unnest($1, $2, $3, $4) \
     ON CONFLICT (id, hash, member) DO UPDATE SET score = EXCLUDED.score",
    &[INT8_ARRAY, BYTEA_ARRAY, FLOAT8_ARRAY, INT8_ARRAY],
);

impl<'a> Store<'a> {
    /// What is known of `members` of the collection `e`, read ahead with
    /// the batch's other members of it if need be; `None` when the write
    /// may not be queued (see `keys::may_queue`, `QUEUE_MAX_MEMBER`): the
    /// caller writes at once.
    pub(super) fn known_members(self, e: &Entry, members: &[Bytes]) -> Result<Option<Vec<Known>>, CmdError> {
        if !super::keys::may_queue() || members.iter().any(|m| m.len() > QUEUE_MAX_MEMBER) {
            return Ok(None);
        }
        if let Some(known) = cache::known_members(e.id, members) {
            return Ok(Some(known));
        }
        let mut wanted = cache::take_member_hints(e.db, &e.key);
        wanted.extend(members.iter().cloned());
        wanted.retain(|m| m.len() <= QUEUE_MAX_MEMBER);
        wanted.sort_unstable();
        wanted.dedup();
        if e.card == 0 {
            // A collection created by this batch: nothing to read.
            cache::learn_member_rows(e.id, wanted.iter().map(|m| (m.clone(), None)));
            cache::learn_members(e.id, wanted.into_iter().map(|m| (m, Known::Absent)));
        } else {
            let found = self.read_members(e, &wanted)?;
            cache::learn_members(e.id, wanted.into_iter().map(|m| {
                let state = found.get(&m).copied().unwrap_or(Known::Absent);
                (m, state)
            }));
        }
        Ok(cache::known_members(e.id, members))
    }

    /// Which of `members` the collection `e` holds, with a sorted set's
    /// scores: a primary-key probe each, as the read-ahead makes them, for
    /// a command that only reads (SMISMEMBER, and the probes of SINTER,
    /// ZINTER and their kind); nothing is noted for the batch's writes.
    pub fn members_held(self, e: &Entry, members: &[Bytes]) -> Result<HashMap<Bytes, Known>, CmdError> {
        self.found_members(e, members, false)
    }

    /// `found_members` for the read-ahead, noting where each member is.
    fn read_members(self, e: &Entry, wanted: &[Bytes]) -> Result<HashMap<Bytes, Known>, CmdError> {
        self.found_members(e, wanted, true)
    }

    /// The members of `wanted` that exist: through the primary key directly
    /// (`direct::read_members`), or in one statement where that does not
    /// apply. With `for_writes`, the direct probes' row places are noted
    /// for the queued writes' write-out.
    fn found_members(self, e: &Entry, wanted: &[Bytes], for_writes: bool) -> Result<HashMap<Bytes, Known>, CmdError> {
        let table = match e.ktype {
            KeyType::Hash => direct::MemberTable::Hashes,
            KeyType::Set => direct::MemberTable::Sets,
            KeyType::ZSet => direct::MemberTable::ZSets,
            KeyType::String | KeyType::List => return Ok(HashMap::new()),
        };
        self.before_reading()?;
        if let Some(found) = direct::read_members(table, e.id, wanted)? {
            if !for_writes {
                return Ok(found.into_iter().map(|f| (f.member, f.score.map_or(Known::Present, Known::Score))).collect());
            }
            // Where each member is, for the write-out: absent, or at the
            // ctid the heap gave (not known when the index alone answered).
            let mut rows: HashMap<Bytes, Option<cache::Tid>> = wanted.iter().map(|m| (m.clone(), None)).collect();
            for f in &found {
                match f.tid {
                    Some(tid) => rows.insert(f.member.clone(), Some(tid)),
                    None => rows.remove(&f.member),
                };
            }
            cache::learn_member_rows(e.id, rows.into_iter());
            return Ok(found.into_iter().map(|f| (f.member, f.score.map_or(Known::Present, Known::Score))).collect());
        }
        let args = [e.id.into(), bytea_array(wanted)];
        let found: Vec<(Vec<u8>, Known)> = match e.ktype {
            KeyType::ZSet => {
                let [id, members] = args;
                let pairs = self.run(&ZSET_AHEAD, &[id, members, super::zsets::member_hashes(wanted)], |_| super::sql::bytea_float8_pairs())?;
                pairs.into_iter().map(|(m, score)| (m, Known::Score(score))).collect()
            }
            KeyType::Hash | KeyType::Set => {
                let sql = if e.ktype == KeyType::Hash { &HASH_AHEAD } else { &SET_AHEAD };
                self.bytes_column(sql, &args)?.into_iter().map(|m| (m, Known::Present)).collect()
            }
            KeyType::String | KeyType::List => Vec::new(),
        };
        Ok(found.into_iter().map(|(m, k)| (Bytes::from(m), k)).collect())
    }

    /// Sends the queued member writes: directly where the read-ahead placed
    /// the member, the rest in one upsert statement per table.
    pub(super) fn write_members(self) -> Result<(), CmdError> {
        let writes = cache::take_member_writes();
        if writes.is_empty() {
            return Ok(());
        }
        let writes = self.write_members_directly(dedup(writes))?;
        cache::forget_member_rows();
        let (mut fields, mut sets, mut scores) = (Columns::default(), Columns::default(), Columns::default());
        for w in writes {
            match w.value {
                MemberValue::Field(v) => fields.push(w.id, w.member, w.seq, v, 0.0),
                MemberValue::Set => sets.push(w.id, w.member, w.seq, Bytes::new(), 0.0),
                MemberValue::Score(s) => scores.push(w.id, w.member, w.seq, Bytes::new(), s),
            }
        }
        // Straight to SPI: `run` would come back here first.
        if !fields.ids.is_empty() {
            let c = fields;
            let args = [DatumWithOid::from(c.ids), bytea_array(&c.members), bytea_array(&c.values), DatumWithOid::from(c.seqs)];
            super::sql::run(self.spi, &HASH_QUEUED, &args, |_| Ok(()))?;
        }
        if !sets.ids.is_empty() {
            let c = sets;
            let args = [DatumWithOid::from(c.ids), bytea_array(&c.members), DatumWithOid::from(c.seqs)];
            super::sql::run(self.spi, &SET_QUEUED, &args, |_| Ok(()))?;
        }
        if !scores.ids.is_empty() {
            let c = scores;
            let args = [DatumWithOid::from(c.ids), bytea_array(&c.members), DatumWithOid::from(c.scores), DatumWithOid::from(c.seqs)];
            super::sql::run(self.spi, &ZSET_QUEUED, &args, |_| Ok(()))?;
        }
        Ok(())
    }

    /// Writes the queued member writes whose member the read-ahead placed
    /// (absent, or at a ctid) through `direct::write_members`, a table at a
    /// time; returns the rest (never read, read from the index alone, no
    /// longer at that ctid, or where that does not apply), for the upsert
    /// statements.
    fn write_members_directly(self, writes: Vec<PendingMember>) -> Result<Vec<PendingMember>, CmdError> {
        let tables = [direct::MemberTable::Hashes, direct::MemberTable::Sets, direct::MemberTable::ZSets];
        let mut placed: [Vec<(usize, Option<cache::Tid>)>; 3] = Default::default();
        for (i, w) in writes.iter().enumerate() {
            if let Some(row) = cache::member_row(w.id, &w.member) {
                placed[direct::MemberTable::of(&w.value) as usize].push((i, row));
            }
        }
        let mut done = vec![false; writes.len()];
        for (table, list) in tables.into_iter().zip(&placed) {
            if list.is_empty() {
                continue;
            }
            let args: Vec<(&PendingMember, Option<cache::Tid>)> = list.iter().map(|&(i, row)| (&writes[i], row)).collect();
            if let Some(written) = direct::write_members(table, &args)? {
                for (&(i, _), w) in list.iter().zip(written) {
                    done[i] = w;
                }
            }
        }
        Ok(writes.into_iter().zip(done).filter(|(_, d)| !d).map(|(w, _)| w).collect())
    }
}

/// One write per member, in (id, member) order: one statement may not
/// change a row twice. A member written again takes the later value and
/// keeps the earlier insertion number (the one it got when new).
fn dedup(mut writes: Vec<PendingMember>) -> Vec<PendingMember> {
    // Stable: among writes of one member the later stays later.
    writes.sort_by(|a, b| (a.id, &a.member).cmp(&(b.id, &b.member)));
    let mut out: Vec<PendingMember> = Vec::with_capacity(writes.len());
    for w in writes {
        match out.last_mut() {
            Some(last) if last.id == w.id && last.member == w.member => last.value = w.value,
            _ => out.push(w),
        }
    }
    out
}

/// Queued member writes of one table, as the statement's arrays.
#[derive(Default)]
struct Columns {
    ids: Vec<i64>,
    members: Vec<Bytes>,
    seqs: Vec<i64>,
    values: Vec<Bytes>,
    scores: Vec<f64>,
}

impl Columns {
    fn push(&mut self, id: i64, member: Bytes, seq: i64, value: Bytes, score: f64) {
        self.ids.push(id);
        self.members.push(member);
        self.seqs.push(seq);
        self.values.push(value);
        self.scores.push(score);
    }
}

/// Queues a member write (see the module comment), noting the member's new
/// state.
pub(super) fn queue(id: i64, member: Bytes, seq: i64, value: MemberValue) {
    let now = match value {
        MemberValue::Score(s) => Known::Score(s),
        MemberValue::Field(_) | MemberValue::Set => Known::Present,
    };
    cache::queue_member(PendingMember { id, member, seq, value }, now);
}
