//! A real ZooKeeper for tests: Debian's `zookeeper` package (`/usr/share/java/zookeeper.jar`), one server or
//! an ensemble on loopback ports in a temporary directory, each server a `java` process killed on drop.
//! Readiness is polled with the `ruok`/`srvr` four-letter words, never waited for with a fixed sleep.
//! Also a TCP relay that a test can cut, to partition one client from the ensemble.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringcache_testkit::free_port;

const JAR: &str = "/usr/share/java/zookeeper.jar";
/// One ZooKeeper tick: sessions may last 2 to 20 ticks (0.4 s to 4 s).
pub const TICK_MS: u64 = 200;
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Why ZooKeeper tests cannot run here, if they cannot (printed by the tests, which then pass as skipped).
pub fn unavailable() -> Option<String> {
    if !Path::new(JAR).exists() {
        return Some(format!("{JAR} is missing (apt-get install zookeeper; .ci/run installs it)"));
    }
    if Command::new("java").arg("-version").stderr(Stdio::null()).status().is_err() {
        return Some("no java to run ZooKeeper with (apt-get install zookeeper brings one)".into());
    }
    None
}

struct Server {
    id: usize,
    client_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

/// A ZooKeeper server or ensemble, stopped on drop.
pub struct ZooKeeper {
    servers: Vec<Server>,
    dir: tempfile::TempDir,
}

impl ZooKeeper {
    /// One standalone server.
    pub fn single() -> ZooKeeper {
        ZooKeeper::single_on(free_port())
    }

    /// One standalone server on `port`.
    pub fn single_on(port: u16) -> ZooKeeper {
        ZooKeeper::start(vec![port])
    }

    /// `n` servers forming one ensemble (a quorum of them must run).
    pub fn ensemble(n: usize) -> ZooKeeper {
        ZooKeeper::start((0..n).map(|_| free_port()).collect())
    }

    fn start(client_ports: Vec<u16>) -> ZooKeeper {
        let dir = tempfile::tempdir().unwrap();
        let n = client_ports.len();
        let ports: Vec<(u16, u16, u16)> = client_ports.into_iter().map(|p| (p, free_port(), free_port())).collect();
        let mut servers = Vec::new();
        for (i, (client_port, _, _)) in ports.iter().enumerate() {
            let id = i + 1;
            let data = dir.path().join(format!("data-{id}"));
            std::fs::create_dir_all(&data).unwrap();
            let mut cfg = format!(
                "tickTime={TICK_MS}\ninitLimit=25\nsyncLimit=10\ndataDir={}\nclientPort={client_port}\n\
                 clientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=ruok,srvr\n\
                 maxClientCnxns=0\n",
                data.display()
            );
            if n > 1 {
                std::fs::write(data.join("myid"), format!("{id}\n")).unwrap();
                for (j, (_, quorum, election)) in ports.iter().enumerate() {
                    cfg.push_str(&format!("server.{}=127.0.0.1:{quorum}:{election}\n", j + 1));
                }
            }
            let config = dir.path().join(format!("zoo-{id}.cfg"));
            std::fs::write(&config, cfg).unwrap();
            servers.push(Server { id, client_port: *client_port, config, child: None });
        }
        let mut zk = ZooKeeper { servers, dir };
        for i in 0..n {
            zk.spawn(i);
        }
        zk.wait_serving();
        zk
    }

