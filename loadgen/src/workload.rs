//! What a connection sends: seeded key choice ([`KeySampler`]), values ([`ValueGen`], stamped for
//! verification), request templates ([`CommandTemplate`]) and RESP encoding straight into the connection's
//! write buffer ([`Workload`]).
//!
//! Every connection has its own `SmallRng` seeded from `--seed` and its index, so the same seed repeats the
//! same keys and values per connection. Keys are `<prefix><n>`; with `--verify` (and always with the
//! sequential pattern) connection `c` of `C` uses only the keys `n ≡ c (mod C)`, so it alone writes them.

use bytes::{BufMut, BytesMut};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use rand_distr::{Distribution, Normal, Zipf};
use ringcache_common::resp::ReplyWriter;

use crate::config::{Config, DataSize};

/// How key indices are drawn, before they are mapped to a connection's share of the key space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyPattern {
    Sequential,
    Uniform,
    Zipf { exponent: f64 },
    Gaussian { stddev_keys: Option<f64> },
}

impl KeyPattern {
    /// The name `--key-pattern` takes.
    pub fn name(&self) -> &'static str {
        match self {
            KeyPattern::Sequential => "sequential",
            KeyPattern::Uniform => "uniform",
            KeyPattern::Zipf { .. } => "zipf",
            KeyPattern::Gaussian { .. } => "gaussian",
        }
    }
}

/// The keys one connection may use: `offset + j * stride` for `j` in `0..len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpace {
    pub offset: u64,
    pub stride: u64,
    pub len: u64,
}

impl KeySpace {
    /// All of `0..keys`.
    pub fn all(keys: u64) -> KeySpace {
        KeySpace { offset: 0, stride: 1, len: keys }
    }

    /// The share of `0..keys` that connection `client` of `clients` owns: `n ≡ client (mod clients)`.
    pub fn owned(keys: u64, client: u64, clients: u64) -> KeySpace {
        let len = if client < keys { (keys - client).div_ceil(clients) } else { 0 };
        KeySpace { offset: client, stride: clients, len }
    }

    /// The key number of the `j`-th key of this space.
    pub fn key(&self, j: u64) -> u64 {
        self.offset + j * self.stride
    }
}

/// Draws positions `0..len` in a key space.
#[derive(Debug, Clone)]
pub struct KeySampler {
    len: u64,
    kind: SamplerKind,
}

#[derive(Debug, Clone)]
enum SamplerKind {
    Sequential { next: u64 },
    Uniform,
    Zipf(Zipf<f64>),
    Gaussian(Normal<f64>),
}

impl KeySampler {
    /// A sampler over `0..len` (`len` ≥ 1).
    pub fn new(pattern: KeyPattern, len: u64) -> KeySampler {
        let len = len.max(1);
        let kind = match pattern {
            KeyPattern::Sequential => SamplerKind::Sequential { next: 0 },
            KeyPattern::Uniform => SamplerKind::Uniform,
            // Both constructors only fail for parameters the config has already rejected (n < 1, s < 0,
            // stddev not finite); fall back to uniform rather than panic if that ever changes.
            KeyPattern::Zipf { exponent } => {
                Zipf::new(len as f64, exponent).map_or(SamplerKind::Uniform, SamplerKind::Zipf)
            }
            KeyPattern::Gaussian { stddev_keys } => {
                let stddev = stddev_keys.unwrap_or(len as f64 / 6.0).max(f64::MIN_POSITIVE);
                Normal::new(len as f64 / 2.0, stddev).map_or(SamplerKind::Uniform, SamplerKind::Gaussian)
            }
        };
        KeySampler { len, kind }
    }

    /// The next position in `0..len`.
    pub fn sample(&mut self, rng: &mut impl Rng) -> u64 {
        match &mut self.kind {
            SamplerKind::Sequential { next } => {
                let j = *next;
                *next = if j + 1 >= self.len { 0 } else { j + 1 };
                j
            }
            SamplerKind::Uniform => rng.random_range(0..self.len),
            // Rank 1 (the most frequent) is position 0.
            SamplerKind::Zipf(z) => (z.sample(rng) as u64).clamp(1, self.len) - 1,
            SamplerKind::Gaussian(n) => {
                // Redraw outside the key space (rarely needed for stddev <= len/6), clamp as a last resort.
                for _ in 0..16 {
                    let x = n.sample(rng);
                    if x >= 0.0 && x < self.len as f64 {
                        return x as u64;
                    }
                }
                (n.sample(rng).max(0.0) as u64).min(self.len - 1)
            }
        }
    }
}

