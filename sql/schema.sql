-- The keyspace. One row per key; members of hashes, lists, sets and sorted
-- sets live in their own tables keyed by the key's id, so RENAME and MOVE
-- only touch this row.
CREATE SEQUENCE kv.key_ids;

CREATE TABLE kv.keys (
    -- 0..15; SWAPDB briefly parks a database at -1
    db        smallint NOT NULL CHECK (db BETWEEN -1 AND 15),
    key       bytea    NOT NULL,
    id        bigint   NOT NULL DEFAULT nextval('kv.key_ids'),
    -- s string, h hash, l list, t set, z sorted set
    type      "char"   NOT NULL,
    -- unix time in milliseconds; NULL means no TTL
    expire_at bigint,
    -- the payload of a string; NULL for the other types
    value     bytea,
    -- members of a hash, list, set or sorted set
    card      bigint   NOT NULL DEFAULT 0,
    -- list: position of the first element; hash, set: next seq (zsets count
    -- too, unused: their members are ordered by hash)
    head      bigint   NOT NULL DEFAULT 0,
    PRIMARY KEY (db, key)
) WITH (fillfactor = 80);
-- The fillfactors here and on kv.hashes and kv.zsets leave room on every
-- page for new versions of its rows: an update that fits stays on the page
-- (HOT, no new index entries), and the worker prunes a page's dead
-- versions when the next one would not fit (store/direct.rs, fetch_with_room),
-- so the more room, the more versions one pruning reclaims. Under SET at
-- -c 50, 90 -> 80 took pruning from 3.4 % to 1.3 % of the worker, for 12 %
-- more pages; kv.hashes at 100 (the default) -> 90 took it from 8.9 % to
-- 3.6 % under HSET, for 5 %, and 90 -> 80 from 7-10 % to 4.3 % under HSET
-- at -P 16 (after the lookups stopped searching the index); kv.zsets at
-- 90 -> 80 from 8.2-8.5 % to 4.5-6.0 % under ZADD at -P 16 (a new score is
-- a non-HOT update, which still goes on the same page when it fits). Sets
-- and lists never update a row in place.

-- SCAN's cursor is the id: keys keep it for life (RENAME included), and new
-- keys get larger ones. Deliberately (id) alone, not (db, id): with a db
-- prefix the planner may pick it for "db = $1 AND key = ANY($2)" while
-- kv.keys is still empty, and kept plans would keep that choice.
CREATE INDEX keys_id ON kv.keys (id);
-- Lookups by key (GET, the batch prefetch, the write locks): one hash
-- bucket page and 4-byte hash comparisons instead of a B-tree descent that
-- compares bytea keys on every level (GET at -P 16: 10 -> 6.5-8.5 us of
-- worker CPU per command). The primary key still enforces uniqueness and
-- serves ON CONFLICT; the planner picks whichever is cheaper per statement.
CREATE INDEX keys_key_hash ON kv.keys USING hash (key);
-- The active expiry cycle's index: only keys with a TTL.
CREATE INDEX keys_expire_at ON kv.keys (expire_at) WHERE expire_at IS NOT NULL;

