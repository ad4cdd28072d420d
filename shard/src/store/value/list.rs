//! Lists: a deque of chunks, each holding a few kilobytes of elements packed back to back, like Redis's
//! quicklist of listpacks.
//!
//! A chunk keeps its elements' bytes in one buffer and their lengths, as LEB128, in another. LEB128 can be
//! read from either end (every byte but a length's last has its top bit set), so the first and the last
//! element of a chunk are found in O(1): pushes and pops at both ends of the list are O(1) (plus moving at
//! most one chunk's bytes when pushing or popping at its front). An element costs its bytes plus one
//! length byte (two from 128 bytes, three from 16 KiB), against Redis's two bytes of listpack header.
//!
//! Indexing walks chunk counts from the nearer end, then lengths inside one chunk: O(n / chunk) + O(chunk),
//! as Redis's quicklist. A chunk that fills up is trimmed to its exact size; neighbours that together fit
//! in one chunk after removals are merged, so no list keeps many near-empty chunks.

use std::collections::VecDeque;

/// Bytes of elements a chunk takes before a new chunk is started (one larger element gets a chunk of its
/// own).
pub const CHUNK_BYTES: usize = 4096;

/// Bytes with room at both ends: `buf[head..]` is live, and the bytes before `head` are room for
/// prepending, so pushing or popping at either end moves nothing (amortized): a list used as a queue
/// (RPUSH + LPOP, LPUSH + RPOP) never shifts a chunk's bytes.
#[derive(Debug, Default, Clone)]
struct Buf {
    buf: Vec<u8>,
    head: usize,
}

impl Buf {
    fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    /// Capacity the next growth should give `live` bytes: doubling up to a chunk's size, so that a full
    /// chunk is allocated at exactly [`CHUNK_BYTES`] and a small list stays small.
    fn next_capacity(&self, need: usize) -> usize {
        (self.buf.capacity() * 2).clamp(16, CHUNK_BYTES).max(need)
    }

    fn push_back(&mut self, bytes: &[u8]) {
        if self.buf.len() + bytes.len() > self.buf.capacity() {
            let live = self.len();
            if self.head > 0 {
                // Take back the room at the front before growing.
                self.buf.copy_within(self.head.., 0);
                self.buf.truncate(live);
                self.head = 0;
            }
            if live + bytes.len() > self.buf.capacity() {
                let cap = self.next_capacity(live + bytes.len());
                self.buf.reserve_exact(cap - live);
            }
        }
        self.buf.extend_from_slice(bytes);
    }

    fn push_front(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        if self.head < n {
            // Regrow with all the room at the front.
            let live = self.len();
            let cap = self.next_capacity(live + n);
            let mut v = Vec::with_capacity(cap);
            v.resize(cap - live, 0);
            v.extend_from_slice(self.bytes());
            self.head = cap - live;
            self.buf = v;
        }
        self.head -= n;
        self.buf[self.head..self.head + n].copy_from_slice(bytes);
    }

    fn pop_front(&mut self, n: usize) {
        self.head += n;
        if self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
        }
    }

    fn pop_back(&mut self, n: usize) {
        self.buf.truncate(self.buf.len() - n);
    }

    /// Replaces the live bytes `at..at + old` with `new`, moving the bytes after them once.
    fn replace(&mut self, at: usize, old: usize, new: &[u8]) {
        let (start, len) = (self.head + at, self.buf.len());
        if new.len() > old {
            let extra = new.len() - old;
            if len + extra > self.buf.capacity() {
                let cap = self.next_capacity(self.len() + extra);
                self.buf.reserve_exact(cap.saturating_sub(self.buf.len()));
            }
            self.buf.resize(len + extra, 0);
            self.buf.copy_within(start + old..len, start + new.len());
        } else if new.len() < old {
            self.buf.copy_within(start + old..len, start + new.len());
            self.buf.truncate(len - (old - new.len()));
        }
        self.buf[start..start + new.len()].copy_from_slice(new);
    }

    fn split_off(&mut self, at: usize) -> Buf {
        Buf { buf: self.buf.split_off(self.head + at), head: 0 }
    }

    fn append(&mut self, other: &Buf) {
        self.push_back(other.bytes());
    }

    /// Gives back the room at both ends (a chunk that is full will not grow again).
    fn trim(&mut self) {
        if self.head > 0 {
            let live = self.len();
            self.buf.copy_within(self.head.., 0);
            self.buf.truncate(live);
            self.head = 0;
        }
        self.buf.shrink_to_fit();
    }

    #[cfg(test)]
    fn allocated(&self) -> usize {
        self.buf.capacity()
    }
}

