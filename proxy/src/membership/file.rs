//! The default membership source: the shard list given with `--shards` or in the `--config` file, reloaded
//! on SIGHUP or when the file changes ([`crate::reload`]). Health is each proxy's own probes, and handoffs are
//! serialized by leases on the shards ([`super::ShardLeases`], the cluster's default control plane).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::MembershipError;
use crate::cluster::Cluster;
use crate::config::{parse_shards, ProxyArgs, ShardSpec};

pub struct FileSource {
    config: Option<String>,
}

impl FileSource {
    pub fn open(args: &ProxyArgs) -> Result<(FileSource, Vec<ShardSpec>), MembershipError> {
        let shards = parse_shards(args.shards.as_deref().unwrap_or("")).map_err(MembershipError::Shards)?;
        Ok((FileSource { config: args.config.clone() }, shards))
    }

    pub fn spawn(self, cluster: Arc<Cluster>, shutdown: CancellationToken) {
        if let Some(path) = self.config {
            tokio::spawn(crate::reload::watch(path.into(), cluster, shutdown));
        }
    }
}
