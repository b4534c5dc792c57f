-- Nothing to do on PostgreSQL: the embedded backend's version 0004 adds the search
-- generations its in-process vector index checks; pgvector searches the table itself.
-- Kept so that both backends share version numbers.
SELECT 1;
