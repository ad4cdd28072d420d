//! The handoff lock: ZooKeeper's lock recipe. A contender creates an ephemeral sequential node under
//! `/locks/<shard>`; the one with the lowest sequence number holds the lock, the others watch the node just
//! before theirs. A holder whose session ends (crash, partition past the session timeout) loses it with its
//! node. The recipe is `zookeeper-client`'s (Curator-compatible node names; a node created just before a
//! connection loss is found again rather than left behind).

use std::time::Duration;

use zookeeper_client as zk;

use crate::layout;
use crate::CoordError;

/// A held lock; dropping it deletes its node (in the background).
pub type Held = zk::OwnedLockClient;

/// Takes the handoff lock of shard `name`, waiting at most `wait` for the holder before it (`Ok(None)`: still
/// held by someone else). `holder` is written into the node, for operators.
pub async fn try_lock(
    client: &zk::Client,
    name: &str,
    holder: &str,
    wait: Duration,
) -> Result<Option<Held>, CoordError> {
    let dir = layout::lock_dir(name)?;
    let prefix = zk::LockPrefix::new_curator(&dir, "lock-")?;
    let options = zk::LockOptions::new(zk::Acls::anyone_all())
        .with_ancestor_options(zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()))?;
    // Cancelling the contention (the timeout) deletes the node it created.
    match tokio::time::timeout(wait, client.lock(prefix, holder.as_bytes(), options)).await {
        Ok(Ok(lock)) => Ok(Some(lock.into_owned())),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Ok(None),
    }
}

/// The node of whoever holds shard `name`'s lock now (the lowest sequence number), and what it holds.
pub async fn holder(client: &zk::Client, name: &str) -> Result<Option<(String, Vec<u8>)>, CoordError> {
    let dir = layout::lock_dir(name)?;
    let mut children = match client.list_children(&dir).await {
        Ok(c) => c,
        Err(zk::Error::NoNode) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    // `_c_<uuid>-lock-<sequence>`: ordered by the sequence number, the last ten digits.
    children.retain(|c| c.contains("lock-") && c.len() >= 10);
    children.sort_by(|a, b| a[a.len() - 10..].cmp(&b[b.len() - 10..]));
    for child in children {
        let path = format!("{dir}/{child}");
        match client.get_data(&path).await {
            Ok((data, _)) => return Ok(Some((path, data))),
            Err(zk::Error::NoNode) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}
