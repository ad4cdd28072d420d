//! The ketama continuum: which shard owns a key. Pure code, no I/O.
//!
//! Built exactly as twemproxy's `distribution: ketama` (`nc_ketama.c`), so a twemproxy user can switch
//! without reshuffling the cache: each shard gets `160 × weight share` points, computed in `float` as
//! twemproxy does; point `4i + x` of a shard is word `x` of `md5("<name>-<i>")`, read little-endian. A key
//! hashes (after its `{hash tag}` is taken) with the configured function and belongs to the first point at
//! or after its hash, wrapping around. Shards are identified by name, never by address.
//!
//! A shard that is down keeps its points; lookups walk past them to the next live shard, so only the dead
//! shard's keys move, and they move back when it returns.

use ringcache_common::hash::{md5_u32, KeyHash, Placement};

/// Points per unit of weight share, as in twemproxy.
pub const POINTS_PER_SHARD: u32 = 160;
const POINTS_PER_HASH: u32 = 4;

/// A shard's place on the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub weight: u32,
}

#[derive(Debug, Clone)]
pub struct Ring {
    /// (point, member index), sorted by point.
    points: Vec<(u32, u32)>,
    members: usize,
    placement: Placement,
}

impl Ring {
    /// Builds the continuum over `members` (all considered live for point allocation, as in twemproxy
    /// with every server up). Weights of 0 are treated as 1. Keys hash with `key_hash` after the `{}` tag.
    pub fn new(members: &[Member], key_hash: KeyHash) -> Ring {
        Ring::with_placement(members, Placement::from(key_hash))
    }

    /// [`Self::new`] with a hash tag of choice (`--hash-tag`).
    pub fn with_placement(members: &[Member], placement: Placement) -> Ring {
        let total_weight: u32 = members.iter().map(|m| m.weight.max(1)).sum();
        let n = members.len() as f32;
        let mut points = Vec::with_capacity(members.len() * POINTS_PER_SHARD as usize);
        for (index, m) in members.iter().enumerate() {
            // twemproxy: floorf((float)(pct * 160 / 4 * (float)nlive + 0.0000000001)) * 4, in float,
            // with the tiny constant added in double.
            let pct = m.weight.max(1) as f32 / total_weight as f32;
            let share = f64::from(pct * POINTS_PER_SHARD as f32 / POINTS_PER_HASH as f32 * n) + 0.000_000_000_1;
            let per_shard = ((share as f32).floor() as u32) * POINTS_PER_HASH;
            for i in 0..per_shard / POINTS_PER_HASH {
                let host = format!("{}-{}", m.name, i);
                for word in 0..POINTS_PER_HASH as usize {
                    points.push((md5_u32(host.as_bytes(), word), index as u32));
                }
            }
        }
        points.sort_unstable();
        Ring { points, members: members.len(), placement }
    }

    pub fn key_hash(&self) -> KeyHash {
        self.placement.key_hash
    }

    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// The hash a key is placed by (its hash tag, hashed with the configured function).
    pub fn hash_key(&self, key: &[u8]) -> u32 {
        self.placement.ring_hash(key)
    }

    /// The member owning `key`, when every member is live.
    pub fn owner(&self, key: &[u8]) -> Option<usize> {
        self.owner_of_hash(self.hash_key(key), |_| true)
    }

