//! The order of a sorted set: a counted B+ tree of (score, slot) items, where `slot` is the member's
//! position in the set's dense array.
//!
//! Every operation is positional (by rank) or a binary search with a monotone predicate, each O(log n):
//! inner nodes keep the item count and the last item of each child, so a descent picks its child by rank
//! (counts) or by the predicate (last items) without visiting the others. The tree itself never compares
//! members: the sorted set supplies predicates that look members up by slot. Leaves hold up to 64 items as
//! two arrays (8 + 4 bytes an item, no padding); a full leaf is split before it grows, at the insertion
//! point when appending or prepending (so loading in order fills leaves completely), else in half. A node
//! under a quarter full is merged with, or evened out against, a neighbour.

/// Items per leaf and children per inner node.
const CAP: usize = 64;
/// Below this many entries a node is merged with or refilled from a neighbour.
const MIN_FILL: usize = CAP / 4;

/// One element of the order: its score and where the member lives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Item {
    pub score: f64,
    pub slot: u32,
}

#[derive(Debug)]
enum Node {
    Leaf(Box<Leaf>),
    Inner(Box<Inner>),
}

#[derive(Debug, Default)]
struct Leaf {
    scores: Vec<f64>,
    slots: Vec<u32>,
}

#[derive(Debug, Default)]
struct Inner {
    children: Vec<Node>,
    /// Items under each child.
    counts: Vec<usize>,
    /// The last item under each child.
    lasts: Vec<Item>,
}

impl Leaf {
    fn item(&self, i: usize) -> Item {
        Item { score: self.scores[i], slot: self.slots[i] }
    }

    fn insert(&mut self, i: usize, item: Item) {
        // Grow by doubling, but never past CAP: a leaf is split before it would.
        if self.scores.len() == self.scores.capacity() {
            let target = (self.scores.capacity() * 2).clamp(4, CAP);
            self.scores.reserve_exact(target - self.scores.len());
            self.slots.reserve_exact(target - self.slots.len());
        }
        self.scores.insert(i, item.score);
        self.slots.insert(i, item.slot);
    }

    fn split_off(&mut self, at: usize) -> Leaf {
        Leaf { scores: self.scores.split_off(at), slots: self.slots.split_off(at) }
    }

    fn append(&mut self, other: &mut Leaf) {
        self.scores.append(&mut other.scores);
        self.slots.append(&mut other.slots);
    }
}

impl Inner {
    fn with_capacity() -> Inner {
        Inner {
            children: Vec::with_capacity(CAP + 1),
            counts: Vec::with_capacity(CAP + 1),
            lasts: Vec::with_capacity(CAP + 1),
        }
    }

    fn push(&mut self, child: Node) {
        self.counts.push(child.count());
        self.lasts.push(child.last());
        self.children.push(child);
    }

    fn insert(&mut self, i: usize, child: Node) {
        self.counts.insert(i, child.count());
        self.lasts.insert(i, child.last());
        self.children.insert(i, child);
    }

    fn remove(&mut self, i: usize) -> Node {
        self.counts.remove(i);
        self.lasts.remove(i);
        self.children.remove(i)
    }

    fn refresh(&mut self, i: usize) {
        self.counts[i] = self.children[i].count();
        self.lasts[i] = self.children[i].last();
    }

    /// The child holding rank `rank` (`rank < count`), and the rank inside it.
    fn child_at(&self, mut rank: usize) -> (usize, usize) {
        let mut i = 0;
        while i + 1 < self.counts.len() && rank >= self.counts[i] {
            rank -= self.counts[i];
            i += 1;
        }
        (i, rank)
    }
}

impl Node {
    fn empty() -> Node {
        Node::Leaf(Box::default())
    }

    /// Direct entries: items of a leaf, children of an inner node.
    fn width(&self) -> usize {
        match self {
            Node::Leaf(l) => l.scores.len(),
            Node::Inner(n) => n.children.len(),
        }
    }

    fn count(&self) -> usize {
        match self {
            Node::Leaf(l) => l.scores.len(),
            Node::Inner(n) => n.counts.iter().sum(),
        }
    }

    fn last(&self) -> Item {
        match self {
            Node::Leaf(l) => l.item(l.scores.len() - 1),
            Node::Inner(n) => n.lasts[n.lasts.len() - 1],
        }
    }

