//! `--verify`: checks every GET reply against what this run wrote.
//!
//! Soundness under concurrency comes from ownership: a connection writes and reads only its own keys
//! ([`crate::workload::KeySpace::owned`]), so it alone knows each key's history. Per key it keeps the
//! newest version *sent* and the newest version *acknowledged*. A read is sent with a snapshot of the
//! acknowledged version; its reply may hold any version from that snapshot up to the newest sent when the
//! reply arrives (a write in flight, or one whose reply was lost to a timeout, may or may not have been
//! applied). Anything older is **stale**, a miss after an acknowledged write is **lost** (unless misses are
//! allowed), and a value whose stamp or checksum does not check out — or whose version was never sent — is
//! **corrupt**. A value from an earlier run (another run id) is accepted only while nothing of this run has
//! been acknowledged for the key.

use serde::Serialize;

use crate::workload::{parse_stamp, BadValue, ValueStamp};

/// Examples kept per kind of mismatch.
const EXAMPLES_PER_KIND: usize = 5;

/// Kinds of mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MismatchKind {
    Lost,
    Stale,
    Corrupt,
}

/// One mismatch, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub kind: MismatchKind,
    pub key: String,
    /// What was acceptable, e.g. "version 3..=4 of run 00ab...".
    pub expected: String,
    /// What came back (a prefix of the value, lossily as text).
    pub got: String,
}

/// Verification figures of one connection, a thread or the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// GET replies checked.
    pub checked: u64,
    pub lost: u64,
    pub stale: u64,
    pub corrupt: u64,
    /// Misses accepted because nothing had been acknowledged for the key (or misses are allowed).
    pub misses_accepted: u64,
    pub examples: Vec<Mismatch>,
}

impl VerifyReport {
    pub fn mismatches(&self) -> u64 {
        self.lost + self.stale + self.corrupt
    }

    pub fn merge(&mut self, other: &VerifyReport) {
        self.checked += other.checked;
        self.lost += other.lost;
        self.stale += other.stale;
        self.corrupt += other.corrupt;
        self.misses_accepted += other.misses_accepted;
        for e in &other.examples {
            self.note_example(e.clone());
        }
    }

    fn note_example(&mut self, m: Mismatch) {
        if self.examples.iter().filter(|e| e.kind == m.kind).count() < EXAMPLES_PER_KIND {
            self.examples.push(m);
        }
    }

