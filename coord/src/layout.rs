//! Where things live under the cluster's chroot, `/ringcache/<cluster>`, and what the nodes hold (JSON):
//!
//! | node | kind | holds |
//! |---|---|---|
//! | `/ring` | persistent | [`RingRecord`]: the ring's members and a version, changed only by an operator command (or a shard's `--auto-join`) |
//! | `/shards/<name>` | ephemeral, one per shard session | [`ShardRecord`]: the shard's address, weight and state |
//! | `/proxies/<token>` | ephemeral, one per proxy session | [`ProxyRecord`]: that proxy's view (ring version, shards up) |
//! | `/locks/<shard>/…lock-N` | ephemeral sequential | the handoff lock for that shard: the lowest sequence number holds it |

use serde::{Deserialize, Serialize};

use crate::CoordError;

/// Every cluster lives under this node.
pub const ROOT: &str = "/ringcache";
pub const RING: &str = "/ring";
pub const SHARDS: &str = "/shards";
pub const PROXIES: &str = "/proxies";
pub const LOCKS: &str = "/locks";

/// The chroot of a cluster: `/ringcache/<cluster>`.
pub fn chroot(cluster: &str) -> Result<String, CoordError> {
    let ok = !cluster.is_empty()
        && cluster != "."
        && cluster != ".."
        && cluster.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(CoordError::BadCluster(cluster.to_string()));
    }
    Ok(format!("{ROOT}/{cluster}"))
}

/// A shard name as a node name (checked: ZooKeeper refuses `/`, `.` and `..`).
pub fn check_shard_name(name: &str) -> Result<&str, CoordError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.chars().any(char::is_control) {
        return Err(CoordError::BadShardName(name.to_string()));
    }
    Ok(name)
}

/// `/shards/<name>`.
pub fn shard_path(name: &str) -> Result<String, CoordError> {
    Ok(format!("{SHARDS}/{}", check_shard_name(name)?))
}

/// `/locks/<name>`, the directory of a shard's handoff lock.
pub fn lock_dir(name: &str) -> Result<String, CoordError> {
    Ok(format!("{LOCKS}/{}", check_shard_name(name)?))
}

/// A shard's registration: what its ephemeral node holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub name: String,
    /// `host:port` where proxies reach it.
    pub addr: String,
    pub weight: u32,
    /// `joining`, `member`, `leaving`, `draining` or `drained` (the shard's `RINGCACHE MEMBER`).
    pub state: String,
}

/// One member of the ring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingMember {
    pub name: String,
    pub addr: String,
    pub weight: u32,
}

/// The ring: its members and a version that every change increments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingRecord {
    pub version: u64,
    pub shards: Vec<RingMember>,
}

/// A proxy's view, for operators (`admin list`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyRecord {
    /// Where clients reach it.
    pub addr: String,
    /// The ring version it routes on.
    pub ring_version: u64,
    pub shards_up: Vec<String>,
    pub shards_down: Vec<String>,
}

/// Encodes a record.
pub fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    serde_json::to_vec(record).unwrap_or_default()
}

/// Decodes the record in the node at `path`.
pub fn decode<T: for<'de> Deserialize<'de>>(path: &str, data: &[u8]) -> Result<T, CoordError> {
    serde_json::from_slice(data).map_err(|e| CoordError::BadRecord { path: path.to_string(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_paths_only_when_zookeeper_accepts_them() {
        assert_eq!(chroot("prod-1").unwrap(), "/ringcache/prod-1");
        for bad in ["", ".", "..", "a/b", "a b"] {
            assert!(chroot(bad).is_err(), "{bad:?}");
        }
        assert_eq!(shard_path("127.0.0.1:7001").unwrap(), "/shards/127.0.0.1:7001");
        assert!(shard_path("a/b").is_err());
        assert!(lock_dir("..").is_err());
    }

    #[test]
    fn records_round_trip() {
        let ring =
            RingRecord { version: 3, shards: vec![RingMember { name: "s1".into(), addr: "h:1".into(), weight: 2 }] };
        assert_eq!(decode::<RingRecord>("/ring", &encode(&ring)).unwrap(), ring);
        assert!(decode::<RingRecord>("/ring", b"{").is_err());
    }
}
