//! The registry of a server's open connections and what one connection can do to the others:
//! CLIENT LIST's filters, CLIENT KILL, CLIENT PAUSE / UNPAUSE (Redis 7.0's texts and semantics).
//!
//! The registry is shared by every connection of a server. A connection's [`ClientInfo`] carries its kill
//! switch, a cancellation token the connection loop already waits on (a child of the server's shutdown
//! token), so CLIENT KILL closes it from any thread without a new branch on the request path. The pause
//! state is one atomic deadline: a connection reads it once per request ([`ClientPause::holds`]) and only
//! when a pause is on does it look at the command.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use parking_lot::Mutex;

use crate::connection::{parse_integer, ClientInfo};
use crate::resp::{ReplyWriter, Request};

/// Every open connection of a server (for CLIENT LIST and KILL), and the server's client pause.
#[derive(Default)]
pub struct ClientRegistry {
    connections: DashMap<u64, Arc<Mutex<ClientInfo>>>,
    pub pause: ClientPause,
}

impl std::ops::Deref for ClientRegistry {
    type Target = DashMap<u64, Arc<Mutex<ClientInfo>>>;
    fn deref(&self) -> &Self::Target {
        &self.connections
    }
}

impl ClientRegistry {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Which commands a CLIENT PAUSE holds back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PauseMode {
    /// Commands that may write (Redis's `WRITE`): write commands, scripts, PUBLISH.
    Write = 1,
    /// Every command (Redis's `ALL`, the default).
    All = 2,
}

/// CLIENT PAUSE: until when, and for which commands. Clients already connected and new ones alike wait
/// (their commands are held, in order) until the deadline or CLIENT UNPAUSE.
#[derive(Default)]
pub struct ClientPause {
    /// Milliseconds since `epoch` at which the pause ends; 0 when no pause is on.
    until_ms: AtomicU64,
    mode: AtomicU8,
    epoch: std::sync::OnceLock<Instant>,
    resumed: tokio::sync::Notify,
}

impl ClientPause {
    fn now_ms(&self) -> u64 {
        // Never 0, so that 0 can mean "no pause".
        self.epoch.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
    }

    /// Pauses for `timeout_ms` from now, as Redis: a pause already on ends at the later of the two
    /// deadlines, and ALL wins over WRITE.
    pub fn pause(&self, timeout_ms: u64, mode: PauseMode) {
        let until = self.now_ms().saturating_add(timeout_ms);
        let previous = self.until_ms.load(Ordering::Acquire);
        let active = previous > self.now_ms();
        let mode =
            if active && self.mode.load(Ordering::Acquire) == PauseMode::All as u8 { PauseMode::All } else { mode };
        self.mode.store(mode as u8, Ordering::Release);
        self.until_ms.store(if active { until.max(previous) } else { until }, Ordering::Release);
    }

    /// Ends the pause at once (CLIENT UNPAUSE): every held client goes on.
    pub fn unpause(&self) {
        self.until_ms.store(0, Ordering::Release);
        self.resumed.notify_waiters();
    }

    /// Whether a command must wait now: `is_write` says if it may write. One atomic load when no pause
    /// is on.
    #[inline]
    pub fn holds(&self, is_write: impl FnOnce() -> bool) -> bool {
        let until = self.until_ms.load(Ordering::Acquire);
        if until == 0 || until <= self.now_ms() {
            return false;
        }
        self.mode.load(Ordering::Acquire) == PauseMode::All as u8 || is_write()
    }

