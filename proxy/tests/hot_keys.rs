//! `--hot-keys N`: the proxy exports the keys it sees most as `ringcache_proxy_hot_keys{key}` (a bounded
//! sketch of sampled requests), label values escaped; with the default (0) the family is absent.
#![allow(clippy::unwrap_used)]

mod support;

use support::{sample, scrape, start_proxy_with_metrics, start_shard};

#[test]
fn hot_keys_are_exported_and_bounded() {
    let shard = start_shard(&[]);
    let (proxy, metrics_port) =
        start_proxy_with_metrics(&[("s1", shard.addr())], &["--hot-keys", "3", "--hot-keys-sample", "1"]);
    let mut con = proxy.client();
    let mut p = redis::pipe();
    // 2000 keys read once, then three read 200, 100 and 50 times (one with a quote and a newline in its
    // name, which the exposition format escapes).
    for i in 0..2000 {
        p.cmd("GET").arg(format!("cold:{i}")).ignore();
    }
    let hot = [("hot:a", 200), ("hot:\"b\"\n", 100), ("hot:c", 50)];
    for round in 0..200 {
        for (k, n) in hot {
            if round < n {
                p.cmd("INCR").arg(k).ignore();
            }
        }
    }
    p.query::<()>(&mut con).unwrap();

    let text = scrape(metrics_port);
    let series: Vec<&str> = text.lines().filter(|l| l.starts_with("ringcache_proxy_hot_keys{")).collect();
    assert_eq!(series.len(), 3, "{text}");
    let a = sample(&text, "ringcache_proxy_hot_keys", &[("key", "hot:a")]).unwrap();
    let b = sample(&text, "ringcache_proxy_hot_keys", &[("key", "hot:\\\"b\\\"\\n")]).unwrap();
    let c = sample(&text, "ringcache_proxy_hot_keys", &[("key", "hot:c")]).unwrap();
    // Space-Saving over-counts a key by at most the counter it took over: 2000 keys over 24 counters.
    let error = (2000 / 24 + 2) as f64;
    for (got, truth) in [(a, 200.0), (b, 100.0), (c, 50.0)] {
        assert!(got >= truth && got <= truth + error, "{got} for {truth}: {text}");
    }
    assert!(a > b && b > c, "{a} {b} {c}");
}

#[test]
fn sampled_counts_are_scaled_back() {
    let shard = start_shard(&[]);
    let (proxy, metrics_port) =
        start_proxy_with_metrics(&[("s1", shard.addr())], &["--hot-keys", "2", "--hot-keys-sample", "4"]);
    let mut con = proxy.client();
    let mut p = redis::pipe();
    for _ in 0..400 {
        p.cmd("GET").arg("only").ignore();
    }
    p.query::<()>(&mut con).unwrap();
    let text = scrape(metrics_port);
    let n = sample(&text, "ringcache_proxy_hot_keys", &[("key", "only")]).unwrap();
    assert!((396.0..=404.0).contains(&n), "{n}: {text}");
}

#[test]
fn hot_keys_are_off_by_default() {
    let shard = start_shard(&[]);
    let (proxy, metrics_port) = start_proxy_with_metrics(&[("s1", shard.addr())], &[]);
    let mut con = proxy.client();
    for _ in 0..100 {
        redis::cmd("GET").arg("k").query::<Option<String>>(&mut con).unwrap();
    }
    let text = scrape(metrics_port);
    assert!(!text.contains("ringcache_proxy_hot_keys"), "{text}");
}
