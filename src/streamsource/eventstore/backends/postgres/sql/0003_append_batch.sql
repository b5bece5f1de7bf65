-- streamsource event store, schema version 3: several appends in one call, and appends that
-- do not wait for a stream held by another transaction (for the recorders' group commit).
-- Runs inside the store's schema in one transaction, under the migration advisory lock.
--
-- append_batch appends to several streams (or several times to one), each append with its
-- own expected version, as ONE statement: the stream locks are taken (in key order, so two
-- batches never deadlock), every append is checked before anything is written, then the
-- transaction id and all the positions are taken together under the position lock once
-- (rule 1 of the backend's docs: it must still be the transaction's first write), and all
-- the events go in with one INSERT.
--
-- p_streams, p_expected, p_counts: one entry per append (p_counts[k]: how many of the events
-- are append k's); p_ids .. p_metadata: every event, append after append.
--
-- p_atomic true (store.transaction()'s tx.append_many): the first refusal raises and the
--   whole transaction rolls back: SS001 wrong expected version (DETAIL: the current version,
--   '' for none), SS002 tombstoned, SS004 an event id is stored already (DETAIL: the id);
--   HINT is the append's number (1-based). SS003 as for append_events; 23505 when the batch
--   names one id twice.
-- p_atomic false (the recorders' group commit): each append gets a status and the others
--   go on: 0 appended, 1 wrong expected version, 2 tombstoned, 3 an id is stored already
--   (the client looks for an identical earlier append: an idempotent retry), 4 its stream's
--   lock is held by another transaction (the client sends that append on its own: a batch
--   never waits for one stream, which would hold up the appends to every other stream).
--   versions[k]: status 0 the append's last version (the current one for an empty append,
--   NULL for none); status 1 the current version (NULL: no stream). positions[k]: status 0
--   the last position of the append's events (0 for an empty append).
-- Every refusal is raised before the position lock is taken, so none leaves it held.

CREATE FUNCTION append_batch(
    p_streams text[],
    p_expected bigint[],
    p_counts int[],
    p_ids uuid[],
    p_types text[],
    p_data bytea[],
    p_metadata bytea[],
    p_atomic boolean,
    OUT statuses int[],
    OUT versions bigint[],
    OUT positions bigint[]
) LANGUAGE plpgsql AS $$
DECLARE
    m         int := coalesce(cardinality(p_streams), 0);
    starts    int[];          -- index of append k's first event in p_ids
    bases     bigint[];       -- append k's stream version before it (-1: none)
    ats       timestamptz[];  -- append k's recorded_at
    knowns    boolean[];      -- append k's stream has a row in streams after it
    new_names text[] := '{}';
    total     bigint := 0;    -- events of the accepted appends
    next_at   int := 1;
    k         int;
    j         int;
    n         int;
    lock_key  bigint;
    v_stream  text;
    current   bigint;
    deleted   boolean;
    known     boolean;
    at        timestamptz;
    stored    uuid;
    stored_ids uuid[];
    busy      bigint[] := '{}';  -- stream locks held by other transactions
    tx        xid8;
    pos       bigint;
BEGIN
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'append_batch must be the first write of its transaction'
            USING ERRCODE = 'SS003';
    END IF;
    IF coalesce(cardinality(p_expected), 0) <> m OR coalesce(cardinality(p_counts), 0) <> m
       OR (SELECT bool_or(c IS NULL OR c < 0) FROM unnest(p_counts) AS c)
       OR (SELECT coalesce(sum(c), 0) FROM unnest(p_counts) AS c) <> coalesce(cardinality(p_ids), 0)
       OR coalesce(cardinality(p_types), 0) <> coalesce(cardinality(p_ids), 0)
       OR coalesce(cardinality(p_data), 0) <> coalesce(cardinality(p_ids), 0)
       OR coalesce(cardinality(p_metadata), 0) <> coalesce(cardinality(p_ids), 0) THEN
        RAISE EXCEPTION 'append_batch: the arrays do not match (% appends)', m
            USING ERRCODE = '22023';
    END IF;
    statuses := array_fill(0, ARRAY[m]);
    versions := array_fill(NULL::bigint, ARRAY[m]);
    positions := array_fill(0::bigint, ARRAY[m]);
    -- The stream locks of append_events, in key order: two atomic batches sharing streams
    -- wait for each other instead of deadlocking. A group commit's batch waits for none.
    FOR lock_key IN
        SELECT DISTINCT hashtextextended(current_schema() || '.' || s, 0)
          FROM unnest(p_streams) AS s ORDER BY 1
    LOOP
        IF p_atomic THEN
            PERFORM pg_advisory_xact_lock(lock_key);
        ELSIF NOT pg_try_advisory_xact_lock(lock_key) THEN
            busy := busy || lock_key;
        END IF;
    END LOOP;
    -- The ids stored already, in one join for the whole batch (a join on the unique index;
    -- "id = ANY(array)" per append got a cached generic plan that scanned the table).
    SELECT coalesce(array_agg(e.id), '{}') INTO stored_ids
      FROM unnest(p_ids) AS u(id) JOIN events AS e ON e.id = u.id;
    FOR k IN 1 .. m LOOP
        v_stream := p_streams[k];
        n := p_counts[k];
        starts[k] := next_at;
        next_at := next_at + n;
        IF cardinality(busy) > 0
           AND hashtextextended(current_schema() || '.' || v_stream, 0) = ANY(busy) THEN
            statuses[k] := 4;
            CONTINUE;
        END IF;
        -- the stream as an earlier append of this batch left it, else as stored
        j := k - 1;
        WHILE j >= 1 AND NOT (p_streams[j] = v_stream AND statuses[j] = 0) LOOP
            j := j - 1;
        END LOOP;
        IF j >= 1 THEN
            current := versions[j];
            at := ats[j];
            known := knowns[j];
            deleted := false;
        ELSE
            SELECT s.name IS NOT NULL, coalesce(s.hard_deleted, false), e.version, e.recorded_at
              INTO known, deleted, current, at
              FROM (SELECT 1) AS one
              LEFT JOIN streams AS s ON s.name = v_stream
              LEFT JOIN LATERAL (
                  SELECT version, recorded_at FROM events
                   WHERE events.stream = v_stream ORDER BY version DESC LIMIT 1
              ) AS e ON true;
        END IF;
        IF deleted THEN
            IF p_atomic THEN
                RAISE EXCEPTION 'stream % is deleted', v_stream
                    USING ERRCODE = 'SS002', HINT = k::text;
            END IF;
            statuses[k] := 2;
            CONTINUE;
        END IF;
        IF NOT expected_version_matches(p_expected[k], current) THEN
            IF p_atomic THEN
                RAISE EXCEPTION 'wrong expected version for stream %', v_stream
                    USING ERRCODE = 'SS001', DETAIL = coalesce(current::text, ''),
                          HINT = k::text;
            END IF;
            statuses[k] := 1;
            versions[k] := current;
            CONTINUE;
        END IF;
        IF n > 0 THEN
            stored := NULL;
            IF cardinality(stored_ids) > 0 THEN
                SELECT u.id INTO stored FROM unnest(p_ids[starts[k] : starts[k] + n - 1]) AS u(id)
                 WHERE u.id = ANY(stored_ids) LIMIT 1;
            END IF;
            IF stored IS NOT NULL THEN
                IF p_atomic THEN
                    RAISE EXCEPTION 'event id % is stored already', stored
                        USING ERRCODE = 'SS004', DETAIL = stored::text, HINT = k::text;
                END IF;
                statuses[k] := 3;
                CONTINUE;
            END IF;
            bases[k] := coalesce(current, -1);
            versions[k] := coalesce(current, -1) + n;
            at := greatest(clock_timestamp(), at);  -- never decreasing within a stream
            IF NOT known AND NOT v_stream = ANY(new_names) THEN
                new_names := new_names || v_stream;
            END IF;
            known := true;
            total := total + n;
        ELSE
            versions[k] := current;
        END IF;
        ats[k] := at;
        knowns[k] := known;
    END LOOP;
    IF total = 0 THEN
        RETURN;  -- nothing to write: no transaction id, no positions
    END IF;
    -- rule 1: the transaction id and every position of the batch, together
    PERFORM pg_advisory_lock(1397977699, hashtext(current_schema()));
    tx := pg_current_xact_id();
    pos := nextval('events_position_seq');
    IF total > 1 THEN
        PERFORM setval('events_position_seq', pos + total - 1);
    END IF;
    PERFORM pg_advisory_unlock(1397977699, hashtext(current_schema()));
    FOR k IN 1 .. m LOOP
        IF statuses[k] = 0 AND p_counts[k] > 0 THEN
            positions[k] := pos + p_counts[k] - 1;  -- its first: positions[k] - p_counts[k] + 1
            pos := pos + p_counts[k];
        END IF;
    END LOOP;
    INSERT INTO events (position, stream, version, id, type, data, metadata, recorded_at, tx_id)
    SELECT positions[a] - p_counts[a] + 1 + (i - starts[a]), p_streams[a],
           bases[a] + 1 + (i - starts[a]), p_ids[i], p_types[i], p_data[i], p_metadata[i],
           ats[a], tx
      FROM generate_series(1, m) AS a,
           generate_series(starts[a], starts[a] + p_counts[a] - 1) AS i
     WHERE statuses[a] = 0;
    IF cardinality(new_names) > 0 THEN
        INSERT INTO streams (name) SELECT unnest(new_names) ON CONFLICT (name) DO NOTHING;
    END IF;
END
$$;

-- append_event for a group commit's lone append: the same, except that when the stream's
-- lock is held by another transaction it does nothing and returns NULLs (the client then
-- sends the append by append_event, outside the group commit, so that only this append
-- waits for that transaction).
CREATE FUNCTION try_append_event(
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
    current   bigint;
    deleted   boolean;
    known     boolean;
    at        timestamptz;
BEGIN
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'try_append_event must be the first write of its transaction'
            USING ERRCODE = 'SS003';
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtextextended(current_schema() || '.' || p_stream, 0))
    THEN
        RETURN;  -- busy: NULL, NULL
    END IF;
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
    at := greatest(clock_timestamp(), at);
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
