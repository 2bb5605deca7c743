-- The keyspace. One row per key; members of hashes, lists, sets and sorted
-- sets live in their own tables keyed by the key's id, so RENAME and MOVE
-- only touch this row.
CREATE SEQUENCE kv.key_ids;

CREATE TABLE kv.keys (
    db        smallint NOT NULL CHECK (db BETWEEN 0 AND 15),
    key       bytea    NOT NULL,
    id        bigint   NOT NULL DEFAULT nextval('kv.key_ids'),
    -- s string, h hash, l list, t set, z sorted set
    type      "char"   NOT NULL,
    -- unix time in milliseconds; NULL means no TTL
    expire_at bigint,
    -- the payload of a string; NULL for the other types
    value     bytea,
    PRIMARY KEY (db, key)
) WITH (fillfactor = 90);

CREATE UNIQUE INDEX keys_id ON kv.keys (id);
-- The active expiry cycle's index: only keys with a TTL.
CREATE INDEX keys_expire_at ON kv.keys (expire_at) WHERE expire_at IS NOT NULL;

CREATE TABLE kv.hashes (
    id    bigint NOT NULL,
    field bytea  NOT NULL,
    value bytea  NOT NULL,
    PRIMARY KEY (id, field)
);

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
    PRIMARY KEY (id, member)
);

CREATE TABLE kv.zsets (
    id     bigint           NOT NULL,
    member bytea            NOT NULL,
    score  double precision NOT NULL,
    PRIMARY KEY (id, member)
);
CREATE INDEX zsets_by_score ON kv.zsets (id, score, member);

-- Only the extension owner writes these tables directly; Redis clients and
-- the kv.* functions go through the command layer.
REVOKE ALL ON ALL TABLES IN SCHEMA kv FROM PUBLIC;
REVOKE ALL ON SEQUENCE kv.key_ids FROM PUBLIC;
