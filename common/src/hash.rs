//! Key hashing for placing keys on shards, compatible with twemproxy's `hash:` options and `hash_tag`.
//!
//! twemproxy's functions take `const char *` keys, so a byte of 0x80 or above is sign-extended before it
//! is mixed in; ours do the same, or non-ASCII keys would land on different shards than under nutcracker.
//! Its `fnv1a_64` is, despite the name, computed in 32 bits with the 64-bit constants truncated.

use md5::{Digest, Md5};

/// A key hash function, by twemproxy's name for it (variant names mirror the option values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum KeyHash {
    Fnv1_64,
    Fnv1a_64,
    Fnv1_32,
    Fnv1a_32,
    Md5,
    Crc32a,
    OneAtATime,
}

impl KeyHash {
    /// Parses twemproxy's option value (`fnv1a_64`, `md5`, ...).
    pub fn from_name(name: &str) -> Result<KeyHash, String> {
        Ok(match name {
            "fnv1_64" => KeyHash::Fnv1_64,
            "fnv1a_64" => KeyHash::Fnv1a_64,
            "fnv1_32" => KeyHash::Fnv1_32,
            "fnv1a_32" => KeyHash::Fnv1a_32,
            "md5" => KeyHash::Md5,
            "crc32a" => KeyHash::Crc32a,
            "one_at_a_time" => KeyHash::OneAtATime,
            other => {
                return Err(format!(
                    "unsupported key hash '{other}': use fnv1a_64 (default), fnv1_64, fnv1a_32, fnv1_32, md5, crc32a or one_at_a_time"
                ))
            }
        })
    }

    /// twemproxy's option value for this function (the inverse of [`Self::from_name`]).
    pub fn name(self) -> &'static str {
        match self {
            KeyHash::Fnv1_64 => "fnv1_64",
            KeyHash::Fnv1a_64 => "fnv1a_64",
            KeyHash::Fnv1_32 => "fnv1_32",
            KeyHash::Fnv1a_32 => "fnv1a_32",
            KeyHash::Md5 => "md5",
            KeyHash::Crc32a => "crc32a",
            KeyHash::OneAtATime => "one_at_a_time",
        }
    }

    /// The hash a key is placed by on the ring: its `{hash tag}`, hashed with this function.
    pub fn ring_hash(self, key: &[u8]) -> u32 {
        self.hash(hash_tag(key))
    }

    pub fn hash(self, key: &[u8]) -> u32 {
        match self {
            KeyHash::Fnv1_64 => fnv1_64(key),
            KeyHash::Fnv1a_64 => fnv1a_64(key),
            KeyHash::Fnv1_32 => fnv1_32(key),
            KeyHash::Fnv1a_32 => fnv1a_32(key),
            KeyHash::Md5 => md5_u32(key, 0),
            KeyHash::Crc32a => crc32fast::hash(key),
            KeyHash::OneAtATime => one_at_a_time(key),
        }
    }
}

/// Ring arcs as sorted, inclusive hash ranges: membership by binary search. An arc `(after, up_to]` holds
/// the hashes `after < h <= up_to`, or, when `after >= up_to`, wraps past `u32::MAX`; `ringcache-proxy`'s
/// `Ring::arcs_of` gives them in that form.
#[derive(Debug, Clone, Default)]
pub struct ArcSet {
    ranges: Vec<(u32, u32)>,
}

impl ArcSet {
    /// From arcs `(after, up_to]`.
    pub fn new(arcs: &[(u32, u32)]) -> ArcSet {
        let mut ranges = Vec::with_capacity(arcs.len() + 1);
        for &(after, up_to) in arcs {
            if after < up_to {
                ranges.push((after + 1, up_to));
            } else {
                if after < u32::MAX {
                    ranges.push((after + 1, u32::MAX));
                }
                ranges.push((0, up_to));
            }
        }
        ranges.sort_unstable();
        ArcSet { ranges }
    }

    pub fn contains(&self, hash: u32) -> bool {
        let i = self.ranges.partition_point(|&(lo, _)| lo <= hash);
        i > 0 && self.ranges[i - 1].1 >= hash
    }
}

const FNV_64_INIT: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_64_PRIME: u64 = 0x0000_0100_0000_01b3;
const FNV_32_INIT: u32 = 2_166_136_261;
const FNV_32_PRIME: u32 = 16_777_619;

/// A key byte as C's `(uint32_t)(char)b` on x86: sign-extended.
fn c_char(b: u8) -> u32 {
    b as i8 as i32 as u32
}

pub fn fnv1_64(key: &[u8]) -> u32 {
    let mut h = FNV_64_INIT;
    for &b in key {
        h = h.wrapping_mul(FNV_64_PRIME);
        h ^= b as i8 as i64 as u64;
    }
    h as u32
}