/// The stamp a verifiable value carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueStamp {
    pub run_id: u64,
    pub version: u64,
}

/// Why a value is not one this tool wrote for the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadValue {
    NotStamped,
    Checksum,
}

const STAMP_MAGIC: &[u8] = b"rc1:";

/// Generates values: slices of a seeded random buffer, or stamped values for verification.
///
/// A stamped value is `rc1:<run id, 16 hex>:<version>:<crc32, 8 hex>:<filler>`; the CRC covers the key, the
/// run id, the version and the filler, so a value of another key, a truncated or a modified value is
/// detected. A stamped value is never shorter than its header.
#[derive(Debug, Clone)]
pub struct ValueGen {
    filler: Vec<u8>,
    size: DataSize,
}

impl ValueGen {
    pub fn new(size: DataSize, rng: &mut impl Rng) -> ValueGen {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let filler = (0..size.max_bytes).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())]).collect();
        ValueGen { filler, size }
    }

    /// The next value's size.
    pub fn next_size(&self, rng: &mut impl Rng) -> usize {
        if self.size.min_bytes == self.size.max_bytes {
            self.size.min_bytes
        } else {
            rng.random_range(self.size.min_bytes..=self.size.max_bytes)
        }
    }

    /// A plain value of `size` bytes.
    pub fn plain(&self, size: usize) -> &[u8] {
        &self.filler[..size.min(self.filler.len())]
    }

    /// A stamped value of about `size` bytes (at least the header) for `key`.
    pub fn stamped(&self, out: &mut Vec<u8>, key: &[u8], stamp: ValueStamp, size: usize) {
        out.clear();
        let version = itoa::Buffer::new().format(stamp.version).to_owned();
        let header_len = STAMP_MAGIC.len() + 16 + 1 + version.len() + 1 + 8 + 1;
        let filler = &self.filler[..size.saturating_sub(header_len).min(self.filler.len())];
        let run_hex = format!("{:016x}", stamp.run_id);
        let crc = stamp_crc(key, run_hex.as_bytes(), version.as_bytes(), filler);
        out.extend_from_slice(STAMP_MAGIC);
        out.extend_from_slice(run_hex.as_bytes());
        out.push(b':');
        out.extend_from_slice(version.as_bytes());
        out.push(b':');
        out.extend_from_slice(format!("{crc:08x}").as_bytes());
        out.push(b':');
        out.extend_from_slice(filler);
    }
}

fn stamp_crc(key: &[u8], run_hex: &[u8], version: &[u8], filler: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for part in [key, b"\0", run_hex, b"\0", version, b"\0", filler] {
        h.update(part);
    }
    h.finalize()
}

/// Reads the stamp of a value written for `key` by [`ValueGen::stamped`].
pub fn parse_stamp(key: &[u8], value: &[u8]) -> Result<ValueStamp, BadValue> {
    let rest = value.strip_prefix(STAMP_MAGIC).ok_or(BadValue::NotStamped)?;
    let mut parts = rest.splitn(4, |&b| b == b':');
    let (Some(run_hex), Some(version), Some(crc_hex), Some(filler)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BadValue::NotStamped);
    };
    let text = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_owned);
    let run_id = text(run_hex).filter(|t| t.len() == 16).and_then(|t| u64::from_str_radix(&t, 16).ok());
    let version_n = text(version).and_then(|t| t.parse::<u64>().ok());
    let crc = text(crc_hex).filter(|t| t.len() == 8).and_then(|t| u32::from_str_radix(&t, 16).ok());
    let (Some(run_id), Some(version_n), Some(crc)) = (run_id, version_n, crc) else {
        return Err(BadValue::NotStamped);
    };
    if stamp_crc(key, run_hex, version, filler) != crc {
        return Err(BadValue::Checksum);
    }
    Ok(ValueStamp { run_id, version: version_n })
}

/// One argument of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplateArg {
    Literal(Vec<u8>),
    /// A word containing `__key__` and/or `__data__` placeholders, split around them.
    Pattern(Vec<Piece>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    Key,
    Data,
}

/// A request template such as `MGET __key__ __key__` (`--command`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTemplate {
    /// The command name in upper case, used to label its figures.
    pub name: String,
    args: Vec<TemplateArg>,
}

