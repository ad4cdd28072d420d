//! Connection commands, answered the same way by the shard and the proxy: PING ECHO QUIT AUTH HELLO
//! SELECT CLIENT RESET TIME.
//!
//! Both servers keep a [`ClientConn`] per connection and a [`ClientRegistry`] of all of them; [`execute`]
//! does the parsing, the checks and the replies (Redis 7's texts), so the two servers cannot drift apart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::acl::{Acl, User};
use crate::resp::{Protocol, ReplyBuf, ReplyWriter, Request};

/// The Redis version clients see in INFO and HELLO. Replies follow Redis 7 (7.2's where 7.0 and 7.2
/// differ, e.g. the shortest form of doubles); the number is 7.4.0 because clients gate features on it:
/// redis-py enables its client-side cache (CLIENT TRACKING) only for servers that say 7.4 or later.
pub const REDIS_COMPAT_VERSION: &str = "7.4.0";

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// What CLIENT LIST shows about a connection.
#[derive(Debug)]
pub struct ClientInfo {
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub name: String,
    pub lib_name: String,
    pub lib_ver: String,
    pub created: Instant,
    pub last_active: Instant,
    pub proto: Protocol,
    /// The ACL user the connection is authenticated as.
    pub user: String,
    /// CLIENT NO-EVICT: recorded and shown (flag `e`); neither server evicts clients for memory.
    pub no_evict: bool,
    /// Cancelled by CLIENT KILL: the connection loop closes the connection.
    pub kill: CancellationToken,
}

impl ClientInfo {
    /// One CLIENT LIST line, in Redis's field order (fields we do not track are omitted).
    pub fn describe(&self, id: u64, now: Instant) -> String {
        format!(
            "id={id} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db=0 sub=0 psub=0 multi=-1 user={} resp={} lib-name={} lib-ver={}",
            self.addr,
            self.laddr,
            self.name,
            now.duration_since(self.created).as_secs(),
            now.duration_since(self.last_active).as_secs(),
            if self.no_evict { "e" } else { "N" },
            self.user,
            self.proto.version(),
            self.lib_name,
            self.lib_ver,
        )
    }
}

pub use crate::clients::ClientRegistry;

/// One client connection's state, as connection commands see and change it.
pub struct ClientConn {
    pub id: u64,
    pub authenticated: bool,
    /// The user it runs commands as (`default` until AUTH): [`User::unrestricted`] skips the ACL check.
    pub user: Arc<User>,
    /// The protocol chosen with HELLO (RESP2 until then, and again after RESET).
    pub proto: Protocol,
    /// Set by QUIT: write the pending replies, then close.
    pub close_after_reply: bool,
    pub info: Arc<Mutex<ClientInfo>>,
}

impl ClientConn {
    /// A new connection, registered in `registry` until [`ClientConn::unregister`]. `server_shutdown` is
    /// the server's shutdown token: the connection's kill switch ([`ClientConn::kill_switch`]) is its child.
    pub fn register(
        registry: &ClientRegistry,
        id: u64,
        addr: SocketAddr,
        laddr: SocketAddr,
        acl: &Acl,
        server_shutdown: &CancellationToken,
    ) -> Self {
        let authenticated = acl.default_is_open();
        let user = acl.default_user();
        let now = Instant::now();
        let info = Arc::new(Mutex::new(ClientInfo {
            addr,
            laddr,
            name: String::new(),
            lib_name: String::new(),
            lib_ver: String::new(),
            created: now,
            last_active: now,
            proto: Protocol::Resp2,
            user: user.name.clone(),
            no_evict: false,
            kill: server_shutdown.child_token(),
        }));
        registry.insert(id, info.clone());
        ClientConn { id, authenticated, user, proto: Protocol::Resp2, close_after_reply: false, info }
    }

    /// Cancelled when the server shuts down or CLIENT KILL names this connection: the token the
    /// connection loop waits on.
    pub fn kill_switch(&self) -> CancellationToken {
        self.info.lock().kill.clone()
    }

    pub fn unregister(&self, registry: &ClientRegistry) {
        registry.remove(&self.id);
    }

    pub fn name(&self) -> Option<String> {
        let info = self.info.lock();
        (!info.name.is_empty()).then(|| info.name.clone())
    }

    pub fn set_name(&self, name: String) {
        self.info.lock().name = name;
    }

    /// Switches the protocol of this connection's replies, from the reply being written on.
    pub fn set_proto(&mut self, proto: Protocol, out: &mut ReplyBuf) {
        self.proto = proto;
        out.set_proto(proto);
        self.info.lock().proto = proto;
    }

    /// This connection's CLIENT LIST line (ACL LOG's `client-info`).
    pub fn client_info(&self) -> String {
        self.info.lock().describe(self.id, Instant::now())
    }

