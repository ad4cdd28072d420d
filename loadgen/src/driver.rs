//! Runs the load: `--threads` OS threads, each a single-threaded tokio runtime driving `--clients`
//! connections, plus a ticker that hands the thread's per-second figures to the main thread.
//!
//! A connection in **closed loop** encodes a batch of `--pipeline` requests into one buffer, writes it with
//! one `write`, and reads until every reply of the batch has arrived; each request is timed from the
//! moment its batch was written. In **open loop** (`--rate`) a writer sends requests at their scheduled
//! times (every `threads*clients/rate` seconds per connection, staggered across connections), batching
//! whatever is due, while a reader takes the replies in the same task; each request is timed from its
//! *intended* send time, so a stalled server shows up as latency instead of as fewer requests (no
//! coordinated omission).
//!
//! Failures never hang a connection: connecting, writing and every reply are bounded by `--timeout-ms`.
//! A failure counts every request in flight as an error of its kind, and the connection is re-established
//! after a backoff (10 ms doubling to 1 s). Requests that could not be sent count as errors too (a failed
//! connection attempt consumes a batch in closed loop; in open loop every request due while disconnected
//! fails), so the error rate and the `--requests` count stay meaningful while the server is away.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringcache_common::resp::{ReplyScanner, ReplyValue, ReplyWriter};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::config::{Config, RunLength, Workload};
use crate::pacer::Pacer;
use crate::stats::{ErrorKind, Interval, Recorder, Stats};
use crate::verify::{Verifier, VerifyReport};
use crate::workload::{ClientWorkload, Op, OpKind};

/// First wait before reconnecting; doubles up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Read buffer size per connection (grows when a reply needs more).
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Errors that stop a run before it produces figures.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("cannot start a runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error("a load thread panicked")]
    Panicked,
}

/// One second of the run, all threads merged.
#[derive(Debug, Clone)]
pub struct Tick {
    /// 0 for the first second of the run (warmup included).
    pub index: u64,
    /// Length of this interval in seconds (1, except the last).
    pub duration_s: f64,
    /// Whether the interval started during the warmup.
    pub warmup: bool,
    pub interval: Interval,
}

/// Everything a run measured.
#[derive(Debug)]
pub struct RunOutput {
    /// The names of the commands, in the order of `stats.commands`.
    pub command_names: Vec<String>,
    pub stats: Stats,
    pub verify: Option<VerifyReport>,
    pub ticks: Vec<Tick>,
    /// From the end of the warmup to the last reply.
    pub measured: Duration,
    /// Identifies this run's values (see `verify`).
    pub run_id: u64,
}