impl CommandTemplate {
    /// Parses a template: words separated by spaces; `__key__` and `__data__` may appear inside words.
    pub fn parse(text: &str) -> Result<CommandTemplate, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let Some(first) = words.first() else {
            return Err("empty template".into());
        };
        if first.contains("__key__") || first.contains("__data__") {
            return Err("the first word must be the command name".into());
        }
        let args = words
            .iter()
            .map(|w| {
                if !w.contains("__key__") && !w.contains("__data__") {
                    return TemplateArg::Literal(w.as_bytes().to_vec());
                }
                let mut pieces = Vec::new();
                let mut rest = *w;
                while !rest.is_empty() {
                    let next = [("__key__", Piece::Key), ("__data__", Piece::Data)]
                        .into_iter()
                        .filter_map(|(pat, piece)| rest.find(pat).map(|at| (at, pat.len(), piece)))
                        .min_by_key(|(at, _, _)| *at);
                    match next {
                        Some((at, len, piece)) => {
                            if at > 0 {
                                pieces.push(Piece::Text(rest.as_bytes()[..at].to_vec()));
                            }
                            pieces.push(piece);
                            rest = &rest[at + len..];
                        }
                        None => {
                            pieces.push(Piece::Text(rest.as_bytes().to_vec()));
                            rest = "";
                        }
                    }
                }
                TemplateArg::Pattern(pieces)
            })
            .collect();
        Ok(CommandTemplate { name: first.to_ascii_uppercase(), args })
    }

    /// How many `__key__` placeholders the template has.
    pub fn key_count(&self) -> usize {
        self.args
            .iter()
            .map(|a| match a {
                TemplateArg::Literal(_) => 0,
                TemplateArg::Pattern(p) => p.iter().filter(|x| **x == Piece::Key).count(),
            })
            .sum()
    }
}

/// Which operation a request is, for its figures and for checking its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Set,
    Get,
    /// Template number `i` of `--command`.
    Template(usize),
}

/// A request just encoded, as the connection must remember it until its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    pub kind: OpKind,
    /// Key number (SET/GET).
    pub key: u64,
    /// Position of the key in the connection's key space (SET/GET).
    pub slot: u64,
}

/// One connection's workload: its RNG, key sampler, values and the weighted choice of operation.
pub struct ClientWorkload {
    rng: SmallRng,
    space: KeySpace,
    sampler: KeySampler,
    values: ValueGen,
    prefix: Vec<u8>,
    /// Cumulative weights; the op at index i is chosen when a draw falls under `cumulative[i]`.
    cumulative: Vec<(u64, OpKind)>,
    templates: Vec<CommandTemplate>,
    /// Scratch for stamped values.
    value_buf: Vec<u8>,
    key_buf: Vec<u8>,
    /// `EX` of every SET (`--set-ttl`), as decimal digits.
    set_ttl: Option<Vec<u8>>,
}