pub fn fnv1a_64(key: &[u8]) -> u32 {
    let mut h = FNV_64_INIT as u32;
    for &b in key {
        h ^= c_char(b);
        h = h.wrapping_mul(FNV_64_PRIME as u32);
    }
    h
}

pub fn fnv1_32(key: &[u8]) -> u32 {
    let mut h = FNV_32_INIT;
    for &b in key {
        h = h.wrapping_mul(FNV_32_PRIME);
        h ^= c_char(b);
    }
    h
}

pub fn fnv1a_32(key: &[u8]) -> u32 {
    let mut h = FNV_32_INIT;
    for &b in key {
        h ^= c_char(b);
        h = h.wrapping_mul(FNV_32_PRIME);
    }
    h
}

pub fn one_at_a_time(key: &[u8]) -> u32 {
    let mut v: u32 = 0;
    for &b in key {
        v = v.wrapping_add(c_char(b));
        v = v.wrapping_add(v << 10);
        v ^= v >> 6;
    }
    v = v.wrapping_add(v << 3);
    v ^= v >> 11;
    v.wrapping_add(v << 15)
}

/// Four little-endian bytes of the MD5 digest of `data`, starting at byte `4 * word` (ketama's points).
pub fn md5_u32(data: &[u8], word: usize) -> u32 {
    let digest = Md5::digest(data);
    let w = &digest[4 * word..4 * word + 4];
    u32::from_le_bytes([w[0], w[1], w[2], w[3]])
}

/// The part of `key` that is hashed under the default tag `{}`: the text inside the first `{...}` when it
/// is not empty (Redis Cluster's and twemproxy's `hash_tag: "{}"` rule), otherwise the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    HashTag::BRACES.hashed_part(key)
}

/// twemproxy's `hash_tag`: two characters around the part of a key that is hashed (`{}` by default), or none,
/// so that the whole key is hashed (a twemproxy pool without `hash_tag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashTag(Option<[u8; 2]>);

impl Default for HashTag {
    fn default() -> Self {
        HashTag::BRACES
    }
}

impl HashTag {
    /// `{}`, as Redis Cluster.
    pub const BRACES: HashTag = HashTag(Some([b'{', b'}']));
    /// No tag: the whole key is hashed.
    pub const NONE: HashTag = HashTag(None);

    /// `--hash-tag`: two characters as twemproxy's `hash_tag` (`"{}"`, `"[]"`, `"::"`), or `""` for none.
    pub fn parse(text: &str) -> Result<HashTag, String> {
        match text.as_bytes() {
            [] => Ok(HashTag::NONE),
            &[open, close] => Ok(HashTag(Some([open, close]))),
            _ => Err(format!("invalid hash tag '{text}': give two characters such as \"{{}}\", or \"\" for none")),
        }
    }

    /// The two characters, or `""` (the inverse of [`Self::parse`]).
    pub fn as_text(self) -> String {
        self.0.map(|pair| String::from_utf8_lossy(&pair).into_owned()).unwrap_or_default()
    }

    /// The part of `key` that is hashed, as twemproxy's `msg_backend_idx`: the bytes between the first opening
    /// character and the first closing one after it when there are any, otherwise the whole key.
    #[inline]
    pub fn hashed_part(self, key: &[u8]) -> &[u8] {
        let Some([open_char, close_char]) = self.0 else { return key };
        if let Some(open) = key.iter().position(|&b| b == open_char) {
            if let Some(len) = key[open + 1..].iter().position(|&b| b == close_char) {
                if len > 0 {
                    return &key[open + 1..open + 1 + len];
                }
            }
        }
        key
    }
}

/// How a key is placed on the ring: the hash function and the hash tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub key_hash: KeyHash,
    pub hash_tag: HashTag,
}

impl Placement {
    pub fn new(key_hash: KeyHash, hash_tag: HashTag) -> Placement {
        Placement { key_hash, hash_tag }
    }

    /// The hash a key is placed by: its hashed part, hashed with the function.
    #[inline]
    pub fn ring_hash(self, key: &[u8]) -> u32 {
        self.key_hash.hash(self.hash_tag.hashed_part(key))
    }

    /// One word for the proxy's handoff commands to shards: the function's name (`fnv1a_64`, tag `{}`), or
    /// the name, `:` and the tag (`fnv1a_64:[]`; `fnv1a_64:` for none). Function names contain no `:`.
    pub fn token(self) -> String {
        if self.hash_tag == HashTag::BRACES {
            self.key_hash.name().to_string()
        } else {
            format!("{}:{}", self.key_hash.name(), self.hash_tag.as_text())
        }
    }

