//! Sorted sets: members and scores in a dense array with a hash index ([`Dense`]: ZSCORE, ZADD's lookup
//! and ZRANDMEMBER in O(1)), ordered by (score, member) in a counted B+ tree of positions ([`OrderTree`]:
//! rank, rank ranges, score and lex bounds, insertion and removal in O(log n)).
//!
//! The order compares scores numerically (`-0` equals `0`) and equal scores by member bytes, as Redis's
//! skiplist does. Removing a member moves the last member of the dense array into its place; its item in
//! the tree is re-pointed at the new position, found by rank before anything moves.

use super::dense::{Dense, Keyed};
use super::order_tree::{Item, OrderTree};

/// A score; NaN never gets in (ZADD and ZINCRBY refuse it).
pub type Score = f64;

#[derive(Debug)]
struct Entry {
    member: Box<[u8]>,
    score: f64,
}

impl Keyed for Entry {
    fn key(&self) -> &[u8] {
        &self.member
    }
}

#[derive(Debug, Default)]
pub struct ZSet {
    entries: Dense<Entry>,
    order: OrderTree,
}

/// Whether (a_score, a_member) sorts before (b_score, b_member); `a_member` is looked up only on a tie
/// (it is a random access into the dense array).
fn before<'m>(a_score: f64, a_member: impl FnOnce() -> &'m [u8], b_score: f64, b_member: &[u8]) -> bool {
    a_score < b_score || (a_score == b_score && a_member() < b_member)
}

impl ZSet {
    pub fn new() -> ZSet {
        ZSet::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn member_at(&self, slot: u32) -> &[u8] {
        &self.entries.get(slot as usize).member
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.entries.find(member).map(|pos| self.entries.get(pos).score)
    }

    /// The rank (ascending, from 0) at which (score, member) is or would be.
    fn rank_of(&self, score: f64, member: &[u8]) -> usize {
        self.order.partition_point(|it| before(it.score, || self.member_at(it.slot), score, member))
    }

    /// Adds a member or changes its score; true if it is new.
    pub fn insert(&mut self, member: &[u8], score: f64) -> bool {
        match self.entries.find(member) {
            Some(pos) => {
                let old = self.entries.get(pos).score;
                // As in Redis, -0 and 0 are the same score: the stored one stays.
                if old != score {
                    let rank = self.rank_of(old, member);
                    self.order.remove(rank);
                    self.entries.get_mut(pos).score = score;
                    let rank = self.rank_of(score, member);
                    self.order.insert(rank, Item { score, slot: pos as u32 });
                }
                false
            }
            None => {
                let rank = self.rank_of(score, member);
                let pos = self.entries.push(Entry { member: Box::from(member), score });
                self.order.insert(rank, Item { score, slot: pos as u32 });
                true
            }
        }
    }

    /// Appends a member that sorts after every present one (loading a snapshot written in order).
    pub fn push_greatest(&mut self, member: &[u8], score: f64) -> bool {
        if self.entries.find(member).is_some() {
            return false;
        }
        let greatest = self.order.len().checked_sub(1).map(|r| self.order.get(r));
        if greatest.is_some_and(|it| !before(it.score, || self.member_at(it.slot), score, member)) {
            return self.insert(member, score);
        }
        let pos = self.entries.push(Entry { member: Box::from(member), score });
        self.order.insert(self.order.len(), Item { score, slot: pos as u32 });
        true
    }

    /// Removes the member at dense position `pos`, whose rank is `rank`.
    fn remove_at(&mut self, pos: usize, rank: usize) -> (Box<[u8]>, f64) {
        let last = self.entries.len() - 1;
        let moved = (pos != last).then(|| {
            let e = self.entries.get(last);
            (self.rank_of(e.score, &e.member), e.score)
        });
        self.order.remove(rank);
        if let Some((moved_rank, score)) = moved {
            let moved_rank = if moved_rank > rank { moved_rank - 1 } else { moved_rank };
            self.order.set(moved_rank, Item { score, slot: pos as u32 });
        }
        let e = self.entries.swap_remove(pos);
        (e.member, e.score)
    }

    /// Removes a member; its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let pos = self.entries.find(member)?;
        let score = self.entries.get(pos).score;
        let rank = self.rank_of(score, member);
        Some(self.remove_at(pos, rank).1)
    }