impl ClientWorkload {
    /// The workload of connection `client` (0-based, over all threads).
    pub fn new(cfg: &Config, client: usize) -> ClientWorkload {
        let clients = cfg.total_clients() as u64;
        let mut rng = SmallRng::seed_from_u64(cfg.seed ^ (client as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let partitioned = cfg.verify || cfg.key_pattern == KeyPattern::Sequential;
        // With more connections than keys some own none (the sequential pattern only: --verify requires a key
        // per connection); those walk all keys.
        let space = match partitioned.then(|| KeySpace::owned(cfg.keys, client as u64, clients)) {
            Some(owned) if owned.len > 0 => owned,
            _ => KeySpace::all(cfg.keys),
        };
        let sampler = KeySampler::new(cfg.key_pattern, space.len);
        let values = ValueGen::new(cfg.data_size, &mut rng);
        let (cumulative, templates) = match &cfg.workload {
            crate::config::Workload::SetGet { set, get } => {
                let mut c = Vec::new();
                if *set > 0 {
                    c.push((u64::from(*set), OpKind::Set));
                }
                if *get > 0 {
                    c.push((u64::from(*set) + u64::from(*get), OpKind::Get));
                }
                (c, Vec::new())
            }
            crate::config::Workload::Templates(ts) => {
                let mut acc = 0;
                let c = ts
                    .iter()
                    .enumerate()
                    .map(|(i, (_, w))| {
                        acc += u64::from(*w);
                        (acc, OpKind::Template(i))
                    })
                    .collect();
                (c, ts.iter().map(|(t, _)| t.clone()).collect())
            }
        };
        ClientWorkload {
            rng,
            space,
            sampler,
            values,
            prefix: cfg.key_prefix.as_bytes().to_vec(),
            cumulative,
            templates,
            value_buf: Vec::new(),
            key_buf: Vec::new(),
            set_ttl: cfg.set_ttl_secs.map(|t| t.to_string().into_bytes()),
        }
    }

    /// This connection's key space.
    pub fn space(&self) -> KeySpace {
        self.space
    }

    /// Chooses the next operation and its key.
    pub fn next_op(&mut self) -> Op {
        let total = self.cumulative.last().map_or(1, |(w, _)| *w);
        let draw = if self.cumulative.len() > 1 { self.rng.random_range(0..total) } else { 0 };
        let kind = self.cumulative.iter().find(|(w, _)| draw < *w).map_or(OpKind::Get, |(_, k)| *k);
        // A template draws its keys while it is encoded, one per __key__.
        let slot = if matches!(kind, OpKind::Template(_)) { 0 } else { self.sampler.sample(&mut self.rng) };
        Op { kind, key: self.space.key(slot), slot }
    }

    /// The key name of key number `key`.
    pub fn key_name(&mut self, key: u64) -> &[u8] {
        self.key_buf.clear();
        self.key_buf.extend_from_slice(&self.prefix);
        self.key_buf.extend_from_slice(itoa::Buffer::new().format(key).as_bytes());
        &self.key_buf
    }

    /// Appends `GET <key>`.
    pub fn encode_get(&mut self, out: &mut BytesMut, key: u64) {
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(key).as_bytes();
        out.put_slice(b"*2\r\n$3\r\nGET\r\n");
        out.bulk_parts(&[&self.prefix, digits]);
    }

    /// Appends `SET <key> <value>` with a plain value.
    pub fn encode_set(&mut self, out: &mut BytesMut, key: u64) {
        let size = self.values.next_size(&mut self.rng);
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(key).as_bytes();
        out.put_slice(if self.set_ttl.is_some() { b"*5\r\n$3\r\nSET\r\n" } else { b"*3\r\n$3\r\nSET\r\n" });
        out.bulk_parts(&[&self.prefix, digits]);
        out.bulk(self.values.plain(size));
        if let Some(ttl) = &self.set_ttl {
            out.put_slice(b"$2\r\nEX\r\n");
            out.bulk(ttl);
        }
    }

    /// Appends `SET <key> <stamped value>`.
    pub fn encode_set_stamped(&mut self, out: &mut BytesMut, key: u64, stamp: ValueStamp) {
        let size = self.values.next_size(&mut self.rng);
        self.key_name(key);
        self.values.stamped(&mut self.value_buf, &self.key_buf, stamp, size);
        out.put_slice(if self.set_ttl.is_some() { b"*5\r\n$3\r\nSET\r\n" } else { b"*3\r\n$3\r\nSET\r\n" });
        out.bulk(&self.key_buf);
        out.bulk(&self.value_buf);
        if let Some(ttl) = &self.set_ttl {
            out.put_slice(b"$2\r\nEX\r\n");
            out.bulk(ttl);
        }
    }

    /// Appends template `i`, each `__key__` a freshly drawn key and each `__data__` a value.
    pub fn encode_template(&mut self, out: &mut BytesMut, i: usize) {
        let Some(t) = self.templates.get(i) else { return };
        out.array_len(t.args.len());
        let mut word = Vec::new();
        for arg in &t.args {
            match arg {
                TemplateArg::Literal(l) => out.bulk(l),
                TemplateArg::Pattern(pieces) => {
                    word.clear();
                    for p in pieces {
                        match p {
                            Piece::Text(t) => word.extend_from_slice(t),
                            Piece::Key => {
                                let slot = self.sampler.sample(&mut self.rng);
                                word.extend_from_slice(&self.prefix);
                                word.extend_from_slice(itoa::Buffer::new().format(self.space.key(slot)).as_bytes());
                            }
                            Piece::Data => {
                                let size = self.values.next_size(&mut self.rng);
                                word.extend_from_slice(self.values.plain(size));
                            }
                        }
                    }
                    out.bulk(&word);
                }
            }
        }
    }

    /// A random 64-bit number from this connection's RNG.
    pub fn random_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcache_common::resp::encode_request;

    fn rng() -> SmallRng {
        SmallRng::seed_from_u64(7)
    }

    #[test]
    fn uniform_covers_every_key_evenly() {
        let n = 1000u64;
        let draws = 200_000;
        let mut s = KeySampler::new(KeyPattern::Uniform, n);
        let mut r = rng();
        let mut counts = vec![0u32; n as usize];
        for _ in 0..draws {
            counts[s.sample(&mut r) as usize] += 1;
        }
        let expected = f64::from(draws) / n as f64; // 200 per key
        assert!(counts.iter().all(|&c| c > 0), "every key drawn");
        // Chi-square with 999 degrees of freedom: mean 999, sd ~45; 1200 is > 4 sd out.
        let chi2: f64 = counts.iter().map(|&c| (f64::from(c) - expected).powi(2) / expected).sum();
        assert!(chi2 < 1200.0, "chi2 {chi2}");
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 130 && *max < 280, "min {min} max {max}");
    }

    #[test]
    fn zipf_rank_frequencies_follow_the_power_law() {
        let n = 1000u64;
        let draws = 400_000;
        for exponent in [0.99, 1.5] {
            let mut s = KeySampler::new(KeyPattern::Zipf { exponent }, n);
            let mut r = rng();
            let mut counts = vec![0u32; n as usize];
            for _ in 0..draws {
                counts[s.sample(&mut r) as usize] += 1;
            }
            // p(rank k) = k^-s / H(n, s); compare the first ranks with the exact probabilities.
            let h: f64 = (1..=n).map(|k| (k as f64).powf(-exponent)).sum();
            // Each count is binomial: within 4.5 standard deviations of n*p (a 4M-draw probe gave |z| < 2).
            for k in [1u64, 2, 3, 10, 100, 1000] {
                let want = (k as f64).powf(-exponent) / h * f64::from(draws);
                let got = f64::from(counts[(k - 1) as usize]);
                let z = (got - want) / want.sqrt();
                assert!(z.abs() < 4.5, "s={exponent} rank {k}: got {got}, want {want:.1} (z {z:.1})");
            }
            // The power law itself: count(1) / count(10) = 10^s.
            let ratio = f64::from(counts[0]) / f64::from(counts[9]);
            assert!((ratio / 10f64.powf(exponent) - 1.0).abs() < 0.05, "s={exponent}: rank 1/rank 10 = {ratio}");
            // Frequencies decrease with rank (bucketed to smooth noise).
            let bucket = |a: usize, b: usize| counts[a..b].iter().map(|&c| u64::from(c)).sum::<u64>();
            assert!(bucket(0, 10) > bucket(10, 100) / 5);
            assert!(bucket(10, 20) > bucket(100, 110));
            assert!(bucket(100, 110) > bucket(900, 910));
        }
    }

    #[test]
    fn sequential_walks_and_wraps() {
        let mut s = KeySampler::new(KeyPattern::Sequential, 5);
        let mut r = rng();
        let got: Vec<u64> = (0..12).map(|_| s.sample(&mut r)).collect();
        assert_eq!(got, vec![0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]);
    }

    #[test]
    fn gaussian_is_centred_with_the_given_spread() {
        let n = 10_000u64;
        let mut s = KeySampler::new(KeyPattern::Gaussian { stddev_keys: None }, n);
        let mut r = rng();
        let xs: Vec<f64> = (0..100_000).map(|_| s.sample(&mut r) as f64).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64).sqrt();
        assert!((mean - 5000.0).abs() < 50.0, "mean {mean}");
        // Truncation at ±3 sd narrows the spread by about 1.5 %.
        assert!((sd - n as f64 / 6.0).abs() < 60.0, "sd {sd}");
        assert!(xs.iter().all(|&x| x >= 0.0 && x < n as f64));
    }

