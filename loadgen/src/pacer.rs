//! Precise waiting for the open loop's send times.
//!
//! tokio's timer wheel has millisecond resolution: a request due at t is written up to a millisecond or two
//! later, and since open-loop latency is (rightly) counted from t, the generator's own lateness would show
//! up as server latency. On Linux a [`Pacer`] waits on a `timerfd` instead, armed to the exact due time and
//! registered with the same reactor as the sockets, so the writer wakes within microseconds of it. Elsewhere
//! (or if a timerfd cannot be created) it falls back to tokio's timer. Either way the lag that remains is
//! measured and reported (`send_lag`).

use std::time::{Duration, Instant};

/// A due time closer than this counts as now: waking up would take longer than waiting.
const SLACK: Duration = Duration::from_micros(20);

/// Waits until a given instant, as precisely as the platform allows.
pub struct Pacer {
    #[cfg(target_os = "linux")]
    timer: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl Pacer {
    /// Must be called inside a tokio runtime (the timerfd registers with its reactor).
    pub fn new() -> Pacer {
        #[cfg(target_os = "linux")]
        {
            use rustix::time::{timerfd_create, TimerfdClockId, TimerfdFlags};
            // `AsyncFd::new` is deprecated because it cannot check that the caller owns the descriptor; an
            // `OwnedFd` moved into it does, for the `AsyncFd`'s whole life. Its replacement, `register`, is
            // `unsafe`, which this workspace forbids.
            #[allow(deprecated)]
            let timer = timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC)
                .ok()
                .and_then(|fd| tokio::io::unix::AsyncFd::new(fd).ok());
            Pacer { timer }
        }
        #[cfg(not(target_os = "linux"))]
        Pacer {}
    }

    /// Whether waits use a high-resolution timer.
    pub fn is_precise(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.timer.is_some();
        #[cfg(not(target_os = "linux"))]
        false
    }

    /// Returns at `due` (or at once if it has passed).
    pub async fn sleep_until(&self, due: Instant) {
        let now = Instant::now();
        if due <= now + SLACK {
            return;
        }
        #[cfg(target_os = "linux")]
        if let Some(timer) = &self.timer {
            if wait_timerfd(timer, due - now).await.is_ok() {
                return;
            }
        }
        tokio::time::sleep_until(due.into()).await;
    }
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer::new()
    }
}

#[cfg(target_os = "linux")]
async fn wait_timerfd(
    timer: &tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
    after: Duration,
) -> Result<(), std::io::Error> {
    use rustix::time::{timerfd_settime, Itimerspec, TimerfdTimerFlags, Timespec};
    let value = Timespec { tv_sec: after.as_secs() as i64, tv_nsec: i64::from(after.subsec_nanos()) };
    let spec = Itimerspec { it_interval: Timespec { tv_sec: 0, tv_nsec: 0 }, it_value: value };
    // Re-arming also clears an expiry left over from an earlier wait that was cancelled.
    timerfd_settime(timer.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
    loop {
        let mut ready = timer.readable().await?;
        let mut expirations = [0u8; 8];
        match rustix::io::read(timer.get_ref(), &mut expirations) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_at_the_due_time_not_before() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let pacer = Pacer::new();
            #[cfg(target_os = "linux")]
            assert!(pacer.is_precise());
            for micros in [0u64, 300, 1500, 2300] {
                let due = Instant::now() + Duration::from_micros(micros);
                pacer.sleep_until(due).await;
                // Never early (beyond the slack); how late depends on the machine, so it is not asserted.
                assert!(Instant::now() + SLACK >= due, "woke before {micros} µs");
            }
            // A wait abandoned half-way does not make the next one return early.
            let abandoned = Instant::now() + Duration::from_millis(1);
            let _ = tokio::time::timeout(Duration::from_micros(100), pacer.sleep_until(abandoned)).await;
            let due = Instant::now() + Duration::from_millis(3);
            pacer.sleep_until(due).await;
            assert!(Instant::now() + SLACK >= due);
        });
    }
}
