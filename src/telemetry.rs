//! Logs and metrics for the whole process: tracing to stdout (JSON or pretty), and one
//! Prometheus recorder rendered on `/metrics`, with process metrics read from /proc.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogFormat, Settings};

/// Installs the log subscriber. `RUST_LOG` overrides the level that `DEBUG` chooses.
pub fn init_logging(settings: &Settings) {
    let default_level = if settings.debug {
        "debug,hyper=info,h2=info"
    } else {
        "info"
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_writer(std::io::stdout);
    // A second init (tests build many apps in one process) is harmless: the first one wins.
    let _ = match settings.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.pretty().try_init(),
    };
}

static METRICS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Buckets for latencies from sub-millisecond (ragd's own overhead) to minutes (LLM calls).
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0,
];

/// Buckets for `llm_output_tokens_per_second`: a CPU model's few to a hosted one's hundreds.
const TOKEN_RATE_BUCKETS: &[f64] = &[
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
];

/// Buckets for counts: `embedding_batch_size`, `search_results`.
const COUNT_BUCKETS: &[f64] = &[
    0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 250.0, 500.0, 1000.0,
];

/// Installs the process-wide metrics recorder, once. Later calls reuse it. Every histogram
/// gets buckets: without them the exporter writes a summary, whose quantiles cover a sliding
/// window only and cannot be aggregated across replicas.
pub fn init_metrics() {
    METRICS.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .ok()?
            .set_buckets_for_metric(
                Matcher::Full("llm_output_tokens_per_second".into()),
                TOKEN_RATE_BUCKETS,
            )
            .ok()?
            .set_buckets_for_metric(Matcher::Full("embedding_batch_size".into()), COUNT_BUCKETS)
            .ok()?
            .set_buckets_for_metric(Matcher::Full("search_results".into()), COUNT_BUCKETS)
            .ok()?;
        match builder.install_recorder() {
            Ok(handle) => Some(handle),
            Err(err) => {
                tracing::warn!(error = %err, "metrics recorder not installed");
                None
            }
        }
    });
}

/// The Prometheus text exposition of every metric, process metrics included.
pub fn render_metrics() -> String {
    init_metrics();
    record_process_metrics();
    METRICS
        .get()
        .and_then(Option::as_ref)
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// Resident memory, CPU time, open files and start time, in Prometheus' standard names.
fn record_process_metrics() {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name, which is parenthesised and may contain spaces.
    let Some(fields) = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split(' ').collect::<Vec<_>>())
    else {
        return;
    };
    let field = |index: usize| fields.get(index).and_then(|v| v.parse::<f64>().ok());
    let ticks_per_second = 100.0; // USER_HZ on every Linux platform ragd targets
    let page_size = 4096.0;
    if let (Some(utime), Some(stime)) = (field(11), field(12)) {
        metrics::gauge!("process_cpu_seconds_total").set((utime + stime) / ticks_per_second);
    }
    if let Some(rss_pages) = field(21) {
        metrics::gauge!("process_resident_memory_bytes").set(rss_pages * page_size);
    }
    if let Some(vsize) = field(20) {
        metrics::gauge!("process_virtual_memory_bytes").set(vsize);
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("process_open_fds").set(entries.count() as f64);
    }
    if let (Some(start_ticks), Ok(uptime)) = (field(19), std::fs::read_to_string("/proc/uptime")) {
        let boot_uptime: f64 = uptime
            .split(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        metrics::gauge!("process_start_time_seconds")
            .set(now - boot_uptime + start_ticks / ticks_per_second);
    }
}
