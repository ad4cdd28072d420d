//! Connecting to the ensemble, inside the cluster's chroot.

use std::time::Duration;

use zookeeper_client as zk;

use crate::layout::{self, LOCKS, PROXIES, SHARDS};
use crate::CoordError;

/// Where the ensemble is and which cluster this process belongs to.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `host:port,host:port,...`
    pub servers: String,
    pub cluster: String,
    /// ZooKeeper's session timeout: an ephemeral node outlives its process by this long (the server may
    /// negotiate it into its own bounds, by default 2 to 20 ticks).
    pub session_timeout: Duration,
}

/// A session rooted at `/ringcache/<cluster>`, whose directories exist. Fails once every server has been
/// tried (no waiting for one that may come up later: the callers retry, with their own policy).
pub async fn connect(settings: &Settings) -> Result<zk::Client, CoordError> {
    let chroot = layout::chroot(&settings.cluster)?;
    let failed = |source| CoordError::Connect { servers: settings.servers.clone(), source };
    let client = zk::Client::connector()
        .with_session_timeout(settings.session_timeout)
        .with_connection_timeout(settings.session_timeout / 3)
        .with_fail_eagerly()
        .connect(&settings.servers)
        .await
        .map_err(failed)?;
    let directory = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    for dir in [SHARDS, PROXIES, LOCKS, ""] {
        client.mkdir(&format!("{chroot}{dir}"), &directory).await.map_err(failed)?;
    }
    client.chroot(chroot).map_err(|_| CoordError::BadCluster(settings.cluster.clone()))
}

/// This machine's host name (what a process bound to every address advertises), or `localhost`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Every registered shard (skipping nodes that vanish while they are read).
pub async fn registered_shards(client: &zk::Client) -> Result<Vec<layout::ShardRecord>, CoordError> {
    let mut out = Vec::new();
    for name in client.list_children(SHARDS).await? {
        let path = format!("{SHARDS}/{name}");
        match client.get_data(&path).await {
            Ok((data, _)) => out.push(layout::decode(&path, &data)?),
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(e.into()),
        }
    }
    out.sort_by(|a: &layout::ShardRecord, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Every registered proxy's view, with its node name.
pub async fn proxies(client: &zk::Client) -> Result<Vec<(String, layout::ProxyRecord)>, CoordError> {
    let mut out = Vec::new();
    for name in client.list_children(PROXIES).await? {
        let path = format!("{PROXIES}/{name}");
        match client.get_data(&path).await {
            Ok((data, _)) => out.push((name, layout::decode(&path, &data)?)),
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(e.into()),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
