-- ragd schema, embedded SQLite backend. Same version numbers as migrations/postgres.
-- IDs are UUIDv7 stored as 16-byte BLOBs; times are RFC 3339 text (UTC).

CREATE TABLE users (
    id            BLOB PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    created_at    TEXT NOT NULL
);
-- Emails are stored lower-cased; the index keeps them unique.
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE api_keys (
    id           BLOB PRIMARY KEY NOT NULL,
    user_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT
);
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);
CREATE INDEX api_keys_user_idx ON api_keys (user_id, created_at);

CREATE TABLE documents (
    id               BLOB PRIMARY KEY NOT NULL,
    user_id          BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    filename         TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    size_bytes       INTEGER NOT NULL,
    sha256           TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'ready', 'failed')),
    error            TEXT,
    chunk_count      INTEGER NOT NULL DEFAULT 0,
    metadata         TEXT NOT NULL DEFAULT '{}',
    storage_path     TEXT NOT NULL,
    embedding_model  TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE UNIQUE INDEX documents_user_sha256_key ON documents (user_id, sha256);
CREATE INDEX documents_user_list_idx ON documents (user_id, id);

-- The durable ingestion queue: one job per document, claimed with a lease.
CREATE TABLE ingest_jobs (
    document_id  BLOB PRIMARY KEY NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_after    TEXT NOT NULL,
    locked_until TEXT,
    last_error   TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX ingest_jobs_claim_idx ON ingest_jobs (state, run_after);

CREATE TABLE chunks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id     BLOB NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    user_id         BLOB NOT NULL,
    chunk_index     INTEGER NOT NULL,
    text            TEXT NOT NULL,
    page            INTEGER,
    char_start      INTEGER NOT NULL,
    char_end        INTEGER NOT NULL,
    heading_path    TEXT,
    token_count     INTEGER NOT NULL,
    embedding_model TEXT NOT NULL,
    dimension       INTEGER NOT NULL,
    -- little-endian f32 values, read by sqlite-vec's distance functions
    embedding       BLOB NOT NULL
);
CREATE UNIQUE INDEX chunks_document_index_key ON chunks (document_id, chunk_index);
CREATE INDEX chunks_user_idx ON chunks (user_id);

-- Keyword search: FTS5 over chunk text, kept in step by triggers.
CREATE VIRTUAL TABLE chunks_fts USING fts5 (text, content = 'chunks', content_rowid = 'id', tokenize = 'porter unicode61');
CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;

CREATE TABLE usage_events (
    id                BLOB PRIMARY KEY NOT NULL,
    user_id           BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    model             TEXT NOT NULL,
    provider          TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_ms        INTEGER NOT NULL,
    ttft_ms           INTEGER,
    outcome           TEXT NOT NULL,
    created_at        TEXT NOT NULL
);
CREATE INDEX usage_events_user_idx ON usage_events (user_id, created_at);
