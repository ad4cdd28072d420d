//! HyperLogLog in Redis's own string format, so that a HyperLogLog written by Ringcache reads back in
//! redis-server (GET, DUMP/RESTORE) and the other way round, and so that the proxy can merge HyperLogLogs
//! read from any shard (PFCOUNT of keys on several shards).
//!
//! The format (Redis's `hyperloglog.c`): a 16-byte header (`HYLL`, the encoding, three unused bytes, the
//! cached cardinality as 64 bits little endian with its top bit set when stale), then 16,384 6-bit
//! registers, dense (12,288 bytes, packed from the least significant bit) or sparse (run-length opcodes:
//! `ZERO` 00xxxxxx for 1-64 empty registers, `XZERO` 01xxxxxx xxxxxxxx for 1-16,384, `VAL` 1vvvvvxx for
//! 1-4 registers holding 1-32). A sparse HyperLogLog becomes dense when a register needs more than 32 or
//! the string would pass `SPARSE_MAX_BYTES` (Redis's `hll-sparse-max-bytes` default). Elements are hashed
//! with MurmurHash64A (seed `0xadc83b19`); the estimate is Ertl's improved estimator, as Redis 7 computes
//! it, so counts agree with redis-server's exactly (standard error 0.81 %).

pub const REGISTERS: usize = 1 << 14;
const P: u32 = 14;
const Q: u32 = 64 - P;
const BITS: usize = 6;
const REGISTER_MAX: u8 = (1 << BITS) - 1;
pub const HEADER_BYTES: usize = 16;
pub const DENSE_BYTES: usize = HEADER_BYTES + (REGISTERS * BITS).div_ceil(8);
/// Redis's `hll-sparse-max-bytes` default: past this size a sparse HyperLogLog becomes dense.
pub const SPARSE_MAX_BYTES: usize = 3000;
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// Redis's error for a string that is not a HyperLogLog.
pub const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
/// Redis's error for a HyperLogLog whose registers cannot be read.
pub const INVALID_OBJECT: &str = "INVALIDOBJ Corrupted HLL object detected";

/// The registers cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("INVALIDOBJ Corrupted HLL object detected")]
pub struct Corrupt;

/// A new, empty HyperLogLog (sparse: one XZERO run over every register), as PFADD creates it.
pub fn new_sparse() -> Vec<u8> {
    let mut v = header(SPARSE);
    let mut left = REGISTERS;
    while left > 0 {
        let run = left.min(XZERO_MAX_LEN);
        push_xzero(&mut v, run);
        left -= run;
    }
    v
}

fn header(encoding: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    v.extend_from_slice(b"HYLL");
    v.push(encoding);
    v.extend_from_slice(&[0; 11]);
    v
}

/// Whether `s` is a HyperLogLog as Redis checks it (magic, a known encoding, the exact dense size).
pub fn is_hll(s: &[u8]) -> bool {
    s.len() >= HEADER_BYTES && &s[..4] == b"HYLL" && s[4] <= SPARSE && (s[4] != DENSE || s.len() == DENSE_BYTES)
}

/// The cached cardinality, if it is still valid.
pub fn cached_count(s: &[u8]) -> Option<u64> {
    (s[15] & 0x80 == 0).then(|| u64::from_le_bytes(s[8..16].try_into().unwrap_or([0; 8])))
}

pub fn set_cached_count(s: &mut [u8], count: u64) {
    s[8..16].copy_from_slice(&count.to_le_bytes());
}

pub fn invalidate_cache(s: &mut [u8]) {
    s[15] |= 0x80;
}

/// Redis's MurmurHash64A.
pub fn murmur64a(key: &[u8], seed: u32) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h: u64 = u64::from(seed) ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, &b) in rest.iter().enumerate().rev() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element lands in and the length of its run of zeros plus one.
pub fn pattern(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, 0xadc8_3b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let b0 = u16::from(regs[byte]);
    let b1 = u16::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) as u8) & REGISTER_MAX
}

fn dense_set(regs: &mut [u8], i: usize, v: u8) {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let v = u16::from(v);
    regs[byte] = (u16::from(regs[byte]) & !(u16::from(REGISTER_MAX) << fb) | (v << fb)) as u8;
    if let Some(next) = regs.get_mut(byte + 1) {
        let keep = !(u16::from(REGISTER_MAX) >> (8 - fb));
        *next = ((u16::from(*next) & keep) | (v >> (8 - fb))) as u8;
    }
}

fn push_xzero(v: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    v.push(0x40 | (l >> 8) as u8);
    v.push((l & 0xff) as u8);
}

fn zero_run(v: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        push_xzero(v, len);
    } else {
        v.push((len - 1) as u8);
    }
}

fn val_op(value: u8, len: usize) -> u8 {
    0x80 | ((value - 1) << 2) | (len - 1) as u8
}

