-- Every revoked API key and deleted user, so each replica (and each process sharing this file)
-- can drop what it cached about that user. Rows older than an hour are pruned on insert.
CREATE TABLE credential_revocations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    BLOB NOT NULL,
    -- Microseconds since the Unix epoch, written by the revoking process.
    revoked_at INTEGER NOT NULL
);
CREATE INDEX credential_revocations_revoked_at ON credential_revocations (revoked_at);