/// What the threads share (read-only).
struct Shared {
    cfg: Config,
    start: Instant,
    measure_from: Instant,
    /// End of a `--test-time` run.
    end: Option<Instant>,
    run_id: u64,
    /// Per connection, for the open loop.
    send_interval: Option<Duration>,
    /// Set to end the run early (Ctrl-C): connections finish the batch in flight and stop.
    stop: Arc<AtomicBool>,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

enum Msg {
    Tick { thread: usize, index: u64, until: Instant, interval: Interval },
    Done { thread: usize, stats: Box<Stats>, verify: Option<VerifyReport> },
}

/// The names figures are reported under, one per [`OpKind`] in index order.
pub fn command_names(workload: &Workload) -> Vec<String> {
    match workload {
        Workload::SetGet { .. } => vec!["SET".into(), "GET".into()],
        Workload::Templates(ts) => {
            let mut names: Vec<String> = Vec::new();
            for (t, _) in ts {
                let mut name = t.name.clone();
                let mut n = 2;
                while names.contains(&name) {
                    name = format!("{}#{n}", t.name);
                    n += 1;
                }
                names.push(name);
            }
            names
        }
    }
}

fn command_index(kind: OpKind) -> usize {
    match kind {
        OpKind::Set => 0,
        OpKind::Get => 1,
        OpKind::Template(i) => i,
    }
}

/// Runs the load described by `cfg`, calling `on_tick` for every completed second. Setting `stop` ends the
/// run early, with figures up to then.
pub fn run(cfg: &Config, stop: Arc<AtomicBool>, mut on_tick: impl FnMut(&Tick)) -> Result<RunOutput, DriverError> {
    let names = command_names(&cfg.workload);
    let start = Instant::now();
    let measure_from = start + cfg.warmup;
    let shared = Arc::new(Shared {
        cfg: cfg.clone(),
        start,
        measure_from,
        end: match cfg.length {
            RunLength::Duration(d) => Some(measure_from + d),
            RunLength::RequestsPerClient(_) => None,
        },
        // Unique per run whatever the seed, so that values left by an earlier run are recognised.
        run_id: rand::random(),
        send_interval: cfg.rate_per_sec.map(|r| Duration::from_secs_f64(cfg.total_clients() as f64 / r)),
        stop,
    });
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut handles = Vec::new();
    for thread in 0..cfg.threads {
        let (shared, tx, ncmd) = (shared.clone(), tx.clone(), names.len());
        let h = std::thread::Builder::new()
            .name(format!("loadgen-{thread}"))
            .spawn(move || thread_main(shared, thread, ncmd, tx))
            .map_err(DriverError::Thread)?;
        handles.push(h);
    }
    drop(tx);

    let mut stats = Stats::new(names.len());
    let mut verify = cfg.verify.then(VerifyReport::default);
    let mut ticks = Ticks::new(cfg.threads, start, measure_from);
    let mut done = 0;
    for msg in rx {
        match msg {
            Msg::Tick { thread, index, until, interval } => ticks.add(thread, index, until, interval),
            Msg::Done { thread, stats: s, verify: v } => {
                stats.merge(&s);
                if let (Some(total), Some(v)) = (verify.as_mut(), v) {
                    total.merge(&v);
                }
                ticks.thread_done(thread);
                done += 1;
            }
        }
        ticks.emit_complete(&mut on_tick);
    }
    let finished = Instant::now();
    let mut panicked = false;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => panicked = true,
        }
    }
    if panicked || done < cfg.threads {
        return Err(DriverError::Panicked);
    }
    ticks.emit_all(&mut on_tick);
    Ok(RunOutput {
        command_names: names,
        stats,
        verify,
        ticks: ticks.emitted,
        measured: finished.saturating_duration_since(measure_from),
        run_id: shared.run_id,
    })
}

/// Merges per-thread seconds and releases each second once every thread has moved past it.
struct Ticks {
    threads: usize,
    start: Instant,
    measure_from: Instant,
    /// Highest second each thread has reported, or `u64::MAX` once it is done.
    progress: Vec<Option<u64>>,
    pending: BTreeMap<u64, (Interval, Instant)>,
    emitted: Vec<Tick>,
}

impl Ticks {
    fn new(threads: usize, start: Instant, measure_from: Instant) -> Ticks {
        Ticks { threads, start, measure_from, progress: vec![None; threads], pending: BTreeMap::new(), emitted: vec![] }
    }

    fn add(&mut self, thread: usize, index: u64, until: Instant, interval: Interval) {
        // A thread's last, short interval may belong to a second already emitted (its live line is not
        // printed again, but the timeline includes it).
        if let Some(tick) = self.emitted.iter_mut().find(|t| t.index == index) {
            tick.interval.merge(&interval);
            let tick_start = self.start + Duration::from_secs(index);
            tick.duration_s = tick.duration_s.max(until.saturating_duration_since(tick_start).as_secs_f64());
            return;
        }
        let slot = self.pending.entry(index).or_insert_with(|| (Interval::default(), until));
        slot.0.merge(&interval);
        slot.1 = slot.1.max(until);
        if let Some(p) = self.progress.get_mut(thread) {
            *p = Some(p.map_or(index, |x| x.max(index)));
        }
    }

    fn thread_done(&mut self, thread: usize) {
        if let Some(p) = self.progress.get_mut(thread) {
            *p = Some(u64::MAX);
        }
    }

    fn emit_complete(&mut self, on_tick: &mut impl FnMut(&Tick)) {
        let Some(low) = self.progress.iter().map(|p| p.unwrap_or(0)).min() else { return };
        if self.progress.iter().any(Option::is_none) || self.threads == 0 {
            return;
        }
        while let Some((&index, _)) = self.pending.first_key_value() {
            if index > low {
                break;
            }
            self.emit_first(on_tick);
        }
    }

    fn emit_all(&mut self, on_tick: &mut impl FnMut(&Tick)) {
        while !self.pending.is_empty() {
            self.emit_first(on_tick);
        }
    }

