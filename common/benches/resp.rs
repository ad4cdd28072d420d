//! RESP scanning and reply encoding: our scanner and reply writer against the `redis-protocol` crate.
//!
//! Run with `cargo bench -p ringcache-common --bench resp`. Results (2 cores, this project's dev machine)
//! are recorded in docs/BENCHMARKS.md.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::encode::extend_encode;
use redis_protocol::resp2::types::BytesFrame;
use ringcache_common::resp::{Limits, ReplyWriter, RequestScanner};

fn pipeline(n: usize) -> BytesMut {
    let mut wire = BytesMut::new();
    for i in 0..n {
        let key = format!("key:{i:09}");
        if i % 2 == 0 {
            wire.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).as_bytes());
        } else {
            wire.extend_from_slice(
                format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$32\r\n{}\r\n", key.len(), "v".repeat(32)).as_bytes(),
            );
        }
    }
    wire
}

fn scan(c: &mut Criterion) {
    let wire = pipeline(1000);
    let mut g = c.benchmark_group("scan_1000_get_set");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("ringcache_scanner", |b| {
        b.iter(|| {
            let mut buf = wire.clone();
            let mut sc = RequestScanner::new();
            let mut n = 0;
            while let Some(r) = sc.next(&mut buf, &Limits::DEFAULT).unwrap() {
                n += r.arg(1).len();
            }
            black_box(n)
        })
    });
    g.bench_function("redis_protocol_decode", |b| {
        b.iter(|| {
            let mut buf = wire.clone();
            let mut n = 0;
            while let Some((f, _, _)) = decode_bytes_mut(&mut buf).unwrap() {
                if let BytesFrame::Array(items) = f {
                    n += items.len();
                }
            }
            black_box(n)
        })
    });
    g.finish();

    // A 4 MB MSET arriving in 16 KB reads: we resume; redis-protocol must re-decode from the start.
    let mut args = vec![BytesFrame::BulkString(Bytes::from_static(b"MSET"))];
    for i in 0..64 {
        args.push(BytesFrame::BulkString(Bytes::from(format!("key{i}"))));
        args.push(BytesFrame::BulkString(Bytes::from(vec![b'x'; 64 * 1024])));
    }
    let mut big = BytesMut::new();
    extend_encode(&mut big, &BytesFrame::Array(args), false).unwrap();
    let mut g = c.benchmark_group("scan_4mb_mset_in_16kb_reads");
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.sample_size(10);
    g.bench_function("ringcache_scanner", |b| {
        b.iter(|| {
            let mut sc = RequestScanner::new();
            let mut buf = BytesMut::with_capacity(big.len());
            let mut done = 0;
            for chunk in big.chunks(16 * 1024) {
                buf.extend_from_slice(chunk);
                if let Some(r) = sc.next(&mut buf, &Limits::DEFAULT).unwrap() {
                    done = r.argc();
                }
            }
            black_box(done)
        })
    });
    g.bench_function("redis_protocol_decode", |b| {
        b.iter(|| {
            let mut buf = BytesMut::with_capacity(big.len());
            let mut done = 0;
            for chunk in big.chunks(16 * 1024) {
                buf.extend_from_slice(chunk);
                if let Some((BytesFrame::Array(items), _, _)) = decode_bytes_mut(&mut buf).unwrap() {
                    done = items.len();
                }
            }
            black_box(done)
        })
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let value = vec![b'v'; 64];
    let mut g = c.benchmark_group("encode_1000_bulk_replies");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("ringcache_reply_writer", |b| {
        let mut out = BytesMut::with_capacity(128 * 1024);
        b.iter(|| {
            out.clear();
            for _ in 0..1000 {
                out.bulk(&value);
            }
            black_box(out.len())
        })
    });
    let frame_value = Bytes::from(value.clone());
    g.bench_function("redis_protocol_extend_encode", |b| {
        let mut out = BytesMut::with_capacity(128 * 1024);
        b.iter(|| {
            out.clear();
            for _ in 0..1000 {
                extend_encode(&mut out, &BytesFrame::BulkString(frame_value.clone()), false).unwrap();
            }
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, scan, encode);
criterion_main!(benches);