    #[test]
    fn owned_key_spaces_partition_the_keys() {
        for (keys, clients) in [(10u64, 3u64), (100, 7), (5, 5), (7, 1)] {
            let mut seen = vec![0; keys as usize];
            for c in 0..clients {
                let s = KeySpace::owned(keys, c, clients);
                for j in 0..s.len {
                    assert_eq!(s.key(j) % clients, c);
                    seen[s.key(j) as usize] += 1;
                }
            }
            assert!(seen.iter().all(|&x| x == 1), "{keys} keys over {clients} clients: {seen:?}");
        }
    }

    #[test]
    fn stamped_values_round_trip_and_detect_damage() {
        let g = ValueGen::new(DataSize { min_bytes: 100, max_bytes: 100 }, &mut rng());
        let stamp = ValueStamp { run_id: 0xdead_beef_0000_0001, version: 42 };
        let mut v = Vec::new();
        g.stamped(&mut v, b"k:1", stamp, 100);
        assert_eq!(v.len(), 100);
        assert_eq!(parse_stamp(b"k:1", &v), Ok(stamp));
        assert_eq!(parse_stamp(b"k:2", &v), Err(BadValue::Checksum), "another key's value");
        let mut flipped = v.clone();
        flipped[90] ^= 1;
        assert_eq!(parse_stamp(b"k:1", &flipped), Err(BadValue::Checksum));
        assert_eq!(parse_stamp(b"k:1", &v[..99]), Err(BadValue::Checksum), "truncated");
        assert_eq!(parse_stamp(b"k:1", b"hello"), Err(BadValue::NotStamped));
        // Smaller than the header: the header alone.
        g.stamped(&mut v, b"k", stamp, 1);
        assert_eq!(parse_stamp(b"k", &v), Ok(stamp));
    }

