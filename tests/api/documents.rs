//! The documents HTTP API: multipart upload, list with cursor pages, show, delete, reindex,
//! over real sockets with the real workers and the local embedder.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    Backend, TestApp, app_on, assert_error, signed_up, spawn_app, spawn_app_with,
};

const BOUNDARY: &str = "ragd-test-boundary-7MA4YWxkTrZu0gW";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

/// One part of a multipart form: a field name, an optional filename, the bytes.
struct Part<'a> {
    name: &'a str,
    filename: Option<&'a str>,
    bytes: &'a [u8],
}

fn file_part<'a>(filename: &'a str, bytes: &'a [u8]) -> Part<'a> {
    Part {
        name: "file",
        filename: Some(filename),
        bytes,
    }
}

fn text_part<'a>(name: &'a str, text: &'a str) -> Part<'a> {
    Part {
        name,
        filename: None,
        bytes: text.as_bytes(),
    }
}

/// A `multipart/form-data` body, written out by hand so that a test controls every byte
/// (filenames with `..`, odd fields).
fn form(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let disposition = match part.filename {
            Some(filename) => format!(
                "Content-Disposition: form-data; name=\"{}\"; filename=\"{filename}\"\r\n\
                 Content-Type: application/octet-stream\r\n",
                part.name
            ),
            None => format!("Content-Disposition: form-data; name=\"{}\"\r\n", part.name),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(part.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn content_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

impl TestApp {
    async fn post_form(&self, token: &str, parts: &[Part<'_>]) -> reqwest::Response {
        self.post_body(token, form(parts).into()).await
    }

    /// Uploads `bytes` as `filename` and returns the 202 body.
    async fn upload_ok(&self, token: &str, filename: &str, bytes: &[u8]) -> Value {
        let response = self.post_form(token, &[file_part(filename, bytes)]).await;
        assert_eq!(response.status(), 202, "upload {filename}");
        response.json().await.unwrap()
    }

    async fn document(&self, token: &str, id: &str) -> reqwest::Response {
        self.authed(
            reqwest::Method::GET,
            &format!("/api/v1/documents/{id}"),
            token,
        )
        .await
    }

    async fn list(&self, token: &str, query: &str) -> reqwest::Response {
        self.authed(
            reqwest::Method::GET,
            &format!("/api/v1/documents{query}"),
            token,
        )
        .await
    }

    /// Polls the document over HTTP (bounded) until the workers settle it.
    async fn settled(&self, token: &str, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let response = self.document(token, id).await;
            assert_eq!(response.status(), 200);
            let document: Value = response.json().await.unwrap();
            if document["status"] == "ready" || document["status"] == "failed" {
                return document;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still {}",
                document["status"]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn stored_files(&self) -> Vec<String> {
        match std::fs::read_dir(self.state.settings.uploads_dir()) {
            Ok(entries) => entries
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    async fn post_body(&self, token: &str, body: reqwest::Body) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/documents/upload"))
            .bearer_auth(token)
            .header("content-type", content_type())
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Waits until no upload is left in the uploads directory; the list is empty too.
    async fn nothing_kept(&self, token: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !self.stored_files().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}",
                self.stored_files()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let list: Value = self.list(token, "").await.json().await.unwrap();
        assert_eq!(list["items"], json!([]));
    }
}

/// A distinct small text document (distinct bytes, so no deduplication).
fn note(n: usize) -> Vec<u8> {
    format!("Note number {n}: the heron stood in the reeds at the edge of the lake.\n").into_bytes()
}

crate::on_both_backends!(
    app = app_on;
    upload_is_processed_and_listed,
    pages_follow_the_cursor_and_filter_by_status,
    another_user_gets_404,
    delete_removes_everything,
);

async fn upload_is_processed_and_listed(app: TestApp) {
    let token = signed_up(&app, "ada@example.com").await;
    let bytes = fixture("sample.md");
    let response = app
        .post_form(
            &token,
            &[
                text_part("metadata", r#"{"team":"ops","tags":["a","b"]}"#),
                file_part("guide.md", &bytes),
            ],
        )
        .await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["filename"], "guide.md");
    assert_eq!(accepted["status"], "queued");
    assert!(accepted["message"].as_str().is_some_and(|m| !m.is_empty()));
    let id = accepted["document_id"].as_str().unwrap().to_owned();

    let document = app.settled(&token, &id).await;
    assert_eq!(document["status"], "ready", "{document}");
    assert_eq!(document["error"], Value::Null);
    assert!(document["chunk_count"].as_i64().unwrap() >= 1);
    assert_eq!(document["content_type"], "text/markdown");
    assert_eq!(document["size_bytes"], bytes.len());
    assert_eq!(document["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        document["metadata"],
        json!({"team": "ops", "tags": ["a", "b"]})
    );
    for field in ["created_at", "updated_at"] {
        assert!(document[field].is_string(), "{field} in {document}");
    }
    for internal in ["user_id", "storage_path"] {
        assert!(document.get(internal).is_none(), "{internal} is not shown");
    }

    let list: Value = app.list(&token, "").await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0], document);
    assert_eq!(list["next_cursor"], Value::Null);
}

async fn pages_follow_the_cursor_and_filter_by_status(app: TestApp) {
    let token = signed_up(&app, "ada@example.com").await;
    let mut uploaded = Vec::new();
    for n in 0..5 {
        let accepted = app
            .upload_ok(&token, &format!("note-{n}.txt"), &note(n))
            .await;
        uploaded.push(accepted["document_id"].as_str().unwrap().to_owned());
    }
    let failed = app
        .upload_ok(&token, "locked.pdf", &fixture("encrypted.pdf"))
        .await;
    let failed_id = failed["document_id"].as_str().unwrap().to_owned();
    uploaded.push(failed_id.clone());
    for id in &uploaded {
        app.settled(&token, id).await;
    }

    // Newest first, two at a time, until next_cursor is null.
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let response = app.list(&token, &query).await;
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|d| d["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let newest_first: Vec<String> = uploaded.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let ready: Value = app
        .list(&token, "?status=ready")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ready["items"].as_array().unwrap().len(), 5);
    let failed: Value = app
        .list(&token, "?status=failed&limit=100")
        .await
        .json()
        .await
        .unwrap();
    let items = failed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], failed_id.as_str());
    assert!(items[0]["error"].as_str().unwrap().contains("encrypted"));
    let queued: Value = app
        .list(&token, "?status=queued")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(queued["items"], json!([]));
}

async fn another_user_gets_404(app: TestApp) {
    let ada = signed_up(&app, "ada@example.com").await;
    let bob = signed_up(&app, "bob@example.com").await;
    let accepted = app.upload_ok(&ada, "a.txt", &fixture("sample.txt")).await;
    let id = accepted["document_id"].as_str().unwrap();
    app.settled(&ada, id).await;

    assert_error(app.document(&bob, id).await, 404, "not_found").await;
    let path = format!("/api/v1/documents/{id}");
    assert_error(
        app.authed(reqwest::Method::DELETE, &path, &bob).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.authed(reqwest::Method::POST, &format!("{path}/reindex"), &bob)
            .await,
        404,
        "not_found",
    )
    .await;
    let bobs: Value = app.list(&bob, "").await.json().await.unwrap();
    assert_eq!(bobs["items"], json!([]));

    // Bob's attempts changed nothing for Ada.
    let document = app.settled(&ada, id).await;
    assert_eq!(document["status"], "ready");
    // The same bytes from Bob are his own document, not Ada's.
    let his = app.upload_ok(&bob, "a.txt", &fixture("sample.txt")).await;
    assert_ne!(his["document_id"], id);
}

async fn delete_removes_everything(app: TestApp) {
    let token = signed_up(&app, "ada@example.com").await;
    let user = app.user_id(&token).await;
    let accepted = app.upload_ok(&token, "a.md", &fixture("sample.md")).await;
    let id = accepted["document_id"].as_str().unwrap().to_owned();
    app.settled(&token, &id).await;
    let uuid: Uuid = id.parse().unwrap();
    assert!(
        !app.store()
            .document_chunks(user, uuid)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(app.stored_files(), std::slice::from_ref(&id));

    let path = format!("/api/v1/documents/{id}");
    let deleted = app.authed(reqwest::Method::DELETE, &path, &token).await;
    assert_eq!(deleted.status(), 204);
    assert!(deleted.bytes().await.unwrap().is_empty());

    assert_error(app.document(&token, &id).await, 404, "not_found").await;
    assert!(
        app.store()
            .document_chunks(user, uuid)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(app.stored_files().is_empty(), "{:?}", app.stored_files());
    let list: Value = app.list(&token, "").await.json().await.unwrap();
    assert_eq!(list["items"], json!([]));
    assert_error(
        app.authed(reqwest::Method::DELETE, &path, &token).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn the_same_bytes_again_return_the_existing_document() {
    let app = spawn_app().await;
    let token = signed_up(&app, "ada@example.com").await;
    let first = app.upload_ok(&token, "a.txt", &fixture("sample.txt")).await;
    let id = first["document_id"].as_str().unwrap();
    app.settled(&token, id).await;
    let second = app
        .upload_ok(&token, "renamed.txt", &fixture("sample.txt"))
        .await;
    assert_eq!(second["document_id"], id);
    assert_eq!(second["filename"], "a.txt");
    assert_eq!(second["status"], "ready", "not processed a second time");
    assert_eq!(app.stored_files().len(), 1);
    let list: Value = app.list(&token, "").await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn reindex_queues_the_document_again_until_it_is_ready() {
    let app = spawn_app().await;
    let token = signed_up(&app, "ada@example.com").await;
    let accepted = app.upload_ok(&token, "a.md", &fixture("sample.md")).await;
    let id = accepted["document_id"].as_str().unwrap();
    let before = app.settled(&token, id).await;

    let response = app
        .authed(
            reqwest::Method::POST,
            &format!("/api/v1/documents/{id}/reindex"),
            &token,
        )
        .await;
    assert_eq!(response.status(), 202);
    let queued: Value = response.json().await.unwrap();
    assert_eq!(queued["id"], id);
    assert_eq!(queued["status"], "queued");

    let after = app.settled(&token, id).await;
    assert_eq!(after["status"], "ready");
    assert_eq!(after["chunk_count"], before["chunk_count"]);
}

#[tokio::test]
async fn an_upload_over_max_upload_mb_is_413_and_leaves_nothing_behind() {
    let app = spawn_app_with(Backend::Sqlite, &[("MAX_UPLOAD_MB", "1")])
        .await
        .unwrap();
    let token = signed_up(&app, "ada@example.com").await;
    let big = "All work and no play makes Jack a dull boy.\n".repeat(40_000);
    assert!(big.len() > 1024 * 1024 && big.len() < 2 * 1024 * 1024);

    // With a Content-Length within the form's framing allowance: caught while streaming.
    let response = app
        .post_form(&token, &[file_part("big.txt", big.as_bytes())])
        .await;
    assert_error(response, 413, "payload_too_large").await;

    // Sent in pieces without a Content-Length: caught while streaming too.
    let body = form(&[file_part("big.txt", big.as_bytes())]);
    let pieces: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(64 * 1024)
        .map(|piece| Ok(Bytes::copy_from_slice(piece)))
        .collect();
    let response = app
        .client
        .post(app.url("/api/v1/documents/upload"))
        .bearer_auth(&token)
        .header("content-type", content_type())
        .body(reqwest::Body::wrap_stream(futures::stream::iter(pieces)))
        .send()
        .await
        .unwrap();
    assert_error(response, 413, "payload_too_large").await;

    let list: Value = app.list(&token, "").await.json().await.unwrap();
    assert_eq!(list["items"], json!([]));
    assert!(app.stored_files().is_empty(), "{:?}", app.stored_files());

    // Just under the limit is fine.
    let fits = "All work and no play makes Jack a dull boy.\n".repeat(20_000);
    app.upload_ok(&token, "fits.txt", fits.as_bytes()).await;
}

#[tokio::test]
async fn a_declared_length_far_over_the_limit_is_refused_before_reading() {
    let app = spawn_app_with(Backend::Sqlite, &[("MAX_UPLOAD_MB", "1")])
        .await
        .unwrap();
    let token = signed_up(&app, "ada@example.com").await;
    let big = vec![b'a'; 3 * 1024 * 1024];
    let response = app.post_form(&token, &[file_part("big.txt", &big)]).await;
    assert_error(response, 413, "payload_too_large").await;
    assert!(app.stored_files().is_empty());
}

type Piece = Result<Bytes, std::io::Error>;

/// An upload body whose start (a file part's header and `notes` notes) is sent at once; the
/// rest is whatever the test sends next, and it ends only when the test says so.
fn open_ended_body(
    notes: usize,
) -> (
    futures::channel::mpsc::UnboundedSender<Piece>,
    reqwest::Body,
) {
    let (sender, pieces) = futures::channel::mpsc::unbounded::<Piece>();
    let mut head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\n"
    )
    .into_bytes();
    head.extend(note(1).repeat(notes));
    sender.unbounded_send(Ok(Bytes::from(head))).unwrap();
    (sender, reqwest::Body::wrap_stream(pieces))
}

#[tokio::test]
async fn an_upload_cut_off_mid_way_leaves_nothing_behind() {
    let app = spawn_app().await;
    let token = signed_up(&app, "ada@example.com").await;
    let (sender, body) = open_ended_body(2_000);
    let request = app
        .client
        .post(app.url("/api/v1/documents/upload"))
        .bearer_auth(&token)
        .header("content-type", content_type())
        .body(body)
        .send();
    let sent = tokio::spawn(request);

    // The partial file exists while the body is still arriving...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while app.stored_files().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no partial file");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...and goes when the client breaks off.
    sender
        .unbounded_send(Err(std::io::Error::other("client gone")))
        .unwrap();
    drop(sender);
    assert!(sent.await.unwrap().is_err(), "the request was cut off");
    app.nothing_kept(&token).await;
}

/// `body` sent in `pieces` pieces, each after a pause of `gap`.
fn trickled(body: Vec<u8>, pieces: usize, gap: Duration) -> reqwest::Body {
    let size = body.len().div_ceil(pieces);
    let pieces: Vec<Bytes> = body.chunks(size).map(Bytes::copy_from_slice).collect();
    let stream = futures::stream::iter(pieces).then(move |piece| async move {
        tokio::time::sleep(gap).await;
        Ok::<_, std::io::Error>(piece)
    });
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test]
async fn a_slow_upload_may_outlast_the_handler_timeout_while_it_keeps_arriving() {
    let app = spawn_app_with(Backend::Sqlite, &[("REQUEST_TIMEOUT_SECONDS", "1")])
        .await
        .unwrap();
    let token = signed_up(&app, "ada@example.com").await;
    let body = form(&[file_part("slow.txt", &note(1).repeat(100))]);

    // 2.4 s in all, but never a second without a byte.
    let response = app
        .post_body(&token, trickled(body, 6, Duration::from_millis(400)))
        .await;

    assert_eq!(response.status(), 202);
}

#[tokio::test]
async fn an_upload_that_stops_arriving_is_408_and_leaves_nothing_behind() {
    let app = spawn_app_with(Backend::Sqlite, &[("REQUEST_TIMEOUT_SECONDS", "1")])
        .await
        .unwrap();
    let token = signed_up(&app, "ada@example.com").await;
    // The client stays connected but sends nothing more.
    let (sender, body) = open_ended_body(100);

    let response = app.post_body(&token, body).await;

    assert_error(response, 408, "request_timeout").await;
    app.nothing_kept(&token).await;
    drop(sender);
}

#[tokio::test]
async fn an_upload_past_upload_timeout_seconds_is_408_and_leaves_nothing_behind() {
    let settings = [
        ("REQUEST_TIMEOUT_SECONDS", "5"),
        ("UPLOAD_TIMEOUT_SECONDS", "1"),
    ];
    let app = spawn_app_with(Backend::Sqlite, &settings).await.unwrap();
    let token = signed_up(&app, "ada@example.com").await;
    let body = form(&[file_part("slow.txt", &note(1).repeat(100))]);

    // Arriving steadily, but for 2.4 s.
    let response = app
        .post_body(&token, trickled(body, 8, Duration::from_millis(300)))
        .await;

    assert_error(response, 408, "request_timeout").await;
    app.nothing_kept(&token).await;
}

#[tokio::test]
async fn unsupported_types_are_415_and_leave_nothing_behind() {
    let app = spawn_app().await;
    let token = signed_up(&app, "ada@example.com").await;
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec();
    png.extend(std::iter::repeat_n(0u8, 10_000));
    let mut elf = b"\x7fELF\x02\x01\x01\x00".to_vec();
    elf.extend(std::iter::repeat_n(0u8, 10_000));
    for (name, bytes) in [("photo.png", &png), ("notes.txt", &elf)] {
        let response = app.post_form(&token, &[file_part(name, bytes)]).await;
        assert_error(response, 415, "unsupported_media_type").await;
    }
    let list: Value = app.list(&token, "").await.json().await.unwrap();
    assert_eq!(list["items"], json!([]));
    assert!(app.stored_files().is_empty());
}

#[tokio::test]
async fn bad_forms_are_refused_in_the_error_shape_and_store_nothing() {
    let app = spawn_app().await;
    let token = signed_up(&app, "ada@example.com").await;
    let text = fixture("sample.txt");

    for metadata in [r#"["not","an","object"]"#, "42", "{not json"] {
        let response = app
            .post_form(
                &token,
                &[file_part("a.txt", &text), text_part("metadata", metadata)],
            )
            .await;
        let body = assert_error(response, 422, "validation_error").await;
        assert_eq!(body["error"]["details"][0]["field"], "metadata", "{body}");
    }
    let huge = format!(r#"{{"x":"{}"}}"#, "y".repeat(20_000));
    let response = app
        .post_form(
            &token,
            &[text_part("metadata", &huge), file_part("a.txt", &text)],
        )
        .await;
    assert_error(response, 422, "validation_error").await;

    let response = app
        .post_form(&token, &[text_part("metadata", r#"{"a":1}"#)])
        .await;
    let body = assert_error(response, 422, "validation_error").await;
    assert_eq!(body["error"]["details"][0]["field"], "file");

    let response = app
        .post_form(
            &token,
            &[file_part("a.txt", &text), file_part("b.txt", &note(1))],
        )
        .await;
    assert_error(response, 422, "validation_error").await;

    let response = app
        .client
        .post(app.url("/api/v1/documents/upload"))
        .bearer_auth(&token)
        .json(&json!({"file": "hello"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 415, "unsupported_media_type").await;

    let response = app
        .client
        .post(app.url("/api/v1/documents/upload"))
        .bearer_auth(&token)
        .header("content-type", content_type())
        .body(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\ncut short"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(status, 400, "{:?}", response.text().await);

    let list: Value = app.list(&token, "").await.json().await.unwrap();
    assert_eq!(list["items"], json!([]));
    assert!(app.stored_files().is_empty(), "{:?}", app.stored_files());
}

#[tokio::test]
async fn bad_list_parameters_are_422_naming_the_field() {
    let app = spawn_app().await;
    let token = signed_up(&app, "ada@example.com").await;
    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=ten", "limit"),
        ("?limit=-1", "limit"),
        ("?status=done", "status"),
        ("?cursor=page-2", "cursor"),
    ] {
        let body = assert_error(app.list(&token, query).await, 422, "validation_error").await;
        assert_eq!(
            body["error"]["details"][0]["field"], field,
            "{query}: {body}"
        );
    }
    let body = assert_error(
        app.list(&token, "?limit=0&status=done").await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(body["error"]["details"].as_array().unwrap().len(), 2);
    let ok: Value = app.list(&token, "?limit=100").await.json().await.unwrap();
    assert_eq!(ok["items"], json!([]));
}

#[tokio::test]
async fn a_malformed_or_unknown_id_is_404() {
    let app = spawn_app().await;
    let token = signed_up(&app, "ada@example.com").await;
    for id in ["not-a-uuid", &Uuid::now_v7().to_string()] {
        assert_error(app.document(&token, id).await, 404, "not_found").await;
        let path = format!("/api/v1/documents/{id}");
        assert_error(
            app.authed(reqwest::Method::DELETE, &path, &token).await,
            404,
            "not_found",
        )
        .await;
        assert_error(
            app.authed(reqwest::Method::POST, &format!("{path}/reindex"), &token)
                .await,
            404,
            "not_found",
        )
        .await;
    }
}

#[tokio::test]
async fn every_documents_route_needs_a_token() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();
    let requests = [
        app.client
            .post(app.url("/api/v1/documents/upload"))
            .header("content-type", content_type())
            .body(form(&[file_part("a.txt", b"hello")])),
        app.client.get(app.url("/api/v1/documents")),
        app.client.get(app.url(&format!("/api/v1/documents/{id}"))),
        app.client
            .delete(app.url(&format!("/api/v1/documents/{id}"))),
        app.client
            .post(app.url(&format!("/api/v1/documents/{id}/reindex"))),
    ];
    for request in requests {
        assert_error(request.send().await.unwrap(), 401, "unauthorized").await;
    }
    let forged = app
        .client
        .get(app.url("/api/v1/documents"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert!(app.stored_files().is_empty());
}

#[tokio::test]
async fn a_traversal_filename_is_kept_only_as_a_sanitized_name() {
    let app = spawn_app().await;
    let token = signed_up(&app, "ada@example.com").await;
    let accepted = app
        .upload_ok(
            &token,
            "../../etc/passwd",
            b"root:x:0:0:root:/root:/bin/bash\n",
        )
        .await;
    assert_eq!(accepted["filename"], "passwd");
    let id = accepted["document_id"].as_str().unwrap();
    assert_eq!(app.stored_files(), [id.to_owned()]);
    let data_dir = app.state.settings.data_dir.clone();
    assert!(
        !data_dir.parent().unwrap().join("etc").exists(),
        "nothing written outside the data directory"
    );
    let document = app.settled(&token, id).await;
    assert_eq!(document["filename"], "passwd");
}

#[tokio::test]
async fn an_unreachable_embedding_provider_fails_the_document_with_a_readable_error() {
    // A port nothing listens on: every embedding call is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("EMBEDDING_MODEL", "text-embedding-3-small"),
            ("OPENAI_BASE_URL", &base_url),
            ("OPENAI_API_KEY", "sk-test"),
            ("VECTOR_DIMENSION", "8"),
            ("LLM_MAX_RETRIES", "0"),
            ("INGEST_MAX_ATTEMPTS", "1"),
        ],
    )
    .await
    .unwrap();
    let token = signed_up(&app, "ada@example.com").await;
    let accepted = app.upload_ok(&token, "a.txt", &fixture("sample.txt")).await;
    assert_eq!(accepted["status"], "queued");
    let document = app
        .settled(&token, accepted["document_id"].as_str().unwrap())
        .await;
    assert_eq!(document["status"], "failed");
    assert!(
        document["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{document}"
    );
    assert_eq!(document["chunk_count"], 0);
}

#[tokio::test]
async fn a_closed_database_is_503_in_the_error_shape() {
    let app = spawn_app().await;
    let token = signed_up(&app, "ada@example.com").await;
    app.store().close().await;
    let response = app.list(&token, "").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["code"].is_string(), "{body}");
}

#[tokio::test]
async fn the_openapi_document_describes_the_upload_form_and_every_answer() {
    let app = spawn_app().await;
    let openapi: Value = app.get("/openapi.json").await.json().await.unwrap();
    let upload = &openapi["paths"]["/api/v1/documents/upload"]["post"];
    let form = &upload["requestBody"]["content"]["multipart/form-data"]["schema"];
    assert_eq!(form["properties"]["file"]["format"], "binary", "{form}");
    for status in ["202", "401", "408", "413", "415", "422"] {
        assert!(upload["responses"][status].is_object(), "{status}");
    }
    for path in [
        "/api/v1/documents",
        "/api/v1/documents/{id}",
        "/api/v1/documents/{id}/reindex",
    ] {
        assert!(openapi["paths"][path].is_object(), "{path}");
    }
    assert!(openapi["components"]["schemas"]["Document"].is_object());
}
