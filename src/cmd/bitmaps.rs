//! Bitmap commands on strings: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
//! BITFIELD, BITFIELD_RO. Bit 0 is the most significant bit of byte 0.

use super::table::{tx, Binding};
use super::{eq_ic, Args, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::store::{Entry, Fetch, KeyType};
use pgkv_resp::Frame;

pub const COMMANDS: &[Binding] = &[
    tx("setbit", setbit),
    tx("getbit", getbit),
    tx("bitcount", bitcount),
    tx("bitpos", bitpos),
    tx("bitop", bitop),
    tx("bitfield", bitfield),
    tx("bitfield_ro", bitfield_ro),
];

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

fn lookup(ctx: &Ctx, key: &[u8]) -> Result<Option<Entry>, CmdError> {
    ctx.store().lookup_typed(ctx.session.db, key, ctx.now_ms, KeyType::String, Fetch::Value)
}

/// Redis's `getBitOffsetFromArgument`: a bit offset below 512 MB * 8, or
/// with `#N` (BITFIELD) N times the field width.
fn bit_offset(arg: &[u8], hash_bits: Option<u32>) -> Result<u64, CmdError> {
    let (digits, mult) = match (arg.first(), hash_bits) {
        (Some(b'#'), Some(bits)) => (&arg[1..], bits as i64),
        _ => (arg, 1),
    };
    let n = pgkv_resp::num::parse_i64(digits).ok_or(CmdError::Static(BAD_OFFSET))?;
    let n = n.checked_mul(mult).ok_or(CmdError::Static(BAD_OFFSET))?;
    if n < 0 || (n >> 3) >= super::strings::MAX_STRING {
        return Err(CmdError::Static(BAD_OFFSET));
    }
    Ok(n as u64)
}

fn get_bit(v: &[u8], bit: u64) -> u8 {
    let byte = (bit >> 3) as usize;
    match v.get(byte) {
        Some(b) => (b >> (7 - (bit & 7))) & 1,
        None => 0,
    }
}

fn set_bit(v: &mut Vec<u8>, bit: u64, on: bool) {
    let byte = (bit >> 3) as usize;
    if v.len() <= byte {
        v.resize(byte + 1, 0);
    }
    let mask = 1u8 << (7 - (bit & 7));
    if on {
        v[byte] |= mask;
    } else {
        v[byte] &= !mask;
    }
}

/// Writes `v` back to `key`: the existing string keeps its TTL.
fn save(ctx: &Ctx, key: &[u8], entry: &Option<Entry>, v: &[u8]) -> Result<(), CmdError> {
    store_value(ctx, key, entry, v)?;
    ctx.notify(super::notify::STRING, "setbit", key);
    Ok(())
}

/// Writes the string's new bytes, creating the key if `entry` is `None`,
/// without an event (nor, therefore, a touch).
fn store_value(ctx: &Ctx, key: &[u8], entry: &Option<Entry>, v: &[u8]) -> Result<(), CmdError> {
    match entry {
        Some(e) => ctx.store().set_value(e, v),
        None => ctx.store().insert_string(ctx.session.db, key, v),
    }
}

/// `SETBIT key offset value`: the bit's old value.
fn setbit(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let bit = bit_offset(&args.next_bytes()?, None)?;
    const BAD_BIT: &str = "ERR bit is not an integer or out of range";
    let on = pgkv_resp::num::parse_i64(&args.next_bytes()?).ok_or(CmdError::Static(BAD_BIT))?;
    if on & !1 != 0 {
        return Err(CmdError::Static(BAD_BIT));
    }
    let entry = lookup(ctx, &key)?;
    let mut v = entry.as_ref().and_then(|e| e.value.as_deref()).unwrap_or_default().to_vec();
    let old = get_bit(&v, bit);
    let grown = v.len() <= (bit >> 3) as usize;
    set_bit(&mut v, bit, on == 1);
    if grown || old != on as u8 || entry.is_none() {
        save(ctx, &key, &entry, &v)?;
    }
    Ok(Frame::Integer(old as i64))
}

/// `GETBIT key offset`
fn getbit(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let bit = bit_offset(&args.next_bytes()?, None)?;
    let v = lookup(ctx, &key)?.and_then(|e| e.value).unwrap_or_default();
    Ok(Frame::Integer(get_bit(&v, bit) as i64))
}

/// A range of bits `[first, last]` of the string, from BITCOUNT/BITPOS
/// start/end arguments, normalised as Redis does. `None` is empty.
fn bit_range(len: i64, mut start: i64, mut end: i64, in_bits: bool) -> Option<(u64, u64)> {
    let total = if in_bits { len * 8 } else { len };
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    if start > end {
        return None;
    }
    Some(if in_bits { (start as u64, end as u64) } else { (start as u64 * 8, end as u64 * 8 + 7) })
}

fn unit(arg: &[u8]) -> Result<bool, CmdError> {
    if eq_ic(arg, "bit") {
        Ok(true)
    } else if eq_ic(arg, "byte") {
        Ok(false)
    } else {
        Err(CmdError::syntax())
    }
}

/// `BITCOUNT key [start end [BYTE | BIT]]`
fn bitcount(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Integer(0)) };
    let v = e.value.unwrap_or_default();
    let (first, last) = match args.remaining() {
        0 => {
            if v.is_empty() {
                return Ok(Frame::Integer(0));
            }
            (0, v.len() as u64 * 8 - 1)
        }
        2 | 3 => {
            let (start, end) = (args.next_i64()?, args.next_i64()?);
            let in_bits = if args.is_empty() { false } else { unit(&args.next_bytes()?)? };
            if start < 0 && end < 0 && start > end {
                return Ok(Frame::Integer(0));
            }
            match bit_range(v.len() as i64, start, end, in_bits) {
                Some(r) => r,
                None => return Ok(Frame::Integer(0)),
            }
        }
        _ => return Err(CmdError::syntax()),
    };
    let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
    let mut count: i64 = v[fb..=lb].iter().map(|b| b.count_ones() as i64).sum();
    // Bits of the edge bytes outside the range.
    count -= (v[fb] >> (8 - (first & 7))).count_ones() as i64 * ((first & 7) != 0) as i64;
    count -= (v[lb] & ((1u16 << (7 - (last & 7))) - 1) as u8).count_ones() as i64;
    Ok(Frame::Integer(count))
}

