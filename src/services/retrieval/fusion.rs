//! Reciprocal rank fusion: merging ranked lists whose scores are not comparable (cosine
//! similarity, BM25) by rank alone. A chunk scores the sum of `1 / (k + rank)` over the lists
//! it appears in (rank from 1), so agreement between the lists lifts it.

use std::collections::HashMap;

use uuid::Uuid;

use crate::store::SearchHit;

/// The constant from Cormack, Clarke and Büttcher (2009): damps the weight of the very top
/// ranks so that one list cannot dominate.
pub const RRF_K: f64 = 60.0;

/// The fused ranking of `lists`, best first, at most `limit` long; each hit's score becomes
/// its fused score.
pub fn reciprocal_rank_fusion(lists: Vec<Vec<SearchHit>>, limit: usize) -> Vec<SearchHit> {
    let mut fused: Vec<SearchHit> = Vec::new();
    let mut position: HashMap<(Uuid, i32), usize> = HashMap::new();
    for list in lists {
        for (rank, mut hit) in (1_u32..).zip(list) {
            let contribution = 1.0 / (RRF_K + f64::from(rank));
            match position.get(&(hit.document_id, hit.chunk_index)) {
                Some(&at) => fused[at].score += contribution,
                None => {
                    position.insert((hit.document_id, hit.chunk_index), fused.len());
                    hit.score = contribution;
                    fused.push(hit);
                }
            }
        }
    }
    // Stable: equal scores keep first-seen order (the earlier list's ranking).
    fused.sort_by(|a, b| b.score.total_cmp(&a.score));
    fused.truncate(limit);
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(chunk_index: i32) -> SearchHit {
        SearchHit {
            document_id: Uuid::nil(),
            filename: "f.txt".into(),
            chunk_index,
            text: format!("chunk {chunk_index}"),
            page: None,
            char_start: 0,
            char_end: 1,
            score: 0.0,
        }
    }

    fn order(hits: &[SearchHit]) -> Vec<i32> {
        hits.iter().map(|h| h.chunk_index).collect()
    }

    #[test]
    fn agreement_between_lists_wins() {
        let fused = reciprocal_rank_fusion(
            vec![vec![hit(1), hit(2), hit(3)], vec![hit(3), hit(4), hit(2)]],
            10,
        );
        // 2: 1/62 + 1/63, 3: 1/63 + 1/61 are both in the two lists; 1 and 4 only once.
        assert_eq!(order(&fused), [3, 2, 1, 4]);
        let expected = 1.0 / 63.0 + 1.0 / 61.0;
        assert!((fused[0].score - expected).abs() < 1e-12);
    }

    #[test]
    fn limit_and_empty_lists() {
        assert!(reciprocal_rank_fusion(vec![vec![], vec![]], 5).is_empty());
        let fused = reciprocal_rank_fusion(vec![vec![hit(1), hit(2)], vec![]], 1);
        assert_eq!(order(&fused), [1]);
    }
}
