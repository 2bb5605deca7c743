//! List storage: `kv.lists(id, pos, value)` with contiguous positions. The
//! key row keeps the first position (`head`) and the length (`card`), so
//! pushes and pops at either end, LINDEX and LSET are index probes.

use super::sql::{read, write, Sql, BYTEA, BYTEA_ARRAY, INT8, INT8_ARRAY};
use super::{bytea, bytea_array, Entry, Store};
use crate::error::CmdError;
use bytes::{Bytes, BytesMut};
use pgrx::datum::DatumWithOid;

static RANGE: Sql = read("SELECT value FROM kv.lists WHERE id = $1 AND pos BETWEEN $2 AND $3 ORDER BY pos", &[INT8, INT8, INT8]);
static INSERT: Sql = write(
    "INSERT INTO kv.lists (id, pos, value) SELECT $1, p, v FROM unnest($2, $3) AS u(p, v)",
    &[INT8, INT8_ARRAY, BYTEA_ARRAY],
);
// The batch's queued pushes (`cache::PendingPush`), over any lists.
static INSERT_QUEUED: Sql = write(
    "INSERT INTO kv.lists (id, pos, value) SELECT * FROM unnest($1, $2, $3)",
    &[INT8_ARRAY, INT8_ARRAY, BYTEA_ARRAY],
);
static TAKE: Sql = write(
    "DELETE FROM kv.lists WHERE id = $1 AND pos BETWEEN $2 AND $3 RETURNING pos, value",
    &[INT8, INT8, INT8],
);
// Popped elements whose deletion was queued (`cache::take_popped`).
static DROP_RANGE: Sql = write("DELETE FROM kv.lists WHERE id = $1 AND pos BETWEEN $2 AND $3", &[INT8, INT8, INT8]);
/// A pop reads ahead at most this many elements for the batch's later pops.
const READ_AHEAD_MAX: i64 = 1024;
// Each end on its own, bounded in the primary key: an OR of both was a
// filter over the whole list (LTRIM of one element off a long list read
// all of it).
static DROP_BELOW: Sql = write("DELETE FROM kv.lists WHERE id = $1 AND pos < $2", &[INT8, INT8]);
static DROP_ABOVE: Sql = write("DELETE FROM kv.lists WHERE id = $1 AND pos > $2", &[INT8, INT8]);
static DROP_ALL: Sql = write("DELETE FROM kv.lists WHERE id = $1", &[INT8]);
static SET: Sql = write("UPDATE kv.lists SET value = $3 WHERE id = $1 AND pos = $2", &[INT8, INT8, BYTEA]);

impl<'a> Store<'a> {
    /// Sends the queued list pushes: through the executor's single-row
    /// insert (`direct::insert_list_elements`), or in one statement.
    pub(super) fn write_pushes(self) -> Result<(), CmdError> {
        let pushes = super::cache::take_pushes();
        if pushes.is_empty() || super::direct::insert_list_elements(&pushes)? {
            return Ok(());
        }
        let (mut ids, mut positions, mut values) = (Vec::with_capacity(pushes.len()), Vec::with_capacity(pushes.len()), Vec::with_capacity(pushes.len()));
        for p in pushes {
            ids.push(p.id);
            positions.push(p.pos);
            values.push(p.value);
        }
        let args = [DatumWithOid::from(ids), DatumWithOid::from(positions), DatumWithOid::from(values)];
        // Straight to SPI: `run` would come back here first.
        super::sql::run(self.spi, &INSERT_QUEUED, &args, |_| Ok(()))
    }

    /// Deletes the elements popped from the read-ahead, one statement per
    /// run of positions (usually one per list).
    pub(super) fn delete_popped(self) -> Result<(), CmdError> {
        for (id, from, to) in super::cache::take_popped() {
            // Straight to SPI: `run` would come back here first.
            super::sql::run(self.spi, &DROP_RANGE, &[id.into(), from.into(), to.into()], |_| Ok(()))?;
        }
        Ok(())
    }

    /// Elements at list indexes `from..=to` (already clamped to the list).
    /// Read straight from the primary key (`direct::list_range`) where
    /// that applies, into one buffer that the elements are slices of: no
    /// allocation per element.
    pub fn list_range(self, e: &Entry, from: i64, to: i64) -> Result<Vec<Bytes>, CmdError> {
        let (from, to) = (e.head + from, e.head + to);
        self.before_reading()?;
        let n = (to - from + 1).max(0) as usize;
        let (mut all, mut ends) = (BytesMut::new(), Vec::with_capacity(n.min(1 << 16)));
        let direct = super::direct::list_range(e.id, from, to, |v| {
            if ends.is_empty() {
                // Room for elements the size of the first (up to 16 MB),
                // rather than growing the buffer as it fills.
                all.reserve(v.len().max(1).saturating_mul(n).min(16 << 20));
            }
            all.extend_from_slice(v);
            ends.push(all.len());
        })?;
        if !direct {
            return Ok(self.bytes_column(&RANGE, &[e.id.into(), from.into(), to.into()])?.into_iter().map(Bytes::from).collect());
        }
        let all = all.freeze();
        let mut start = 0;
        Ok(ends
            .into_iter()
            .map(|end| {
                let v = all.slice(start..end);
                start = end;
                v
            })
            .collect())
    }

