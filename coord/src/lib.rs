//! ringcache-coord: Ringcache's optional control plane in ZooKeeper, shared by the shard (which registers
//! itself), the proxy (which watches the ring and the registrations, and takes the handoff lock) and the
//! proxy's `admin` command (which changes the ring).
//!
//! Layout:
//! - [`layout`]: the nodes under the cluster's chroot `/ringcache/<cluster>` and the JSON records in them.
//! - [`session`]: connecting (the chroot and its directories are created on first use).
//! - [`ring`]: reading, watching and changing the ring record (compare-and-set on the node's version).
//! - [`lock`]: the handoff lock, ZooKeeper's lock recipe (ephemeral sequential nodes; the lowest holds it).
//!
//! Nothing here decides anything about routing: it only reads and writes ZooKeeper. The client is the
//! `zookeeper-client` crate (async, on tokio).

pub mod layout;
pub mod lock;
pub mod ring;
pub mod session;

pub use zookeeper_client as zk;

/// Why a ZooKeeper operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    #[error("bad cluster name '{0}': use letters, digits, '-', '_' and '.' (it becomes /ringcache/<cluster>)")]
    BadCluster(String),
    #[error("bad shard name '{0}': it must not be empty, '.', '..' or contain '/'")]
    BadShardName(String),
    #[error("cannot reach ZooKeeper at {servers}: {source}")]
    Connect { servers: String, source: zk::Error },
    #[error("ZooKeeper: {0}")]
    Zk(#[from] zk::Error),
    #[error("{path} holds an unreadable record: {reason}")]
    BadRecord { path: String, reason: String },
    #[error("{0}")]
    Refused(String),
}