    /// Inserts `item` at `rank`; returns a new right sibling if this node had to split.
    fn insert(&mut self, rank: usize, item: Item) -> Option<Node> {
        match self {
            Node::Leaf(l) => {
                if l.scores.len() < CAP {
                    l.insert(rank, item);
                    return None;
                }
                // Full: split first, so a leaf's arrays never grow past CAP.
                let len = l.scores.len();
                let (at, into_left) = if rank == len {
                    (len, false)
                } else if rank == 0 {
                    (0, true)
                } else {
                    (len / 2, rank <= len / 2)
                };
                let mut right = l.split_off(at);
                if into_left {
                    l.insert(rank, item);
                } else {
                    right.insert(rank - at, item);
                }
                Some(Node::Leaf(Box::new(right)))
            }
            Node::Inner(n) => {
                // The child that holds `rank`, or whose end it is.
                let mut i = 0;
                let mut r = rank;
                while i + 1 < n.children.len() && r > n.counts[i] {
                    r -= n.counts[i];
                    i += 1;
                }
                let split = n.children[i].insert(r, item);
                n.refresh(i);
                if let Some(right) = split {
                    n.insert(i + 1, right);
                }
                if n.children.len() <= CAP {
                    return None;
                }
                let len = n.children.len();
                let at = if i + 1 == len - 1 {
                    len - 1
                } else if i == 0 {
                    1
                } else {
                    len / 2
                };
                let mut right = Inner::with_capacity();
                for child in n.children.drain(at..) {
                    right.push(child);
                }
                n.counts.truncate(at);
                n.lasts.truncate(at);
                Some(Node::Inner(Box::new(right)))
            }
        }
    }

    fn remove(&mut self, rank: usize) -> Item {
        match self {
            Node::Leaf(l) => Item { score: l.scores.remove(rank), slot: l.slots.remove(rank) },
            Node::Inner(n) => {
                let (i, r) = n.child_at(rank);
                let item = n.children[i].remove(r);
                if n.children[i].count() == 0 {
                    n.remove(i);
                } else {
                    n.refresh(i);
                    if n.children[i].width() < MIN_FILL && n.children.len() > 1 {
                        rebalance(n, i);
                    }
                }
                item
            }
        }
    }

    fn set(&mut self, rank: usize, item: Item) {
        match self {
            Node::Leaf(l) => {
                l.scores[rank] = item.score;
                l.slots[rank] = item.slot;
            }
            Node::Inner(n) => {
                let (i, r) = n.child_at(rank);
                n.children[i].set(r, item);
                n.lasts[i] = n.children[i].last();
            }
        }
    }

    /// Calls `f` on items from the `skip`-th on, ascending; false once `f` asked to stop.
    fn walk_up(&self, mut skip: usize, f: &mut dyn FnMut(Item) -> bool) -> bool {
        match self {
            Node::Leaf(l) => (skip..l.scores.len()).all(|i| f(l.item(i))),
            Node::Inner(n) => {
                for (child, &count) in n.children.iter().zip(&n.counts) {
                    if skip >= count {
                        skip -= count;
                        continue;
                    }
                    if !child.walk_up(skip, f) {
                        return false;
                    }
                    skip = 0;
                }
                true
            }
        }
    }

    /// Calls `f` on items descending, skipping the last `skip`; false once `f` asked to stop.
    fn walk_down(&self, mut skip: usize, f: &mut dyn FnMut(Item) -> bool) -> bool {
        match self {
            Node::Leaf(l) => (0..l.scores.len().saturating_sub(skip)).rev().all(|i| f(l.item(i))),
            Node::Inner(n) => {
                for (child, &count) in n.children.iter().zip(&n.counts).rev() {
                    if skip >= count {
                        skip -= count;
                        continue;
                    }
                    if !child.walk_down(skip, f) {
                        return false;
                    }
                    skip = 0;
                }
                true
            }
        }
    }
}

