//! Wall-clock time in milliseconds since the Unix epoch: TTL deadlines are absolute, as in Redis.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
