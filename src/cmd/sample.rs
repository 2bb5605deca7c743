//! Random members of a large collection (HRANDFIELD, SRANDMEMBER, SPOP,
//! ZRANDMEMBER) found through an index, instead of reading the collection
//! whole: Redis picks them in O(1) each, and a whole read of a set of a
//! million members is a second's work.
//!
//! Every member of a hash or set has a sequence number, and every member of
//! a sorted set a 62-bit hash, in an index that leads with the collection's
//! id; both are numbered keys with gaps (removed members, the spread of a
//! hash). The sampler cuts the key range into buckets, picks a bucket at
//! random, reads its members (one short index scan), and keeps the pick
//! only with probability (members in the bucket) / `cap`, then takes one of
//! them at random. A member is then picked with probability
//! 1 / (buckets × cap) whatever the gaps: uniform, as Redis's own
//! sampling only approximates. A bucket holding more than `cap` members
//! would break that, so the sampler gives up and the command reads the
//! collection whole, as it does for small collections, for counts near the
//! size, and where the keys are too sparse for probes to find members.

use crate::error::CmdError;
use std::ops::Range;

/// Collections of at most this many members are read whole: one short
/// index scan, and the order Redis gives small (listpack, intset)
/// collections stays exact.
const READ_WHOLE: i64 = 512;

/// How keys are spread over the key range, which sets the bucket width and
/// `cap`.
#[derive(Clone, Copy)]
pub enum Keys {
    /// Sequence numbers below `head` (the key row's next one): buckets of
    /// one number, so a probe either finds its member or misses.
    Seq { head: i64 },
    /// Hashes spread evenly over [0, 2^62): buckets that hold four
    /// members on average, at most `HASH_CAP`.
    Hash,
}

/// A bucket of hashes holds 4 members on average (Poisson): more than 16
/// in one bucket has odds of about 1 in 900,000.
const HASH_CAP: usize = 16;
const HASH_SPACE: i64 = 1 << 62;

/// `k` random members (`distinct`: `k` different ones, in key order;
/// otherwise each drawn independently, in draw order) of a collection of
/// `card` members, read with `scan(keys, limit)`: the first `limit` members
/// (and any sharing the last one's key) with keys in `keys`, in key order,
/// with their keys.
///
/// `None` when the collection should be read whole instead (see the module
/// comment); the caller then samples what it read.
pub fn members<T>(
    card: i64,
    keys: Keys,
    k: i64,
    distinct: bool,
    mut scan: impl FnMut(Range<i64>, i64) -> Result<Vec<(i64, T)>, CmdError>,
) -> Result<Option<Vec<T>>, CmdError> {
    if card <= READ_WHOLE || k <= 0 || k.saturating_mul(4) > card {
        return Ok(None);
    }
    let (lo, hi, width, cap) = match keys {
        Keys::Seq { head } => {
            let Some(&(first, _)) = scan(i64::MIN..i64::MAX, 1)?.first() else { return Ok(None) };
            (first, head, 1, 1)
        }
        Keys::Hash => (0, HASH_SPACE, HASH_SPACE / (card / 4).max(1), HASH_CAP),
    };
    if hi <= lo {
        return Ok(None);
    }
    let buckets = (hi - lo - 1) / width + 1;
    // Tries per pick, on average: every member is kept with probability
    // 1 / (buckets × cap).
    let per_pick = (buckets as f64 * cap as f64) / card as f64;
    if per_pick > 16.0 {
        return Ok(None);
    }
    let mut budget = (per_pick * 4.0 * k as f64) as i64 + 64;
    let mut taken = foldhash::HashSet::default();
    let mut picked: Vec<((i64, usize), T)> = Vec::with_capacity(k as usize);
    while (picked.len() as i64) < k {
        if budget == 0 {
            return Ok(None);
        }
        budget -= 1;
        let from = lo + width * super::with_rng(|r| rand::Rng::gen_range(r, 0..buckets));
        // Read one past `cap`, to see a bucket overflow.
        let mut found = scan(from..from.saturating_add(width).min(hi), cap as i64 + 1)?;
        if found.len() > cap {
            return Ok(None);
        }
        // Kept with probability found / cap, then one of them uniformly: a
        // draw below `cap` that lands on a found member does both.
        let at = super::with_rng(|r| rand::Rng::gen_range(r, 0..cap));
        if at >= found.len() {
            continue;
        }
        let id = (found[at].0, at);
        if distinct && !taken.insert(id) {
            continue;
        }
        picked.push((id, found.swap_remove(at).1));
    }
    if distinct {
        picked.sort_by_key(|(id, _)| *id);
    }
    Ok(Some(picked.into_iter().map(|(_, m)| m).collect()))
}

/// How many members a random-member command's count asks for, and whether
/// they must differ: one without a count, `n` distinct for a positive one,
/// |n| drawn independently for a negative one.
pub fn wanted(count: Option<i64>) -> (i64, bool) {
    match count {
        None => (1, false),
        Some(n) if n >= 0 => (n, true),
        Some(n) => (n.checked_neg().unwrap_or(i64::MAX), false),
    }
}