/// `BITPOS key bit [start [end [BYTE | BIT]]]`
fn bitpos(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let bit = args.next_i64()?;
    if bit != 0 && bit != 1 {
        return Err(CmdError::msg("ERR The bit argument must be 1 or 0."));
    }
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Integer(if bit == 1 { -1 } else { 0 })) };
    let v = e.value.unwrap_or_default();
    let len = v.len() as i64;
    let (range, end_given) = match args.remaining() {
        0 => (bit_range(len, 0, -1, false), false),
        1..=3 => {
            let start = args.next_i64()?;
            let end_arg = if args.is_empty() { None } else { Some(args.next_bytes()?) };
            let in_bits = if args.is_empty() { false } else { unit(&args.next_bytes()?)? };
            let end = match &end_arg {
                Some(a) => super::parse_i64(a)?,
                None => -1,
            };
            (bit_range(len, start, end, in_bits), end_arg.is_some())
        }
        _ => return Err(CmdError::syntax()),
    };
    let Some((first, last)) = range else { return Ok(Frame::Integer(-1)) };
    for b in first..=last {
        if get_bit(&v, b) as i64 == bit {
            return Ok(Frame::Integer(b as i64));
        }
    }
    // Looking for a clear bit past an open-ended range: the string is
    // zero-padded to the right.
    Ok(Frame::Integer(if bit == 0 && !end_given { last as i64 + 1 } else { -1 }))
}

