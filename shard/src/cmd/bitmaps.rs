//! Bitmap commands on string values: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO.
//!
//! Bits are numbered from the most significant bit of the first byte, as Redis numbers them; a string
//! grows (zero-filled) when a write reaches past its end, up to `--proto-max-bulk-len`.

use ringcache_common::resp::{ReplyWriter, Request};

use super::strings::{lookup_typed, store_string, Ttl};
use super::{is, parse_i64, CmdError, CmdResult, Ctx, Handler};
use crate::store::{Kind, Slot, StoreStripe};

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "setbit" => setbit,
        "getbit" => getbit,
        "bitcount" => bitcount,
        "bitpos" => bitpos,
        "bitop" => bitop,
        "bitfield" => bitfield,
        "bitfield_ro" => bitfield_ro,
        _ => return None,
    })
}

fn other(msg: &str) -> CmdError {
    CmdError::Other(msg.into())
}

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

/// A bit offset as Redis parses it: not negative, within `max_bulk_len` bytes; with `bits`, `#n` means
/// `n * bits` (BITFIELD).
fn parse_offset(arg: &[u8], bits: Option<u64>, max_bulk_len: usize) -> Result<u64, CmdError> {
    let (hash, digits) = match (arg.split_first(), bits) {
        (Some((b'#', rest)), Some(_)) => (true, rest),
        _ => (false, arg),
    };
    let n = parse_i64(digits).map_err(|_| other(BAD_OFFSET))?;
    let n = if hash { n.checked_mul(bits.unwrap_or(1) as i64).ok_or_else(|| other(BAD_OFFSET))? } else { n };
    if n < 0 || (n as u64 >> 3) >= max_bulk_len as u64 {
        return Err(other(BAD_OFFSET));
    }
    Ok(n as u64)
}

/// The string at `key` made at least `min_len` bytes long (zero-filled; created when missing), as Redis's
/// `lookupStringForBitCommand`; its slot.
fn writable(ctx: &mut Ctx<'_>, key: &[u8], min_len: usize) -> Result<Slot, CmdError> {
    if min_len > ctx.shared.config.limits.max_bulk_len {
        return Err(CmdError::TooLarge);
    }
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let slot = match lookup_typed(&mut g, h, key, Kind::String, ctx.now_ms)? {
        Some(slot) => slot,
        None => store_string(&mut g, h, key, None, &[], Ttl::Clear)?,
    };
    let len = g.string(slot).len();
    if min_len > len {
        g.reserve(min_len - len, slot)?;
        g.string_mut(slot, min_len);
    }
    Ok(slot)
}

fn setbit(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let offset = parse_offset(req.arg(2), None, ctx.shared.config.limits.max_bulk_len)?;
    let on = parse_i64(req.arg(3)).map_err(|_| other("ERR bit is not an integer or out of range"))?;
    if on & !1 != 0 {
        return Err(other("ERR bit is not an integer or out of range"));
    }
    let key = req.arg(1);
    let byte = (offset >> 3) as usize;
    let slot = writable(ctx, key, byte + 1)?;
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let len = g.string(slot).len();
    let bytes = g.string_mut(slot, len);
    let mask = 1u8 << (7 - (offset & 7));
    let old = bytes[byte] & mask != 0;
    if on == 1 {
        bytes[byte] |= mask;
    } else {
        bytes[byte] &= !mask;
    }
    ctx.out.integer(i64::from(old));
    Ok(())
}

/// The string at `key` for a read: `None` when missing.
fn read_string<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c [u8]>, CmdError> {
    let h = ctx.db.hash(key);
    let slot = lookup_typed(&mut *ctx.db.stripe(h)?, h, key, Kind::String, ctx.now_ms)?;
    match slot {
        Some(slot) => Ok(Some(StoreStripe::string(ctx.db.peek(h)?, slot))),
        None => Ok(None),
    }
}

fn getbit(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let offset = parse_offset(req.arg(2), None, ctx.shared.config.limits.max_bulk_len)?;
    let bit = read_string(ctx, req.arg(1))?.map_or(0, |s| {
        let byte = (offset >> 3) as usize;
        s.get(byte).map_or(0, |b| (b >> (7 - (offset & 7))) & 1)
    });
    ctx.out.integer(i64::from(bit));
    Ok(())
}

/// A BITCOUNT/BITPOS range made absolute, in bits: `[lo, hi]` inclusive, or `None` when empty.
fn bit_range(start: i64, end: i64, len_bytes: usize, in_bits: bool) -> Option<(u64, u64)> {
    let total = if in_bits { len_bytes as i64 * 8 } else { len_bytes as i64 };
    let mut start = if start < 0 { total + start } else { start };
    let mut end = if end < 0 { total + end } else { end };
    start = start.max(0);
    end = end.max(0).min(total - 1);
    if start > end {
        return None;
    }
    if in_bits {
        Some((start as u64, end as u64))
    } else {
        Some((start as u64 * 8, end as u64 * 8 + 7))
    }
}