    fn record(&mut self, m: Mismatch) {
        match m.kind {
            MismatchKind::Lost => self.lost += 1,
            MismatchKind::Stale => self.stale += 1,
            MismatchKind::Corrupt => self.corrupt += 1,
        }
        self.note_example(m);
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct KeyState {
    /// Newest version sent (0: none this run).
    sent: u64,
    /// Newest version acknowledged (0: none this run).
    acked: u64,
}

/// The history of one connection's keys.
#[derive(Debug)]
pub struct Verifier {
    run_id: u64,
    allow_miss: bool,
    /// Indexed by position in the connection's key space.
    keys: Vec<KeyState>,
    pub report: VerifyReport,
}

impl Verifier {
    pub fn new(run_id: u64, key_slots: u64, allow_miss: bool) -> Verifier {
        Verifier {
            run_id,
            allow_miss,
            keys: vec![KeyState::default(); key_slots as usize],
            report: VerifyReport::default(),
        }
    }

    /// A write of `slot` is about to be sent: its stamp.
    pub fn begin_write(&mut self, slot: u64) -> ValueStamp {
        let s = &mut self.keys[slot as usize];
        s.sent += 1;
        ValueStamp { run_id: self.run_id, version: s.sent }
    }

    /// The write of `version` to `slot` was acknowledged (`+OK`).
    pub fn write_acked(&mut self, slot: u64, version: u64) {
        let s = &mut self.keys[slot as usize];
        s.acked = s.acked.max(version);
    }

    /// A read of `slot` is about to be sent: the snapshot its reply is checked against.
    pub fn begin_read(&self, slot: u64) -> u64 {
        self.keys[slot as usize].acked
    }

    /// Checks a GET reply: `value` is `None` for a miss.
    pub fn check_read(&mut self, key: &[u8], slot: u64, acked_at_send: u64, value: Option<&[u8]>) {
        self.report.checked += 1;
        let sent_now = self.keys[slot as usize].sent;
        let key_text = String::from_utf8_lossy(key).into_owned();
        let expected = || format!("version {acked_at_send}..={sent_now} of run {:016x}", self.run_id);
        let Some(value) = value else {
            if acked_at_send > 0 && !self.allow_miss {
                let m = Mismatch { kind: MismatchKind::Lost, key: key_text, expected: expected(), got: "(nil)".into() };
                self.report.record(m);
            } else {
                self.report.misses_accepted += 1;
            }
            return;
        };
        let got = || {
            let shown = &value[..value.len().min(64)];
            let mut s = String::from_utf8_lossy(shown).into_owned();
            if value.len() > shown.len() {
                s.push_str(&format!("... ({} bytes)", value.len()));
            }
            s
        };
        let kind = match parse_stamp(key, value) {
            Err(BadValue::NotStamped | BadValue::Checksum) => Some(MismatchKind::Corrupt),
            Ok(ValueStamp { run_id, .. }) if run_id != self.run_id => {
                (acked_at_send > 0).then_some(MismatchKind::Stale)
            }
            Ok(ValueStamp { version, .. }) if version > sent_now => Some(MismatchKind::Corrupt),
            Ok(ValueStamp { version, .. }) if version < acked_at_send => Some(MismatchKind::Stale),
            Ok(_) => None,
        };
        if let Some(kind) = kind {
            let m = Mismatch { kind, key: key_text, expected: expected(), got: got() };
            self.report.record(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DataSize;
    use crate::workload::ValueGen;
    use rand::SeedableRng;

    fn value(run_id: u64, version: u64) -> Vec<u8> {
        let g = ValueGen::new(DataSize { min_bytes: 60, max_bytes: 60 }, &mut rand::rngs::SmallRng::seed_from_u64(1));
        let mut v = Vec::new();
        g.stamped(&mut v, b"k", ValueStamp { run_id, version }, 60);
        v
    }

    #[test]
    fn accepts_every_version_a_read_may_see() {
        let mut v = Verifier::new(9, 1, false);
        // Nothing written yet: a miss or an older run's value is fine.
        let snap = v.begin_read(0);
        v.check_read(b"k", 0, snap, None);
        v.check_read(b"k", 0, snap, Some(&value(8, 77)));
        // Write 1 in flight, read sent before its ack: old value, miss or version 1 are fine.
        let w1 = v.begin_write(0);
        let snap = v.begin_read(0);
        v.check_read(b"k", 0, snap, None);
        v.check_read(b"k", 0, snap, Some(&value(9, 1)));
        v.write_acked(0, w1.version);
        // Write 2 sent but its reply lost (timeout): 1 or 2 are fine.
        let _w2 = v.begin_write(0);
        let snap = v.begin_read(0);
        v.check_read(b"k", 0, snap, Some(&value(9, 1)));
        v.check_read(b"k", 0, snap, Some(&value(9, 2)));
        assert_eq!(v.report.mismatches(), 0, "{:?}", v.report);
        assert_eq!(v.report.checked, 6);
    }

    #[test]
    fn classifies_lost_stale_and_corrupt() {
        let mut v = Verifier::new(9, 2, false);
        for _ in 0..3 {
            let w = v.begin_write(0);
            v.write_acked(0, w.version);
        }
        let snap = v.begin_read(0);
        assert_eq!(snap, 3);
        v.check_read(b"k", 0, snap, None); // lost
        v.check_read(b"k", 0, snap, Some(&value(9, 2))); // stale: older version
        v.check_read(b"k", 0, snap, Some(&value(8, 5))); // stale: an earlier run's value
        v.check_read(b"k", 0, snap, Some(b"garbage")); // corrupt
        v.check_read(b"k", 0, snap, Some(&value(9, 4))); // corrupt: never written
        let mut flipped = value(9, 3);
        flipped[50] ^= 0x20;
        v.check_read(b"k", 0, snap, Some(&flipped)); // corrupt: checksum
        v.check_read(b"k", 0, snap, Some(&value(9, 3))); // fine
        let r = &v.report;
        assert_eq!((r.lost, r.stale, r.corrupt, r.checked), (1, 2, 3, 7));
        assert_eq!(r.examples.iter().filter(|e| e.kind == MismatchKind::Corrupt).count(), 3);
        assert!(r.examples.iter().any(|e| e.got == "garbage" && e.key == "k"));
    }

    #[test]
    fn misses_allowed_when_asked() {
        let mut v = Verifier::new(1, 1, true);
        let w = v.begin_write(0);
        v.write_acked(0, w.version);
        v.check_read(b"k", 0, v.begin_read(0), None);
        assert_eq!((v.report.mismatches(), v.report.misses_accepted), (0, 1));
    }

    #[test]
    fn merged_reports_keep_a_few_examples_per_kind() {
        let mut total = VerifyReport::default();
        for _ in 0..4 {
            let mut v = Verifier::new(1, 1, false);
            let w = v.begin_write(0);
            v.write_acked(0, w.version);
            for _ in 0..3 {
                v.check_read(b"k", 0, 1, None);
            }
            total.merge(&v.report);
        }
        assert_eq!(total.lost, 12);
        assert_eq!(total.examples.len(), EXAMPLES_PER_KIND);
    }
}
