//! `ragd ingest PATH... --user EMAIL [--recursive]`: bulk loading through the same pipeline as
//! uploads. Files are streamed into the uploads directory and queued, this process runs the
//! ingestion workers (sharing the queue with any running server), and a progress bar shows
//! files, chunks and throughput until every document is ready or failed.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use uuid::Uuid;

use crate::app::AppState;
use crate::config::Settings;
use crate::store::DocumentStatus;

/// How often the progress bar reads the documents' states.
const REFRESH: Duration = Duration::from_millis(250);

/// What one run did; failures are listed with their reason.
#[derive(Debug, Default)]
pub struct IngestReport {
    pub ready: usize,
    pub duplicates: usize,
    pub chunks: u64,
    pub bytes: u64,
    /// (path, reason) for every file that was refused or failed.
    pub failures: Vec<(PathBuf, String)>,
}

/// Runs the command; `Err` only for what stops the whole run (configuration, database,
/// unknown user). Per-file problems land in the report.
pub async fn run(
    settings: Settings,
    paths: &[PathBuf],
    user_email: &str,
    recursive: bool,
) -> Result<IngestReport, String> {
    let state = AppState::build(settings).await.map_err(|e| e.to_string())?;
    let email = user_email.trim().to_lowercase();
    let user = state
        .store
        .user_by_email(&email)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user {email}; create it first (POST /api/v1/auth/register)"))?;

    let mut report = IngestReport::default();
    let files = collect_files(paths, recursive, &mut report.failures);
    let workers = state.ingest.start_workers();
    let bar = progress_bar(files.len() as u64);
    let started = Instant::now();

    let mut pending: HashMap<Uuid, PathBuf> = HashMap::new();
    for path in files {
        match queue_file(&state, user.id, &path).await {
            Ok((id, true, size)) => {
                report.bytes += size;
                pending.insert(id, path);
            }
            Ok((_, false, _)) => {
                report.duplicates += 1;
                bar.inc(1);
            }
            Err(reason) => {
                report.failures.push((path, reason));
                bar.inc(1);
            }
        }
    }

    while !pending.is_empty() {
        tokio::time::sleep(REFRESH).await;
        let mut settled = Vec::new();
        for (id, path) in &pending {
            let Some(document) = state
                .store
                .document(user.id, *id)
                .await
                .map_err(|e| e.to_string())?
            else {
                settled.push((
                    *id,
                    Some((path.clone(), "deleted while ingesting".to_owned())),
                ));
                continue;
            };
            match document.status {
                DocumentStatus::Ready => {
                    report.ready += 1;
                    report.chunks += u64::try_from(document.chunk_count).unwrap_or(0);
                    settled.push((*id, None));
                }
                DocumentStatus::Failed => {
                    let reason = document.error.unwrap_or_else(|| "failed".into());
                    settled.push((*id, Some((path.clone(), reason))));
                }
                DocumentStatus::Queued | DocumentStatus::Processing => {}
            }
        }
        for (id, failure) in settled {
            pending.remove(&id);
            report.failures.extend(failure);
            bar.inc(1);
        }
        let seconds = started.elapsed().as_secs_f64().max(0.001);
        bar.set_message(format!(
            "{} chunks, {:.1} chunks/s, {:.2} MB/s",
            report.chunks,
            report.chunks as f64 / seconds,
            report.bytes as f64 / 1_000_000.0 / seconds
        ));
    }
    bar.finish();
    workers.shutdown().await;
    state.store.close().await;
    Ok(report)
}

/// Writes the end-of-run summary, failures last.
pub fn write_summary(out: &mut impl Write, report: &IngestReport) -> std::io::Result<()> {
    writeln!(
        out,
        "{} ready ({} chunks, {:.1} MB), {} already present, {} failed",
        report.ready,
        report.chunks,
        report.bytes as f64 / 1_000_000.0,
        report.duplicates,
        report.failures.len()
    )?;
    for (path, reason) in &report.failures {
        writeln!(out, "  failed: {}: {reason}", path.display())?;
    }
    Ok(())
}

/// Streams one file into the uploads directory and queues it: (document id, newly created,
/// size in bytes).
async fn queue_file(
    state: &AppState,
    user_id: Uuid,
    path: &Path,
) -> Result<(Uuid, bool, u64), String> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| e.to_string())?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let body = tokio_util::io::ReaderStream::new(file);
    let received = state
        .ingest
        .receive(&name, body)
        .await
        .map_err(|e| e.to_string())?;
    let metadata = serde_json::json!({ "source_path": path.display().to_string() });
    let uploaded = state
        .ingest
        .register(user_id, received, metadata)
        .await
        .map_err(|e| e.to_string())?;
    let size = u64::try_from(uploaded.document.size_bytes).unwrap_or(0);
    Ok((uploaded.document.id, uploaded.created, size))
}

/// The files named by `paths`: files as given, directories' files (all levels with
/// `recursive`, else only the top one). Unreadable paths are reported, not fatal.
fn collect_files(
    paths: &[PathBuf],
    recursive: bool,
    failures: &mut Vec<(PathBuf, String)>,
) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut directories: Vec<(PathBuf, bool)> = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => directories.push((path.clone(), true)),
            Ok(_) => files.push(path.clone()),
            Err(err) => failures.push((path.clone(), err.to_string())),
        }
    }
    while let Some((directory, top)) = directories.pop() {
        if !top && !recursive {
            continue;
        }
        let entries = match std::fs::read_dir(&directory) {
            Ok(entries) => entries,
            Err(err) => {
                failures.push((directory, err.to_string()));
                continue;
            }
        };
        let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        for child in children {
            match std::fs::symlink_metadata(&child) {
                Ok(meta) if meta.is_dir() => directories.push((child, false)),
                Ok(meta) if meta.is_file() => files.push(child),
                // Symlinks and special files are skipped: a loop or a FIFO must not hang a bulk load.
                Ok(_) => {}
                Err(err) => failures.push((child, err.to_string())),
            }
        }
    }
    files
}

fn progress_bar(files: u64) -> ProgressBar {
    let bar = ProgressBar::new(files);
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} files  {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(REFRESH);
    bar
}
