//! The tail of the raft log kept in memory, decoded: replication and apply
//! read recent entries from here instead of decoding them from sled once
//! per follower. Entries stay until they are durable and the cache is over
//! its byte budget; so every entry not yet on disk is always here.
//!
//! Invariant: the cache holds a contiguous suffix of the log, `first..=last`,
//! and every index below `first` is in sled.

use std::collections::VecDeque;

#[derive(Debug)]
pub struct LogCache<T> {
    /// Index of `entries[0]`.
    first: u64,
    entries: VecDeque<(T, usize)>,
    bytes: usize,
    bytes_max: usize,
    /// Entries with index <= this are durable in sled.
    durable_upto: u64,
}

impl<T: Clone> LogCache<T> {
    pub fn new(bytes_max: usize) -> Self {
        Self {
            first: 0,
            entries: VecDeque::new(),
            bytes: 0,
            bytes_max,
            durable_upto: 0,
        }
    }

    /// The last cached index, if any.
    pub fn last_index(&self) -> Option<u64> {
        (!self.entries.is_empty()).then(|| self.first + self.entries.len() as u64 - 1)
    }

    /// The first cached index, if any.
    pub fn first_index(&self) -> Option<u64> {
        (!self.entries.is_empty()).then_some(self.first)
    }

    pub fn last(&self) -> Option<&T> {
        self.entries.back().map(|(e, _)| e)
    }

    /// Appends entries starting at `index`, which must follow the cached
    /// suffix (or start a new one when the cache is empty).
    pub fn append(&mut self, index: u64, entry: T, bytes: usize) {
        match self.last_index() {
            Some(last) => assert_eq!(index, last + 1, "log cache append leaves a hole"),
            None => self.first = index,
        }
        self.entries.push_back((entry, bytes));
        self.bytes += bytes;
        self.evict();
    }

    /// Forgets entries with index >= `from`.
    pub fn truncate_from(&mut self, from: u64) {
        while self.last_index().is_some_and(|l| l >= from) {
            if let Some((_, b)) = self.entries.pop_back() {
                self.bytes -= b;
            }
        }
        self.durable_upto = self.durable_upto.min(from.saturating_sub(1));
    }

    /// Forgets entries with index <= `upto`.
    pub fn purge_upto(&mut self, upto: u64) {
        while self.first_index().is_some_and(|f| f <= upto) {
            self.pop_front();
        }
    }

    /// Records that entries up to `index` are durable, then evicts.
    pub fn mark_durable(&mut self, index: u64) {
        self.durable_upto = self.durable_upto.max(index);
        self.evict();
    }

    /// Cached entries in `start..end`, and the index below which the caller
    /// must read from disk instead (`start` if nothing is cached below).
    pub fn range(&self, start: u64, end: u64) -> (Vec<T>, u64) {
        let Some(last) = self.last_index() else {
            return (Vec::new(), end);
        };
        let from = start.max(self.first);
        let to = end.min(last + 1);
        let found = (from..to)
            .map(|i| self.entries[(i - self.first) as usize].0.clone())
            .collect();
        (found, from.min(end))
    }

    fn pop_front(&mut self) {
        if let Some((_, b)) = self.entries.pop_front() {
            self.bytes -= b;
            self.first += 1;
        }
    }

    /// Drops the oldest durable entries while over budget; never one that
    /// is not yet durable.
    fn evict(&mut self) {
        while self.bytes > self.bytes_max
            && self.first_index().is_some_and(|f| f <= self.durable_upto)
        {
            self.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(bytes_max: usize) -> LogCache<u64> {
        LogCache::new(bytes_max)
    }

    #[test]
    fn only_durable_entries_are_evicted() {
        let mut c = cache(30);
        for i in 1..=5 {
            c.append(i, i, 10);
        }
        // Over budget, but nothing durable: all five stay.
        assert_eq!(c.first_index(), Some(1));
        c.mark_durable(3);
        assert_eq!(
            c.first_index(),
            Some(3),
            "evicts 1 and 2 to get to 30 bytes"
        );
        c.mark_durable(5);
        assert_eq!(c.first_index(), Some(3));
        assert_eq!(c.last_index(), Some(5));
    }

    #[test]
    fn range_splits_between_cache_and_disk() {
        let mut c = cache(1000);
        for i in 10..=14 {
            c.append(i, i, 1);
        }
        assert_eq!(c.range(12, 20), (vec![12, 13, 14], 12));
        assert_eq!(c.range(5, 12), (vec![10, 11], 10), "5..10 comes from disk");
        assert_eq!(c.range(1, 5), (vec![], 5), "all from disk");
        let empty = cache(10);
        assert_eq!(empty.range(1, 5), (vec![], 5));
    }

    #[test]
    fn truncate_and_purge_keep_a_contiguous_suffix() {
        let mut c = cache(1000);
        for i in 1..=6 {
            c.append(i, i, 1);
        }
        c.mark_durable(6);
        c.truncate_from(5);
        assert_eq!(c.last_index(), Some(4));
        c.append(5, 50, 1);
        assert_eq!(c.range(4, 6).0, vec![4, 50]);
        c.purge_upto(2);
        assert_eq!(c.first_index(), Some(3));
        c.purge_upto(10);
        assert_eq!(c.first_index(), None);
        c.append(11, 11, 1);
        assert_eq!(c.first_index(), Some(11));
    }

    #[test]
    #[should_panic(expected = "hole")]
    fn a_hole_is_a_bug() {
        let mut c = cache(10);
        c.append(1, 1, 1);
        c.append(3, 3, 1);
    }
}