    fn emit_first(&mut self, on_tick: &mut impl FnMut(&Tick)) {
        let Some((index, (interval, until))) = self.pending.pop_first() else { return };
        let tick_start = self.start + Duration::from_secs(index);
        // A late ticker can make an interval a little longer than a second.
        let duration_s = until.saturating_duration_since(tick_start).as_secs_f64().max(1e-3);
        let tick = Tick { index, duration_s, warmup: tick_start < self.measure_from, interval };
        on_tick(&tick);
        self.emitted.push(tick);
    }
}

fn thread_main(shared: Arc<Shared>, thread: usize, ncmd: usize, tx: mpsc::Sender<Msg>) -> Result<(), DriverError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(DriverError::Runtime)?;
    let local = tokio::task::LocalSet::new();
    let rec = Rc::new(RefCell::new(Recorder::new(ncmd)));
    let clients = shared.cfg.clients_per_thread;
    // The next second the ticker will report; the final, partial interval takes this index.
    let next_index = Rc::new(Cell::new(0u64));
    let verify = local.block_on(&rt, async {
        let mut tasks = Vec::new();
        for c in 0..clients {
            let client = thread * clients + c;
            tasks.push(tokio::task::spawn_local(client_main(shared.clone(), rec.clone(), client)));
        }
        let ticker = {
            let (shared, rec, tx, next_index) = (shared.clone(), rec.clone(), tx.clone(), next_index.clone());
            tokio::task::spawn_local(async move {
                loop {
                    let index = next_index.get();
                    tokio::time::sleep_until((shared.start + Duration::from_secs(index + 1)).into()).await;
                    let interval = rec.borrow_mut().take_interval();
                    let _ = tx.send(Msg::Tick { thread, index, until: Instant::now(), interval });
                    next_index.set(index + 1);
                }
            })
        };
        let mut verify: Option<VerifyReport> = None;
        for t in tasks {
            // A client task only ends by returning (it does not panic on network data); a join error would
            // mean a bug, which the main thread reports as a panic.
            if let Ok(Some(v)) = t.await {
                verify.get_or_insert_with(VerifyReport::default).merge(&v);
            }
        }
        ticker.abort();
        verify
    });
    let now = Instant::now();
    let mut index = next_index.get();
    // A final interval of a few milliseconds would be a meaningless point: it joins the previous second.
    if index > 0
        && now.saturating_duration_since(shared.start + Duration::from_secs(index)) < Duration::from_millis(100)
    {
        index -= 1;
    }
    let mut rec = rec.borrow_mut();
    let interval = rec.take_interval();
    let _ = tx.send(Msg::Tick { thread, index, until: now, interval });
    let stats = Box::new(std::mem::replace(&mut rec.total, Stats::new(0)));
    let _ = tx.send(Msg::Done { thread, stats, verify });
    Ok(())
}

/// A request waiting for its reply.
#[derive(Debug, Clone, Copy)]
struct Pending {
    op: Op,
    /// SET: the version written; GET: the acknowledged version when it was sent (verification only).
    version: u64,
    /// When the request was meant to be sent (closed loop: when it was).
    intended: Instant,
    /// When it was written (its timeout counts from here).
    sent: Instant,
    measured: bool,
}

/// One connection's state that outlives its TCP connections.
struct ClientState {
    workload: ClientWorkload,
    verifier: Option<Verifier>,
    pending: VecDeque<Pending>,
    /// `--set-on-miss`: keys whose GET missed, to SET in the next batch.
    fills: Vec<Op>,
    set_on_miss: bool,
    /// Requests sent (or failed) since measuring started.
    measured_requests: u64,
    /// Open loop: when the next request is due.
    next_due: Instant,
    timeout: Duration,
}

impl ClientState {
    fn new(shared: &Shared, client: usize) -> ClientState {
        let cfg = &shared.cfg;
        let workload = ClientWorkload::new(cfg, client);
        let verifier = cfg.verify.then(|| Verifier::new(shared.run_id, workload.space().len, cfg.verify_allow_miss));
        // Stagger the connections' schedules over one interval.
        let offset = shared
            .send_interval
            .map_or(Duration::ZERO, |i| i.mul_f64(client as f64 / cfg.total_clients().max(1) as f64));
        ClientState {
            workload,
            verifier,
            pending: VecDeque::new(),
            fills: Vec::new(),
            set_on_miss: cfg.set_on_miss,
            measured_requests: 0,
            next_due: shared.start + offset,
            timeout: cfg.timeout,
        }
    }

