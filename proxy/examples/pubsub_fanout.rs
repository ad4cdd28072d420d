//! Pub/sub fan-out benchmark: many subscribers on one endpoint (a proxy, or redis-server for reference),
//! one publisher at a fixed rate; reports messages delivered against expected and the delivery latency
//! (publish sent → message read, from a timestamp in the payload).
//!
//! `cargo run --release -p ringcache-proxy --example pubsub_fanout -- PORT SUBSCRIBERS CHANNELS RATE SECONDS`
//! (see bench/pubsub_fanout.sh, which raises the open-file limit and starts the servers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use ringcache_common::resp::{ReplyScanner, ReplyValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

fn arg(i: usize, default: u64) -> u64 {
    std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let port = arg(1, 6380) as u16;
    let subscribers = arg(2, 10_000) as usize;
    let channels = arg(3, 1_000) as usize;
    let rate = arg(4, 10_000);
    let seconds = arg(5, 10);
    let delivered = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new(3).unwrap()));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let setup = Instant::now();
    for i in 0..subscribers {
        let (delivered, latencies, ready) = (delivered.clone(), latencies.clone(), ready_tx.clone());
        let mut stream = loop {
            match TcpStream::connect(("127.0.0.1", port)).await {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        };
        tokio::spawn(async move {
            let request = format!("SUBSCRIBE ch{}\r\n", i % channels);
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut buf = BytesMut::with_capacity(4096);
            let mut scanner = ReplyScanner::new();
            let mut local = Histogram::<u64>::new(3).unwrap();
            let mut confirmed = false;
            loop {
                match stream.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                while let Ok(Some(frame)) = scanner.next(&mut buf) {
                    if !confirmed {
                        confirmed = true;
                        let _ = ready.send(());
                        continue;
                    }
                    let Some(items) = ReplyValue::parse(&frame).and_then(ReplyValue::into_items) else { continue };
                    let Some(payload) = items.get(2).and_then(ReplyValue::as_bytes) else { continue };
                    let sent: u64 = std::str::from_utf8(payload).ok().and_then(|p| p.parse().ok()).unwrap_or(0);
                    let _ = local.record(now_us().saturating_sub(sent));
                    if delivered.fetch_add(1, Ordering::Relaxed) % 1024 == 0 {
                        latencies.lock().add(&local).unwrap();
                        local.reset();
                    }
                }
            }
            latencies.lock().add(&local).unwrap();
        });
    }
    drop(ready_tx);
    for _ in 0..subscribers {
        ready_rx.recv().await.expect("every subscriber confirmed");
    }
    eprintln!("{subscribers} subscribers on {channels} channels ready in {:?}", setup.elapsed());

    let mut publisher = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut reader, mut writer) = publisher.split();
    let total = rate * seconds;
    let read_replies = async {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let mut scanner = ReplyScanner::new();
        let mut replies = 0u64;
        while replies < total {
            if reader.read_buf(&mut buf).await.unwrap() == 0 {
                break;
            }
            while let Ok(Some(_)) = scanner.next(&mut buf) {
                replies += 1;
            }
        }
        replies
    };
    let publish = async {
        let started = Instant::now();
        let per_tick = (rate / 1000).max(1);
        let mut sent = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        while sent < total {
            tick.tick().await;
            // Catch up to the schedule (a late tick sends more).
            let due = ((started.elapsed().as_micros() as u64 * rate) / 1_000_000)
                .min(total)
                .max(sent + per_tick.min(total - sent));
            let mut batch = Vec::with_capacity(((due - sent) * 48) as usize);
            while sent < due {
                let payload = now_us().to_string();
                let channel = format!("ch{}", sent as usize % channels);
                batch.extend_from_slice(
                    format!(
                        "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{channel}\r\n${}\r\n{payload}\r\n",
                        channel.len(),
                        payload.len()
                    )
                    .as_bytes(),
                );
                sent += 1;
            }
            writer.write_all(&batch).await.unwrap();
        }
        started.elapsed()
    };
    let (replies, took) = tokio::join!(read_replies, publish);
    // Each channel has subscribers/channels subscribers (the remainder spread over the first ones).
    let expected: u64 = (0..total)
        .map(|m| {
            let ch = (m as usize) % channels;
            (subscribers / channels + usize::from(ch < subscribers % channels)) as u64
        })
        .sum();
    let deadline = Instant::now() + Duration::from_secs(10);
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let h = latencies.lock().clone();
    println!(
        "{{\"port\":{port},\"subscribers\":{subscribers},\"channels\":{channels},\"rate\":{rate},\"published\":{total},\
         \"publish_replies\":{replies},\"publish_seconds\":{:.2},\"expected\":{expected},\"delivered\":{},\
         \"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{}}}",
        took.as_secs_f64(),
        delivered.load(Ordering::Relaxed),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    );
    std::process::exit(0);
}