    /// A member's rank, ascending from 0.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(self.rank_of(score, member))
    }

    /// The member and score at `rank < len`.
    pub fn at_rank(&self, rank: usize) -> (&[u8], f64) {
        let it = self.order.get(rank);
        (self.member_at(it.slot), it.score)
    }

    /// Removes and returns the member at `rank < len`.
    pub fn remove_rank(&mut self, rank: usize) -> (Box<[u8]>, f64) {
        let it = self.order.get(rank);
        self.remove_at(it.slot as usize, rank)
    }

    /// How many members have a score below `score` (`or_equal`: at most `score`).
    pub fn count_score_below(&self, score: f64, or_equal: bool) -> usize {
        if or_equal {
            self.order.partition_point(|it| it.score <= score)
        } else {
            self.order.partition_point(|it| it.score < score)
        }
    }

    /// How many members sort before `member` by bytes (`or_equal`: at most `member`); meaningful when all
    /// scores are equal, as Redis's lex ranges assume.
    pub fn count_lex_below(&self, member: &[u8], or_equal: bool) -> usize {
        if or_equal {
            self.order.partition_point(|it| self.member_at(it.slot) <= member)
        } else {
            self.order.partition_point(|it| self.member_at(it.slot) < member)
        }
    }

    /// Calls `f` on (member, score) from rank `from` up, until it returns false.
    pub fn for_each_up<'s>(&'s self, from: usize, mut f: impl FnMut(&'s [u8], f64) -> bool) {
        self.order.for_each_up(from, |it| f(self.member_at(it.slot), it.score));
    }

    /// Calls `f` on (member, score) from rank `from` down to rank 0, until it returns false.
    pub fn for_each_down<'s>(&'s self, from: usize, mut f: impl FnMut(&'s [u8], f64) -> bool) {
        self.order.for_each_down(from, |it| f(self.member_at(it.slot), it.score));
    }

    /// The member at dense position `pos < len` (a uniform `pos` is a uniform member).
    pub fn at_position(&self, pos: usize) -> (&[u8], f64) {
        let e = self.entries.get(pos);
        (&e.member, e.score)
    }

    /// Every (member, score), in no particular order (cheaper than in order).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], f64)> + '_ {
        self.entries.iter().map(|e| (&e.member[..], e.score))
    }

    /// Every (member, score) in ascending order.
    pub fn iter_ordered(&self) -> Vec<(&[u8], f64)> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each_up(0, |m, s| {
            out.push((m, s));
            true
        });
        out
    }

    /// One ZSCAN step (see [`Dense::scan`]).
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], f64)) -> u64 {
        self.entries.scan(cursor, count, |e| f(&e.member, e.score))
    }

    pub fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// The reference: member → score, ordered on demand.
    fn ordered(model: &BTreeMap<Vec<u8>, i32>) -> Vec<(Vec<u8>, f64)> {
        let mut v: Vec<(Vec<u8>, f64)> = model.iter().map(|(m, &s)| (m.clone(), f64::from(s))).collect();
        v.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
        v
    }

    proptest! {
        /// Inserts, updates and removals (by member and by rank) agree with a map sorted on demand; ranks,
        /// positions and bound counts agree too.
        #[test]
        fn matches_a_sorted_map(ops in proptest::collection::vec((0u8..4, proptest::collection::vec(0u8..4, 0..3), -5i32..5), 1..300)) {
            let mut z = ZSet::new();
            let mut model: BTreeMap<Vec<u8>, i32> = BTreeMap::new();
            for (op, member, score) in ops {
                match op {
                    0 | 1 => prop_assert_eq!(z.insert(&member, f64::from(score)), model.insert(member.clone(), score).is_none()),
                    2 => prop_assert_eq!(z.remove(&member), model.remove(&member).map(f64::from)),
                    _ if !model.is_empty() => {
                        let rank = (score.unsigned_abs() as usize) % model.len();
                        let want = ordered(&model)[rank].clone();
                        let (m, s) = z.remove_rank(rank);
                        prop_assert_eq!((m.to_vec(), s), want.clone());
                        model.remove(&want.0);
                    }
                    _ => {}
                }
                let want = ordered(&model);
                prop_assert_eq!(z.len(), want.len());
                let got: Vec<(Vec<u8>, f64)> = z.iter_ordered().into_iter().map(|(m, s)| (m.to_vec(), s)).collect();
                prop_assert_eq!(&got, &want);
                for (r, (m, s)) in want.iter().enumerate() {
                    prop_assert_eq!(z.rank(m), Some(r));
                    prop_assert_eq!(z.score(m), Some(*s));
                    prop_assert_eq!(z.at_rank(r), (&m[..], *s));
                }
                for bound in -6..6 {
                    let b = f64::from(bound);
                    prop_assert_eq!(z.count_score_below(b, false), want.iter().filter(|(_, s)| *s < b).count());
                    prop_assert_eq!(z.count_score_below(b, true), want.iter().filter(|(_, s)| *s <= b).count());
                }
            }
        }
    }

    #[test]
    fn equal_scores_order_by_member_and_zero_signs_are_equal() {
        let mut z = ZSet::new();
        z.insert(b"b", 0.0);
        z.insert(b"a", -0.0);
        z.insert(b"c", -1.0);
        let got: Vec<&[u8]> = z.iter_ordered().into_iter().map(|(m, _)| m).collect();
        assert_eq!(got, vec![&b"c"[..], b"a", b"b"]);
        assert_eq!(z.count_lex_below(b"b", false), 2);
    }

    #[test]
    fn a_million_members_load_in_order_and_range_by_rank() {
        let mut z = ZSet::new();
        for i in 0..1_000_000u32 {
            assert!(z.push_greatest(format!("m{i:07}").as_bytes(), f64::from(i)));
        }
        assert_eq!(z.rank(b"m0500000"), Some(500_000));
        assert_eq!(z.at_rank(999_999), (&b"m0999999"[..], 999_999.0));
        assert_eq!(z.count_score_below(250_000.0, false), 250_000);
        let mut n = 0;
        z.for_each_down(10, |_, _| {
            n += 1;
            true
        });
        assert_eq!(n, 11);
    }
}
