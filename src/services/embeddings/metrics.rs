//! Embedding metrics: cache hits and misses (the hit ratio is hits / (hits + misses)),
//! upstream calls, their batch sizes and failures.

use super::EmbeddingError;

pub(super) fn cache_lookups(hits: usize, misses: usize) {
    metrics::counter!("embedding_cache_hits_total").increment(hits as u64);
    metrics::counter!("embedding_cache_misses_total").increment(misses as u64);
}

pub(super) fn upstream_call(batch_size: usize) {
    metrics::counter!("embedding_calls_total").increment(1);
    metrics::histogram!("embedding_batch_size").record(batch_size as f64);
}

pub(super) fn upstream_failure(err: &EmbeddingError) {
    metrics::counter!("embedding_failures_total", "kind" => err.kind()).increment(1);
}