#[derive(Debug, Default, Clone)]
struct Chunk {
    /// Elements' bytes, back to back.
    data: Buf,
    /// Each element's length as LEB128, in element order.
    lens: Buf,
    count: u32,
}

/// Writes `n` as LEB128 into `out`; returns the bytes written.
fn encode_len(out: &mut [u8; 10], mut n: usize) -> usize {
    let mut k = 0;
    while n >= 0x80 {
        out[k] = (n as u8) | 0x80;
        n >>= 7;
        k += 1;
    }
    out[k] = n as u8;
    k + 1
}

/// Reads the LEB128 length starting at `lens[at]`; returns (length, bytes it takes).
fn read_len(lens: &[u8], at: usize) -> (usize, usize) {
    let mut n = 0usize;
    let mut shift = 0;
    let mut i = at;
    loop {
        let b = lens[i];
        n |= usize::from(b & 0x7f) << shift;
        i += 1;
        if b & 0x80 == 0 {
            return (n, i - at);
        }
        shift += 7;
    }
}

/// Reads the LEB128 length that ends just before `lens[end]`; returns (length, bytes it takes).
fn read_len_back(lens: &[u8], end: usize) -> (usize, usize) {
    let mut start = end - 1;
    while start > 0 && lens[start - 1] & 0x80 != 0 {
        start -= 1;
    }
    read_len(lens, start)
}

impl Chunk {
    fn with(item: &[u8]) -> Chunk {
        let mut c = Chunk::default();
        c.push_back(item);
        c
    }

    fn fits(&self, item: &[u8]) -> bool {
        self.count == 0 || self.data.len() + item.len() <= CHUNK_BYTES
    }

    fn push_back(&mut self, item: &[u8]) {
        self.data.push_back(item);
        let mut len = [0u8; 10];
        let k = encode_len(&mut len, item.len());
        self.lens.push_back(&len[..k]);
        self.count += 1;
    }

    fn push_front(&mut self, item: &[u8]) {
        self.data.push_front(item);
        let mut len = [0u8; 10];
        let k = encode_len(&mut len, item.len());
        self.lens.push_front(&len[..k]);
        self.count += 1;
    }

    /// Calls `f` on the first element, then removes it.
    fn pop_front<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> R {
        let (n, k) = read_len(self.lens.bytes(), 0);
        let r = f(&self.data.bytes()[..n]);
        self.data.pop_front(n);
        self.lens.pop_front(k);
        self.count -= 1;
        r
    }

    /// Calls `f` on the last element, then removes it.
    fn pop_back<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> R {
        let (n, k) = read_len_back(self.lens.bytes(), self.lens.len());
        let data = self.data.bytes();
        let r = f(&data[data.len() - n..]);
        self.data.pop_back(n);
        self.lens.pop_back(k);
        self.count -= 1;
        r
    }

    /// (data offset, length, lens offset, length bytes) of element `i`, relative to the live bytes.
    fn locate(&self, i: usize) -> (usize, usize, usize, usize) {
        let lens = self.lens.bytes();
        if i < self.count as usize / 2 {
            let (mut data_at, mut lens_at) = (0, 0);
            for _ in 0..i {
                let (n, k) = read_len(lens, lens_at);
                data_at += n;
                lens_at += k;
            }
            let (n, k) = read_len(lens, lens_at);
            (data_at, n, lens_at, k)
        } else {
            // Nearer the end: walk back from it.
            let (mut data_end, mut lens_end) = (self.data.len(), lens.len());
            for _ in 0..(self.count as usize - 1 - i) {
                let (n, k) = read_len_back(lens, lens_end);
                data_end -= n;
                lens_end -= k;
            }
            let (n, k) = read_len_back(lens, lens_end);
            (data_end - n, n, lens_end - k, k)
        }
    }

    fn get(&self, i: usize) -> &[u8] {
        let (at, n, _, _) = self.locate(i);
        &self.data.bytes()[at..at + n]
    }

