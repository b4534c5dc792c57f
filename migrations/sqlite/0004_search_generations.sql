-- A per-user counter that every change to what the user's search can see increments, in the
-- writing transaction, whichever process writes (the server, `ragd ingest`, `ragd user
-- delete`): the in-process vector index compares it with its cached copy's before each
-- search. (Version 0003 is left to a migration developed on another branch.)
CREATE TABLE search_generations (
    user_id    BLOB PRIMARY KEY NOT NULL,
    generation INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER chunks_generation_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO search_generations (user_id, generation) VALUES (new.user_id, 1)
        ON CONFLICT (user_id) DO UPDATE SET generation = generation + 1;
END;
-- Also fires for chunks removed by a cascade (a deleted user).
CREATE TRIGGER chunks_generation_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO search_generations (user_id, generation) VALUES (old.user_id, 1)
        ON CONFLICT (user_id) DO UPDATE SET generation = generation + 1;
END;
-- Only ready documents are searched: becoming or ceasing to be ready changes what is seen.
CREATE TRIGGER documents_generation_update AFTER UPDATE OF status, embedding_model ON documents
WHEN old.status = 'ready' OR new.status = 'ready' BEGIN
    INSERT INTO search_generations (user_id, generation) VALUES (new.user_id, 1)
        ON CONFLICT (user_id) DO UPDATE SET generation = generation + 1;
END;
