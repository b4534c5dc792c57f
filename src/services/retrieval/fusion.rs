//! Reciprocal rank fusion: merging ranked lists whose scores are not comparable (cosine
//! similarity, BM25) by rank alone. A chunk scores the sum of `weight / (k + rank)` over the
//! lists it appears in (rank from 1), so agreement between the lists lifts it.

use std::collections::HashMap;

use uuid::Uuid;

use crate::store::SearchHit;

/// The constant from Cormack, Clarke and Büttcher (2009): damps the weight of the very top
/// ranks so that one list cannot dominate.
pub const RRF_K: f64 = 60.0;

/// The vector ranking's weight in hybrid search with the built-in local embedder; see
/// [`vector_weight`].
const LOCAL_EMBEDDER_VECTOR_WEIGHT: f64 = 0.3;

/// How much the vector ranking counts in hybrid search, against the keyword ranking's 1.
///
/// The built-in local embedder is lexical too (hashed words and character n-grams): a weaker
/// ranking of the evidence BM25 already weighs. On the Rust book evaluation
/// (`scripts/eval-retrieval.sh`, docs/benchmarks.md) vector weights of 1, 0.5, 0.3, 0.2 and 0.1
/// gave MRR 0.862, 0.877, 0.903, 0.911, 0.882 and hit@5 0.95, 0.97, 0.97, 0.95, 0.95; at 0.3
/// hybrid beats keyword alone (0.887, 0.95) on every measure. A real embedding model brings
/// meaning that BM25 lacks, so it keeps an equal weight.
pub fn vector_weight(embedding_model: &str) -> f64 {
    if embedding_model == crate::services::embeddings::local::MODEL {
        LOCAL_EMBEDDER_VECTOR_WEIGHT
    } else {
        1.0
    }
}

/// The fused ranking of `lists` (each with its weight), best first, at most `limit` long;
/// each hit's score becomes its fused score.
pub fn reciprocal_rank_fusion(lists: Vec<(Vec<SearchHit>, f64)>, limit: usize) -> Vec<SearchHit> {
    let mut fused: Vec<SearchHit> = Vec::new();
    let mut position: HashMap<(Uuid, i32), usize> = HashMap::new();
    for (list, weight) in lists {
        for (rank, mut hit) in (1_u32..).zip(list) {
            let contribution = weight / (RRF_K + f64::from(rank));
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
            vec![
                (vec![hit(1), hit(2), hit(3)], 1.0),
                (vec![hit(3), hit(4), hit(2)], 1.0),
            ],
            10,
        );
        // 2: 1/62 + 1/63, 3: 1/63 + 1/61 are both in the two lists; 1 and 4 only once.
        assert_eq!(order(&fused), [3, 2, 1, 4]);
        let expected = 1.0 / 63.0 + 1.0 / 61.0;
        assert!((fused[0].score - expected).abs() < 1e-12);
    }

    #[test]
    fn limit_and_empty_lists() {
        assert!(reciprocal_rank_fusion(vec![(vec![], 1.0), (vec![], 1.0)], 5).is_empty());
        let fused = reciprocal_rank_fusion(vec![(vec![hit(1), hit(2)], 1.0), (vec![], 1.0)], 1);
        assert_eq!(order(&fused), [1]);
    }

    #[test]
    fn a_lighter_list_counts_less() {
        // Equal weights: 1 (first in the first list) beats 2 (first in the second) by order.
        let lists = |weight| vec![(vec![hit(1), hit(3)], weight), (vec![hit(2), hit(3)], 1.0)];
        assert_eq!(order(&reciprocal_rank_fusion(lists(1.0), 10)), [3, 1, 2]);
        // At 0.3 the first list's top hit falls below the second list's.
        let fused = reciprocal_rank_fusion(lists(0.3), 10);
        assert_eq!(order(&fused), [3, 2, 1]);
        assert!((fused[2].score - 0.3 / 61.0).abs() < 1e-12);
    }

    #[test]
    fn only_the_local_embedder_gets_a_lighter_vector_weight() {
        assert_eq!(
            vector_weight(crate::services::embeddings::local::MODEL),
            0.3
        );
        assert_eq!(vector_weight("text-embedding-3-small"), 1.0);
    }
}