    /// Waits until the pause ends (its deadline, a CLIENT UNPAUSE, or a later pause's deadline).
    pub async fn wait(&self) {
        loop {
            let resumed = self.resumed.notified();
            let until = self.until_ms.load(Ordering::Acquire);
            let now = self.now_ms();
            if until == 0 || until <= now {
                return;
            }
            tokio::select! {
                _ = resumed => {}
                _ = tokio::time::sleep(Duration::from_millis(until - now)) => {}
            }
        }
    }
}

/// Whether a request may write, for CLIENT PAUSE WRITE: Redis holds write commands and those that may
/// write or propagate (scripts, PUBLISH).
pub fn may_write(req: &Request) -> bool {
    let name = req.name();
    crate::command::lookup(name).is_some_and(|spec| spec.is_write())
        || [&b"eval"[..], b"evalsha", b"fcall", b"publish", b"spublish"].iter().any(|w| name.eq_ignore_ascii_case(w))
}

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

const SYNTAX: &str = "ERR syntax error";

/// A client type as CLIENT LIST / KILL name them. Every connection of ours is `normal` (neither servers has
/// replicas; subscribers are listed as normal too).
fn client_type(name: &[u8]) -> Result<&'static str, String> {
    for t in ["normal", "master", "replica", "slave", "pubsub"] {
        if is(name, t) {
            return Ok(if t == "slave" { "replica" } else { t });
        }
    }
    Err(format!("ERR Unknown client type '{}'", String::from_utf8_lossy(name)))
}

/// CLIENT LIST [TYPE type] [ID id ...]: the lines of the connections that match, in id order.
pub fn list(req: &Request, clients: &ClientRegistry, out: &mut crate::resp::ReplyBuf) -> Result<(), String> {
    let mut wanted_type = None;
    let mut ids: Option<Vec<u64>> = None;
    let mut i = 2;
    while i < req.argc() {
        if is(req.arg(i), "TYPE") && i + 1 < req.argc() {
            wanted_type = Some(client_type(req.arg(i + 1))?);
            i += 2;
        } else if is(req.arg(i), "ID") && i + 1 < req.argc() {
            let mut list = Vec::new();
            i += 1;
            while i < req.argc() {
                match parse_integer(req.arg(i)) {
                    // Any integer is accepted (ids start at 1: 0 or a negative one matches nothing).
                    Some(id) => list.push(u64::try_from(id).unwrap_or(0)),
                    None => return Err("ERR Invalid client ID".into()),
                }
                i += 1;
            }
            ids = Some(list);
        } else {
            return Err(SYNTAX.into());
        }
    }
    let mut selected: Vec<(u64, Arc<Mutex<ClientInfo>>)> = clients
        .iter()
        .filter(|e| ids.as_ref().is_none_or(|ids| ids.contains(e.key())))
        .filter(|_| wanted_type.is_none_or(|t| t == "normal"))
        .map(|e| (*e.key(), e.value().clone()))
        .collect();
    selected.sort_by_key(|(id, _)| *id);
    let now = Instant::now();
    let text: String = selected.iter().map(|(id, info)| format!("{}\n", info.lock().describe(*id, now))).collect();
    out.verbatim(text.as_bytes());
    Ok(())
}

/// What CLIENT KILL did: for the old form `+OK` or "No such client"; for the new one the count.
pub struct Killed {
    pub count: usize,
    /// The calling connection was among them: it closes after this reply.
    pub myself: bool,
    pub old_form: bool,
}