    /// How many requests the next closed-loop batch has (0: the run is over for this connection).
    fn batch_len(&self, shared: &Shared, now: Instant) -> usize {
        let pipeline = shared.cfg.pipeline as u64;
        if shared.stopped() {
            return 0;
        }
        match shared.cfg.length {
            RunLength::Duration(_) => {
                if shared.end.is_some_and(|end| now >= end) {
                    0
                } else {
                    pipeline as usize
                }
            }
            RunLength::RequestsPerClient(n) => {
                if now < shared.measure_from {
                    pipeline as usize
                } else {
                    n.saturating_sub(self.measured_requests).min(pipeline) as usize
                }
            }
        }
    }

    /// Whether the open-loop schedule is over for this connection.
    fn schedule_done(&self, shared: &Shared) -> bool {
        if shared.stopped() {
            return true;
        }
        match shared.cfg.length {
            RunLength::Duration(_) => shared.end.is_some_and(|end| self.next_due >= end),
            RunLength::RequestsPerClient(n) => self.measured_requests >= n,
        }
    }

    /// Takes the next scheduled send time and advances the schedule.
    fn take_due(&mut self, shared: &Shared) -> Instant {
        let due = self.next_due;
        self.next_due += shared.send_interval.unwrap_or(Duration::ZERO);
        if due >= shared.measure_from {
            self.measured_requests += 1;
        }
        due
    }

    /// Chooses and encodes the next request into `out`, remembering it as pending.
    fn push_request(&mut self, out: &mut BytesMut, intended: Instant, sent: Instant, measured: bool) {
        let op = self.workload.next_op();
        let mut version = 0;
        match op.kind {
            OpKind::Get => {
                if let Some(v) = &self.verifier {
                    version = v.begin_read(op.slot);
                }
                self.workload.encode_get(out, op.key);
            }
            OpKind::Set => match &mut self.verifier {
                Some(v) => {
                    let stamp = v.begin_write(op.slot);
                    version = stamp.version;
                    self.workload.encode_set_stamped(out, op.key, stamp);
                }
                None => self.workload.encode_set(out, op.key),
            },
            OpKind::Template(i) => self.workload.encode_template(out, i),
        }
        self.pending.push_back(Pending { op, version, intended, sent, measured });
    }

    /// Counts `n` requests that could not be sent as failed with `kind`.
    fn fail_unsent(&mut self, rec: &RefCell<Recorder>, n: usize, kind: &ErrorKind, measured: bool) {
        let mut rec = rec.borrow_mut();
        for _ in 0..n {
            let op = self.workload.next_op();
            rec.failed(command_index(op.kind), kind.clone(), 1, measured);
        }
    }

    /// Counts every pending request as failed with `kind`.
    fn fail_pending(&mut self, rec: &RefCell<Recorder>, kind: &ErrorKind) {
        let mut rec = rec.borrow_mut();
        for p in self.pending.drain(..) {
            rec.failed(command_index(p.op.kind), kind.clone(), 1, p.measured);
        }
    }

    /// Open loop: fails every request due by `now` (the connection is down).
    fn fail_due(&mut self, shared: &Shared, rec: &RefCell<Recorder>, now: Instant, kind: &ErrorKind) {
        while self.next_due <= now && !self.schedule_done(shared) {
            let due = self.take_due(shared);
            self.fail_unsent(rec, 1, kind, due >= shared.measure_from);
        }
    }

    /// Takes every complete reply out of `rbuf` and checks it against its pending request.
    fn take_replies(
        &mut self,
        scanner: &mut ReplyScanner,
        rbuf: &mut BytesMut,
        now: Instant,
        rec: &RefCell<Recorder>,
    ) -> Result<(), ErrorKind> {
        let mut rec = rec.borrow_mut();
        while let Some(reply) = scanner.next(rbuf).map_err(|_| ErrorKind::Protocol)? {
            let Some(p) = self.pending.pop_front() else {
                // A reply nobody asked for: the stream is out of step.
                return Err(ErrorKind::Protocol);
            };
            self.handle_reply(&mut rec, p, &reply, now);
        }
        Ok(())
    }

