-- streamsource event store, schema version 1.
-- Runs inside the store's schema (search_path is set to it) in one transaction, under the
-- migration advisory lock. Never edit a released migration: add the next numbered file.

-- Global positions. Taken only inside append_events, under a short advisory lock, together
-- with the transaction id (see append_events and the backend's module docs).
CREATE SEQUENCE events_position_seq AS bigint;

CREATE TABLE events (
    position    bigint      PRIMARY KEY,
    stream      text        NOT NULL,
    -- the part of the name before the first '-' (streamsource.category_of)
    category    text        NOT NULL GENERATED ALWAYS AS (split_part(stream, '-', 1)) STORED,
    version     bigint      NOT NULL,
    id          uuid        NOT NULL,
    type        text        NOT NULL,
    data        bytea       NOT NULL,  -- JSON as the client encoded it, byte for byte
    metadata    bytea       NOT NULL,
    recorded_at timestamptz NOT NULL,
    -- the writing transaction: readers of the global log skip rows of transactions that may
    -- still be in flight below them (tx_id >= the oldest running transaction id)
    tx_id       xid8        NOT NULL,
    CONSTRAINT events_id_unique UNIQUE (id),
    CONSTRAINT events_stream_version_unique UNIQUE (stream, version)
);
CREATE INDEX events_by_category ON events (category, position);
CREATE INDEX events_by_type ON events (type, position);

-- One row per stream ever written, tombstoned or given metadata. The current version is not
-- kept here but read from events_stream_version_unique: an append writes no row here
-- (except the first of a stream), so appends cost one insert per event and nothing else.
CREATE TABLE streams (
    name         text    PRIMARY KEY,
    hard_deleted boolean NOT NULL DEFAULT false,
    metadata     bytea
);

CREATE TABLE snapshots (
    stream      text        NOT NULL,
    version     bigint      NOT NULL,
    type        text        NOT NULL,
    state       bytea       NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (stream, version)
);

-- p_expected: >= 0 that exact version, -1 any, -2 no stream, -3 stream exists.
CREATE FUNCTION expected_version_matches(p_expected bigint, p_current bigint)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_expected
        WHEN -1 THEN true
        WHEN -2 THEN p_current IS NULL
        WHEN -3 THEN p_current IS NOT NULL
        ELSE p_current IS NOT DISTINCT FROM p_expected
    END
$$;

-- Append events to one stream atomically. Errors (the transaction rolls back):
--   SS001 wrong expected version (DETAIL: the current version, '' for none),
--   SS002 the stream is hard-deleted, SS003 called after the transaction wrote something,
--   23505 on events_id_unique: an id is stored already (the client checks for a retry).
CREATE FUNCTION append_events(
    p_stream text,
    p_expected bigint,
    p_ids uuid[],
    p_types text[],
    p_data bytea[],
    p_metadata bytea[],
    OUT last_version bigint,
    OUT last_position bigint
) LANGUAGE plpgsql AS $$
DECLARE
    n         int := cardinality(p_ids);
    tx        xid8;
    first_pos bigint;
    current   bigint;  -- the stream's version before this append; NULL: no events
    deleted   boolean;
    known     boolean;  -- the stream has a row in streams
    at        timestamptz;
BEGIN
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'append_events must be the first write of its transaction'
            USING ERRCODE = 'SS003';
    END IF;
    -- Writers of one stream take turns from here to their COMMIT, so a stream's versions
    -- and positions grow together and the version read below cannot change before COMMIT.
    -- An advisory lock, not a row lock: a row lock would give the transaction its id
    -- before the position lock below.
    PERFORM pg_advisory_xact_lock(hashtextextended(current_schema() || '.' || p_stream, 0));
    -- The transaction id and the positions are taken together under a lock held for
    -- microseconds, so a transaction with a lower id always has lower positions. Readers
    -- rely on it (see the module docs). Session-level so it ends here, not at COMMIT: the
    -- commits themselves (and their fsyncs) run concurrently.
    BEGIN
        PERFORM pg_advisory_lock(1397977699, hashtext(current_schema()));
        tx := pg_current_xact_id();
        first_pos := nextval('events_position_seq');
        IF n > 1 THEN
            PERFORM setval('events_position_seq', first_pos + n - 1);
        END IF;
        PERFORM pg_advisory_unlock(1397977699, hashtext(current_schema()));
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM pg_advisory_unlock(1397977699, hashtext(current_schema()));
        RAISE;
    END;
    SELECT s.name IS NOT NULL, coalesce(s.hard_deleted, false), e.version, e.recorded_at
      INTO known, deleted, current, at
      FROM (SELECT 1) AS one
      LEFT JOIN streams AS s ON s.name = p_stream
      LEFT JOIN LATERAL (
          SELECT version, recorded_at FROM events
           WHERE stream = p_stream ORDER BY version DESC LIMIT 1
      ) AS e ON true;
    IF deleted THEN
        RAISE EXCEPTION 'stream % is deleted', p_stream USING ERRCODE = 'SS002';
    END IF;
    IF NOT expected_version_matches(p_expected, current) THEN
        RAISE EXCEPTION 'wrong expected version for stream %', p_stream
            USING ERRCODE = 'SS001', DETAIL = coalesce(current::text, '');
    END IF;
    at := greatest(clock_timestamp(), at);  -- never decreasing within a stream
    INSERT INTO events (position, stream, version, id, type, data, metadata, recorded_at, tx_id)
    SELECT first_pos + i - 1, p_stream, coalesce(current, -1) + i, p_ids[i], p_types[i],
           p_data[i], p_metadata[i], at, tx
      FROM generate_series(1, n) AS i;
    IF NOT known THEN
        INSERT INTO streams (name) VALUES (p_stream) ON CONFLICT (name) DO NOTHING;
    END IF;
    last_version := coalesce(current, -1) + n;
    last_position := first_pos + n - 1;
END
$$;

-- append_events for one event, with scalar parameters: most appends are of one event, and
-- the client's array parameters cost about 50 us a call (a third of a whole append).
-- The same steps and errors as append_events: keep the two in step.
CREATE FUNCTION append_event(
    p_stream text,
    p_expected bigint,
    p_id uuid,
    p_type text,
    p_data bytea,
    p_metadata bytea,
    OUT last_version bigint,
    OUT last_position bigint
) LANGUAGE plpgsql AS $$
DECLARE
    tx        xid8;
    first_pos bigint;
    current   bigint;  -- the stream's version before this append; NULL: no events
    deleted   boolean;
    known     boolean;  -- the stream has a row in streams
    at        timestamptz;
BEGIN
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'append_event must be the first write of its transaction'
            USING ERRCODE = 'SS003';
    END IF;
    -- the stream lock and the position lock: see append_events
    PERFORM pg_advisory_xact_lock(hashtextextended(current_schema() || '.' || p_stream, 0));
    BEGIN
        PERFORM pg_advisory_lock(1397977699, hashtext(current_schema()));
        tx := pg_current_xact_id();
        first_pos := nextval('events_position_seq');
        PERFORM pg_advisory_unlock(1397977699, hashtext(current_schema()));
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM pg_advisory_unlock(1397977699, hashtext(current_schema()));
        RAISE;
    END;
    SELECT s.name IS NOT NULL, coalesce(s.hard_deleted, false), e.version, e.recorded_at
      INTO known, deleted, current, at
      FROM (SELECT 1) AS one
      LEFT JOIN streams AS s ON s.name = p_stream
      LEFT JOIN LATERAL (
          SELECT version, recorded_at FROM events
           WHERE stream = p_stream ORDER BY version DESC LIMIT 1
      ) AS e ON true;
    IF deleted THEN
        RAISE EXCEPTION 'stream % is deleted', p_stream USING ERRCODE = 'SS002';
    END IF;
    IF NOT expected_version_matches(p_expected, current) THEN
        RAISE EXCEPTION 'wrong expected version for stream %', p_stream
            USING ERRCODE = 'SS001', DETAIL = coalesce(current::text, '');
    END IF;
    at := greatest(clock_timestamp(), at);  -- never decreasing within a stream
    INSERT INTO events (position, stream, version, id, type, data, metadata, recorded_at, tx_id)
    VALUES (first_pos, p_stream, coalesce(current, -1) + 1, p_id, p_type,
            p_data, p_metadata, at, tx);
    IF NOT known THEN
        INSERT INTO streams (name) VALUES (p_stream) ON CONFLICT (name) DO NOTHING;
    END IF;
    last_version := coalesce(current, -1) + 1;
    last_position := first_pos;
END
$$;

-- Tombstone a stream after checking the expected version (errors as append_events).
CREATE FUNCTION hard_delete_stream(p_stream text, p_expected bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    current bigint;
    deleted boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(current_schema() || '.' || p_stream, 0));
    SELECT hard_deleted INTO deleted FROM streams WHERE name = p_stream;
    IF deleted THEN
        RAISE EXCEPTION 'stream % is deleted', p_stream USING ERRCODE = 'SS002';
    END IF;
    SELECT max(version) INTO current FROM events WHERE stream = p_stream;
    IF NOT expected_version_matches(p_expected, current) THEN
        RAISE EXCEPTION 'wrong expected version for stream %', p_stream
            USING ERRCODE = 'SS001', DETAIL = coalesce(current::text, '');
    END IF;
    INSERT INTO streams AS s (name, hard_deleted) VALUES (p_stream, true)
    ON CONFLICT (name) DO UPDATE SET hard_deleted = true;
END
$$;