    /// Authenticates the connection as `user`.
    pub fn login(&mut self, user: Arc<User>) {
        self.info.lock().user = user.name.clone();
        self.user = user;
        self.authenticated = true;
    }

    /// Records activity (for CLIENT LIST's `idle`); called once per batch of requests.
    pub fn touch(&self, at: Instant) {
        self.info.lock().last_active = at;
    }
}

/// Whether `name` (lower case) is one of the commands [`execute`] answers.
pub fn is_connection_command(name: &str) -> bool {
    matches!(
        name,
        "ping"
            | "echo"
            | "quit"
            | "auth"
            | "hello"
            | "select"
            | "client"
            | "reset"
            | "time"
            | "readonly"
            | "readwrite"
            | "acl"
    )
}

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Checks a username/password pair and authenticates the connection with it.
fn login(acl: &Acl, command: &str, session: &mut ClientConn, user: &[u8], password: &[u8]) -> Result<(), String> {
    let info = session.info.clone();
    let id = session.id;
    let user = acl
        .authenticate(command, user, password, || info.lock().describe(id, Instant::now()))
        .ok_or_else(|| WRONGPASS.to_string())?;
    session.login(user);
    Ok(())
}

/// An integer as Redis's `string2ll` reads one: optional `-`, no `+`, no leading zeros or spaces, in range.
pub fn parse_integer(arg: &[u8]) -> Option<i64> {
    let digits = arg.strip_prefix(b"-").unwrap_or(arg);
    let canonical = arg == b"0"
        || (digits.first().is_some_and(|d| (b'1'..=b'9').contains(d)) && digits.iter().all(u8::is_ascii_digit));
    if !canonical {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

fn printable_word(s: &[u8]) -> bool {
    s.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

/// Runs connection command `name` (lower case; see [`is_connection_command`]), appending its reply to
/// `out`. `Err` carries the whole error line (`ERR ...`, `WRONGPASS ...`); nothing is appended then.
pub fn execute(
    name: &str,
    req: &Request,
    session: &mut ClientConn,
    clients: &ClientRegistry,
    acl: &Acl,
    out: &mut ReplyBuf,
) -> Result<(), String> {
    match name {
        "ping" => match req.argc() {
            1 => out.simple("PONG"),
            2 => out.bulk(req.arg(1)),
            _ => return Err("ERR wrong number of arguments for 'ping' command".into()),
        },
        "echo" => out.bulk(req.arg(1)),
        "quit" => {
            session.close_after_reply = true;
            out.ok();
        }
        "select" => match parse_integer(req.arg(1)) {
            Some(0) => out.ok(),
            Some(n) if i32::try_from(n).is_err() => {
                return Err(format!("ERR value is out of range, value must between {} and {}", i32::MIN, i32::MAX))
            }
            Some(_) => return Err("ERR DB index is out of range".into()),
            None => return Err("ERR value is not an integer or out of range".into()),
        },
        "auth" => {
            let (user, password) = match req.argc() {
                2 => (&b"default"[..], req.arg(1)),
                3 => (req.arg(1), req.arg(2)),
                _ => return Err("ERR syntax error".into()),
            };
            if req.argc() == 2 && acl.default_is_nopass() {
                return Err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?".into());
            }
            login(acl, "AUTH", session, user, password)?;
            out.ok();
        }
        "hello" => hello(req, session, acl, out)?,
        "acl" => {
            let (info, id) = (session.info.clone(), session.id);
            crate::acl::acl_command(acl, req, &session.user, || info.lock().describe(id, Instant::now()), out)?
        }
        "reset" => {
            session.set_name(String::new());
            session.authenticated = acl.default_is_open();
            session.info.lock().user = "default".into();
            session.user = acl.default_user();
            session.set_proto(Protocol::Resp2, out);
            out.simple("RESET");
        }
        // Redis without cluster mode answers the cluster-client commands this way; clients take it in stride.
        "readonly" | "readwrite" => return Err("ERR This instance has cluster support disabled".into()),
        "client" => client(req, session, clients, acl, out)?,
        "time" => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            out.array_len(2);
            out.bulk_integer(now.as_secs() as i64);
            out.bulk_integer(i64::from(now.subsec_micros()));
        }
        other => return Err(format!("ERR unknown command '{other}'")),
    }
    Ok(())
}

/// HELLO [2|3] [AUTH user pass] [SETNAME name]: switches the connection's protocol and replies with the
/// server's description, as a map in the new protocol.
fn hello(req: &Request, session: &mut ClientConn, acl: &Acl, out: &mut ReplyBuf) -> Result<(), String> {
    let mut i = 1;
    let mut proto = None;
    if req.argc() > 1 {
        proto = match parse_integer(req.arg(1)) {
            Some(2) => Some(Protocol::Resp2),
            Some(3) => Some(Protocol::Resp3),
            Some(_) => return Err("NOPROTO unsupported protocol version".into()),
            None => return Err("ERR Protocol version is not an integer or out of range".into()),
        };
        i = 2;
    }
    // As Redis 7.2: every option is checked before any takes effect; then AUTH, then SETNAME.
    let (mut auth, mut name) = (None, None);
    while i < req.argc() {
        let opt = req.arg(i);
        if is(opt, "AUTH") && i + 2 < req.argc() {
            auth = Some((req.arg(i + 1), req.arg(i + 2)));
            i += 3;
        } else if is(opt, "SETNAME") && i + 1 < req.argc() {
            if !printable_word(req.arg(i + 1)) {
                return Err("ERR Client names cannot contain spaces, newlines or special characters.".into());
            }
            name = Some(String::from_utf8_lossy(req.arg(i + 1)).into_owned());
            i += 2;
        } else {
            return Err(format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(opt)));
        }
    }
    if let Some((user, password)) = auth {
        login(acl, "HELLO", session, user, password)?;
    }
    if !session.authenticated {
        return Err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into());
    }
    if let Some(name) = name {
        session.set_name(name);
    }
    if let Some(proto) = proto {
        session.set_proto(proto, out);
    }
    out.map_len(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(REDIS_COMPAT_VERSION.as_bytes());
    out.bulk(b"proto");
    out.integer(session.proto.version());
    out.bulk(b"id");
    out.integer(session.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array_len(0);
    Ok(())
}

const CLIENT_HELP: [&str; 39] = [
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "    * ID <client-id>",
    "      Kill connections by client id.",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Print this help.",
];

fn client(
    req: &Request,
    session: &mut ClientConn,
    clients: &ClientRegistry,
    acl: &Acl,
    out: &mut ReplyBuf,
) -> Result<(), String> {
    let sub = req.arg(1);
    let lower = String::from_utf8_lossy(sub).to_lowercase();
    let argc = req.argc();
    let arity = |n: usize| {
        if argc == n {
            Ok(())
        } else {
            Err(format!("ERR wrong number of arguments for 'client|{lower}' command"))
        }
    };
    match lower.as_str() {
        "setname" => {
            arity(3)?;
            if !printable_word(req.arg(2)) {
                return Err("ERR Client names cannot contain spaces, newlines or special characters.".into());
            }
            session.set_name(String::from_utf8_lossy(req.arg(2)).into_owned());
            out.ok();
        }
        "getname" => {
            arity(2)?;
            match session.name() {
                Some(n) => out.bulk(n.as_bytes()),
                None => out.null(),
            }
        }
        "id" => {
            arity(2)?;
            out.integer(session.id as i64);
        }
        // Redis 7.2's CLIENT SETINFO (7.0 has none: it answers "unknown subcommand", which clients ignore
        // as well). The attribute is checked first, and errors name it as the client spelled it.
        "setinfo" => {
            arity(4)?;
            let (attr, value) = (req.arg(2), req.arg(3));
            let lib_name = is(attr, "LIB-NAME");
            if !lib_name && !is(attr, "LIB-VER") {
                return Err(format!("ERR Unrecognized option '{}'", String::from_utf8_lossy(attr)));
            }
            if !printable_word(value) {
                return Err(format!(
                    "ERR {} cannot contain spaces, newlines or special characters.",
                    String::from_utf8_lossy(attr)
                ));
            }
            let value = String::from_utf8_lossy(value).into_owned();
            let mut info = session.info.lock();
            if lib_name {
                info.lib_name = value;
            } else {
                info.lib_ver = value;
            }
            drop(info);
            out.ok();
        }
        "list" => crate::clients::list(req, clients, out)?,
        "kill" => {
            let killed = crate::clients::kill(req, clients, session.id, |user| acl.user(user).is_some())?;
            if killed.myself {
                session.close_after_reply = true;
            }
            if killed.old_form {
                out.ok();
            } else {
                out.integer(killed.count as i64);
            }
        }
        "pause" => {
            crate::clients::pause(req, clients)?;
            out.ok();
        }
        "unpause" => {
            arity(2)?;
            clients.pause.unpause();
            out.ok();
        }
        "no-evict" => {
            arity(3)?;
            let on = if is(req.arg(2), "on") {
                true
            } else if is(req.arg(2), "off") {
                false
            } else {
                return Err("ERR syntax error".into());
            };
            session.info.lock().no_evict = on;
            out.ok();
        }
        "info" => {
            arity(2)?;
            let line = session.info.lock().describe(session.id, Instant::now());
            out.verbatim(format!("{line}\n").as_bytes());
        }
        "help" => {
            out.array_len(CLIENT_HELP.len());
            for line in CLIENT_HELP {
                out.simple(line);
            }
        }
        _ => return Err(format!("ERR unknown subcommand '{}'. Try CLIENT HELP.", String::from_utf8_lossy(sub))),
    }
    Ok(())
}
