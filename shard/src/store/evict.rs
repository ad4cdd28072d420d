//! Eviction policies (`--maxmemory-policy`), with Redis's names and semantics, and Redis's LFU counter.
//!
//! The settings live in atomics inside the shared [`super::Budget`]: a stripe reads them (relaxed loads)
//! when it records an access or picks a victim, so `CONFIG SET maxmemory-policy` takes effect at once,
//! without a lock.
//!
//! Every entry has one 32-bit access word beside it in the slab (see `stripe.rs`), read as Redis reads its
//! 24-bit `lru` field:
//! - LRU policies: the last access time in seconds (Redis's LRU clock has a one-second resolution too).
//! - LFU policies: `(minutes & 0xffff) << 8 | counter`, Redis's layout: the 8-bit logarithmic counter
//!   ([`lfu_log_incr`]) and the time of its last decrement, in minutes ([`lfu_decr_and_return`]).
//!
//! How victims are chosen, against Redis (which samples `maxmemory-samples` keys across the whole
//! keyspace into a pool of 16 candidates kept between evictions):
//! - `allkeys-lru`: exact, the tail of the stripe's recency list (better than Redis's approximation).
//! - `volatile-lru`: exact within a bound, the least recently used key with a TTL found walking from the
//!   tail (at most [`VOLATILE_LRU_WALK`] keys), else the oldest of `maxmemory-samples` sampled TTL keys.
//! - `allkeys-lfu`, `volatile-lfu`, `volatile-ttl`: the best of `maxmemory-samples` keys sampled in the
//!   stripe (all keys, or the keys with a TTL), without Redis's pool.
//! - `*-random`: one random key of the stripe (with a TTL for `volatile-random`).
//! - `noeviction`, or a volatile policy with no key with a TTL left: nothing is evicted and writes that
//!   need memory fail with `-OOM command not allowed when used memory > 'maxmemory'.`
//!
//! Eviction starts in the writing stripe and then goes round the other stripes, so a victim is the best
//! within a stripe, not across the whole store.

use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};

/// Redis's `maxmemory-policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Policy {
    NoEviction = 0,
    AllkeysLru = 1,
    AllkeysLfu = 2,
    AllkeysRandom = 3,
    VolatileLru = 4,
    VolatileLfu = 5,
    VolatileRandom = 6,
    VolatileTtl = 7,
}

const ALL_POLICIES: [Policy; 8] = [
    Policy::NoEviction,
    Policy::AllkeysLru,
    Policy::AllkeysLfu,
    Policy::AllkeysRandom,
    Policy::VolatileLru,
    Policy::VolatileLfu,
    Policy::VolatileRandom,
    Policy::VolatileTtl,
];

impl Policy {
    /// Redis's name for the policy.
    pub fn name(self) -> &'static str {
        match self {
            Policy::NoEviction => "noeviction",
            Policy::AllkeysLru => "allkeys-lru",
            Policy::AllkeysLfu => "allkeys-lfu",
            Policy::AllkeysRandom => "allkeys-random",
            Policy::VolatileLru => "volatile-lru",
            Policy::VolatileLfu => "volatile-lfu",
            Policy::VolatileRandom => "volatile-random",
            Policy::VolatileTtl => "volatile-ttl",
        }
    }

    /// Whether the policy tracks access frequency (Redis's `MAXMEMORY_FLAG_LFU`).
    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllkeysLfu | Policy::VolatileLfu)
    }

    fn from_u8(v: u8) -> Policy {
        ALL_POLICIES.get(v as usize).copied().unwrap_or(Policy::AllkeysLru)
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A `maxmemory-policy` value that is not one of Redis's eight.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid maxmemory-policy '{0}' (expected one of noeviction, allkeys-lru, allkeys-lfu, allkeys-random, volatile-lru, volatile-lfu, volatile-random, volatile-ttl)")]
pub struct UnknownPolicy(pub String);

impl std::str::FromStr for Policy {
    type Err = UnknownPolicy;
    fn from_str(s: &str) -> Result<Policy, UnknownPolicy> {
        ALL_POLICIES.iter().copied().find(|p| p.name().eq_ignore_ascii_case(s)).ok_or_else(|| UnknownPolicy(s.into()))
    }
}

/// Redis's `LFU_INIT_VAL`: the counter of a new key, so that it is not evicted before it can be used.
pub const LFU_INIT_VAL: u8 = 5;

/// At most this many keys are walked from the LRU tail looking for one with a TTL (`volatile-lru`).
pub const VOLATILE_LRU_WALK: usize = 1024;

/// The eviction settings, read lock-free by every stripe.
#[derive(Debug)]
pub struct EvictionSettings {
    policy: AtomicU8,
    samples: AtomicU32,
    lfu_log_factor: AtomicU32,
    lfu_decay_time: AtomicU32,
}

impl Default for EvictionSettings {
    fn default() -> Self {
        EvictionSettings {
            policy: AtomicU8::new(Policy::AllkeysLru as u8),
            samples: AtomicU32::new(5),
            lfu_log_factor: AtomicU32::new(10),
            lfu_decay_time: AtomicU32::new(1),
        }
    }
}

impl EvictionSettings {
    #[inline]
    pub fn policy(&self) -> Policy {
        Policy::from_u8(self.policy.load(Ordering::Relaxed))
    }

    /// Whether accesses update the LFU counter (else the access time). One relaxed load.
    #[inline]
    pub fn tracks_lfu(&self) -> bool {
        let p = self.policy.load(Ordering::Relaxed);
        p == Policy::AllkeysLfu as u8 || p == Policy::VolatileLfu as u8
    }

    pub fn set_policy(&self, policy: Policy) {
        self.policy.store(policy as u8, Ordering::Relaxed);
    }

    /// `maxmemory-samples` (at least 1).
    pub fn samples(&self) -> usize {
        self.samples.load(Ordering::Relaxed).max(1) as usize
    }

    pub fn set_samples(&self, samples: u32) {
        self.samples.store(samples.max(1), Ordering::Relaxed);
    }

    pub fn lfu_log_factor(&self) -> u32 {
        self.lfu_log_factor.load(Ordering::Relaxed)
    }

    pub fn set_lfu_log_factor(&self, factor: u32) {
        self.lfu_log_factor.store(factor, Ordering::Relaxed);
    }

    /// `lfu-decay-time` in minutes (0: counters never decay).
    pub fn lfu_decay_time(&self) -> u32 {
        self.lfu_decay_time.load(Ordering::Relaxed)
    }

    pub fn set_lfu_decay_time(&self, minutes: u32) {
        self.lfu_decay_time.store(minutes, Ordering::Relaxed);
    }
}

/// The access word of a new or just accessed key under an LRU policy: seconds.
#[inline]
pub fn lru_word(now_ms: u64) -> u32 {
    (now_ms / 1000) as u32
}

/// Redis's `LFUGetTimeInMinutes`: minutes, modulo 2^16.
#[inline]
pub fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) & 0xffff) as u32
}

