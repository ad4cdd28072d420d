//! The ring record at `/ring`: read, watched, and changed by compare-and-set, so that two operators (or
//! two auto-joining shards) changing it at once cannot lose each other's change.

use zookeeper_client as zk;

use crate::layout::{self, RingMember, RingRecord, RING};
use crate::CoordError;

/// The ring, or `None` when no member was ever added.
pub async fn read(client: &zk::Client) -> Result<Option<RingRecord>, CoordError> {
    match client.get_data(RING).await {
        Ok((data, _)) => Ok(Some(layout::decode(RING, &data)?)),
        Err(zk::Error::NoNode) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The ring, and a watcher that fires when it changes (or is created).
pub async fn read_and_watch(client: &zk::Client) -> Result<(Option<RingRecord>, zk::OneshotWatcher), CoordError> {
    loop {
        match client.get_and_watch_data(RING).await {
            Ok((data, _, watcher)) => return Ok((Some(layout::decode(RING, &data)?), watcher)),
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(e.into()),
        }
        match client.check_and_watch_stat(RING).await? {
            (None, watcher) => return Ok((None, watcher)),
            // Created in between: read it.
            (Some(_), _) => continue,
        }
    }
}

/// Changes the ring with `change` (given the current members; `Ok(None)` leaves it as it is) and returns
/// the ring as it then is. Retried when another writer got there first.
pub async fn update(
    client: &zk::Client,
    change: impl Fn(&[RingMember]) -> Result<Option<Vec<RingMember>>, String>,
) -> Result<RingRecord, CoordError> {
    loop {
        let (current, node_version) = match client.get_data(RING).await {
            Ok((data, stat)) => (layout::decode::<RingRecord>(RING, &data)?, Some(stat.version)),
            Err(zk::Error::NoNode) => (RingRecord::default(), None),
            Err(e) => return Err(e.into()),
        };
        let Some(shards) = change(&current.shards).map_err(CoordError::Refused)? else {
            return Ok(current);
        };
        let next = RingRecord { version: current.version + 1, shards };
        let data = layout::encode(&next);
        let written = match node_version {
            Some(v) => client.set_data(RING, &data, Some(v)).await.map(drop),
            None => {
                let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
                client.create(RING, &data, &persistent).await.map(drop)
            }
        };
        match written {
            Ok(()) => return Ok(next),
            Err(zk::Error::BadVersion | zk::Error::NodeExists) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Adds `member` (refused when a shard of that name is there already, unless it is identical).
pub fn add(member: RingMember) -> impl Fn(&[RingMember]) -> Result<Option<Vec<RingMember>>, String> {
    move |shards| match shards.iter().find(|s| s.name == member.name) {
        Some(s) if *s == member => Ok(None),
        Some(s) => Err(format!("shard '{}' is in the ring already, at {} weight {}", s.name, s.addr, s.weight)),
        None => Ok(Some(shards.iter().cloned().chain([member.clone()]).collect())),
    }
}

/// Removes the shard named `name` (refused when it is not in the ring).
pub fn remove(name: String) -> impl Fn(&[RingMember]) -> Result<Option<Vec<RingMember>>, String> {
    move |shards| {
        if !shards.iter().any(|s| s.name == name) {
            return Err(format!("shard '{name}' is not in the ring"));
        }
        Ok(Some(shards.iter().filter(|s| s.name != name).cloned().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str) -> RingMember {
        RingMember { name: name.into(), addr: format!("{name}:7001"), weight: 1 }
    }

    #[test]
    fn add_and_remove_refuse_what_makes_no_sense() {
        let ring = vec![member("a")];
        assert_eq!(add(member("b"))(&ring).unwrap().unwrap().len(), 2);
        assert_eq!(add(member("a"))(&ring).unwrap(), None, "adding it again changes nothing");
        let moved = RingMember { addr: "elsewhere:1".into(), ..member("a") };
        assert!(add(moved)(&ring).is_err());
        assert_eq!(remove("a".into())(&ring).unwrap().unwrap(), vec![]);
        assert!(remove("z".into())(&ring).is_err());
    }
}
