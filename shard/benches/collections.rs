//! Collection hot paths without the network: what LPUSH, RPOP, SADD, HSET and ZADD do to one growing
//! collection, as `redis-benchmark`'s default tests do (one key, 64-byte elements or random members).
//! Run with `cargo bench -p ringcache-shard --bench collections`.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ringcache_shard::store::{Hash, List, Set, ZSet};

fn collections(c: &mut Criterion) {
    let value = [b'x'; 64];
    c.bench_function("list_push_front_64b", |b| {
        b.iter_batched_ref(
            List::new,
            |l| {
                for _ in 0..1000 {
                    l.push_front(&value);
                }
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("list_push_back_64b", |b| {
        b.iter_batched_ref(
            List::new,
            |l| {
                for _ in 0..1000 {
                    l.push_back(&value);
                }
            },
            BatchSize::SmallInput,
        )
    });
    let mut full = List::new();
    for _ in 0..100_000 {
        full.push_back(&value);
    }
    c.bench_function("list_pop_front_then_push_back", |b| {
        b.iter(|| {
            let n = full.pop_front(|e| e.len()).unwrap();
            full.push_back(&value[..n]);
        })
    });
    let members: Vec<Vec<u8>> =
        (0..100_000u32).map(|i| format!("element:{}", i.wrapping_mul(2_654_435_761) % 100_000).into_bytes()).collect();
    let mut i = 0;
    let mut set = Set::new();
    c.bench_function("set_insert_random_of_100k", |b| {
        b.iter(|| {
            i = (i + 1) % members.len();
            black_box(set.insert(&members[i]))
        })
    });
    let mut hash = Hash::new();
    c.bench_function("hash_insert_random_of_100k", |b| {
        b.iter(|| {
            i = (i + 1) % members.len();
            black_box(hash.insert(&members[i], &value[..8]))
        })
    });
    let mut z = ZSet::new();
    c.bench_function("zset_insert_random_of_100k", |b| {
        b.iter(|| {
            i = (i + 1) % members.len();
            black_box(z.insert(&members[i], (i % 1000) as f64))
        })
    });
}

criterion_group!(benches, collections);
criterion_main!(benches);
