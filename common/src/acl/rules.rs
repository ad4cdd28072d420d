//! A user's rules as Redis 7.0 keeps them: flags, password hashes, key and channel patterns, the allowed
//! commands (a bit per command id) and the command rules in the order they were given (what ACL LIST and
//! ACL GETUSER print).

use sha2::{Digest, Sha256};

use super::table::{category_bit, TABLE};

pub const READ: u8 = 1;
pub const WRITE: u8 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub perm: u8,
    pub pattern: Vec<u8>,
}

impl KeyPattern {
    fn describe(&self, out: &mut String) {
        match self.perm {
            READ => out.push_str("%R~"),
            WRITE => out.push_str("%W~"),
            _ => out.push('~'),
        }
        out.push_str(&String::from_utf8_lossy(&self.pattern));
    }
}

#[derive(Clone, Debug)]
pub struct Rules {
    pub enabled: bool,
    pub nopass: bool,
    /// `Some(true)`: sanitize-payload, `Some(false)`: skip-sanitize-payload (accepted, shown, not used).
    pub sanitize: Option<bool>,
    pub passwords: Vec<[u8; 32]>,
    pub allkeys: bool,
    pub keys: Vec<KeyPattern>,
    pub allchannels: bool,
    pub channels: Vec<Vec<u8>>,
    allowed: Vec<u64>,
    /// Set by +@all: commands added later are allowed too (ACL LIST starts with `+@all`).
    all_future: bool,
    command_rules: Vec<String>,
}

/// Why a rule was refused: Redis's text after "Error in ACL SETUSER modifier '...': ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("Syntax error")]
    Syntax,
    #[error("Unknown command or category name in ACL")]
    Unknown,
    #[error("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")]
    AfterAllKeys,
    #[error("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels")]
    AfterAllChannels,
    #[error("The password you are trying to remove from the user does not exist")]
    NoSuchPassword,
    #[error("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")]
    BadHash,
    #[error("Allowing first-arg of a subcommand is not supported")]
    FirstArg,
    #[error("Selectors are not supported by Ringcache")]
    Selectors,
}

pub fn hash_password(password: &[u8]) -> [u8; 32] {
    Sha256::digest(password).into()
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn parse_hash(text: &[u8]) -> Result<[u8; 32], RuleError> {
    if text.len() != 64 || !text.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)) {
        return Err(RuleError::BadHash);
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks(2).enumerate() {
        let v = |c: u8| if c.is_ascii_digit() { c - b'0' } else { c - b'a' + 10 };
        out[i] = (v(pair[0]) << 4) | v(pair[1]);
    }
    Ok(out)
}

impl Rules {
    /// A user ACL SETUSER creates: `off resetchannels -@all`.
    pub fn new_user() -> Self {
        Rules {
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            allkeys: false,
            keys: Vec::new(),
            allchannels: false,
            channels: Vec::new(),
            allowed: vec![0; TABLE.entries.len().div_ceil(64)],
            all_future: false,
            command_rules: Vec::new(),
        }
    }

    /// The default user: `on nopass ~* &* +@all`, or with `requirepass`'s hash instead of nopass.
    pub fn default_user(requirepass: Option<&str>) -> Self {
        let mut r = Rules::new_user();
        r.enabled = true;
        match requirepass {
            Some(p) => r.passwords.push(hash_password(p.as_bytes())),
            None => r.nopass = true,
        }
        r.allkeys = true;
        r.allchannels = true;
        r.set_all(true);
        r
    }

    /// Whether this user may run anything on any key and channel: the per-request check is skipped.
    pub fn unrestricted(&self) -> bool {
        self.allkeys && self.allchannels && self.all_future && self.allowed_all()
    }

    fn allowed_all(&self) -> bool {
        let n = TABLE.entries.len();
        (0..n).all(|id| self.allowed(id))
    }

