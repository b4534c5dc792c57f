//! Ingestion metrics: queue depth by state, documents and chunks processed (rates come from
//! the counters), extraction and embedding time per document, failures by reason.

use std::time::Duration;

use crate::store::QueueDepth;

pub(super) fn queue_depth(depth: QueueDepth) {
    for (state, count) in [
        ("pending", depth.pending),
        ("running", depth.running),
        ("done", depth.done),
        ("failed", depth.failed),
    ] {
        metrics::gauge!("ingest_queue_depth", "state" => state).set(count as f64);
    }
}

pub(super) fn document_ready(chunks: usize, extraction: Duration, embedding: Duration) {
    metrics::counter!("ingest_documents_total", "outcome" => "ready").increment(1);
    metrics::counter!("ingest_chunks_total").increment(chunks as u64);
    metrics::histogram!("ingest_extraction_seconds").record(extraction.as_secs_f64());
    metrics::histogram!("ingest_embedding_seconds").record(embedding.as_secs_f64());
}

/// One failed attempt; `final_attempt` when the document is now `failed`.
pub(super) fn attempt_failed(reason: &'static str, final_attempt: bool) {
    metrics::counter!("ingest_failures_total", "reason" => reason).increment(1);
    if final_attempt {
        metrics::counter!("ingest_documents_total", "outcome" => "failed").increment(1);
    }
}