/// Merges child `i` of `n` (under-full) with a neighbour, or evens the two out if they do not fit in one.
fn rebalance(n: &mut Inner, i: usize) {
    let (a, b) = if i + 1 < n.children.len() { (i, i + 1) } else { (i - 1, i) };
    let right = n.remove(b);
    match (&mut n.children[a], right) {
        (Node::Leaf(left), Node::Leaf(mut right)) => {
            left.append(&mut right);
            let tail = (left.scores.len() > CAP).then(|| left.split_off(left.scores.len() / 2));
            left.scores.shrink_to(CAP);
            left.slots.shrink_to(CAP);
            if let Some(tail) = tail {
                n.refresh(a);
                n.insert(b, Node::Leaf(Box::new(tail)));
                return;
            }
        }
        (Node::Inner(left), Node::Inner(mut right)) => {
            for child in right.children.drain(..) {
                left.push(child);
            }
            if left.children.len() > CAP {
                let half = left.children.len() / 2;
                let mut tail = Inner::with_capacity();
                for child in left.children.drain(half..) {
                    tail.push(child);
                }
                left.counts.truncate(half);
                left.lasts.truncate(half);
                n.refresh(a);
                n.insert(b, Node::Inner(Box::new(tail)));
                return;
            }
        }
        // Siblings are always at the same depth.
        (_, other) => {
            n.insert(b, other);
            return;
        }
    }
    n.refresh(a);
}

/// A counted B+ tree of items, ordered by the caller.
#[derive(Debug)]
pub struct OrderTree {
    root: Node,
    len: usize,
}

impl Default for OrderTree {
    fn default() -> Self {
        OrderTree { root: Node::empty(), len: 0 }
    }
}

impl OrderTree {
    pub fn len(&self) -> usize {
        self.len
    }