    fn spawn(&mut self, i: usize) {
        let log_dir = self.dir.path().display().to_string();
        let server = &mut self.servers[i];
        let log = std::fs::File::create(self.dir.path().join(format!("zk-{}.log", server.id))).unwrap();
        let child = Command::new("java")
            .args(["-Xmx192m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k"])
            .arg(format!("-Dzookeeper.log.dir={log_dir}"))
            .arg("-Dzookeeper.root.logger=WARN,CONSOLE")
            .args(["-cp", &format!("/etc/zookeeper/conf:{JAR}"), "org.apache.zookeeper.server.quorum.QuorumPeerMain"])
            .arg(&server.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start ZooKeeper (java)");
        server.child = Some(child);
    }

    /// `host:port,...` of every server.
    pub fn connect_string(&self) -> String {
        self.servers.iter().map(|s| format!("127.0.0.1:{}", s.client_port)).collect::<Vec<_>>().join(",")
    }

    pub fn client_port(&self, i: usize) -> u16 {
        self.servers[i].client_port
    }

    /// Polls until every running server answers `ruok` and serves (standalone, leader or follower).
    pub fn wait_serving(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        for i in 0..self.servers.len() {
            if self.servers[i].child.is_none() {
                continue;
            }
            loop {
                if let Some(status) = self.servers[i].child.as_mut().unwrap().try_wait().unwrap() {
                    let log = std::fs::read_to_string(self.dir.path().join(format!("zk-{}.log", i + 1)));
                    panic!("ZooKeeper {} exited: {status}\n{}", i + 1, log.unwrap_or_default());
                }
                if four_letters(self.servers[i].client_port, "ruok").as_deref() == Some("imok")
                    && self.mode(i).is_some_and(|m| m != "not serving")
                {
                    break;
                }
                assert!(Instant::now() < deadline, "ZooKeeper {} not serving within {READY_TIMEOUT:?}", i + 1);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// `standalone`, `leader`, `follower` (from `srvr`), or None when it does not answer.
    pub fn mode(&self, i: usize) -> Option<String> {
        let text = four_letters(self.servers[i].client_port, "srvr")?;
        if text.contains("not currently serving") {
            return Some("not serving".into());
        }
        text.lines().find_map(|l| l.strip_prefix("Mode: ")).map(|m| m.trim().to_string())
    }

    /// The index of the ensemble's leader.
    pub fn leader(&self) -> usize {
        (0..self.servers.len()).find(|&i| self.mode(i).as_deref() == Some("leader")).expect("the ensemble has a leader")
    }

    /// Kills server `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.servers[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts server `i` again on its data (the caller waits with [`Self::wait_serving`]).
    pub fn restart(&mut self, i: usize) {
        assert!(self.servers[i].child.is_none());
        self.spawn(i);
    }

    pub fn len(&self) -> usize {
        self.servers.len()
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}

/// Sends a four-letter word; returns the answer.
pub fn four_letters(port: u16, word: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A TCP relay from a loopback port to `target`, which [`Relay::cut`] turns into a black hole: bytes stop
/// flowing both ways and new connections are accepted but never answered, as behind a partition (no reset:
/// the client only notices when its heartbeats go unanswered). [`Relay::heal`] closes the stalled
/// connections and forwards again. Threads end when the relay is dropped.
pub struct Relay {
    pub port: u16,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    stalled: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    pub fn to(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let (cut, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let stalled: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (c, s, st) = (cut.clone(), stop.clone(), stalled.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        if c.load(Ordering::SeqCst) {
                            st.lock().unwrap().push(client);
                            continue;
                        }
                        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                        for (from, to) in [(&client, &server), (&server, &client)] {
                            let (from, to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                            let (c, s, st) = (c.clone(), s.clone(), st.clone());
                            std::thread::spawn(move || pump(from, to, &c, &s, &st));
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Relay { port, cut, stop, stalled }
    }

    /// Stops forwarding (a partition).
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    /// Forwards again; connections stalled by the cut are closed (their peers reconnect).
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
        for s in self.stalled.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.heal();
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, cut: &AtomicBool, stop: &AtomicBool, stalled: &Mutex<Vec<TcpStream>>) {
    from.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if cut.load(Ordering::SeqCst) {
            // Hold both ends open, silent, until healed.
            stalled.lock().unwrap().extend([from.try_clone().unwrap(), to.try_clone().unwrap()]);
            while cut.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            return;
        }
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => {
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}