    fn handle_reply(&mut self, rec: &mut Recorder, p: Pending, reply: &Bytes, now: Instant) {
        let cmd = command_index(p.op.kind);
        let latency = now.saturating_duration_since(p.intended);
        if reply.first() == Some(&b'-') {
            let line = reply.strip_suffix(b"\r\n").unwrap_or(reply);
            rec.reply(cmd, latency, Some(ErrorKind::of_reply(line)), p.measured);
            return;
        }
        rec.reply(cmd, latency, None, p.measured);
        match p.op.kind {
            OpKind::Get => {
                let value = bulk_value(reply);
                rec.read(cmd, value.is_some(), p.measured);
                if value.is_none() && self.set_on_miss {
                    self.fills.push(Op { kind: OpKind::Set, ..p.op });
                }
                if let Some(v) = &mut self.verifier {
                    let key = self.workload.key_name(p.op.key);
                    v.check_read(key, p.op.slot, p.version, value);
                }
            }
            OpKind::Set => {
                if let Some(v) = &mut self.verifier {
                    if &reply[..] == b"+OK\r\n" {
                        v.write_acked(p.op.slot, p.version);
                    }
                }
            }
            OpKind::Template(_) => match reply.first() {
                Some(b'$') => rec.read(cmd, bulk_value(reply).is_some(), p.measured),
                Some(b'*') => {
                    if let Some(ReplyValue::Array(Some(items))) = ReplyValue::parse(reply) {
                        for item in items {
                            match item {
                                ReplyValue::Bulk(v) => rec.read(cmd, v.is_some(), p.measured),
                                _ => break,
                            }
                        }
                    }
                }
                _ => {}
            },
        }
    }
}

/// The payload of a bulk reply, `None` for a null bulk (a miss) or another reply type.
fn bulk_value(reply: &[u8]) -> Option<&[u8]> {
    if reply.first() != Some(&b'$') || reply.starts_with(b"$-") {
        return None;
    }
    let header_end = memchr_crlf(reply)?;
    reply.get(header_end + 2..reply.len().checked_sub(2)?)
}

fn memchr_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// Connects and authenticates.
async fn connect(cfg: &Config) -> Result<TcpStream, ErrorKind> {
    let deadline = tokio::time::Instant::now() + cfg.timeout;
    let stream = tokio::time::timeout_at(deadline, TcpStream::connect((cfg.host.as_str(), cfg.port)))
        .await
        .map_err(|_| ErrorKind::Connect)?
        .map_err(|_| ErrorKind::Connect)?;
    let _ = stream.set_nodelay(true);
    let mut stream = stream;
    if let Some(password) = &cfg.password {
        let mut req = BytesMut::new();
        match &cfg.user {
            Some(user) => {
                req.array_len(3);
                req.bulk(b"AUTH");
                req.bulk(user.as_bytes());
            }
            None => {
                req.array_len(2);
                req.bulk(b"AUTH");
            }
        }
        req.bulk(password.as_bytes());
        let reply = tokio::time::timeout_at(deadline, async {
            stream.write_all(&req).await.map_err(|_| ErrorKind::Connect)?;
            let (mut buf, mut scanner) = (BytesMut::with_capacity(256), ReplyScanner::new());
            loop {
                if let Some(r) = scanner.next(&mut buf).map_err(|_| ErrorKind::Protocol)? {
                    return Ok(r);
                }
                match stream.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return Err(ErrorKind::Connect),
                    Ok(_) => {}
                }
            }
        })
        .await
        .map_err(|_| ErrorKind::Connect)??;
        if reply.first() == Some(&b'-') {
            return Err(ErrorKind::of_reply(reply.strip_suffix(b"\r\n").unwrap_or(&reply)));
        }
    }
    Ok(stream)
}

