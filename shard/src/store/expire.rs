//! Active expiry: a background thread that removes keys whose TTL has passed even if nobody reads them.
//!
//! Like Redis's `activeExpireCycle`: ten times a second, each stripe in turn samples up to 20 keys that
//! have a TTL and removes the expired ones, repeating on a stripe while more than a quarter of its sample
//! was expired; a cycle stops after 25 ms of work so that it never takes more than a quarter of a core.
//! It runs on its own thread rather than on the async runtime, so a long cycle never delays a client.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use tokio_util::sync::CancellationToken;

use super::Store;
use crate::clock::now_ms;

const CYCLE_INTERVAL: Duration = Duration::from_millis(100);
const CYCLE_BUDGET: Duration = Duration::from_millis(25);
const SAMPLES_PER_ROUND: usize = 20;

/// Starts the active expiry thread; it stops when `stop` is cancelled.
pub fn spawn_active_expiry(store: Arc<Store>, stop: CancellationToken) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("active-expiry".into()).spawn(move || {
        let mut rng = rand::rngs::SmallRng::from_os_rng();
        let mut next_stripe = 0;
        while !stop.is_cancelled() {
            let started = Instant::now();
            next_stripe = run_cycle(&store, next_stripe, started + CYCLE_BUDGET, &mut rng);
            std::thread::sleep(CYCLE_INTERVAL.saturating_sub(started.elapsed()));
        }
    })
}

/// One cycle over the stripes, starting at `first`; returns where the next cycle should start.
pub(crate) fn run_cycle(store: &Store, first: usize, deadline: Instant, rng: &mut impl rand::Rng) -> usize {
    let n = store.stripe_count();
    for k in 0..n {
        let index = (first + k) % n;
        loop {
            let (sampled, expired, _) = store.lock_index(index).expire_sample(SAMPLES_PER_ROUND, now_ms(), rng);
            if Instant::now() >= deadline {
                return (index + 1) % n;
            }
            if sampled == 0 || expired * 4 <= sampled {
                break;
            }
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{string_entry_cost, NO_SLOT};

    #[test]
    fn cycles_remove_untouched_expired_keys() {
        let store = Store::new(0, 8);
        let past = now_ms() - 1;
        for i in 0..10_000 {
            let key = format!("k{i}");
            let h = store.hash(key.as_bytes());
            let mut g = store.lock(h);
            g.reserve(string_entry_cost(key.len(), 1), NO_SLOT).unwrap();
            let slot = g.insert_string(h, key.as_bytes(), b"v");
            g.set_expire(slot, Some(if i % 2 == 0 { past } else { u64::MAX }));
        }
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let mut next = 0;
        for _ in 0..1000 {
            next = run_cycle(&store, next, Instant::now() + CYCLE_BUDGET, &mut rng);
        }
        let stats = store.stats();
        // Sampling stops on a stripe once at most a quarter of a sample is expired, as in Redis; with half
        // the keys immortal most of the expired ones are still found within these cycles.
        assert!(stats.expired_keys >= 4_000, "{stats:?}");
        assert_eq!(stats.keys as u64 + stats.expired_keys, 10_000);
    }
}