    /// The item at `rank < len`.
    pub fn get(&self, mut rank: usize) -> Item {
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(l) => return l.item(rank),
                Node::Inner(n) => {
                    let (i, r) = n.child_at(rank);
                    rank = r;
                    node = &n.children[i];
                }
            }
        }
    }

    /// How many leading items satisfy `before`, which must hold for a prefix of the order and for nothing
    /// after it (the rank where an item bounded by `before` would go).
    pub fn partition_point(&self, before: impl Fn(Item) -> bool) -> usize {
        let mut node = &self.root;
        let mut base = 0;
        loop {
            match node {
                Node::Leaf(l) => {
                    let (mut lo, mut hi) = (0, l.scores.len());
                    while lo < hi {
                        let mid = (lo + hi) / 2;
                        if before(l.item(mid)) {
                            lo = mid + 1;
                        } else {
                            hi = mid;
                        }
                    }
                    return base + lo;
                }
                Node::Inner(n) => {
                    let i = n.lasts.partition_point(|&it| before(it));
                    base += n.counts[..i].iter().sum::<usize>();
                    if i == n.children.len() {
                        return base;
                    }
                    node = &n.children[i];
                }
            }
        }
    }

    /// Inserts `item` at `rank <= len`.
    pub fn insert(&mut self, rank: usize, item: Item) {
        if let Some(right) = self.root.insert(rank, item) {
            let left = std::mem::replace(&mut self.root, Node::empty());
            let mut root = Inner::with_capacity();
            root.push(left);
            root.push(right);
            self.root = Node::Inner(Box::new(root));
        }
        self.len += 1;
    }

    /// Removes and returns the item at `rank < len`.
    pub fn remove(&mut self, rank: usize) -> Item {
        let item = self.root.remove(rank);
        self.len -= 1;
        // A root with one child is replaced by it; an empty one by an empty leaf.
        loop {
            match &mut self.root {
                Node::Inner(n) if n.children.len() == 1 => {
                    let child = n.remove(0);
                    self.root = child;
                }
                Node::Inner(n) if n.children.is_empty() => self.root = Node::empty(),
                _ => break,
            }
        }
        item
    }

    /// Replaces the item at `rank < len` (its place in the order must not change).
    pub fn set(&mut self, rank: usize, item: Item) {
        self.root.set(rank, item);
    }

    /// Calls `f` on the items from rank `from` on, ascending, until it returns false.
    pub fn for_each_up(&self, from: usize, mut f: impl FnMut(Item) -> bool) {
        if from < self.len {
            self.root.walk_up(from, &mut f);
        }
    }

    /// Calls `f` on the items from rank `from` down to rank 0, until it returns false.
    pub fn for_each_down(&self, from: usize, mut f: impl FnMut(Item) -> bool) {
        if from < self.len {
            self.root.walk_down(self.len - 1 - from, &mut f);
        }
    }

    /// Depth of the tree (tests).
    #[cfg(test)]
    fn depth(&self) -> usize {
        let mut d = 1;
        let mut node = &self.root;
        while let Node::Inner(n) = node {
            d += 1;
            node = &n.children[0];
        }
        d
    }

    /// Checks every node's counts and last items, and that all leaves are at one depth (tests).
    #[cfg(test)]
    fn check(&self) {
        fn walk(node: &Node, depth: usize, leaf_depth: &mut Option<usize>) -> usize {
            match node {
                Node::Leaf(l) => {
                    assert!(l.scores.len() <= CAP && l.scores.capacity() <= CAP.max(4));
                    assert_eq!(*leaf_depth.get_or_insert(depth), depth);
                    l.scores.len()
                }
                Node::Inner(n) => {
                    assert!(n.children.len() <= CAP);
                    let mut total = 0;
                    for (i, c) in n.children.iter().enumerate() {
                        let count = walk(c, depth + 1, leaf_depth);
                        assert!(count > 0);
                        assert_eq!(count, n.counts[i]);
                        assert_eq!(c.last(), n.lasts[i]);
                        total += count;
                    }
                    total
                }
            }
        }
        assert_eq!(walk(&self.root, 0, &mut None), self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(t: &OrderTree) -> Vec<Item> {
        let mut v = Vec::new();
        t.for_each_up(0, |it| {
            v.push(it);
            true
        });
        v
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(usize),
        Remove(usize),
        Set(usize),
        Append(u16),
    }

    proptest! {
        /// Positional inserts, removals and updates agree with a `Vec`, and the tree stays well formed.
        #[test]
        fn matches_a_vec(ops in proptest::collection::vec(prop_oneof![
            3 => any::<usize>().prop_map(Op::Insert),
            2 => any::<usize>().prop_map(Op::Remove),
            1 => any::<usize>().prop_map(Op::Set),
            1 => (1u16..300).prop_map(Op::Append),
        ], 1..300)) {
            let mut t = OrderTree::default();
            let mut model: Vec<Item> = Vec::new();
            let mut next = 0u32;
            for op in ops {
                let mut fresh = || { next += 1; Item { score: f64::from(next), slot: next } };
                match op {
                    Op::Insert(r) => { let r = r % (model.len() + 1); let it = fresh(); t.insert(r, it); model.insert(r, it); }
                    Op::Remove(r) if !model.is_empty() => { let r = r % model.len(); prop_assert_eq!(t.remove(r), model.remove(r)); }
                    Op::Set(r) if !model.is_empty() => { let r = r % model.len(); let it = fresh(); t.set(r, it); model[r] = it; }
                    Op::Append(n) => for _ in 0..n { let it = fresh(); t.insert(model.len(), it); model.push(it); },
                    _ => {}
                }
                t.check();
                prop_assert_eq!(t.len(), model.len());
            }
            prop_assert_eq!(all(&t), model.clone());
            for (r, it) in model.iter().enumerate() {
                prop_assert_eq!(t.get(r), *it);
                let mut first = None;
                t.for_each_down(r, |x| { first = Some(x); false });
                prop_assert_eq!(first, Some(*it));
            }
        }

        /// `partition_point` is the rank of the first item failing a monotone predicate.
        #[test]
        fn partition_point_finds_ranks(n in 0usize..3000, probe in 0u32..3100) {
            let mut t = OrderTree::default();
            for i in 0..n {
                t.insert(i, Item { score: i as f64, slot: i as u32 });
            }
            let want = (probe as usize).min(n);
            prop_assert_eq!(t.partition_point(|it| it.slot < probe), want);
        }
    }

    #[test]
    fn loading_in_order_fills_leaves_and_stays_shallow() {
        let mut t = OrderTree::default();
        for i in 0..1_000_000u32 {
            t.insert(i as usize, Item { score: f64::from(i), slot: i });
        }
        t.check();
        assert_eq!(t.depth(), 4, "64^3 < 1M <= 64^4");
        // Draining from the front keeps it well formed and shrinks it.
        for _ in 0..999_000 {
            t.remove(0);
        }
        t.check();
        assert!(t.depth() <= 2);
        assert_eq!(t.get(0).slot, 999_000);
    }
}