async fn client_main(shared: Arc<Shared>, rec: Rc<RefCell<Recorder>>, client: usize) -> Option<VerifyReport> {
    let mut st = ClientState::new(&shared, client);
    let mut backoff = INITIAL_BACKOFF;
    let open_loop = shared.send_interval.is_some();
    loop {
        let now = Instant::now();
        let over = if open_loop { st.schedule_done(&shared) } else { st.batch_len(&shared, now) == 0 };
        if over {
            break;
        }
        match connect(&shared.cfg).await {
            Ok(stream) => {
                backoff = INITIAL_BACKOFF;
                let result = if open_loop {
                    open_loop_conn(&shared, &rec, &mut st, stream).await
                } else {
                    closed_loop_conn(&shared, &rec, &mut st, stream).await
                };
                match result {
                    Ok(()) => break,
                    Err(kind) => st.fail_pending(&rec, &kind),
                }
            }
            Err(kind) => {
                let now = Instant::now();
                if open_loop {
                    st.fail_due(&shared, &rec, now, &kind);
                } else {
                    let n = st.batch_len(&shared, now);
                    let measured = now >= shared.measure_from;
                    if measured {
                        st.measured_requests += n as u64;
                    }
                    st.fail_unsent(&rec, n, &kind, measured);
                }
            }
        }
        // Back off, but never past the end of the run.
        let mut wake = Instant::now() + backoff;
        if let Some(end) = shared.end {
            wake = wake.min(end);
        }
        tokio::time::sleep_until(wake.into()).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        if open_loop {
            st.fail_due(&shared, &rec, Instant::now(), &ErrorKind::Connect);
        }
    }
    st.verifier.map(|v| v.report)
}

/// Reads until every pending request has its reply.
async fn read_all_replies<R: AsyncRead + Unpin>(
    stream: &mut R,
    st: &mut ClientState,
    scanner: &mut ReplyScanner,
    rbuf: &mut BytesMut,
    rec: &RefCell<Recorder>,
) -> Result<(), ErrorKind> {
    while let Some(first) = st.pending.front() {
        let deadline = first.sent + st.timeout;
        rbuf.reserve(READ_BUFFER_BYTES / 4);
        match tokio::time::timeout_at(deadline.into(), stream.read_buf(rbuf)).await {
            Err(_) => return Err(ErrorKind::Timeout),
            Ok(Err(_) | Ok(0)) => return Err(ErrorKind::Io),
            Ok(Ok(_)) => {}
        }
        st.take_replies(scanner, rbuf, Instant::now(), rec)?;
    }
    Ok(())
}

async fn closed_loop_conn(
    shared: &Shared,
    rec: &RefCell<Recorder>,
    st: &mut ClientState,
    mut stream: TcpStream,
) -> Result<(), ErrorKind> {
    let mut wbuf = BytesMut::with_capacity(16 * 1024);
    let mut rbuf = BytesMut::with_capacity(READ_BUFFER_BYTES);
    let mut scanner = ReplyScanner::new();
    loop {
        let now = Instant::now();
        let n = st.batch_len(shared, now);
        if n == 0 {
            return Ok(());
        }
        let measured = now >= shared.measure_from;
        if measured {
            st.measured_requests += n as u64;
        }
        wbuf.clear();
        // Cache-aside: the SETs of the keys that missed go first (extra requests, counted as SETs).
        for op in std::mem::take(&mut st.fills) {
            st.workload.encode_set(&mut wbuf, op.key);
            st.pending.push_back(Pending { op, version: 0, intended: now, sent: now, measured });
        }
        for _ in 0..n {
            st.push_request(&mut wbuf, now, now, measured);
        }
        match tokio::time::timeout_at((now + st.timeout).into(), stream.write_all(&wbuf)).await {
            Err(_) => return Err(ErrorKind::Timeout),
            Ok(Err(_)) => return Err(ErrorKind::Io),
            Ok(Ok(())) => {}
        }
        read_all_replies(&mut stream, st, &mut scanner, &mut rbuf, rec).await?;
    }
}