/// One sparse opcode at `ops[at]`: (its bytes, registers it covers, the value they hold).
fn sparse_op(ops: &[u8], at: usize) -> Option<(usize, usize, u8)> {
    let b = *ops.get(at)?;
    Some(if b & 0xc0 == 0 {
        (1, usize::from(b & 0x3f) + 1, 0)
    } else if b & 0xc0 == 0x40 {
        let b2 = *ops.get(at + 1)?;
        (2, ((usize::from(b & 0x3f) << 8) | usize::from(b2)) + 1, 0)
    } else {
        (1, usize::from(b & 0x3) + 1, ((b >> 2) & 0x1f) + 1)
    })
}

/// Calls `f(first_register, run_length, value)` for every run of a HyperLogLog's registers; fails when
/// the runs do not cover exactly the 16,384 registers.
fn for_each_run(s: &[u8], mut f: impl FnMut(usize, usize, u8)) -> Result<(), Corrupt> {
    let regs = &s[HEADER_BYTES..];
    if s[4] == DENSE {
        for i in 0..REGISTERS {
            f(i, 1, dense_get(regs, i));
        }
        return Ok(());
    }
    let (mut at, mut index) = (0, 0);
    while at < regs.len() {
        let (bytes, run, value) = sparse_op(regs, at).ok_or(Corrupt)?;
        if value > 0 && index + run > REGISTERS {
            return Err(Corrupt);
        }
        f(index, run.min(REGISTERS.saturating_sub(index)), value);
        index += run;
        at += bytes;
    }
    if index == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

/// The opcodes of a sparse HyperLogLog as PFDEBUG DECODE prints them (`z:len`, `Z:len`, `v:value,len`).
pub fn decode_sparse(s: &[u8]) -> Result<String, Corrupt> {
    let ops = &s[HEADER_BYTES..];
    let mut out = Vec::new();
    let mut at = 0;
    while at < ops.len() {
        let (bytes, run, value) = sparse_op(ops, at).ok_or(Corrupt)?;
        out.push(match (bytes, value) {
            (2, _) => format!("Z:{run}"),
            (_, 0) => format!("z:{run}"),
            _ => format!("v:{value},{run}"),
        });
        at += bytes;
    }
    Ok(out.join(" "))
}

/// Converts a sparse HyperLogLog to dense (the cached cardinality is kept).
pub fn to_dense(s: &mut Vec<u8>) -> Result<(), Corrupt> {
    if s[4] == DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_BYTES];
    dense[..HEADER_BYTES].copy_from_slice(&s[..HEADER_BYTES]);
    dense[4] = DENSE;
    let regs = &mut dense[HEADER_BYTES..];
    for_each_run(s, |first, run, value| {
        if value > 0 {
            for i in first..first + run {
                dense_set(regs, i, value);
            }
        }
    })?;
    *s = dense;
    Ok(())
}

