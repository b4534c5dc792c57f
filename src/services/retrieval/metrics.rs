//! Search metrics: latency by mode and backend, results returned, and the empty-result rate
//! (`search_empty_total / search_requests_total`).

use std::time::Duration;

use super::SearchMode;

pub(super) fn search_done(mode: SearchMode, backend: &'static str, took: Duration, results: usize) {
    let mode = mode.as_str();
    metrics::histogram!("search_duration_seconds", "mode" => mode, "backend" => backend)
        .record(took.as_secs_f64());
    metrics::histogram!("search_results", "mode" => mode).record(results as f64);
    metrics::counter!("search_requests_total", "mode" => mode).increment(1);
    if results == 0 {
        metrics::counter!("search_empty_total", "mode" => mode).increment(1);
    }
}
