//! Hot keys the proxy sees (`--hot-keys N`, off by default): a bounded Space-Saving sketch fed with one
//! request in `--hot-keys-sample` per connection, exported as the gauge `ringcache_proxy_hot_keys{key}`
//! (the estimated requests per key since start, scaled by the sampling rate).
//!
//! Space-Saving (Metwally et al.) keeps at most `capacity` counters: a key already counted is
//! incremented; a new key takes the smallest counter's place and inherits its count plus one, so a key's
//! estimate over-counts by at most that inherited error, and every key more frequent than total/capacity
//! is in the table. `capacity` is 8 x N, so the N reported are the top N with a good margin.
//!
//! Cost: a connection counts its requests in a plain field of its own; only every `sample`-th request
//! looks its first key up and takes the sketch's mutex. With `--hot-keys 0` nothing is done at all.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto;
use ringcache_common::resp::Request;

/// Counters kept per reported key.
const CAPACITY_PER_KEY: usize = 8;

/// The sketch and its settings; shared by every connection.
pub struct HotKeys {
    top: usize,
    sample_every: u32,
    sketch: Mutex<SpaceSaving>,
}

impl HotKeys {
    /// `top` keys reported (0: off, `None`), one request in `sample_every` counted.
    pub fn new(top: usize, sample_every: u32) -> Option<Arc<HotKeys>> {
        (top > 0).then(|| {
            Arc::new(HotKeys {
                top,
                sample_every: sample_every.max(1),
                sketch: Mutex::new(SpaceSaving::new(top * CAPACITY_PER_KEY)),
            })
        })
    }

    /// Called for every request a connection routes, with its own counter: counts the request's first
    /// key once every `sample_every` requests.
    #[inline]
    pub fn observe(&self, tick: &mut u32, req: &Request) {
        *tick += 1;
        if *tick < self.sample_every {
            return;
        }
        *tick = 0;
        if req.argc() < 2 {
            return;
        }
        let Some(spec) = ringcache_common::command::lookup(req.arg(0)) else { return };
        if let Some(pos) = ringcache_common::command::keys(spec, req).into_iter().next() {
            self.offer(req.arg(pos));
        }
    }

    /// Counts one sampled occurrence of `key`.
    pub fn offer(&self, key: &[u8]) {
        self.sketch.lock().offer(key);
    }

    /// The top keys with their estimated request counts (scaled by the sampling rate), largest first.
    pub fn top(&self) -> Vec<(Vec<u8>, u64)> {
        let mut top = self.sketch.lock().top(self.top);
        for (_, n) in &mut top {
            *n *= u64::from(self.sample_every);
        }
        top
    }
}

/// The Space-Saving table.
struct SpaceSaving {
    capacity: usize,
    counts: HashMap<Box<[u8]>, u64>,
}

impl SpaceSaving {
    fn new(capacity: usize) -> SpaceSaving {
        SpaceSaving { capacity: capacity.max(1), counts: HashMap::with_capacity(capacity.max(1)) }
    }

    fn offer(&mut self, key: &[u8]) {
        if let Some(n) = self.counts.get_mut(key) {
            *n += 1;
            return;
        }
        let mut inherited = 0;
        if self.counts.len() >= self.capacity {
            // Replace the smallest counter (a linear scan: capacity is small, and only sampled requests
            // of keys not already counted get here).
            if let Some((min_key, &min)) = self.counts.iter().min_by_key(|(_, &n)| n) {
                let min_key = min_key.clone();
                self.counts.remove(&min_key);
                inherited = min;
            }
        }
        self.counts.insert(key.into(), inherited + 1);
    }

    fn top(&self, n: usize) -> Vec<(Vec<u8>, u64)> {
        let mut all: Vec<(Vec<u8>, u64)> = self.counts.iter().map(|(k, &c)| (k.to_vec(), c)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}

/// A key as a Prometheus label value: UTF-8 text as is (the exposition format escapes `\`, `"` and
/// newlines), any other byte as `\xNN`, as redis-cli prints binary keys.
pub fn label_value(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let mut out = String::with_capacity(key.len() * 2);
            for chunk in key.utf8_chunks() {
                out.push_str(chunk.valid());
                for b in chunk.invalid() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            out
        }
    }
}

/// The `ringcache_proxy_hot_keys` gauge family, read from the sketch at each scrape.
pub struct HotKeysCollector {
    hot: Arc<HotKeys>,
    desc: Desc,
}

pub const METRIC_NAME: &str = "ringcache_proxy_hot_keys";
const METRIC_HELP: &str = "Estimated requests per key since start, for the most requested keys the proxy sampled \
                           (--hot-keys, --hot-keys-sample).";

impl HotKeysCollector {
    pub fn new(hot: Arc<HotKeys>) -> prometheus::Result<HotKeysCollector> {
        let desc = Desc::new(METRIC_NAME.into(), METRIC_HELP.into(), vec!["key".into()], HashMap::new())?;
        Ok(HotKeysCollector { hot, desc })
    }
}

impl Collector for HotKeysCollector {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        let mut family = proto::MetricFamily::default();
        family.set_name(METRIC_NAME.into());
        family.set_help(METRIC_HELP.into());
        family.set_field_type(proto::MetricType::GAUGE);
        let metrics = self
            .hot
            .top()
            .into_iter()
            .map(|(key, n)| {
                let mut label = proto::LabelPair::default();
                label.set_name("key".into());
                label.set_value(label_value(&key));
                let mut gauge = proto::Gauge::default();
                gauge.set_value(n as f64);
                let mut m = proto::Metric::default();
                m.set_label(vec![label]);
                m.set_gauge(gauge);
                m
            })
            .collect::<Vec<_>>();
        family.set_metric(metrics);
        vec![family]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_saving_finds_the_frequent_keys_in_bounded_space() {
        let hot = HotKeys::new(3, 1).unwrap();
        // Three hot keys among 10 000 keys seen once each.
        for i in 0..10_000u32 {
            hot.offer(format!("cold:{i}").as_bytes());
            if i % 10 == 0 {
                hot.offer(b"hot:a");
                hot.offer(b"hot:b");
            }
            if i % 20 == 0 {
                hot.offer(b"hot:c");
            }
        }
        let top = hot.top();
        let keys: Vec<&[u8]> = top.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys.len(), 3);
        assert!(keys.contains(&&b"hot:a"[..]) && keys.contains(&&b"hot:b"[..]) && keys.contains(&&b"hot:c"[..]));
        assert!(hot.sketch.lock().counts.len() <= 3 * CAPACITY_PER_KEY);
        // Estimates never under-count.
        assert!(top.iter().all(|(k, n)| k != b"hot:a" || *n >= 1000));
    }

    #[test]
    fn off_when_zero_and_labels_escape_binary() {
        assert!(HotKeys::new(0, 8).is_none());
        assert_eq!(label_value(b"user:1"), "user:1");
        assert_eq!(label_value(b"a\xffb"), "a\\xffb");
    }
}
