//! Sorted sets: a member → score map beside the members ordered by (score, member).

use std::collections::BTreeSet;

use hashbrown::HashMap;

use super::Bytes;

/// A score ordered totally (NaN never gets in: ZADD rejects it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score(pub f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A sorted set: member → score, plus the members ordered by (score, member).
#[derive(Debug, Default)]
pub struct ZSet {
    pub scores: HashMap<Bytes, f64>,
    pub order: BTreeSet<(Score, Bytes)>,
}

impl ZSet {
    /// Inserts or updates a member. Returns whether it was new.
    pub fn insert(&mut self, member: &[u8], score: f64) -> bool {
        match self.scores.get_mut(member) {
            Some(old) => {
                if *old != score {
                    self.order.remove(&(Score(*old), Box::from(member)));
                    self.order.insert((Score(score), Box::from(member)));
                    *old = score;
                }
                false
            }
            None => {
                self.scores.insert(Box::from(member), score);
                self.order.insert((Score(score), Box::from(member)));
                true
            }
        }
    }

    /// Removes and returns the lowest-scoring member.
    pub fn pop_min(&mut self) -> Option<(Bytes, f64)> {
        let (score, member) = self.order.pop_first()?;
        self.scores.remove(&member);
        Some((member, score.0))
    }

    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }
}