    fn insert(&mut self, i: usize, item: &[u8]) {
        if i == self.count as usize {
            return self.push_back(item);
        }
        let (at, _, lens_at, _) = self.locate(i);
        self.data.replace(at, 0, item);
        let mut len = [0u8; 10];
        let k = encode_len(&mut len, item.len());
        self.lens.replace(lens_at, 0, &len[..k]);
        self.count += 1;
    }

    fn remove(&mut self, i: usize) {
        let (at, n, lens_at, k) = self.locate(i);
        self.data.replace(at, n, &[]);
        self.lens.replace(lens_at, k, &[]);
        self.count -= 1;
    }

    fn set(&mut self, i: usize, item: &[u8]) {
        let (at, n, lens_at, k) = self.locate(i);
        self.data.replace(at, n, item);
        let mut len = [0u8; 10];
        let k2 = encode_len(&mut len, item.len());
        self.lens.replace(lens_at, k, &len[..k2]);
    }

    /// Splits off the elements from `i` on into a new chunk.
    fn split_off(&mut self, i: usize) -> Chunk {
        if i == self.count as usize {
            return Chunk::default();
        }
        let (at, _, lens_at, _) = self.locate(i);
        let tail =
            Chunk { data: self.data.split_off(at), lens: self.lens.split_off(lens_at), count: self.count - i as u32 };
        self.count = i as u32;
        self.trim();
        tail
    }

    fn append(&mut self, other: Chunk) {
        self.data.append(&other.data);
        self.lens.append(&other.lens);
        self.count += other.count;
    }

    /// Gives back the unused capacity (a chunk that is full will not grow again).
    fn trim(&mut self) {
        self.data.trim();
        self.lens.trim();
    }

    fn iter(&self) -> ChunkIter<'_> {
        ChunkIter {
            data: self.data.bytes(),
            lens: self.lens.bytes(),
            data_at: 0,
            lens_at: 0,
            data_end: self.data.len(),
            lens_end: self.lens.len(),
        }
    }
}

/// The elements of one chunk, from either end.
struct ChunkIter<'a> {
    data: &'a [u8],
    lens: &'a [u8],
    data_at: usize,
    lens_at: usize,
    data_end: usize,
    lens_end: usize,
}

impl<'a> Iterator for ChunkIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.lens_at >= self.lens_end {
            return None;
        }
        let (n, k) = read_len(self.lens, self.lens_at);
        let item = &self.data[self.data_at..self.data_at + n];
        self.data_at += n;
        self.lens_at += k;
        Some(item)
    }
}

impl<'a> DoubleEndedIterator for ChunkIter<'a> {
    fn next_back(&mut self) -> Option<&'a [u8]> {
        if self.lens_at >= self.lens_end {
            return None;
        }
        let (n, k) = read_len_back(self.lens, self.lens_end);
        self.data_end -= n;
        self.lens_end -= k;
        Some(&self.data[self.data_end..self.data_end + n])
    }
}

/// A list of byte strings.
#[derive(Debug, Default, Clone)]
pub struct List {
    chunks: VecDeque<Chunk>,
    len: usize,
}

impl List {
    pub fn new() -> List {
        List::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push_back(&mut self, item: &[u8]) {
        match self.chunks.back_mut() {
            Some(c) if c.fits(item) => c.push_back(item),
            last => {
                if let Some(c) = last {
                    c.trim();
                }
                self.chunks.push_back(Chunk::with(item));
            }
        }
        self.len += 1;
    }

    pub fn push_front(&mut self, item: &[u8]) {
        match self.chunks.front_mut() {
            Some(c) if c.fits(item) => c.push_front(item),
            first => {
                if let Some(c) = first {
                    c.trim();
                }
                self.chunks.push_front(Chunk::with(item));
            }
        }
        self.len += 1;
    }

    /// Calls `f` on the first element and removes it; `None` if the list is empty.
    pub fn pop_front<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let c = self.chunks.front_mut()?;
        let r = c.pop_front(f);
        if c.count == 0 {
            self.chunks.pop_front();
        }
        self.len -= 1;
        Some(r)
    }