    /// The inverse of [`Self::token`].
    pub fn from_token(token: &[u8]) -> Result<Placement, String> {
        let text = std::str::from_utf8(token).map_err(|_| "key hash is not UTF-8".to_string())?;
        match text.split_once(':') {
            None => Ok(Placement::new(KeyHash::from_name(text)?, HashTag::BRACES)),
            Some((name, tag)) => Ok(Placement::new(KeyHash::from_name(name)?, HashTag::parse(tag)?)),
        }
    }
}

impl From<KeyHash> for Placement {
    fn from(key_hash: KeyHash) -> Placement {
        Placement::new(key_hash, HashTag::BRACES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arcs' definition, checked one by one.
    fn in_arcs(arcs: &[(u32, u32)], hash: u32) -> bool {
        arcs.iter().any(
            |&(after, up_to)| {
                if after < up_to {
                    hash > after && hash <= up_to
                } else {
                    hash > after || hash <= up_to
                }
            },
        )
    }

    #[test]
    fn arc_sets_agree_with_the_linear_check() {
        let arcs = [(10, 20), (u32::MAX - 5, 3), (100, 100_000), (200_000, 200_001)];
        let set = ArcSet::new(&arcs);
        let probes =
            [0, 1, 3, 4, 10, 11, 20, 21, 99, 100, 101, 100_000, 100_001, 200_001, u32::MAX - 5, u32::MAX - 4, u32::MAX];
        for h in probes {
            assert_eq!(set.contains(h), in_arcs(&arcs, h), "{h}");
        }
        // A single member's one arc covers the whole circle.
        let all = ArcSet::new(&[(7, 7)]);
        assert!(all.contains(0) && all.contains(7) && all.contains(u32::MAX));
        assert!(!ArcSet::new(&[]).contains(5));
    }

    #[test]
    fn fnv_reference_values() {
        // 32-bit FNV-1a reference values for "" and "a" (from the FNV authors' test suite).
        assert_eq!(fnv1a_32(b""), 0x811c9dc5);
        assert_eq!(fnv1a_32(b"a"), 0xe40c292c);
        assert_eq!(fnv1_32(b"a"), 0x050c5d7e);
        // twemproxy's fnv1a_64 starts from the low 32 bits of the 64-bit offset basis.
        assert_eq!(fnv1a_64(b""), 0x84222325);
        assert_eq!(fnv1_64(b""), 0x84222325);
    }

    #[test]
    fn high_bytes_are_sign_extended_like_c_chars() {
        assert_eq!(c_char(0x80), 0xffff_ff80);
        assert_ne!(fnv1a_64(&[0xe9]), {
            let mut h = FNV_64_INIT as u32;
            h ^= 0xe9;
            h.wrapping_mul(FNV_64_PRIME as u32)
        });
    }

    #[test]
    fn hash_tags() {
        assert_eq!(hash_tag(b"user:{42}:name"), b"42");
        assert_eq!(hash_tag(b"{}abc"), b"{}abc");
        assert_eq!(hash_tag(b"a{b"), b"a{b");
        assert_eq!(hash_tag(b"a{b}{c}"), b"b");
        assert_eq!(hash_tag(b"plain"), b"plain");
    }

    #[test]
    fn configurable_hash_tags_as_twemproxy() {
        let square = HashTag::parse("[]").unwrap();
        assert_eq!(square.hashed_part(b"user:[42]:name"), b"42");
        assert_eq!(square.hashed_part(b"user:{42}:name"), b"user:{42}:name");
        assert_eq!(square.hashed_part(b"[]x[1]"), b"[]x[1]");
        let colons = HashTag::parse("::").unwrap();
        assert_eq!(colons.hashed_part(b"a:b:c"), b"b");
        assert_eq!(colons.hashed_part(b"a::c"), b"a::c");
        assert_eq!(HashTag::parse("").unwrap().hashed_part(b"user:{42}"), b"user:{42}");
        assert_eq!(HashTag::parse("{}").unwrap(), HashTag::BRACES);
        for bad in ["{", "{}}", "abc"] {
            assert!(HashTag::parse(bad).is_err(), "{bad}");
        }
        for tag in ["{}", "[]", "", "::"] {
            let p = Placement::new(KeyHash::Md5, HashTag::parse(tag).unwrap());
            assert_eq!(Placement::from_token(p.token().as_bytes()).unwrap(), p, "{tag:?}");
        }
        assert_eq!(Placement::from_token(b"fnv1a_64").unwrap(), Placement::from(KeyHash::Fnv1a_64));
        assert_eq!(
            Placement::from_token(b"fnv1a_64").unwrap().ring_hash(b"{a}b"),
            KeyHash::Fnv1a_64.ring_hash(b"{a}b")
        );
        assert!(Placement::from_token(b"nope:{}").is_err());
    }
}