/// BYTE or BIT (in any case); anything else is a syntax error.
fn parse_unit(arg: &[u8]) -> Result<bool, CmdError> {
    if is(arg, "BIT") {
        Ok(true)
    } else if is(arg, "BYTE") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Set bits of `bytes` in the bit range `[lo, hi]`.
fn count_ones(bytes: &[u8], lo: u64, hi: u64) -> u64 {
    let (first, last) = ((lo / 8) as usize, (hi / 8) as usize);
    let mut n: u64 = bytes[first..=last].iter().map(|b| u64::from(b.count_ones())).sum();
    // Take out the bits of the edge bytes outside the range.
    n -= u64::from((bytes[first] & !(0xffu8 >> (lo % 8))).count_ones());
    n -= u64::from((bytes[last] & 0xffu8.checked_shr((hi % 8 + 1) as u32).unwrap_or(0)).count_ones());
    n
}

fn bitcount(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    // As in Redis, the key is looked up before the range is parsed.
    let Some(s) = read_string(ctx, req.arg(1))? else {
        ctx.out.integer(0);
        return Ok(());
    };
    let range = match req.argc() {
        2 => (!s.is_empty()).then(|| (0, s.len() as u64 * 8 - 1)),
        4 | 5 => {
            let start = parse_i64(req.arg(2))?;
            let end = parse_i64(req.arg(3))?;
            if start < 0 && end < 0 && start > end {
                None
            } else {
                let in_bits = match req.get(4) {
                    Some(unit) => parse_unit(unit)?,
                    None => false,
                };
                bit_range(start, end, s.len(), in_bits)
            }
        }
        _ => return Err(CmdError::Syntax),
    };
    let n = range.map_or(0, |(lo, hi)| count_ones(s, lo, hi));
    ctx.out.integer(n as i64);
    Ok(())
}

/// The first bit equal to `bit` in `[lo, hi]`.
fn find_bit(bytes: &[u8], bit: bool, lo: u64, hi: u64) -> Option<u64> {
    let skip = if bit { 0x00 } else { 0xff };
    let mut pos = lo;
    while pos <= hi {
        let byte = bytes[(pos / 8) as usize];
        if pos.is_multiple_of(8) && pos + 7 <= hi && byte == skip {
            pos += 8;
            continue;
        }
        if ((byte >> (7 - pos % 8)) & 1 == 1) == bit {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

fn bitpos(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let bit = parse_i64(req.arg(2))?;
    if bit != 0 && bit != 1 {
        return Err(other("ERR The bit argument must be 1 or 0."));
    }
    let bit = bit == 1;
    let Some(s) = read_string(ctx, req.arg(1))? else {
        // A missing key is an infinite run of zeros.
        ctx.out.integer(if bit { -1 } else { 0 });
        return Ok(());
    };
    let (range, end_given) = match req.argc() {
        3 => ((!s.is_empty()).then(|| (0, s.len() as u64 * 8 - 1)), false),
        4..=6 => {
            let start = parse_i64(req.arg(3))?;
            let in_bits = match req.get(5) {
                Some(unit) => parse_unit(unit)?,
                None => false,
            };
            let end = match req.get(4) {
                Some(e) => parse_i64(e)?,
                None => i64::MAX,
            };
            (bit_range(start, end, s.len(), in_bits), req.argc() >= 5)
        }
        _ => return Err(CmdError::Syntax),
    };
    let pos = match range {
        None => -1,
        Some((lo, hi)) => match find_bit(s, bit, lo, hi) {
            Some(p) => p as i64,
            // Looking for a clear bit with no end given: the string continues with zeros.
            None if !bit && !end_given => hi as i64 + 1,
            None => -1,
        },
    };
    ctx.out.integer(pos);
    Ok(())
}

fn bitop(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    #[derive(PartialEq)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let op = match req.arg(1).to_ascii_lowercase().as_slice() {
        b"and" => Op::And,
        b"or" => Op::Or,
        b"xor" => Op::Xor,
        b"not" => Op::Not,
        _ => return Err(CmdError::Syntax),
    };
    if op == Op::Not && req.argc() != 4 {
        return Err(other("ERR BITOP NOT must be called with a single source key."));
    }
    let mut sources: Vec<Vec<u8>> = Vec::with_capacity(req.argc() - 3);
    for key in req.args_from(3) {
        sources.push(read_string(ctx, key)?.map(<[u8]>::to_vec).unwrap_or_default());
    }
    let max = sources.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = vec![0u8; max];
    for (i, byte) in out.iter_mut().enumerate() {
        let at = |s: &Vec<u8>| s.get(i).copied().unwrap_or(0);
        *byte = match op {
            Op::Not => !at(&sources[0]),
            Op::And => sources.iter().map(at).fold(0xff, |a, b| a & b),
            Op::Or => sources.iter().map(at).fold(0, |a, b| a | b),
            Op::Xor => sources.iter().map(at).fold(0, |a, b| a ^ b),
        };
    }
    let dest = req.arg(2);
    let h = ctx.db.hash(dest);
    let mut g = ctx.db.stripe(h)?;
    let existing = g.lookup(h, dest, ctx.now_ms);
    if max == 0 {
        if let Some(slot) = existing {
            g.remove(slot);
        }
    } else {
        store_string(&mut g, h, dest, existing, &out, Ttl::Clear)?;
    }
    ctx.out.integer(max as i64);
    Ok(())
}

/// What a BITFIELD operation does on overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Debug, Clone, Copy)]
enum FieldOp {
    Get,
    Set(i64),
    IncrBy(i64),
}

#[derive(Debug, Clone, Copy)]
struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

fn parse_type(arg: &[u8]) -> Result<(bool, u32), CmdError> {
    let err =
        || other("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.");
    let (signed, digits) = match arg.split_first() {
        Some((b'i', rest)) => (true, rest),
        Some((b'u', rest)) => (false, rest),
        _ => return Err(err()),
    };
    let bits = parse_i64(digits).map_err(|_| err())?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(err());
    }
    Ok((signed, bits as u32))
}

fn get_unsigned(bytes: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for i in 0..u64::from(bits) {
        let pos = offset + i;
        let byte = bytes.get((pos / 8) as usize).copied().unwrap_or(0);
        v = (v << 1) | u64::from((byte >> (7 - pos % 8)) & 1);
    }
    v
}

fn get_signed(bytes: &[u8], offset: u64, bits: u32) -> i64 {
    let v = get_unsigned(bytes, offset, bits);
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

fn set_bits(bytes: &mut [u8], offset: u64, bits: u32, value: u64) {
    for i in 0..u64::from(bits) {
        let pos = offset + i;
        let bit = (value >> (u64::from(bits) - 1 - i)) & 1;
        let byte = &mut bytes[(pos / 8) as usize];
        let mask = 1u8 << (7 - pos % 8);
        if bit == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`: whether `value + incr` overflows `bits`, and the value to
/// store instead (wrapped or saturated).
fn unsigned_overflow(value: u64, incr: i64, bits: u32, overflow: Overflow) -> Option<u64> {
    let max = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = value.wrapping_neg() as i64;
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX.checked_shl(bits).unwrap_or(0));
    if value > max || (incr > 0 && incr > max_incr) {
        Some(match overflow {
            Overflow::Wrap => wrap(),
            _ => max,
        })
    } else if incr < 0 && incr < min_incr {
        Some(match overflow {
            Overflow::Wrap => wrap(),
            _ => 0,
        })
    } else {
        None
    }
}

/// Redis's `checkSignedBitfieldOverflow`.
fn signed_overflow(value: i64, incr: i64, bits: u32, overflow: Overflow) -> Option<i64> {
    let max = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrap = || {
        let c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                (c | mask) as i64
            } else {
                (c & !mask) as i64
            }
        } else {
            c as i64
        }
    };
    if value > max || (bits != 64 && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr) {
        Some(match overflow {
            Overflow::Wrap => wrap(),
            _ => max,
        })
    } else if value < min || (bits != 64 && incr < min_incr) || (value < 0 && incr < 0 && incr < min_incr) {
        Some(match overflow {
            Overflow::Wrap => wrap(),
            _ => min,
        })
    } else {
        None
    }
}

fn parse_fields(req: &Request, max_bulk_len: usize) -> Result<Vec<Field>, CmdError> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < req.argc() {
        let left = req.argc() - j - 1;
        let sub = req.arg(j);
        let kind = if is(sub, "GET") && left >= 2 {
            0
        } else if is(sub, "SET") && left >= 3 {
            1
        } else if is(sub, "INCRBY") && left >= 3 {
            2
        } else if is(sub, "OVERFLOW") && left >= 1 {
            let t = req.arg(j + 1);
            overflow = if is(t, "WRAP") {
                Overflow::Wrap
            } else if is(t, "SAT") {
                Overflow::Sat
            } else if is(t, "FAIL") {
                Overflow::Fail
            } else {
                return Err(other("ERR Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let (signed, bits) = parse_type(req.arg(j + 1))?;
        let offset = parse_offset(req.arg(j + 2), Some(u64::from(bits)), max_bulk_len)?;
        let op = match kind {
            0 => FieldOp::Get,
            1 => FieldOp::Set(parse_i64(req.arg(j + 3))?),
            _ => FieldOp::IncrBy(parse_i64(req.arg(j + 3))?),
        };
        fields.push(Field { op, signed, bits, offset, overflow });
        j += if kind == 0 { 3 } else { 4 };
    }
    Ok(fields)
}

fn bitfield_generic(ctx: &mut Ctx<'_>, req: &Request, read_only: bool) -> CmdResult {
    let fields = parse_fields(req, ctx.shared.config.limits.max_bulk_len)?;
    let key = req.arg(1);
    let writes = fields.iter().any(|f| !matches!(f.op, FieldOp::Get));
    if !writes {
        let s = read_string(ctx, key)?.unwrap_or_default();
        let s = s.to_vec();
        ctx.out.array_len(fields.len());
        for f in &fields {
            if f.signed {
                ctx.out.integer(get_signed(&s, f.offset, f.bits));
            } else {
                ctx.out.integer(get_unsigned(&s, f.offset, f.bits) as i64);
            }
        }
        return Ok(());
    }
    if read_only {
        return Err(other("ERR BITFIELD_RO only supports the GET subcommand"));
    }
    let highest = fields
        .iter()
        .filter(|f| !matches!(f.op, FieldOp::Get))
        .map(|f| f.offset + u64::from(f.bits) - 1)
        .max()
        .unwrap_or(0);
    let slot = writable(ctx, key, (highest / 8) as usize + 1)?;
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let len = g.string(slot).len();
    let bytes = g.string_mut(slot, len);
    let out = &mut *ctx.out;
    out.array_len(fields.len());
    for f in &fields {
        match f.op {
            FieldOp::Get if f.signed => out.integer(get_signed(bytes, f.offset, f.bits)),
            FieldOp::Get => out.integer(get_unsigned(bytes, f.offset, f.bits) as i64),
            FieldOp::Set(v) | FieldOp::IncrBy(v) => {
                let incr = matches!(f.op, FieldOp::IncrBy(_));
                let (stored, reply, failed) = if f.signed {
                    let old = get_signed(bytes, f.offset, f.bits);
                    let (base, by) = if incr { (old, v) } else { (v, 0) };
                    let ov = signed_overflow(base, by, f.bits, f.overflow);
                    let new = ov.unwrap_or(base.wrapping_add(by));
                    (new as u64, if incr { new } else { old }, ov.is_some() && f.overflow == Overflow::Fail)
                } else {
                    let old = get_unsigned(bytes, f.offset, f.bits);
                    let (base, by) = if incr { (old, v) } else { (v as u64, 0) };
                    let ov = unsigned_overflow(base, by, f.bits, f.overflow);
                    let new = ov.unwrap_or(base.wrapping_add(by as u64));
                    (new, if incr { new as i64 } else { old as i64 }, ov.is_some() && f.overflow == Overflow::Fail)
                };
                if failed {
                    out.null();
                } else {
                    set_bits(bytes, f.offset, f.bits, stored);
                    out.integer(reply);
                }
            }
        }
    }
    Ok(())
}

fn bitfield(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    bitfield_generic(ctx, req, false)
}

fn bitfield_ro(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    bitfield_generic(ctx, req, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_respects_bit_edges() {
        let s = [0xffu8, 0x0f, 0xf0];
        assert_eq!(count_ones(&s, 0, 23), 16);
        assert_eq!(count_ones(&s, 4, 11), 4);
        assert_eq!(count_ones(&s, 12, 12), 1);
        assert_eq!(count_ones(&s, 8, 11), 0);
        assert_eq!(find_bit(&s, false, 0, 23), Some(8));
        assert_eq!(find_bit(&s, true, 8, 23), Some(12));
        assert_eq!(find_bit(&[0xff], false, 0, 7), None);
    }

    #[test]
    fn bitfields_wrap_and_saturate_like_redis() {
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Wrap), Some(4));
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Sat), Some(255));
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Sat), Some(0));
        assert_eq!(unsigned_overflow(5, 1, 8, Overflow::Wrap), None);
        assert_eq!(signed_overflow(127, 1, 8, Overflow::Wrap), Some(-128));
        assert_eq!(signed_overflow(-128, -1, 8, Overflow::Sat), Some(-128));
        assert_eq!(signed_overflow(100, 27, 8, Overflow::Fail), None);
        let mut b = [0u8; 2];
        set_bits(&mut b, 4, 8, 0xab);
        assert_eq!(b, [0x0a, 0xb0]);
        assert_eq!(get_unsigned(&b, 4, 8), 0xab);
        assert_eq!(get_signed(&b, 4, 8), 0xab_u8 as i8 as i64);
    }
}