    /// Pushes `values` one after another at the left or right end; returns
    /// the new length.
    pub fn list_push(self, e: &Entry, values: &[Bytes], left: bool) -> Result<i64, CmdError> {
        let n = values.len() as i64;
        let positions: Vec<i64> = if left { (1..=n).map(|i| e.head - i).collect() } else { (0..n).map(|i| e.head + e.card + i).collect() };
        if super::keys::may_queue() && values.iter().all(|v| v.len() <= super::keys::QUEUE_MAX_VALUE) {
            // The reply is the new length, known from the locked key row:
            // the elements go out with the batch's other pushes.
            for (pos, v) in positions.into_iter().zip(values) {
                super::cache::push_list_element(super::cache::PendingPush { id: e.id, pos, value: v.to_vec() });
            }
        } else {
            self.exec(&INSERT, &[e.id.into(), DatumWithOid::from(positions), bytea_array(values)])?;
        }
        let head = if left { e.head - n } else { e.head };
        self.set_card(e, e.card + n, head)?;
        Ok(e.card + n)
    }

    /// Removes up to `count` elements from one end, returned in pop order.
    ///
    /// When more pops of this list follow in the batch (LPOP/RPOP from many
    /// clients), the first one reads their elements ahead in one statement;
    /// each pop then takes its own from there and queues their deletion,
    /// which goes out with the batch's other queued writes, one statement
    /// for the lot.
    pub fn list_pop(self, e: &Entry, count: i64, left: bool) -> Result<Vec<Bytes>, CmdError> {
        let count = count.min(e.card);
        if count <= 0 {
            return Ok(Vec::new());
        }
        let positions: Vec<i64> = if left { (0..count).map(|i| e.head + i).collect() } else { (1..=count).map(|i| e.head + e.card - i).collect() };
        let wanted = super::cache::pops_wanted(e.db, &e.key, left, count).min(e.card).min(READ_AHEAD_MAX.max(count));
        let mut popped = super::cache::pop_read_ahead(e.id, &positions);
        if popped.is_none() && wanted > count && super::keys::may_queue() {
            let (from, to) = if left { (0, wanted - 1) } else { (e.card - wanted, e.card - 1) };
            let values = self.list_range(e, from, to)?;
            if values.len() as i64 == wanted {
                super::cache::read_ahead(e.id, e.head + from, values);
                popped = super::cache::pop_read_ahead(e.id, &positions);
            }
        }
        if let Some(values) = popped {
            let head = if left { e.head + count } else { e.head };
            self.set_card(e, e.card - count, head)?;
            return Ok(values);
        }
        let (from, to) = if left { (e.head, e.head + count - 1) } else { (e.head + e.card - count, e.head + e.card - 1) };
        let mut taken = self.run(&TAKE, &[e.id.into(), from.into(), to.into()], |rows| {
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push((row.get::<i64>(1)?.unwrap_or_default(), Bytes::from(row.get::<Vec<u8>>(2)?.unwrap_or_default())));
            }
            Ok(out)
        })?;
        taken.sort_by_key(|(p, _)| *p);
        if !left {
            taken.reverse();
        }
        let head = if left { e.head + count } else { e.head };
        self.set_card(e, e.card - count, head)?;
        Ok(taken.into_iter().map(|(_, v)| v).collect())
    }

    /// Replaces the element at list index `index` (already in range).
    pub fn list_set(self, e: &Entry, index: i64, value: &[u8]) -> Result<(), CmdError> {
        self.exec(&SET, &[e.id.into(), (e.head + index).into(), bytea(value)])?;
        Ok(())
    }

    /// Keeps list indexes `from..=to` only (an empty range empties the list).
    pub fn list_trim(self, e: &Entry, from: i64, to: i64) -> Result<(), CmdError> {
        if from > to {
            self.exec(&DROP_ALL, &[e.id.into()])?;
            return self.set_card(e, 0, e.head);
        }
        if from > 0 {
            self.exec(&DROP_BELOW, &[e.id.into(), (e.head + from).into()])?;
        }
        if to < e.card - 1 {
            self.exec(&DROP_ABOVE, &[e.id.into(), (e.head + to).into()])?;
        }
        self.set_card(e, to - from + 1, e.head + from)
    }

    /// Replaces the whole list (LINSERT, LREM): O(n), as those are in Redis.
    pub fn list_rewrite(self, e: &Entry, values: &[Bytes]) -> Result<(), CmdError> {
        self.exec(&DROP_ALL, &[e.id.into()])?;
        let positions: Vec<i64> = (0..values.len() as i64).map(|i| e.head + i).collect();
        self.exec(&INSERT, &[e.id.into(), DatumWithOid::from(positions), bytea_array(values)])?;
        self.set_card(e, values.len() as i64, e.head)
    }
}