    #[inline]
    pub fn allowed(&self, id: usize) -> bool {
        self.allowed[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, allow: bool) {
        if allow {
            self.allowed[id / 64] |= 1 << (id % 64);
        } else {
            self.allowed[id / 64] &= !(1 << (id % 64));
        }
    }

    fn set_all(&mut self, allow: bool) {
        let fill = if allow { u64::MAX } else { 0 };
        self.allowed.iter_mut().for_each(|w| *w = fill);
        self.all_future = allow;
        self.command_rules.clear();
    }

    /// A command and its subcommands.
    fn set_command(&mut self, id: usize, allow: bool) {
        self.set_bit(id, allow);
        for sub in TABLE.entries[id].subs.clone() {
            self.set_bit(sub, allow);
        }
    }

    fn update_command_rules(&mut self, rule: &str, allow: bool) {
        let rule = rule.to_ascii_lowercase();
        self.command_rules.retain(|r| r[1..] != rule);
        self.command_rules.push(format!("{}{rule}", if allow { '+' } else { '-' }));
    }

    /// Applies one rule (ACL SETUSER's arguments, one at a time).
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let lower = op.to_ascii_lowercase();
        match &lower[..] {
            b"on" => self.enabled = true,
            b"off" => self.enabled = false,
            b"nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            b"resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            b"allkeys" | b"~*" => {
                self.allkeys = true;
                self.keys.clear();
            }
            b"resetkeys" => {
                self.allkeys = false;
                self.keys.clear();
            }
            b"allchannels" | b"&*" => {
                self.allchannels = true;
                self.channels.clear();
            }
            b"resetchannels" => {
                self.allchannels = false;
                self.channels.clear();
            }
            b"allcommands" | b"+@all" => self.set_all(true),
            b"nocommands" | b"-@all" => self.set_all(false),
            b"sanitize-payload" => self.sanitize = Some(true),
            b"skip-sanitize-payload" => self.sanitize = Some(false),
            b"reset" => {
                for r in [&b"resetpass"[..], b"resetkeys", b"resetchannels", b"off", b"sanitize-payload", b"-@all"] {
                    self.apply(r)?;
                }
            }
            _ => return self.apply_with_argument(op),
        }
        Ok(())
    }

    fn apply_with_argument(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let (first, rest) = op.split_first().ok_or(RuleError::Syntax)?;
        match first {
            b'>' => {
                let h = hash_password(rest);
                if !self.passwords.contains(&h) {
                    self.passwords.push(h);
                }
                self.nopass = false;
            }
            b'#' => {
                let h = parse_hash(rest)?;
                if !self.passwords.contains(&h) {
                    self.passwords.push(h);
                }
                self.nopass = false;
            }
            b'<' | b'!' => {
                let h = if *first == b'<' { hash_password(rest) } else { parse_hash(rest)? };
                let before = self.passwords.len();
                self.passwords.retain(|p| *p != h);
                if self.passwords.len() == before {
                    return Err(RuleError::NoSuchPassword);
                }
            }
            b'~' | b'%' => {
                let (perm, pattern) = if *first == b'~' {
                    (READ | WRITE, rest)
                } else {
                    let tilde = rest.iter().position(|&c| c == b'~').ok_or(RuleError::Syntax)?;
                    let mut perm = 0;
                    for c in &rest[..tilde] {
                        perm |= match c.to_ascii_uppercase() {
                            b'R' => READ,
                            b'W' => WRITE,
                            _ => return Err(RuleError::Syntax),
                        };
                    }
                    if perm == 0 {
                        return Err(RuleError::Syntax);
                    }
                    (perm, &rest[tilde + 1..])
                };
                if self.allkeys {
                    return Err(RuleError::AfterAllKeys);
                }
                if perm == READ | WRITE && pattern == b"*" {
                    self.allkeys = true;
                    self.keys.clear();
                    return Ok(());
                }
                match self.keys.iter_mut().find(|k| k.pattern == pattern) {
                    Some(existing) => existing.perm |= perm,
                    None => self.keys.push(KeyPattern { perm, pattern: pattern.to_vec() }),
                }
            }
            b'&' => {
                if self.allchannels {
                    return Err(RuleError::AfterAllChannels);
                }
                if !self.channels.iter().any(|c| c == rest) {
                    self.channels.push(rest.to_vec());
                }
            }
            b'+' | b'-' => {
                let allow = *first == b'+';
                let name = std::str::from_utf8(rest).map_err(|_| RuleError::Unknown)?.to_ascii_lowercase();
                if let Some(cat) = name.strip_prefix('@') {
                    let bit = category_bit(cat).ok_or(RuleError::Unknown)?;
                    for (id, e) in TABLE.entries.iter().enumerate() {
                        if e.categories & bit != 0 {
                            self.set_bit(id, allow);
                        }
                    }
                    self.update_command_rules(&name, allow);
                } else if let Some(id) = TABLE.id(&name) {
                    self.set_command(id, allow);
                    self.update_command_rules(&name, allow);
                } else if name.contains('|') {
                    // A container's first argument that is not one of its subcommands (SELECT|0).
                    let parent = name.split('|').next().unwrap_or_default();
                    return Err(if TABLE.id(parent).is_some() { RuleError::FirstArg } else { RuleError::Unknown });
                } else {
                    return Err(RuleError::Unknown);
                }
            }
            b'(' => return Err(RuleError::Selectors),
            _ => return Err(RuleError::Syntax),
        }
        Ok(())
    }

