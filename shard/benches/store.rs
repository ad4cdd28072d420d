//! Store hot path: GET and SET through one stripe lock, without the network.
//! Run with `cargo bench -p ringcache-shard --bench store`.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use ringcache_shard::store::{string_entry_cost, Store, NO_SLOT};

fn store_ops(c: &mut Criterion) {
    let store = Store::new(0, 64);
    let keys: Vec<Vec<u8>> = (0..100_000).map(|i| format!("key:{i:09}").into_bytes()).collect();
    let value = [b'v'; 32];
    for k in &keys {
        let h = store.hash(k);
        let mut g = store.lock(h);
        g.reserve(string_entry_cost(k.len(), value.len()), NO_SLOT).unwrap();
        g.insert_string(h, k, &value);
    }
    let mut i = 0;
    c.bench_function("store_get_hit", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            let k = &keys[i];
            let h = store.hash(k);
            let mut g = store.lock(h);
            black_box(g.lookup(h, k, 0).map(|s| g.string(s).len()))
        })
    });
    c.bench_function("store_overwrite_same_size", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            let k = &keys[i];
            let h = store.hash(k);
            let mut g = store.lock(h);
            if let Some(s) = g.lookup(h, k, 0) {
                g.replace_with_string(s, &value);
            }
        })
    });
}

criterion_group!(benches, store_ops);
criterion_main!(benches);
