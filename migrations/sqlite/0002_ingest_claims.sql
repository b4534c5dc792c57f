-- Fencing token for the ingestion queue's leases: incremented by every claim and never reset
-- (unlike attempts, which a reindex resets), so a worker whose lease was taken over cannot
-- complete or fail the job any more.
ALTER TABLE ingest_jobs ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