    /// The command rules as ACL GETUSER's `commands` prints them.
    pub fn describe_commands(&self) -> String {
        let mut s = String::from(if self.all_future { "+@all" } else { "-@all" });
        for r in &self.command_rules {
            s.push(' ');
            s.push_str(r);
        }
        s
    }

    pub fn describe_keys(&self) -> String {
        if self.allkeys {
            return "~*".into();
        }
        let mut s = String::new();
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            k.describe(&mut s);
        }
        s
    }

    pub fn describe_channels(&self) -> String {
        if self.allchannels {
            return "&*".into();
        }
        self.channels.iter().map(|c| format!("&{}", String::from_utf8_lossy(c))).collect::<Vec<_>>().join(" ")
    }

    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize {
            Some(true) => f.push("sanitize-payload"),
            Some(false) => f.push("skip-sanitize-payload"),
            None => {}
        }
        f
    }

    /// The rules as one ACL LIST line (without `user <name> `), which ACL SETUSER reads back to the same
    /// rules.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.flags().into_iter().map(String::from).collect();
        parts.extend(self.passwords.iter().map(|p| format!("#{}", hex(p))));
        let keys = self.describe_keys();
        if !keys.is_empty() {
            parts.push(keys);
        }
        if self.allchannels {
            parts.push("&*".into());
        } else {
            parts.push("resetchannels".into());
            let channels = self.describe_channels();
            if !channels.is_empty() {
                parts.push(channels);
            }
        }
        parts.push(self.describe_commands());
        parts.join(" ")
    }

    /// Whether `key` may be used with the access `perm` (READ and/or WRITE) asks.
    pub fn key_allowed(&self, key: &[u8], perm: u8) -> bool {
        self.allkeys || self.keys.iter().any(|k| k.perm & perm == perm && crate::glob::glob_match(&k.pattern, key))
    }

    /// Whether a channel (or, `is_pattern`, a PSUBSCRIBE pattern, which must be granted literally) is
    /// allowed.
    pub fn channel_allowed(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.allchannels
            || self.channels.iter().any(|c| if is_pattern { c == channel } else { crate::glob::glob_match(c, channel) })
    }

    pub fn password_ok(&self, password: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let h = hash_password(password);
        // Every hash is compared, so the time does not tell which one matched.
        self.passwords.iter().fold(false, |ok, p| ok | (p.iter().zip(&h).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(ops: &[&str]) -> Rules {
        let mut r = Rules::new_user();
        for op in ops {
            r.apply(op.as_bytes()).unwrap();
        }
        r
    }

    #[test]
    fn described_as_redis_7_0() {
        assert_eq!(Rules::default_user(None).describe(), "on nopass ~* &* +@all");
        assert_eq!(Rules::new_user().describe(), "off resetchannels -@all");
        let r = rules(&["on", ">pw", "~foo:*", "%R~bar*", "+@read", "-get", "+set", "+client|id", "&ch*"]);
        assert_eq!(
            r.describe(),
            "on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~foo:* %R~bar* resetchannels &ch* -@all +@read -get +set +client|id"
        );
        let r = rules(&["on", "nopass", "allkeys", "allchannels", "+@all", "-@dangerous"]);
        assert_eq!(r.describe(), "on nopass ~* &* +@all -@dangerous");
        assert!(!r.unrestricted());
        assert!(Rules::default_user(Some("x")).unrestricted());
    }

    #[test]
    fn checks() {
        let r = rules(&["%R~r:*", "~rw:*"]);
        assert!(r.key_allowed(b"r:1", READ));
        assert!(!r.key_allowed(b"r:1", WRITE));
        assert!(r.key_allowed(b"rw:1", READ | WRITE));
        assert!(rules(&[">a"]).password_ok(b"a"));
        assert!(!rules(&[">a"]).password_ok(b"b"));
        assert_eq!(rules(&["~*"]).apply(b"~x"), Err(RuleError::AfterAllKeys));
        assert_eq!(rules(&[]).apply(b"+nosuch"), Err(RuleError::Unknown));
    }
}
