-- streamsource event store, schema version 2: appends without a subtransaction.
-- Runs inside the store's schema in one transaction, under the migration advisory lock.
--
-- Version 1 took the position lock (a session-level advisory lock, held for microseconds)
-- inside a BEGIN ... EXCEPTION block, to release it if the statement failed in between. Such
-- a block is a subtransaction: entering and leaving it cost about a quarter of the server's
-- time per append (measured). Between the lock and the unlock there are only
-- pg_current_xact_id(), nextval() and setval(), which fail only on a cancel, a terminated
-- session or out of memory. A terminated session drops its locks; for the others, the
-- recorder releases the session's advisory locks (pg_advisory_unlock_all) on the same
-- connection after any failed append that is not one of the refusals below raised after
-- the unlock (SS001, SS002, SS003, 23505), before the connection goes back to the pool.
-- Anyone calling these functions directly must do the same.

CREATE OR REPLACE FUNCTION append_events(
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
    PERFORM pg_advisory_lock(1397977699, hashtext(current_schema()));
    tx := pg_current_xact_id();
    first_pos := nextval('events_position_seq');
    IF n > 1 THEN
        PERFORM setval('events_position_seq', first_pos + n - 1);
    END IF;
    PERFORM pg_advisory_unlock(1397977699, hashtext(current_schema()));
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

CREATE OR REPLACE FUNCTION append_event(
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
    PERFORM pg_advisory_lock(1397977699, hashtext(current_schema()));
    tx := pg_current_xact_id();
    first_pos := nextval('events_position_seq');
    PERFORM pg_advisory_unlock(1397977699, hashtext(current_schema()));
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
