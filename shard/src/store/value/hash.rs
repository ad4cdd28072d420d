//! Hashes: field/value pairs in a dense array with a hash index on the field ([`Dense`]). Each pair is one
//! allocation, `[field length as LEB128][field][value]`, so a small pair costs one heap block.

use super::dense::{Dense, Keyed};

/// One field and its value, in one allocation.
#[derive(Debug)]
pub struct Pair(Box<[u8]>);

impl Pair {
    pub fn new(field: &[u8], value: &[u8]) -> Pair {
        let mut b = Vec::with_capacity(field.len() + value.len() + 2);
        let mut n = field.len();
        while n >= 0x80 {
            b.push((n as u8) | 0x80);
            n >>= 7;
        }
        b.push(n as u8);
        b.extend_from_slice(field);
        b.extend_from_slice(value);
        Pair(b.into_boxed_slice())
    }

    /// The field and the value, the length prefix read once.
    #[inline]
    pub fn split(&self) -> (&[u8], &[u8]) {
        let (a, b) = self.field_range();
        let (head, value) = self.0.split_at(b);
        (&head[a..], value)
    }

    /// (field start, field end). A field shorter than 128 bytes (one length byte) takes one branch.
    #[inline]
    fn field_range(&self) -> (usize, usize) {
        match self.0.first() {
            Some(&n) if n < 0x80 => (1, 1 + usize::from(n)),
            _ => self.long_field_range(),
        }
    }

    #[cold]
    fn long_field_range(&self) -> (usize, usize) {
        let (mut n, mut shift, mut i) = (0usize, 0, 0);
        loop {
            let b = self.0[i];
            n |= usize::from(b & 0x7f) << shift;
            i += 1;
            if b & 0x80 == 0 {
                return (i, i + n);
            }
            shift += 7;
        }
    }

    pub fn field(&self) -> &[u8] {
        let (a, b) = self.field_range();
        &self.0[a..b]
    }

    pub fn value(&self) -> &[u8] {
        let (_, b) = self.field_range();
        &self.0[b..]
    }
}

impl Keyed for Pair {
    fn key(&self) -> &[u8] {
        self.field()
    }
}

#[derive(Debug, Default)]
pub struct Hash {
    pairs: Dense<Pair>,
}

impl Hash {
    pub fn new() -> Hash {
        Hash::default()
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.pairs.find(field).map(|i| self.pairs.get(i).value())
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.pairs.find(field).is_some()
    }

    /// Sets a field; returns the previous value's length, or `None` if the field is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> Option<usize> {
        match self.pairs.find(field) {
            Some(i) => {
                let old = self.pairs.replace(i, Pair::new(field, value));
                Some(old.value().len())
            }
            None => {
                self.pairs.push(Pair::new(field, value));
                None
            }
        }
    }

    /// Removes a field; returns its value's length if it was there.
    pub fn remove(&mut self, field: &[u8]) -> Option<usize> {
        self.pairs.remove(field).map(|p| p.value().len())
    }

    /// The pair at position `i < len` (positions are dense: a uniform `i` is a uniform field).
    pub fn at(&self, i: usize) -> (&[u8], &[u8]) {
        self.pairs.get(i).split()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        self.pairs.iter().map(Pair::split)
    }

    /// One HSCAN step (see [`Dense::scan`]).
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        self.pairs.scan(cursor, count, |p| {
            let (field, value) = p.split();
            f(field, value)
        })
    }

    pub fn reserve(&mut self, additional: usize) {
        self.pairs.reserve(additional);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// A hash behaves as a `BTreeMap` under inserts, updates and removals.
        #[test]
        fn matches_a_map(ops in proptest::collection::vec((0u8..3, proptest::collection::vec(any::<u8>(), 0..200), proptest::collection::vec(any::<u8>(), 0..20)), 1..300)) {
            let mut h = Hash::new();
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            for (op, field, value) in ops {
                let field: Vec<u8> = field.into_iter().take(if op == 2 { 200 } else { 2 }).collect();
                match op {
                    0 | 2 => prop_assert_eq!(h.insert(&field, &value), model.insert(field.clone(), value).map(|v| v.len())),
                    _ => prop_assert_eq!(h.remove(&field), model.remove(&field).map(|v| v.len())),
                }
                prop_assert_eq!(h.len(), model.len());
            }
            let got: BTreeMap<Vec<u8>, Vec<u8>> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            prop_assert_eq!(&got, &model);
            for (f, v) in &model {
                prop_assert_eq!(h.get(f), Some(&v[..]));
            }
        }
    }
}