/// `BITOP AND|OR|XOR|NOT destkey key [key ...]`: the result's length.
fn bitop(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let op = args.next_bytes()?;
    let dst = args.next_bytes()?;
    let keys = args.rest();
    #[derive(PartialEq)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let op = match () {
        _ if eq_ic(&op, "and") => Op::And,
        _ if eq_ic(&op, "or") => Op::Or,
        _ if eq_ic(&op, "xor") => Op::Xor,
        _ if eq_ic(&op, "not") => Op::Not,
        _ => return Err(CmdError::syntax()),
    };
    if op == Op::Not && keys.len() != 1 {
        return Err(CmdError::msg("ERR BITOP NOT must be called with a single source key."));
    }
    let mut values = Vec::with_capacity(keys.len());
    for k in keys {
        values.push(lookup(ctx, k)?.and_then(|e| e.value).map(Vec::from).unwrap_or_default());
    }
    let maxlen = values.iter().map(|v| v.len()).max().unwrap_or(0);
    let mut out = vec![0u8; maxlen];
    for (i, byte) in out.iter_mut().enumerate() {
        let at = |v: &Vec<u8>| v.get(i).copied().unwrap_or(0);
        *byte = match op {
            Op::Not => !at(&values[0]),
            Op::And => values.iter().map(at).fold(0xff, |a, b| a & b),
            Op::Or => values.iter().map(at).fold(0, |a, b| a | b),
            Op::Xor => values.iter().map(at).fold(0, |a, b| a ^ b),
        };
    }
    let store = ctx.store();
    if maxlen > 0 {
        let created = ctx.creates(&dst)?;
        store.set_string(ctx.session.db, &dst, &out, None)?;
        if created {
            ctx.notify(super::notify::NEW, "new", &dst);
        }
        ctx.notify(super::notify::STRING, "set", &dst);
    } else if store.delete_key(ctx.session.db, &dst)? {
        ctx.notify(super::notify::GENERIC, "del", &dst);
    }
    Ok(Frame::Integer(maxlen as i64))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy)]
struct FieldType {
    signed: bool,
    bits: u32,
}

enum FieldOp {
    Get(FieldType, u64),
    Set(FieldType, u64, i64, Overflow),
    Incr(FieldType, u64, i64, Overflow),
}

fn field_type(arg: &[u8]) -> Result<FieldType, CmdError> {
    let bad = || {
        CmdError::msg("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.")
    };
    let signed = match arg.first() {
        Some(b'i' | b'I') => true,
        Some(b'u' | b'U') => false,
        _ => return Err(bad()),
    };
    let bits = pgkv_resp::num::parse_i64(&arg[1..]).ok_or_else(bad)?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(bad());
    }
    Ok(FieldType { signed, bits: bits as u32 })
}

fn read_field(v: &[u8], t: FieldType, offset: u64) -> i64 {
    let mut x: u64 = 0;
    for i in 0..t.bits as u64 {
        x = (x << 1) | get_bit(v, offset + i) as u64;
    }
    if t.signed && t.bits < 64 && (x >> (t.bits - 1)) & 1 == 1 {
        (x | (!0u64 << t.bits)) as i64
    } else {
        x as i64
    }
}

fn write_field(v: &mut Vec<u8>, t: FieldType, offset: u64, value: i64) {
    let x = value as u64;
    for i in 0..t.bits as u64 {
        let bit = (x >> (t.bits as u64 - 1 - i)) & 1;
        set_bit(v, offset + i, bit == 1);
    }
}

/// The value a SET (`incr` 0) or INCRBY leaves in a field of type `t`
/// that holds `value`, under the overflow policy; `None` is FAIL. Redis's
/// `checkSignedBitfieldOverflow` and `checkUnsignedBitfieldOverflow`, int64
/// arithmetic and its wrap-arounds included: SET of -9223372036854775808
/// into an i5 with SAT stores 15 there, not -16.
fn fit(t: FieldType, value: i64, incr: i64, policy: Overflow) -> Option<i64> {
    let bits = t.bits as u32;
    let (overflow, limit) = if t.signed {
        let max: i64 = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
        let min = -max - 1;
        let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
        let minincr = min.wrapping_sub(value);
        if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
            (true, max)
        } else if value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr) {
            (true, min)
        } else {
            (false, 0)
        }
    } else {
        // Unsigned fields are at most 63 bits.
        let unsigned = value as u64;
        let max = (1u64 << bits) - 1;
        let maxincr = max.wrapping_sub(unsigned) as i64;
        let minincr = unsigned.wrapping_neg() as i64;
        if unsigned > max || (incr > 0 && incr > maxincr) {
            (true, max as i64)
        } else if incr < 0 && incr < minincr {
            (true, 0)
        } else {
            (false, 0)
        }
    };
    let sum = (value as u64).wrapping_add(incr as u64);
    if !overflow {
        return Some(sum as i64);
    }
    match policy {
        Overflow::Fail => None,
        Overflow::Sat => Some(limit),
        Overflow::Wrap if bits == 64 => Some(sum as i64),
        Overflow::Wrap => {
            let mask = u64::MAX << bits;
            let negative = t.signed && sum & (1u64 << (bits - 1)) != 0;
            Some((if negative { sum | mask } else { sum & !mask }) as i64)
        }
    }
}

