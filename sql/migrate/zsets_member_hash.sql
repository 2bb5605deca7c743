-- Brings a kv schema created before kv.zsets was keyed by member hash
-- (2026-11-24) to sql/schema.sql's: the seq column becomes the member's
-- hash, the primary key (id, hash, member), and the (id, seq) index goes.
-- pgkv has no released version yet, so this is not an extension update
-- script (the version stayed 0.1.0); scripts/cluster.sh runs it when it
-- finds kv.zsets.seq, and any other cluster can run it the same way
-- (psql -v ON_ERROR_STOP=1 -f sql/migrate/zsets_member_hash.sql) after
-- installing this build. One transaction: all of it or nothing.
BEGIN;
CREATE FUNCTION kv.zset_member_hash(member bytea) RETURNS bigint
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS '$libdir/pgkv', 'zset_member_hash_wrapper';
ALTER EXTENSION pgkv ADD FUNCTION kv.zset_member_hash(bytea);
DROP INDEX kv.zsets_by_seq;
ALTER TABLE kv.zsets DROP CONSTRAINT zsets_pkey;
ALTER TABLE kv.zsets RENAME COLUMN seq TO hash;
UPDATE kv.zsets SET hash = kv.zset_member_hash(member);
ALTER TABLE kv.zsets ADD PRIMARY KEY (id, hash, member);
CREATE OR REPLACE FUNCTION kv.sweep(budget integer) RETURNS bigint LANGUAGE plpgsql AS $$
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
COMMIT;
