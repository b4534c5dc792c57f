//! Keeping the best few of a scan's scored chunks.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// A chunk with its score, ordered by score, then lower key first (a total order, so that
/// runs are repeatable).
#[derive(Debug, Clone, Copy)]
pub struct Scored {
    pub score: f64,
    /// Identifies the chunk to the scan that scored it, in the order that breaks ties.
    pub key: u64,
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(other.key.cmp(&self.key))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scored {}

/// The best `count` chunks offered so far, as a min-heap: its weakest is the floor a new one
/// must beat, one comparison for most of a scan's rows.
#[derive(Debug)]
pub struct Best {
    count: usize,
    kept: BinaryHeap<Reverse<Scored>>,
}

impl Best {
    pub fn new(count: usize) -> Self {
        Self {
            count,
            kept: BinaryHeap::with_capacity(count + 1),
        }
    }

    /// The score below which an offer is refused (until `count` are kept: none).
    pub fn floor(&self) -> f64 {
        match self.kept.peek() {
            Some(Reverse(weakest)) if self.kept.len() == self.count => weakest.score,
            _ => f64::NEG_INFINITY,
        }
    }

    /// Keeps `candidate` if it is among the best `count` so far.
    pub fn offer(&mut self, candidate: Scored) {
        if self.kept.len() < self.count {
            self.kept.push(Reverse(candidate));
        } else if self
            .kept
            .peek()
            .is_some_and(|Reverse(weakest)| candidate > *weakest)
        {
            self.kept.pop();
            self.kept.push(Reverse(candidate));
        }
    }

    /// Adds what another part of the same scan kept.
    pub fn merge(&mut self, other: Self) {
        for Reverse(candidate) in other.kept {
            self.offer(candidate);
        }
    }

    /// The kept chunks, best first.
    pub fn into_ranked(self) -> Vec<Scored> {
        let mut ranked: Vec<Scored> = self.kept.into_iter().map(|Reverse(s)| s).collect();
        ranked.sort_by(|a, b| b.cmp(a));
        ranked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(score: f64, key: u64) -> Scored {
        Scored { score, key }
    }

    #[test]
    fn the_best_count_are_kept_best_first_equal_scores_by_lower_key() {
        let mut best = Best::new(3);
        assert_eq!(best.floor(), f64::NEG_INFINITY);
        for (score, id) in [(0.5, 1), (0.9, 2), (0.1, 3), (0.5, 0), (0.7, 4)] {
            best.offer(scored(score, id));
        }
        assert_eq!(best.floor(), 0.5);
        let mut other = Best::new(3);
        other.offer(scored(0.8, 5));
        best.merge(other);
        let keys: Vec<u64> = best.into_ranked().iter().map(|s| s.key).collect();
        assert_eq!(keys, [2, 5, 4]);
        assert!(Best::new(0).into_ranked().is_empty());
    }
}