/// `BITFIELD key [GET type offset | [OVERFLOW WRAP|SAT|FAIL]
///  SET type offset value | INCRBY type offset increment] ...`
fn bitfield(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    bitfield_generic(ctx, args, false)
}

/// `BITFIELD_RO key [GET type offset ...]`
fn bitfield_ro(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    bitfield_generic(ctx, args, true)
}

fn bitfield_generic(ctx: &mut Ctx, args: &mut Args, read_only: bool) -> CmdResult {
    let key = args.next_bytes()?;
    let mut ops = Vec::new();
    let mut policy = Overflow::Wrap;
    while let Some(word) = args.peek().cloned() {
        args.next_bytes()?;
        let remaining = args.remaining();
        if eq_ic(&word, "get") && remaining >= 2 {
            let t = field_type(&args.next_bytes()?)?;
            let off = bit_offset(&args.next_bytes()?, Some(t.bits))?;
            ops.push(FieldOp::Get(t, off));
        } else if !read_only && (eq_ic(&word, "set") || eq_ic(&word, "incrby")) && remaining >= 3 {
            let t = field_type(&args.next_bytes()?)?;
            let off = bit_offset(&args.next_bytes()?, Some(t.bits))?;
            let n = args.next_i64()?;
            ops.push(if eq_ic(&word, "set") { FieldOp::Set(t, off, n, policy) } else { FieldOp::Incr(t, off, n, policy) });
        } else if !read_only && eq_ic(&word, "overflow") && remaining >= 1 {
            let p = args.next_bytes()?;
            policy = match () {
                _ if eq_ic(&p, "wrap") => Overflow::Wrap,
                _ if eq_ic(&p, "sat") => Overflow::Sat,
                _ if eq_ic(&p, "fail") => Overflow::Fail,
                _ => return Err(CmdError::msg("ERR Invalid OVERFLOW type specified")),
            };
        } else if read_only && !eq_ic(&word, "get") {
            return Err(CmdError::msg("ERR BITFIELD_RO only supports the GET subcommand"));
        } else {
            return Err(CmdError::syntax());
        }
    }
    let entry = lookup(ctx, &key)?;
    let mut v = entry.as_ref().and_then(|e| e.value.as_deref()).unwrap_or_default().to_vec();
    let writes = ops.iter().any(|o| !matches!(o, FieldOp::Get(..)));
    // Created or grown: then every write counts as a change, as in Redis.
    let mut grown = entry.is_none();
    if writes {
        // Like Redis, the string grows to the highest written field first.
        let highest = ops
            .iter()
            .filter_map(|o| match o {
                FieldOp::Set(t, off, ..) | FieldOp::Incr(t, off, ..) => Some(off + t.bits as u64 - 1),
                FieldOp::Get(..) => None,
            })
            .max()
            .unwrap_or(0);
        if v.len() <= (highest >> 3) as usize {
            v.resize((highest >> 3) as usize + 1, 0);
            grown = true;
        }
    }
    // Redis's `changes`: writes that were made (not refused by OVERFLOW
    // FAIL) and changed the field, or went to a string just created or
    // grown. Only then is the key touched and "setbit" reported.
    let mut changes = 0;
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        out.push(match op {
            FieldOp::Get(t, off) => Frame::Integer(read_field(&v, t, off)),
            FieldOp::Set(t, off, n, p) => {
                let old = read_field(&v, t, off);
                match fit(t, n, 0, p) {
                    Some(x) => {
                        write_field(&mut v, t, off, x);
                        changes += (grown || x != old) as usize;
                        Frame::Integer(old)
                    }
                    None => Frame::NullBulk,
                }
            }
            FieldOp::Incr(t, off, n, p) => {
                let old = read_field(&v, t, off);
                match fit(t, old, n, p) {
                    Some(x) => {
                        write_field(&mut v, t, off, x);
                        changes += (grown || x != old) as usize;
                        Frame::Integer(x)
                    }
                    None => Frame::NullBulk,
                }
            }
        });
    }
    if changes > 0 {
        save(ctx, &key, &entry, &v)?;
    } else if writes && grown {
        // Every write refused: Redis still created or grew the string
        // (its lookup for a bit command does), but touched and reported
        // nothing.
        store_value(ctx, &key, &entry, &v)?;
    }
    Ok(Frame::Array(out))
}