-- In the member tables, seq numbers members in insertion order (from the
-- key row's head counter). It is the order small Redis hashes report, and
-- the cursor of HSCAN/SSCAN/ZSCAN: a member keeps its seq for life, so a
-- full scan returns every member present throughout.
CREATE TABLE kv.hashes (
    id    bigint NOT NULL,
    field bytea  NOT NULL,
    value bytea  NOT NULL,
    seq   bigint NOT NULL,
    PRIMARY KEY (id, field)
) WITH (fillfactor = 80);
CREATE INDEX hashes_by_seq ON kv.hashes (id, seq);

-- Positions are contiguous; the key row keeps head and tail, so pushes and
-- pops at either end and LINDEX/LSET are single index probes.
CREATE TABLE kv.lists (
    id    bigint NOT NULL,
    pos   bigint NOT NULL,
    value bytea  NOT NULL,
    PRIMARY KEY (id, pos)
);

CREATE TABLE kv.sets (
    id     bigint NOT NULL,
    member bytea  NOT NULL,
    seq    bigint NOT NULL,
    PRIMARY KEY (id, member)
);
CREATE INDEX sets_by_seq ON kv.sets (id, seq);

-- A member's hash (kv.zset_member_hash(member), 62 bits of its XXH3) leads
-- the primary key: a member is found by (id, hash, member), and ZSCAN walks
-- a zset in hash order with the hash as its cursor, as Redis walks its
-- dict, so no third index is needed for it. A new score is a non-HOT update
-- (score is in zsets_by_score), which adds an entry to every index: under
-- ZADD at -P 16 the (id, seq) index ZSCAN walked before cost a quarter of
-- the worker.
CREATE TABLE kv.zsets (
    id     bigint           NOT NULL,
    member bytea            NOT NULL,
    score  double precision NOT NULL,
    hash   bigint           NOT NULL,
    PRIMARY KEY (id, hash, member)
) WITH (fillfactor = 80);
CREATE INDEX zsets_by_score ON kv.zsets (id, score, member);

-- CONFIG SET values, shared by every worker and kept across restarts.
-- Parameters not listed here have their defaults.
CREATE TABLE kv.config (
    name  text PRIMARY KEY,
    value text NOT NULL
);

-- EVAL's script cache (SCRIPT LOAD, EVAL): EVALSHA finds a script on every
-- worker and after a restart. SCRIPT FLUSH empties it.
CREATE TABLE kv.scripts (
    -- lowercase hex SHA1 of body
    sha  text  PRIMARY KEY,
    body bytea NOT NULL
);

-- FUNCTION libraries: the FUNCTION LOAD payload, shebang line included.
CREATE TABLE kv.libraries (
    name text  PRIMARY KEY,
    code bytea NOT NULL
);

-- Changes (to a transaction id) whenever kv.libraries changes; a worker
-- reloads its libraries when the version differs from the one it loaded.
CREATE TABLE kv.library_version (
    id      integer PRIMARY KEY CHECK (id = 1),
    version bigint  NOT NULL
);
INSERT INTO kv.library_version VALUES (1, 0);

-- Members of deleted or overwritten keys. Deleting a key only drops its row
-- (O(1) whatever its size); kv.sweep() frees the members in bounded steps.
-- A key's id is never reused, so orphans are invisible meanwhile.
CREATE TABLE kv.garbage (
    id   bigint PRIMARY KEY,
    type "char" NOT NULL
);

CREATE FUNCTION kv.collect_members() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO kv.garbage (id, type) VALUES (OLD.id, OLD.type) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

-- Whatever removes a key row (DEL, expiry, FLUSHDB, SQL) or gives it a new
-- id (SET over a hash) queues its members. Strings have none: the WHEN
-- clause keeps the trigger off their path.
CREATE TRIGGER collect_members_on_delete AFTER DELETE ON kv.keys
    FOR EACH ROW WHEN (OLD.type <> 's') EXECUTE FUNCTION kv.collect_members();
CREATE TRIGGER collect_members_on_new_id AFTER UPDATE OF id ON kv.keys
    FOR EACH ROW WHEN (OLD.type <> 's' AND OLD.id <> NEW.id) EXECUTE FUNCTION kv.collect_members();

-- Frees up to `budget` member rows of garbage keys; returns how many.
CREATE FUNCTION kv.sweep(budget integer) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    g record;
    n bigint;
    room bigint;
    total bigint := 0;
BEGIN
    FOR g IN SELECT id, type FROM kv.garbage ORDER BY id LIMIT 16 FOR UPDATE SKIP LOCKED LOOP
        room := budget - total;
        EXIT WHEN room <= 0;
        CASE g.type
            WHEN 'h' THEN DELETE FROM kv.hashes WHERE id = g.id AND field IN
                (SELECT field FROM kv.hashes WHERE id = g.id LIMIT room);
            WHEN 'l' THEN DELETE FROM kv.lists WHERE id = g.id AND pos IN
                (SELECT pos FROM kv.lists WHERE id = g.id LIMIT room);
            WHEN 't' THEN DELETE FROM kv.sets WHERE id = g.id AND member IN
                (SELECT member FROM kv.sets WHERE id = g.id LIMIT room);
            WHEN 'z' THEN DELETE FROM kv.zsets WHERE id = g.id AND (hash, member) IN
                (SELECT hash, member FROM kv.zsets WHERE id = g.id LIMIT room);
            ELSE NULL;
        END CASE;
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
        IF n < room THEN
            DELETE FROM kv.garbage WHERE id = g.id;
        END IF;
    END LOOP;
    RETURN total;
END $$;

-- Pub/sub across processes (see src/cmd/pubsub.rs). Both tables are
-- UNLOGGED: subscriptions die with their connections, and a message in
-- flight is not data.
--
-- kv.subscriptions: how many clients of each worker subscribe to each
-- channel ('c'), pattern ('p') or shard channel ('s'), so PUBLISH counts
-- receivers on every worker and kv.publish() counts them from SQL.
CREATE UNLOGGED TABLE kv.subscriptions (
    kind "char" NOT NULL,
    channel bytea NOT NULL,
    worker integer NOT NULL,
    clients integer NOT NULL,
    PRIMARY KEY (kind, channel, worker)
);

-- kv.pubsub_spill: messages too large or too many for a NOTIFY payload
-- travel here; the NOTIFY carries the id. Rows are removed a minute later.
CREATE UNLOGGED TABLE kv.pubsub_spill (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel bytea NOT NULL,
    message bytea NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pubsub_spill_created ON kv.pubsub_spill (created);

-- Only the extension owner writes these tables directly; Redis clients and
-- the kv.* functions go through the command layer.
REVOKE ALL ON ALL TABLES IN SCHEMA kv FROM PUBLIC;
REVOKE ALL ON SEQUENCE kv.key_ids FROM PUBLIC;
REVOKE ALL ON FUNCTION kv.sweep(integer), kv.collect_members() FROM PUBLIC;