    /// The first live member at or after `hash` on the ring.
    pub fn owner_of_hash(&self, hash: u32, is_live: impl Fn(usize) -> bool) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let start = self.points.partition_point(|&(p, _)| p < hash);
        let n = self.points.len();
        (0..n).map(|k| self.points[(start + k) % n].1 as usize).find(|&m| is_live(m))
    }

    /// The live owner of `key`.
    pub fn live_owner(&self, key: &[u8], is_live: impl Fn(usize) -> bool) -> Option<usize> {
        self.owner_of_hash(self.hash_key(key), is_live)
    }

    /// The first `count` distinct live members at or after `key`'s hash, in ring order, appended to `out`
    /// (fewer when fewer are live). The first is [`Self::live_owner`].
    pub fn live_owners(&self, key: &[u8], count: usize, is_live: impl Fn(usize) -> bool, out: &mut impl Extend<usize>) {
        if self.points.is_empty() || count == 0 {
            return;
        }
        let hash = self.hash_key(key);
        let start = self.points.partition_point(|&(p, _)| p < hash);
        let n = self.points.len();
        let mut found: smallvec::SmallVec<[usize; 8]> = smallvec::SmallVec::new();
        for k in 0..n {
            let m = self.points[(start + k) % n].1 as usize;
            if !found.contains(&m) && is_live(m) {
                found.push(m);
                if found.len() == count {
                    break;
                }
            }
        }
        out.extend(found);
    }

    /// The hash ranges `member` owns, as `(after, up_to)`: hashes `h` with `after < h <= up_to`, or, when
    /// `after >= up_to`, the range that wraps past `u32::MAX` (`h > after || h <= up_to`). Adjacent points of
    /// the same member are merged.
    pub fn arcs_of(&self, member: usize) -> Vec<(u32, u32)> {
        let n = self.points.len();
        let mut arcs: Vec<(u32, u32)> = Vec::new();
        for i in 0..n {
            if self.points[i].1 as usize != member {
                continue;
            }
            let after = self.points[(i + n - 1) % n].0;
            let up_to = self.points[i].0;
            if after == up_to && n > 1 {
                continue; // two points on the same hash: an empty arc, not the whole circle
            }
            match arcs.last_mut() {
                Some(last) if last.1 == after => last.1 = up_to,
                _ => arcs.push((after, up_to)),
            }
        }
        // The first arc may continue the last one across the wrap.
        if arcs.len() > 1 && arcs[arcs.len() - 1].1 == arcs[0].0 {
            let last = arcs.pop().unwrap_or_default();
            arcs[0].0 = last.0;
        }
        arcs
    }

    /// While `absent` is down, the shards that hold its keys in its place (the live copies that are not
    /// natural owners), each with the arcs it stands in for (merged where adjacent). With one copy these are
    /// exactly the owners `absent` takes keys from when it joins.
    pub fn stand_in_arcs(&self, absent: usize, replicas: usize) -> Vec<(usize, Vec<(u32, u32)>)> {
        let n = self.points.len();
        let mut out: Vec<(usize, Vec<(u32, u32)>)> = Vec::new();
        for i in 0..n {
            let after = self.points[(i + n - 1) % n].0;
            let up_to = self.points[i].0;
            if after == up_to && n > 1 {
                continue;
            }
            let walk = |skip: Option<usize>| {
                let mut found: smallvec::SmallVec<[usize; 8]> = smallvec::SmallVec::new();
                for k in 0..n {
                    let m = self.points[(i + k) % n].1 as usize;
                    if Some(m) != skip && !found.contains(&m) {
                        found.push(m);
                        if found.len() == replicas {
                            break;
                        }
                    }
                }
                found
            };
            let natural = walk(None);
            if !natural.contains(&absent) {
                continue;
            }
            for stand_in in walk(Some(absent)).into_iter().filter(|m| !natural.contains(m)) {
                let arcs = match out.iter_mut().find(|(m, _)| *m == stand_in) {
                    Some((_, arcs)) => arcs,
                    None => {
                        out.push((stand_in, Vec::new()));
                        &mut out.last_mut().expect("just pushed").1
                    }
                };
                match arcs.last_mut() {
                    Some(last) if last.1 == after => last.1 = up_to,
                    _ => arcs.push((after, up_to)),
                }
            }
        }
        for (_, arcs) in &mut out {
            if arcs.len() > 1 && arcs[arcs.len() - 1].1 == arcs[0].0 {
                let last = arcs.pop().unwrap_or_default();
                arcs[0].0 = last.0;
            }
        }
        out
    }

    /// Every arc `member` holds a copy of (with `replicas` copies), each with the other members that hold
    /// copies of it (its co-owners, in ring order). A member that restarted gets its keys back from these.
    pub fn co_owner_arcs(&self, member: usize, replicas: usize) -> Vec<((u32, u32), Vec<usize>)> {
        let n = self.points.len();
        let mut out = Vec::new();
        for i in 0..n {
            let after = self.points[(i + n - 1) % n].0;
            let up_to = self.points[i].0;
            if after == up_to && n > 1 {
                continue;
            }
            let mut natural: smallvec::SmallVec<[usize; 8]> = smallvec::SmallVec::new();
            for k in 0..n {
                let m = self.points[(i + k) % n].1 as usize;
                if !natural.contains(&m) {
                    natural.push(m);
                    if natural.len() == replicas {
                        break;
                    }
                }
            }
            if natural.contains(&member) {
                out.push(((after, up_to), natural.into_iter().filter(|&m| m != member).collect()));
            }
        }
        out
    }

    pub fn members(&self) -> usize {
        self.members
    }

    pub fn points(&self) -> usize {
        self.points.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn members(names: &[&str]) -> Vec<Member> {
        names.iter().map(|n| Member { name: n.to_string(), weight: 1 }).collect()
    }

    #[test]
    fn equal_weights_get_160_points_each() {
        let ring = Ring::new(&members(&["a", "b", "c"]), KeyHash::Fnv1a_64);
        assert_eq!(ring.points(), 480);
        let weighted = Ring::new(
            &[Member { name: "a".into(), weight: 1 }, Member { name: "b".into(), weight: 3 }],
            KeyHash::Fnv1a_64,
        );
        assert_eq!(weighted.points(), 80 + 240);
    }

    #[test]
    fn dead_members_hand_keys_to_the_next_live_one_only() {
        let ring = Ring::new(&members(&["a", "b", "c"]), KeyHash::Fnv1a_64);
        for i in 0..2000 {
            let key = format!("key:{i}");
            let owner = ring.owner(key.as_bytes()).unwrap();
            let without_b = ring.live_owner(key.as_bytes(), |m| m != 1).unwrap();
            if owner != 1 {
                assert_eq!(owner, without_b, "a key not on the dead member moved");
            } else {
                assert_ne!(without_b, 1);
            }
        }
        assert_eq!(ring.live_owner(b"k", |_| false), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// With equal weights every member gets a fair share of keys: with 160 points per member a share
        /// stays within half to one and a half times 1/N (ketama's known spread, same as twemproxy's).
        /// Keys are hashed with md5 here: twemproxy's `fnv1a_64` multiplies by 0x1b3 only, so keys that
        /// differ in their last bytes land close together, and sequential test keys would measure that
        /// hash rather than the ring.
        #[test]
        fn keys_spread_evenly(n in 2usize..9, salt in any::<u32>()) {
            let names: Vec<String> = (0..n).map(|i| format!("shard-{salt}-{i}")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let ring = Ring::new(&members(&refs), KeyHash::Md5);
            let mut counts = vec![0usize; n];
            let keys = 6000;
            for i in 0..keys {
                counts[ring.owner(format!("user:{salt}:{i}").as_bytes()).unwrap()] += 1;
            }
            let fair = keys as f64 / n as f64;
            for c in counts {
                prop_assert!((c as f64) > fair * 0.5 && (c as f64) < fair * 1.5, "{} vs fair {}", c, fair);
            }
        }

        /// Copies land on distinct members, the first being the owner; when any one member dies, every key
        /// is read from a member that already held a copy.
        #[test]
        fn replicas_are_distinct_and_survive_one_death(n in 2usize..7, copies in 1usize..4, salt in any::<u32>()) {
            let names: Vec<String> = (0..n).map(|i| format!("r-{salt}-{i}")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let ring = Ring::new(&members(&refs), KeyHash::Fnv1a_64);
            for i in 0..500 {
                let key = format!("k{salt}:{i}");
                let mut owners: Vec<usize> = Vec::new();
                ring.live_owners(key.as_bytes(), copies, |_| true, &mut owners);
                prop_assert_eq!(owners.len(), copies.min(n));
                prop_assert_eq!(Some(owners[0]), ring.owner(key.as_bytes()));
                let mut distinct = owners.clone();
                distinct.sort_unstable();
                distinct.dedup();
                prop_assert_eq!(distinct.len(), owners.len());
                if copies >= 2 {
                    for dead in 0..n {
                        let reader = ring.live_owner(key.as_bytes(), |m| m != dead).unwrap();
                        prop_assert!(owners.contains(&reader), "after {} died, {} is read from {}", dead, key, reader);
                        let mut after: Vec<usize> = Vec::new();
                        ring.live_owners(key.as_bytes(), copies, |m| m != dead, &mut after);
                        prop_assert!(!after.contains(&dead));
                    }
                }
            }
        }

        /// A member's arcs hold exactly the hashes it owns (what a shard is told when another joins).
        #[test]
        fn arcs_hold_exactly_the_hashes_a_member_owns(n in 1usize..6, salt in any::<u32>(), probes in proptest::collection::vec(any::<u32>(), 300)) {
            let names: Vec<String> = (0..n).map(|i| format!("arc-{salt}-{i}")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let ring = Ring::new(&members(&refs), KeyHash::Fnv1a_64);
            let arcs: Vec<Vec<(u32, u32)>> = (0..n).map(|m| ring.arcs_of(m)).collect();
            // Every point's hash too: the arc ends are inclusive.
            let edges = ring.points.iter().flat_map(|&(p, _)| [p, p.wrapping_add(1), p.wrapping_sub(1)]);
            for h in probes.into_iter().chain(edges).chain([0, u32::MAX]) {
                let owner = ring.owner_of_hash(h, |_| true).unwrap();
                for (m, a) in arcs.iter().enumerate() {
                    prop_assert_eq!(ringcache_common::hash::ArcSet::new(a).contains(h), m == owner, "hash {} member {}", h, m);
                }
            }
        }

        /// While a member is down, each key it owns a copy of is held by exactly the stand-ins whose arcs
        /// cover the key's hash.
        #[test]
        fn stand_in_arcs_cover_exactly_the_copies_held_for_an_absent_member(
            n in 2usize..6, copies in 1usize..3, absent_pick in any::<usize>(), salt in any::<u32>(),
        ) {
            let names: Vec<String> = (0..n).map(|i| format!("si-{salt}-{i}")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let ring = Ring::new(&members(&refs), KeyHash::Fnv1a_64);
            let absent = absent_pick % n;
            let stand_ins = ring.stand_in_arcs(absent, copies);
            for i in 0..1000 {
                let key = format!("s{salt}:{i}");
                let mut natural: Vec<usize> = Vec::new();
                ring.live_owners(key.as_bytes(), copies, |_| true, &mut natural);
                let mut live: Vec<usize> = Vec::new();
                ring.live_owners(key.as_bytes(), copies, |m| m != absent, &mut live);
                let h = ring.hash_key(key.as_bytes());
                for m in 0..n {
                    let expected = natural.contains(&absent) && live.contains(&m) && !natural.contains(&m);
                    let covered = stand_ins.iter().any(|(s, arcs)| *s == m && ringcache_common::hash::ArcSet::new(arcs).contains(h));
                    prop_assert_eq!(covered, expected, "key {} member {}", key, m);
                }
            }
        }

        /// The co-owner arcs of a member cover exactly the keys it holds a copy of, each with the other
        /// members holding one.
        #[test]
        fn co_owner_arcs_name_every_other_copy_of_a_members_keys(
            n in 2usize..6, copies in 1usize..4, member_pick in any::<usize>(), salt in any::<u32>(),
        ) {
            let names: Vec<String> = (0..n).map(|i| format!("co-{salt}-{i}")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let ring = Ring::new(&members(&refs), KeyHash::Fnv1a_64);
            let member = member_pick % n;
            let arcs = ring.co_owner_arcs(member, copies);
            for i in 0..1000 {
                let key = format!("c{salt}:{i}");
                let mut natural: Vec<usize> = Vec::new();
                ring.live_owners(key.as_bytes(), copies, |_| true, &mut natural);
                let h = ring.hash_key(key.as_bytes());
                let found: Vec<&Vec<usize>> = arcs
                    .iter()
                    .filter(|(arc, _)| ringcache_common::hash::ArcSet::new(&[*arc]).contains(h))
                    .map(|(_, co)| co)
                    .collect();
                if natural.contains(&member) {
                    prop_assert_eq!(found.len(), 1, "key {}", key);
                    let expected: Vec<usize> = natural.iter().copied().filter(|&m| m != member).collect();
                    prop_assert_eq!(found[0], &expected);
                } else {
                    prop_assert!(found.is_empty(), "key {} is not {}'s", key, member);
                }
            }
        }

        /// Adding a member moves only keys that now belong to it; removing one moves only its keys.
        #[test]
        fn membership_changes_move_the_minimum(n in 2usize..8, salt in any::<u32>()) {
            let names: Vec<String> = (0..=n).map(|i| format!("node-{salt}-{i}")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let small = Ring::new(&members(&refs[..n]), KeyHash::Fnv1a_64);
            let big = Ring::new(&members(&refs), KeyHash::Fnv1a_64);
            for i in 0..2000 {
                let key = format!("k{salt}:{i}");
                let before = small.owner(key.as_bytes()).unwrap();
                let after = big.owner(key.as_bytes()).unwrap();
                prop_assert!(after == before || after == n, "key moved between old members");
            }
        }
    }
}