/// Sets register `index` to `count` if that raises it; returns whether it did. A sparse HyperLogLog is
/// updated in place exactly as Redis's `hllSparseSet` does (so the bytes stay identical to redis-server's),
/// or made dense.
pub fn set_register(s: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    if s[4] == DENSE {
        let regs = &mut s[HEADER_BYTES..];
        if dense_get(regs, index) < count {
            dense_set(regs, index, count);
            return Ok(true);
        }
        return Ok(false);
    }
    if count > VAL_MAX_VALUE {
        return promote(s, index, count);
    }
    // Step 1: the opcode covering `index`.
    let ops_len = s.len() - HEADER_BYTES;
    let (mut at, mut first) = (0usize, 0usize);
    let mut prev: Option<usize> = None;
    let (mut bytes, mut span, mut value);
    loop {
        let op = sparse_op(&s[HEADER_BYTES..], at).ok_or(Corrupt)?;
        (bytes, span, value) = op;
        if index < first + span {
            break;
        }
        prev = Some(at);
        at += bytes;
        first += span;
        if at >= ops_len {
            return Err(Corrupt);
        }
    }
    let is_val = s[HEADER_BYTES + at] & 0x80 != 0;
    let p = HEADER_BYTES + at;
    let merge_from;
    if is_val && value >= count {
        return Ok(false);
    }
    if (is_val || bytes == 1) && span == 1 {
        // A VAL or ZERO opcode of one register: set it in place.
        s[p] = val_op(count, 1);
        merge_from = prev;
    } else {
        // Split the opcode around the register.
        let last = first + span - 1;
        let mut seq = Vec::with_capacity(5);
        if is_val {
            if index != first {
                seq.push(val_op(value, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(value, last - index));
            }
        } else {
            if index != first {
                zero_run(&mut seq, index - first);
            }
            seq.push(val_op(count, 1));
            if index != last {
                zero_run(&mut seq, last - index);
            }
        }
        let grows = seq.len() > bytes;
        if grows && s.len() + seq.len() - bytes > SPARSE_MAX_BYTES {
            return promote(s, index, count);
        }
        s.splice(p..p + bytes, seq);
        merge_from = prev;
    }
    // Step 4: merge adjacent VAL opcodes of the same value, scanning up to 5 opcodes from the previous one.
    let mut q = HEADER_BYTES + merge_from.unwrap_or(0);
    let mut scan = 5;
    while q < s.len() && scan > 0 {
        scan -= 1;
        let b = s[q];
        if b & 0xc0 == 0x40 {
            q += 2;
            continue;
        }
        if b & 0xc0 == 0 {
            q += 1;
            continue;
        }
        if q + 1 < s.len() && s[q + 1] & 0x80 != 0 {
            let (v1, v2) = (((b >> 2) & 0x1f) + 1, ((s[q + 1] >> 2) & 0x1f) + 1);
            let len = usize::from(b & 0x3) + usize::from(s[q + 1] & 0x3) + 2;
            if v1 == v2 && len <= VAL_MAX_LEN {
                s[q + 1] = val_op(v1, len);
                s.remove(q);
                continue;
            }
        }
        q += 1;
    }
    invalidate_cache(s);
    Ok(true)
}

fn promote(s: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    to_dense(s)?;
    let regs = &mut s[HEADER_BYTES..];
    let changed = dense_get(regs, index) < count;
    if changed {
        dense_set(regs, index, count);
    }
    Ok(changed)
}

/// Adds an element; returns whether a register changed.
pub fn add(s: &mut Vec<u8>, element: &[u8]) -> Result<bool, Corrupt> {
    let (index, count) = pattern(element);
    set_register(s, index, count)
}

/// The registers of one or more HyperLogLogs merged (each register the maximum), as PFCOUNT of several
/// keys and PFMERGE compute them.
#[derive(Clone)]
pub struct Registers(Box<[u8; REGISTERS]>);

impl Default for Registers {
    fn default() -> Self {
        Registers(Box::new([0; REGISTERS]))
    }
}

impl Registers {
    /// Merges a HyperLogLog string in; `Err` if it is not one or its registers cannot be read.
    pub fn merge_from(&mut self, s: &[u8]) -> Result<(), Corrupt> {
        if !is_hll(s) {
            return Err(Corrupt);
        }
        let regs = &mut self.0;
        for_each_run(s, |first, run, value| {
            if value > 0 {
                for r in &mut regs[first..first + run] {
                    *r = (*r).max(value);
                }
            }
        })
    }

    pub fn get(&self, i: usize) -> u8 {
        self.0[i]
    }

    /// The estimated cardinality.
    pub fn count(&self) -> u64 {
        let mut histogram = [0u32; 64];
        for &r in self.0.iter() {
            histogram[usize::from(r)] += 1;
        }
        estimate(&histogram)
    }
}

/// The estimated cardinality of a HyperLogLog string (without its cache).
pub fn count(s: &[u8]) -> Result<u64, Corrupt> {
    let mut histogram = [0u32; 64];
    for_each_run(s, |_, run, value| histogram[usize::from(value)] += run as u32)?;
    Ok(estimate(&histogram))
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let z_prev = z;
        z += x * y;
        y += y;
        if z_prev == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let z_prev = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z_prev == z {
            return z / 3.0;
        }
    }
}

/// Ertl's estimator over a register histogram, as Redis 7's `hllCount`.
fn estimate(histogram: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - f64::from(histogram[Q as usize + 1])) / m);
    for j in (1..=Q as usize).rev() {
        z += f64::from(histogram[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histogram[0]) / m);
    (ALPHA_INF * m * m / z).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_hll_is_redis_s() {
        let h = new_sparse();
        assert_eq!(h.len(), 18);
        assert_eq!(&h[16..], &[0x7f, 0xff]);
        assert!(is_hll(&h));
        assert_eq!(count(&h), Ok(0));
    }

    #[test]
    fn murmur_matches_known_values() {
        // Empty input: only the finalizer runs over seed ^ 0.
        let h = murmur64a(b"", 0);
        assert_eq!(h, 0);
        assert_ne!(murmur64a(b"a", 0xadc8_3b19), murmur64a(b"b", 0xadc8_3b19));
    }

    #[test]
    fn sparse_and_dense_count_alike_and_stay_within_the_error() {
        let mut h = new_sparse();
        let n = 100_000;
        for i in 0..n {
            add(&mut h, format!("element:{i}").as_bytes()).unwrap();
        }
        assert_eq!(h[4], DENSE, "100k elements make it dense");
        let c = count(&h).unwrap() as f64;
        assert!((c - n as f64).abs() / (n as f64) < 0.03, "{c}");
        let mut few = new_sparse();
        for i in 0..100 {
            add(&mut few, format!("x{i}").as_bytes()).unwrap();
        }
        assert_eq!(few[4], SPARSE);
        let sparse_count = count(&few).unwrap();
        let mut dense = few.clone();
        to_dense(&mut dense).unwrap();
        assert_eq!(count(&dense).unwrap(), sparse_count);
        let mut r = Registers::default();
        r.merge_from(&few).unwrap();
        assert_eq!(r.count(), sparse_count);
        assert!((90..=110).contains(&sparse_count), "{sparse_count}");
    }

    #[test]
    fn damaged_registers_are_refused() {
        let mut h = new_sparse();
        h.truncate(17);
        assert_eq!(count(&h), Err(Corrupt));
        let mut r = Registers::default();
        assert_eq!(r.merge_from(b"HYLL\x00short"), Err(Corrupt));
    }
}