    /// Calls `f` on the last element and removes it; `None` if the list is empty.
    pub fn pop_back<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let c = self.chunks.back_mut()?;
        let r = c.pop_back(f);
        if c.count == 0 {
            self.chunks.pop_back();
        }
        self.len -= 1;
        Some(r)
    }

    /// (chunk, index in it) of element `i < len`, walking from the nearer end.
    fn find(&self, i: usize) -> (usize, usize) {
        if i < self.len / 2 {
            let mut rest = i;
            for (c, chunk) in self.chunks.iter().enumerate() {
                if rest < chunk.count as usize {
                    return (c, rest);
                }
                rest -= chunk.count as usize;
            }
        } else {
            let mut rest = self.len - 1 - i;
            for (c, chunk) in self.chunks.iter().enumerate().rev() {
                if rest < chunk.count as usize {
                    return (c, chunk.count as usize - 1 - rest);
                }
                rest -= chunk.count as usize;
            }
        }
        unreachable!("index {i} of a list of {}", self.len)
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len {
            return None;
        }
        let (c, j) = self.find(i);
        Some(self.chunks[c].get(j))
    }

    /// Replaces element `i < len`.
    pub fn set(&mut self, i: usize, item: &[u8]) {
        let (c, j) = self.find(i);
        let chunk = &mut self.chunks[c];
        chunk.set(j, item);
        let (size, count) = (chunk.data.len(), chunk.count as usize);
        if size > CHUNK_BYTES && count > 1 {
            self.split_chunk(c, (j + 1).min(count - 1).max(1));
        }
    }

    /// Inserts `item` so that it becomes element `i <= len`.
    pub fn insert(&mut self, i: usize, item: &[u8]) {
        if i == 0 {
            return self.push_front(item);
        }
        if i == self.len {
            return self.push_back(item);
        }
        let (c, j) = self.find(i);
        let chunk = &mut self.chunks[c];
        if chunk.fits(item) {
            chunk.insert(j, item);
        } else {
            // Split the full chunk at the insertion point and put the element at the end of the first part.
            let tail = chunk.split_off(j);
            if self.chunks[c].fits(item) {
                self.chunks[c].push_back(item);
                self.chunks.insert(c + 1, tail);
            } else {
                self.chunks.insert(c + 1, tail);
                self.chunks.insert(c + 1, Chunk::with(item));
            }
        }
        self.len += 1;
    }

    /// Removes element `i < len`.
    pub fn remove(&mut self, i: usize) {
        let (c, j) = self.find(i);
        self.chunks[c].remove(j);
        self.len -= 1;
        self.after_removal(c);
    }

    fn split_chunk(&mut self, c: usize, at: usize) {
        let tail = self.chunks[c].split_off(at);
        self.chunks.insert(c + 1, tail);
    }

    /// Drops chunk `c` if it is empty, or merges it with a neighbour when both fit in one chunk.
    fn after_removal(&mut self, c: usize) {
        if self.chunks[c].count == 0 {
            self.chunks.remove(c);
            return;
        }
        let size = self.chunks[c].data.len();
        if size >= CHUNK_BYTES / 4 {
            return;
        }
        if c + 1 < self.chunks.len() && size + self.chunks[c + 1].data.len() <= CHUNK_BYTES {
            let next = self.chunks.remove(c + 1).unwrap_or_default();
            self.chunks[c].append(next);
        } else if c > 0 && size + self.chunks[c - 1].data.len() <= CHUNK_BYTES {
            let this = self.chunks.remove(c).unwrap_or_default();
            self.chunks[c - 1].append(this);
        }
    }

    /// Keeps only elements `start..=stop` (LTRIM; an empty range empties the list).
    pub fn retain_range(&mut self, start: usize, stop: usize) {
        if start > stop || start >= self.len {
            *self = List::default();
            return;
        }
        let stop = stop.min(self.len - 1);
        // Drop from the back, then from the front, whole chunks first.
        let mut drop_back = self.len - 1 - stop;
        while drop_back > 0 {
            let Some(last) = self.chunks.back_mut() else { break };
            if last.count as usize <= drop_back {
                drop_back -= last.count as usize;
                self.len -= last.count as usize;
                self.chunks.pop_back();
            } else {
                let keep = last.count as usize - drop_back;
                last.split_off(keep);
                self.len -= drop_back;
                drop_back = 0;
            }
        }
        let mut drop_front = start;
        while drop_front > 0 {
            let Some(first) = self.chunks.front_mut() else { break };
            if first.count as usize <= drop_front {
                drop_front -= first.count as usize;
                self.len -= first.count as usize;
                self.chunks.pop_front();
            } else {
                *first = first.split_off(drop_front);
                self.len -= drop_front;
                drop_front = 0;
            }
        }
    }

    /// Removes up to `limit` elements equal to `item` (all when `limit` is 0), the first ones from the head
    /// (`from_tail` false) or the last ones from the tail; returns how many went (LREM).
    pub fn remove_equal(&mut self, item: &[u8], limit: usize, from_tail: bool) -> usize {
        let total = self.iter().filter(|e| *e == item).count();
        if total == 0 {
            return 0;
        }
        let to_remove = if limit == 0 { total } else { limit.min(total) };
        // Matches are numbered from the head; these are the ones that go.
        let skip = if from_tail { total - to_remove } else { 0 };
        let (mut seen, mut removed) = (0, 0);
        for chunk in self.chunks.iter_mut() {
            if removed == to_remove {
                break;
            }
            let here = chunk.iter().filter(|e| *e == item).count();
            if here == 0 || seen + here <= skip {
                seen += here;
                continue;
            }
            let mut rebuilt = Chunk::default();
            for e in chunk.iter() {
                if e == item {
                    seen += 1;
                    if seen > skip && removed < to_remove {
                        removed += 1;
                        continue;
                    }
                }
                rebuilt.push_back(e);
            }
            rebuilt.trim();
            *chunk = rebuilt;
        }
        self.len -= removed;
        self.chunks.retain(|c| c.count > 0);
        self.compact();
        removed
    }

    /// Merges neighbouring chunks that fit in one when either is under a quarter full.
    fn compact(&mut self) {
        let mut i = 0;
        while i + 1 < self.chunks.len() {
            let (a, b) = (self.chunks[i].data.len(), self.chunks[i + 1].data.len());
            if a + b <= CHUNK_BYTES && (a < CHUNK_BYTES / 4 || b < CHUNK_BYTES / 4) {
                let next = self.chunks.remove(i + 1).unwrap_or_default();
                self.chunks[i].append(next);
            } else {
                i += 1;
            }
        }
    }

    /// The elements from index `from` towards the tail.
    pub fn iter_from(&self, from: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let (c, j) = if from >= self.len { (self.chunks.len(), 0) } else { self.find(from) };
        self.chunks.range(c..).enumerate().flat_map(move |(k, chunk)| chunk.iter().skip(if k == 0 { j } else { 0 }))
    }

    /// The elements from index `from` towards the head.
    pub fn iter_back_from(&self, from: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let (c, j) = if from >= self.len { (0, 0) } else { self.find(from) };
        let chunks = if from >= self.len { 0 } else { c + 1 };
        self.chunks.range(..chunks).rev().enumerate().flat_map(move |(k, chunk)| {
            let skip = if k == 0 { chunk.count as usize - 1 - j } else { 0 };
            chunk.iter().rev().skip(skip)
        })
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// Chunks in the list (tests).
    #[cfg(test)]
    fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}

