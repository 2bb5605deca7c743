-- Who may use pgkv from SQL. Runs last, once every kv function exists.
--
-- The kv.* functions run as the extension owner (SECURITY DEFINER, with a
-- fixed search_path), so callers need no rights on the tables; only the
-- owner and members of pgkv_client may execute them:
--     GRANT pgkv_client TO app_user;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgkv_client') THEN
        CREATE ROLE pgkv_client NOLOGIN;
    END IF;
END $$;

GRANT USAGE ON SCHEMA kv TO pgkv_client;

DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = 'kv'::regnamespace
          AND p.proname NOT IN ('sweep', 'collect_members')
    LOOP
        -- enable_seqscan = off, enable_bitmapscan = off: the functions'
        -- plans are kept for the session, and every statement they run is
        -- written for an index, in its order. force_generic_plan: planned
        -- once, not again on every call (see the worker's settings).
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp '
                       'SET enable_seqscan = off SET enable_bitmapscan = off '
                       'SET plan_cache_mode = force_generic_plan', f);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO pgkv_client', f);
    END LOOP;
END $$;

-- With pgkv.auth = 'postgres', a RESP client logs in as a role that is a
-- member of pgkv_client, and runs its commands as that role: what the role
-- may do to the kv tables is what the client may do. pgkv_client itself has
-- no rights on the tables (SQL users go through the kv.* functions); the
-- role pgkv_redis has read-write rights for Redis clients:
--     GRANT pgkv_client, pgkv_redis TO redis_app;          -- read-write
--     GRANT pgkv_client TO redis_reader;
--     GRANT SELECT ON ALL TABLES IN SCHEMA kv TO redis_reader;  -- read-only
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgkv_redis') THEN
        CREATE ROLE pgkv_redis NOLOGIN;
    END IF;
END $$;
GRANT USAGE ON SCHEMA kv TO pgkv_redis;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA kv TO pgkv_redis;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA kv TO pgkv_redis;