async fn open_loop_conn(
    shared: &Shared,
    rec: &RefCell<Recorder>,
    st: &mut ClientState,
    stream: TcpStream,
) -> Result<(), ErrorKind> {
    let (mut rd, mut wr) = stream.into_split();
    let state = RefCell::new(st);
    let writer_done = Cell::new(false);
    let sent_something = Notify::new();
    let room = Notify::new();
    let max_in_flight = shared.cfg.pipeline;

    let writer = async {
        let mut wbuf = BytesMut::with_capacity(16 * 1024);
        let pacer = Pacer::new();
        loop {
            let (done, full, due) = {
                let s = state.borrow();
                (s.schedule_done(shared), s.pending.len() >= max_in_flight, s.next_due)
            };
            if done {
                writer_done.set(true);
                sent_something.notify_one();
                return Ok::<(), ErrorKind>(());
            }
            if full {
                room.notified().await;
                continue;
            }
            pacer.sleep_until(due).await;
            let now = Instant::now();
            wbuf.clear();
            {
                let mut s = state.borrow_mut();
                let timeout = s.timeout;
                while s.next_due <= now && !s.schedule_done(shared) && s.pending.len() < max_in_flight {
                    let due = s.take_due(shared);
                    let measured = due >= shared.measure_from;
                    if now.saturating_duration_since(due) > timeout {
                        // Could not even be sent in time (the connection was down or the window full).
                        s.fail_unsent(rec, 1, &ErrorKind::Timeout, measured);
                        continue;
                    }
                    s.push_request(&mut wbuf, due, now, measured);
                    rec.borrow_mut().send_lag(now.saturating_duration_since(due), measured);
                }
                // Time out against the oldest pending reply when the window stays full.
            }
            if !wbuf.is_empty() {
                match tokio::time::timeout_at((now + shared.cfg.timeout).into(), wr.write_all(&wbuf)).await {
                    Err(_) => return Err(ErrorKind::Timeout),
                    Ok(Err(_)) => return Err(ErrorKind::Io),
                    Ok(Ok(())) => {}
                }
                sent_something.notify_one();
            }
        }
    };

    let reader = async {
        let mut rbuf = BytesMut::with_capacity(READ_BUFFER_BYTES);
        let mut scanner = ReplyScanner::new();
        loop {
            let deadline = {
                let s = state.borrow();
                if s.pending.is_empty() && writer_done.get() {
                    return Ok::<(), ErrorKind>(());
                }
                s.pending.front().map(|p| p.sent + s.timeout)
            };
            rbuf.reserve(READ_BUFFER_BYTES / 4);
            tokio::select! {
                r = rd.read_buf(&mut rbuf) => {
                    match r {
                        Ok(0) | Err(_) => return Err(ErrorKind::Io),
                        Ok(_) => {}
                    }
                    state.borrow_mut().take_replies(&mut scanner, &mut rbuf, Instant::now(), rec)?;
                    room.notify_one();
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now).into()), if deadline.is_some() => {
                    return Err(ErrorKind::Timeout);
                }
                _ = sent_something.notified(), if deadline.is_none() => {}
            }
        }
    };

    tokio::try_join!(writer, reader).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_values() {
        assert_eq!(bulk_value(b"$3\r\nabc\r\n"), Some(&b"abc"[..]));
        assert_eq!(bulk_value(b"$0\r\n\r\n"), Some(&b""[..]));
        assert_eq!(bulk_value(b"$-1\r\n"), None);
        assert_eq!(bulk_value(b"+OK\r\n"), None);
    }

    #[test]
    fn ticks_wait_for_every_thread() {
        let start = Instant::now();
        let mut t = Ticks::new(2, start, start);
        let mut seen = Vec::new();
        let one = |n| Interval { ok_replies: n, ..Interval::default() };
        t.add(0, 0, start + Duration::from_secs(1), one(5));
        t.emit_complete(&mut |k: &Tick| seen.push((k.index, k.interval.ok_replies)));
        assert!(seen.is_empty(), "thread 1 has not reported second 0");
        t.add(1, 0, start + Duration::from_secs(1), one(7));
        t.add(0, 1, start + Duration::from_secs(2), one(1));
        t.emit_complete(&mut |k: &Tick| seen.push((k.index, k.interval.ok_replies)));
        assert_eq!(seen, vec![(0, 12)]);
        // Thread 1 skipped second 1 (a late ticker) and reported 2 as its last.
        t.add(1, 2, start + Duration::from_millis(2500), one(3));
        t.thread_done(1);
        t.thread_done(0);
        t.emit_complete(&mut |k: &Tick| seen.push((k.index, k.interval.ok_replies)));
        assert_eq!(seen, vec![(0, 12), (1, 1), (2, 3)]);
        assert!((t.emitted[2].duration_s - 0.5).abs() < 1e-9);
        // A late, short final interval of thread 0 joins second 2, already emitted.
        t.add(0, 2, start + Duration::from_millis(3050), one(4));
        assert_eq!(t.emitted.len(), 3);
        assert_eq!(t.emitted[2].interval.ok_replies, 7);
        assert!((t.emitted[2].duration_s - 1.05).abs() < 1e-9);
    }
}