impl<'a> FromIterator<&'a [u8]> for List {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(items: I) -> List {
        let mut l = List::new();
        for i in items {
            l.push_back(i);
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        PushFront(Vec<u8>),
        PushBack(Vec<u8>),
        PopFront,
        PopBack,
        Set(usize, Vec<u8>),
        Insert(usize, Vec<u8>),
        Remove(usize),
        Trim(usize, usize),
        RemoveEqual(Vec<u8>, usize, bool),
    }

    fn item() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(0u8..3, 0..4),
            proptest::collection::vec(any::<u8>(), 100..300),
            proptest::collection::vec(any::<u8>(), 1000..5000),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => item().prop_map(Op::PushFront),
            4 => item().prop_map(Op::PushBack),
            2 => Just(Op::PopFront),
            2 => Just(Op::PopBack),
            1 => (any::<usize>(), item()).prop_map(|(i, v)| Op::Set(i, v)),
            2 => (any::<usize>(), item()).prop_map(|(i, v)| Op::Insert(i, v)),
            1 => any::<usize>().prop_map(Op::Remove),
            1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Trim(a, b)),
            1 => (proptest::collection::vec(0u8..3, 0..2), 0usize..3, any::<bool>()).prop_map(|(v, n, t)| Op::RemoveEqual(v, n, t)),
        ]
    }

    proptest! {
        /// A list behaves as a `VecDeque` of byte strings under any sequence of operations.
        #[test]
        fn matches_a_vecdeque(ops in proptest::collection::vec(op(), 1..120)) {
            let mut l = List::new();
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            for op in ops {
                match op {
                    Op::PushFront(v) => { l.push_front(&v); model.push_front(v); }
                    Op::PushBack(v) => { l.push_back(&v); model.push_back(v); }
                    Op::PopFront => prop_assert_eq!(l.pop_front(|e| e.to_vec()), model.pop_front()),
                    Op::PopBack => prop_assert_eq!(l.pop_back(|e| e.to_vec()), model.pop_back()),
                    Op::Set(i, v) if !model.is_empty() => { let i = i % model.len(); l.set(i, &v); model[i] = v; }
                    Op::Insert(i, v) => { let i = i % (model.len() + 1); l.insert(i, &v); model.insert(i, v); }
                    Op::Remove(i) if !model.is_empty() => { let i = i % model.len(); l.remove(i); model.remove(i); }
                    Op::Trim(a, b) if !model.is_empty() => {
                        let (a, b) = (a % (model.len() + 2), b % (model.len() + 2));
                        l.retain_range(a, b);
                        if a > b || a >= model.len() { model.clear(); } else {
                            let b = b.min(model.len() - 1);
                            model = model.iter().skip(a).take(b - a + 1).cloned().collect();
                        }
                    }
                    Op::RemoveEqual(v, n, from_tail) => {
                        let mut removed = 0;
                        let mut kept: VecDeque<Vec<u8>> = VecDeque::new();
                        let order: Vec<Vec<u8>> = if from_tail { model.iter().rev().cloned().collect() } else { model.iter().cloned().collect() };
                        for e in order {
                            if e == v && (n == 0 || removed < n) { removed += 1; } else if from_tail { kept.push_front(e); } else { kept.push_back(e); }
                        }
                        prop_assert_eq!(l.remove_equal(&v, n, from_tail), removed);
                        model = kept;
                    }
                    _ => {}
                }
                prop_assert_eq!(l.len(), model.len());
                let all: Vec<&[u8]> = l.iter().collect();
                let want: Vec<&[u8]> = model.iter().map(|v| &v[..]).collect();
                prop_assert_eq!(&all, &want);
                let back: Vec<&[u8]> = l.iter().rev().collect();
                let want_back: Vec<&[u8]> = model.iter().rev().map(|v| &v[..]).collect();
                prop_assert_eq!(back, want_back);
                for (i, v) in model.iter().enumerate() {
                    prop_assert_eq!(l.get(i), Some(&v[..]));
                    prop_assert_eq!(l.iter_from(i).next(), Some(&v[..]));
                    prop_assert_eq!(l.iter_back_from(i).next(), Some(&v[..]));
                }
                prop_assert_eq!(l.iter_from(model.len()).count(), 0);
                if let Some(mid) = model.len().checked_sub(1).map(|m| m / 2) {
                    prop_assert_eq!(l.iter_from(mid).count(), model.len() - mid);
                    prop_assert_eq!(l.iter_back_from(mid).count(), mid + 1);
                }
                prop_assert!(l.chunks.iter().all(|c| c.count > 0));
            }
        }
    }

    #[test]
    fn small_elements_take_a_length_byte_each_and_chunks_fill() {
        let mut l = List::new();
        for i in 0..10_000u32 {
            l.push_back(format!("element:{i:06}").as_bytes());
        }
        let bytes: usize = l.chunks.iter().map(|c| c.data.allocated() + c.lens.allocated()).sum();
        // 14 bytes and one length byte each, in chunks that are full but for the last.
        assert!(bytes <= 10_000 * 15 + CHUNK_BYTES * 2, "{bytes}");
        assert_eq!(l.chunk_count(), 10_000usize.div_ceil(CHUNK_BYTES / 14));
    }
}