/// The access word of a new key under an LFU policy.
pub fn lfu_new_word(now_ms: u64) -> u32 {
    (lfu_minutes(now_ms) << 8) | u32::from(LFU_INIT_VAL)
}

/// Redis's `LFUTimeElapsed`: minutes since `ldt`, modulo 2^16.
fn lfu_time_elapsed(ldt: u32, now_min: u32) -> u32 {
    if now_min >= ldt {
        now_min - ldt
    } else {
        65535 - ldt + now_min
    }
}

/// Redis's `LFUDecrAndReturn`: the counter, decremented by one per `decay_time` minutes since its last
/// decrement (without storing it).
pub fn lfu_decr_and_return(word: u32, now_ms: u64, decay_time: u32) -> u8 {
    let ldt = (word >> 8) & 0xffff;
    let counter = (word & 0xff) as u8;
    let periods = lfu_time_elapsed(ldt, lfu_minutes(now_ms)).checked_div(decay_time).unwrap_or(0);
    if periods > u32::from(counter) {
        0
    } else {
        counter - periods as u8
    }
}

/// Redis's `LFULogIncr`: increments the counter with probability 1 / ((counter - LFU_INIT_VAL) * factor + 1);
/// `r` is uniform in [0, 1).
pub fn lfu_log_incr(counter: u8, factor: u32, r: f64) -> u8 {
    if counter == 255 {
        return 255;
    }
    let base = f64::from(counter.saturating_sub(LFU_INIT_VAL));
    let p = 1.0 / (base * f64::from(factor) + 1.0);
    if r < p {
        counter + 1
    } else {
        counter
    }
}

/// The access word after an access under an LFU policy (Redis's `updateLFU`).
pub fn lfu_accessed(word: u32, now_ms: u64, settings: &EvictionSettings, r: f64) -> u32 {
    let counter = lfu_decr_and_return(word, now_ms, settings.lfu_decay_time());
    let counter = lfu_log_incr(counter, settings.lfu_log_factor(), r);
    (lfu_minutes(now_ms) << 8) | u32::from(counter)
}

/// A small xorshift generator for sampling and the LFU coin (no allocation, no lock).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n` (`n` > 0).
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Uniform in [0, 1).
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_round_trip() {
        for p in ALL_POLICIES {
            assert_eq!(p.name().parse::<Policy>(), Ok(p));
            assert_eq!(Policy::from_u8(p as u8), p);
        }
        assert!("lru".parse::<Policy>().is_err());
    }

    #[test]
    fn lfu_counter_is_logarithmic_and_decays() {
        let s = EvictionSettings::default();
        let mut rng = Rng::new(42);
        let now = 10 * 60_000;
        let mut word = lfu_new_word(now);
        for _ in 0..1_000 {
            word = lfu_accessed(word, now, &s, rng.unit());
        }
        let c = lfu_decr_and_return(word, now, 1);
        // Redis's table for lfu-log-factor 10: 1k hits give about 18.
        assert!((12..=24).contains(&c), "{c}");
        // Three minutes later the counter is three lower (decay time 1 minute).
        assert_eq!(lfu_decr_and_return(word, now + 3 * 60_000, 1), c - 3);
        assert_eq!(lfu_decr_and_return(word, now + 300 * 60_000, 1), 0);
        assert_eq!(lfu_decr_and_return(word, now + 300 * 60_000, 0), c);
        assert_eq!(lfu_log_incr(255, 10, 0.0), 255);
        assert_eq!(lfu_log_incr(5, 10, 0.99), 6);
    }
}