/// CLIENT KILL addr | CLIENT KILL [ID id] [TYPE t] [USER u] [ADDR a] [LADDR a] [SKIPME yes|no].
/// `me` is the calling connection's id; `user_exists` answers USER's check as the server's ACL does.
pub fn kill(
    req: &Request,
    clients: &ClientRegistry,
    me: u64,
    user_exists: impl Fn(&[u8]) -> bool,
) -> Result<Killed, String> {
    let argc = req.argc();
    let (mut id, mut ctype, mut user, mut addr, mut laddr) = (None, None, None, None, None);
    let old_form = argc == 3;
    let mut skipme = !old_form;
    if old_form {
        addr = Some(req.arg(2).to_vec());
    } else if argc > 3 {
        let mut i = 2;
        while i < argc {
            let more = i + 1 < argc;
            let (opt, value) = (req.arg(i), if more { req.arg(i + 1) } else { &b""[..] });
            if is(opt, "ID") && more {
                match parse_integer(value) {
                    Some(n) if n >= 1 => id = Some(n as u64),
                    _ => return Err("ERR client-id should be greater than 0".into()),
                }
            } else if is(opt, "TYPE") && more {
                ctype = Some(client_type(value)?);
            } else if is(opt, "ADDR") && more {
                addr = Some(value.to_vec());
            } else if is(opt, "LADDR") && more {
                laddr = Some(value.to_vec());
            } else if is(opt, "USER") && more {
                if !user_exists(value) {
                    return Err(format!("ERR No such user '{}'", String::from_utf8_lossy(value)));
                }
                user = Some(value.to_vec());
            } else if is(opt, "SKIPME") && more {
                skipme = if is(value, "yes") {
                    true
                } else if is(value, "no") {
                    false
                } else {
                    return Err(SYNTAX.into());
                };
            } else {
                return Err(SYNTAX.into());
            }
            i += 2;
        }
    } else {
        return Err(SYNTAX.into());
    }
    let mut killed = Killed { count: 0, myself: false, old_form };
    for entry in clients.iter() {
        let cid = *entry.key();
        let info = entry.value().lock();
        let matches = id.is_none_or(|id| id == cid)
            && ctype.is_none_or(|t| t == "normal")
            && addr.as_deref().is_none_or(|a| a == info.addr.to_string().as_bytes())
            && laddr.as_deref().is_none_or(|a| a == info.laddr.to_string().as_bytes())
            && user.as_deref().is_none_or(|u| u == info.user.as_bytes());
        if !matches || (skipme && cid == me) {
            continue;
        }
        if cid == me {
            killed.myself = true;
        } else {
            info.kill.cancel();
        }
        killed.count += 1;
    }
    if old_form && killed.count == 0 {
        return Err("ERR No such client".into());
    }
    Ok(killed)
}

/// CLIENT PAUSE timeout [WRITE|ALL].
pub fn pause(req: &Request, clients: &ClientRegistry) -> Result<(), String> {
    let timeout_ms = match parse_integer(req.arg(2)) {
        Some(t) if t < 0 => return Err("ERR timeout is negative".into()),
        Some(t) => t as u64,
        None => return Err("ERR timeout is not an integer or out of range".into()),
    };
    let mode = match req.argc() {
        3 => PauseMode::All,
        4 if is(req.arg(3), "WRITE") => PauseMode::Write,
        4 if is(req.arg(3), "ALL") => PauseMode::All,
        4 => return Err("ERR CLIENT PAUSE mode must be WRITE or ALL".into()),
        _ => {
            return Err(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(req.arg(1))
            ))
        }
    };
    clients.pause.pause(timeout_ms, mode);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pause_holds_writes_only_in_write_mode_and_ends_at_unpause_or_deadline() {
        let pause = Arc::new(ClientPause::default());
        assert!(!pause.holds(|| true));
        pause.pause(60_000, PauseMode::Write);
        assert!(pause.holds(|| true));
        assert!(!pause.holds(|| false));
        // A later ALL pause makes it ALL, and keeps the later deadline; a later WRITE does not weaken it.
        pause.pause(10, PauseMode::All);
        assert!(pause.holds(|| false));
        pause.pause(10, PauseMode::Write);
        assert!(pause.holds(|| false));
        let held = pause.clone();
        let waiter = tokio::spawn(async move { held.wait().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "a 60 s pause is still on");
        pause.unpause();
        tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("UNPAUSE wakes the waiter").expect("join");
        assert!(!pause.holds(|| true));

        let short = ClientPause::default();
        short.pause(30, PauseMode::All);
        let started = Instant::now();
        short.wait().await;
        assert!(started.elapsed() >= Duration::from_millis(25));
        assert!(!short.holds(|| true));
    }
}
