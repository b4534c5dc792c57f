-- Every revoked API key and deleted user, so each replica can drop what it cached about that
-- user. Rows older than an hour are pruned on insert.
CREATE TABLE credential_revocations (
    seq        BIGSERIAL PRIMARY KEY,
    user_id    UUID NOT NULL,
    -- Microseconds since the Unix epoch, written by the revoking replica.
    revoked_at BIGINT NOT NULL
);
CREATE INDEX credential_revocations_revoked_at ON credential_revocations (revoked_at);