    #[test]
    fn templates_substitute_keys_and_data() {
        let t = CommandTemplate::parse("mget __key__ x:__key__:y").unwrap();
        assert_eq!(t.name, "MGET");
        assert_eq!(t.key_count(), 2);
        assert!(CommandTemplate::parse("").is_err());
        assert!(CommandTemplate::parse("__key__ GET").is_err());
        let args = crate::config::Args {
            command: vec!["HSET h __key__ __data__".into()],
            data_size: "3".into(),
            key_pattern: crate::config::KeyPatternArg::Sequential,
            keys: 10,
            clients: 1,
            ..<crate::config::Args as clap::Parser>::parse_from(["x"])
        };
        let cfg = Config::from_args(&args).unwrap();
        let mut w = ClientWorkload::new(&cfg, 0);
        let mut out = BytesMut::new();
        let op = w.next_op();
        assert_eq!(op.kind, OpKind::Template(0));
        w.encode_template(&mut out, 0);
        let value = w.values.plain(3).to_vec();
        let key = b"loadgen:0".to_vec();
        let want = encode_request([&b"HSET"[..], b"h", &key, &value].into_iter());
        assert_eq!(&out[..], &want[..]);
    }

    #[test]
    fn get_and_set_encode_like_a_client() {
        let cfg =
            Config::from_args(&<crate::config::Args as clap::Parser>::parse_from(["x", "--data-size", "4"])).unwrap();
        let mut w = ClientWorkload::new(&cfg, 0);
        let mut out = BytesMut::new();
        w.encode_get(&mut out, 123);
        assert_eq!(&out[..], &encode_request([&b"GET"[..], b"loadgen:123"].into_iter())[..]);
        out.clear();
        w.encode_set(&mut out, 9);
        let v = w.values.plain(4).to_vec();
        assert_eq!(&out[..], &encode_request([&b"SET"[..], b"loadgen:9", &v].into_iter())[..]);
    }

    #[test]
    fn sequential_with_more_connections_than_keys_stays_in_range() {
        let args = ["x", "--key-pattern", "sequential", "--keys", "3", "--clients", "5"];
        let cfg = Config::from_args(&<crate::config::Args as clap::Parser>::parse_from(args)).unwrap();
        for client in 0..5 {
            let mut w = ClientWorkload::new(&cfg, client);
            assert!((0..10).all(|_| w.next_op().key < 3), "connection {client}");
        }
        assert_eq!(ClientWorkload::new(&cfg, 1).space(), KeySpace { offset: 1, stride: 5, len: 1 });
        assert_eq!(ClientWorkload::new(&cfg, 4).space(), KeySpace::all(3));
    }

    #[test]
    fn same_seed_same_sequence() {
        let cfg = Config::from_args(&<crate::config::Args as clap::Parser>::parse_from(["x", "--seed", "5"])).unwrap();
        let ops = |c| {
            let mut w = ClientWorkload::new(&cfg, c);
            (0..100).map(|_| w.next_op()).collect::<Vec<_>>()
        };
        assert_eq!(ops(3), ops(3));
        assert_ne!(ops(3), ops(4));
        let gets = ops(0).iter().filter(|o| o.kind == OpKind::Get).count();
        assert!((80..=99).contains(&gets), "1:10 ratio gives ~91 GETs of 100, got {gets}");
    }
}
