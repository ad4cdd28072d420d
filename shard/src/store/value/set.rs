//! Sets: members in a dense array with a hash index ([`Dense`]): O(1) membership, insertion, removal and
//! random member.

use super::dense::Dense;

#[derive(Debug, Default)]
pub struct Set {
    members: Dense<Box<[u8]>>,
}

impl Set {
    pub fn new() -> Set {
        Set::default()
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.members.find(member).is_some()
    }

    /// Adds a member; false if it was there already.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        if self.contains(member) {
            return false;
        }
        self.members.push(Box::from(member));
        true
    }

    /// Removes a member; false if it was not there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        self.members.remove(member).is_some()
    }

    /// The member at position `i < len` (positions are dense, so a uniform `i` is a uniform member).
    pub fn at(&self, i: usize) -> &[u8] {
        self.members.get(i)
    }

    /// Removes and returns the member at position `i < len`.
    pub fn take_at(&mut self, i: usize) -> Box<[u8]> {
        self.members.swap_remove(i)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.members.iter().map(|m| &m[..])
    }

    /// One SSCAN step (see [`Dense::scan`]).
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8])) -> u64 {
        self.members.scan(cursor, count, |m| f(m))
    }

    pub fn reserve(&mut self, additional: usize) {
        self.members.reserve(additional);
    }
}

impl<'a> FromIterator<&'a [u8]> for Set {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(items: I) -> Set {
        let mut s = Set::new();
        for m in items {
            s.insert(m);
        }
        s
    }
}
