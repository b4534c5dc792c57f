-- ragd schema, PostgreSQL + pgvector backend. Same version numbers as migrations/sqlite.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    created_at    TIMESTAMPTZ NOT NULL
);
-- Emails are stored lower-cased; the index keeps them unique.
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE api_keys (
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    key_hash     TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);
CREATE INDEX api_keys_user_idx ON api_keys (user_id, created_at);

CREATE TABLE documents (
    id               UUID PRIMARY KEY,
    user_id          UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    filename         TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    size_bytes       BIGINT NOT NULL,
    sha256           TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'ready', 'failed')),
    error            TEXT,
    chunk_count      INTEGER NOT NULL DEFAULT 0,
    metadata         JSONB NOT NULL DEFAULT '{}',
    storage_path     TEXT NOT NULL,
    embedding_model  TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX documents_user_sha256_key ON documents (user_id, sha256);
CREATE INDEX documents_user_list_idx ON documents (user_id, id);

-- The durable ingestion queue: one job per document, claimed with FOR UPDATE SKIP LOCKED.
CREATE TABLE ingest_jobs (
    document_id  UUID PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_after    TIMESTAMPTZ NOT NULL,
    locked_until TIMESTAMPTZ,
    last_error   TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX ingest_jobs_claim_idx ON ingest_jobs (state, run_after);

CREATE TABLE chunks (
    id              BIGSERIAL PRIMARY KEY,
    document_id     UUID NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    user_id         UUID NOT NULL,
    chunk_index     INTEGER NOT NULL,
    text            TEXT NOT NULL,
    page            INTEGER,
    char_start      INTEGER NOT NULL,
    char_end        INTEGER NOT NULL,
    heading_path    TEXT,
    token_count     INTEGER NOT NULL,
    embedding_model TEXT NOT NULL,
    dimension       INTEGER NOT NULL,
    -- width not fixed here: the HNSW index over it is built for the configured dimension
    embedding       vector NOT NULL,
    tsv             tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED
);
CREATE UNIQUE INDEX chunks_document_index_key ON chunks (document_id, chunk_index);
CREATE INDEX chunks_user_idx ON chunks (user_id);
CREATE INDEX chunks_tsv_idx ON chunks USING GIN (tsv);

CREATE TABLE usage_events (
    id                UUID PRIMARY KEY,
    user_id           UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    model             TEXT NOT NULL,
    provider          TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_ms        INTEGER NOT NULL,
    ttft_ms           INTEGER,
    outcome           TEXT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX usage_events_user_idx ON usage_events (user_id, created_at);
