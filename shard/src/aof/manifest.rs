//! The manifest: which incremental files make up the log, in Redis 7's text form, one file per line:
//!
//! ```text
//! file ringcache.snapshot seq 0 type b
//! file ringcache.aof.4.incr seq 4 type i
//! file ringcache.aof.5.incr seq 5 type i
//! ```
//!
//! The base (`type b`) is the snapshot in `--dir`, named for reference. Which incremental files follow it
//! is decided by the snapshot itself: its header records the sequence number of the incremental file that
//! was current when it began, and only files from that number on are replayed over it. So a crash between
//! a snapshot's rename and the manifest's rewrite replays nothing twice in the wrong order. The manifest is
//! replaced atomically (written beside, fsynced, renamed, directory fsynced).

use std::io::Write;
use std::path::Path;

use crate::snapshot::write::sync_dir;

pub const MANIFEST_FILE: &str = "ringcache.aof.manifest";
const MANIFEST_TMP: &str = "ringcache.aof.manifest.tmp";

/// The name of incremental file `seq`.
pub fn incr_name(seq: u32) -> String {
    format!("ringcache.aof.{seq}.incr")
}

/// The sequence numbers of the incremental files the manifest lists, in order.
pub fn read(dir: &Path) -> std::io::Result<Option<Vec<u32>>> {
    let text = match std::fs::read_to_string(dir.join(MANIFEST_FILE)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut seqs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, format!("manifest line {}: {line:?}", n + 1));
        match words.as_slice() {
            [] => {}
            ["file", _, "seq", _, "type", "b"] => {}
            ["file", name, "seq", seq, "type", "i"] => {
                let seq: u32 = seq.parse().map_err(|_| bad())?;
                if *name != incr_name(seq) {
                    return Err(bad());
                }
                seqs.push(seq);
            }
            _ => return Err(bad()),
        }
    }
    seqs.sort_unstable();
    Ok(Some(seqs))
}

/// Replaces the manifest with one listing `seqs` after the base.
pub fn write(dir: &Path, seqs: &[u32]) -> std::io::Result<()> {
    let mut text = format!("file {} seq 0 type b\n", crate::snapshot::SNAPSHOT_FILE);
    for &seq in seqs {
        text.push_str(&format!("file {} seq {seq} type i\n", incr_name(seq)));
    }
    let tmp = dir.join(MANIFEST_TMP);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(MANIFEST_FILE))?;
    sync_dir(dir)
}

/// Incremental files in `dir` that `listed` does not name (left by a crash, or by a run that had the log
/// off): they are never replayed.
pub fn strays(dir: &Path, listed: &[u32]) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let seq = name.strip_prefix("ringcache.aof.").and_then(|r| r.strip_suffix(".incr"));
        if let Some(seq) = seq.and_then(|s| s.parse::<u32>().ok()) {
            if !listed.contains(&seq) {
                out.push(entry.path());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_names_strays() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read(dir.path()).expect("read"), None);
        write(dir.path(), &[3, 4]).expect("write");
        assert_eq!(read(dir.path()).expect("read"), Some(vec![3, 4]));
        std::fs::write(dir.path().join(incr_name(2)), b"").expect("stray");
        std::fs::write(dir.path().join(incr_name(4)), b"").expect("listed");
        let strays = strays(dir.path(), &[3, 4]).expect("strays");
        assert_eq!(strays, vec![dir.path().join(incr_name(2))]);
        std::fs::write(dir.path().join(MANIFEST_FILE), "file x seq 1 type i\n").expect("bad");
        assert!(read(dir.path()).is_err());
    }
}
