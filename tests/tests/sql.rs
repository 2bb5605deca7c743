//! The typed SQL functions: natural SQL types, the caller's transaction, and
//! the same data RESP clients see.

use pgkv_tests::{shared, PgCluster};
use redis::Commands;

/// One SQL expression's value as text ("NULL" for NULL).
fn one(sql: &mut impl postgres::GenericClient, q: &str) -> String {
    let row = sql.query_one(&format!("SELECT ({q})::text"), &[]).unwrap();
    row.get::<_, Option<String>>(0).unwrap_or_else(|| "NULL".into())
}

/// Counters of `INFO stats`, by name.
fn stats<const N: usize>(r: &mut redis::Connection, names: [&str; N]) -> [i64; N] {
    let info: String = redis::cmd("INFO").arg("stats").query(r).unwrap();
    names.map(|name| {
        let line = info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':'));
        line.unwrap_or_else(|| panic!("no {name} in INFO")).trim().parse().unwrap()
    })
}

#[test]
fn typed_functions_return_natural_sql_types() {
    let c = shared();
    let mut sql = c.sql();
    sql.batch_execute("SET pgkv.sql_db = 13").unwrap();
    sql.batch_execute("SELECT kv.call('FLUSHDB')").unwrap();
    assert_eq!(one(&mut sql, "kv.hset('h', 'f1', 'v1')"), "1");
    assert_eq!(one(&mut sql, "kv.hset('h', 'f2', 'v2')"), "1");
    assert_eq!(one(&mut sql, "kv.hget('h', 'f2')"), "v2");
    assert_eq!(one(&mut sql, "kv.hget('h', 'nope')"), "NULL");
    let rows = sql.query("SELECT field, value FROM kv.hgetall('h')", &[]).unwrap();
    let got: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(got, vec![("f1".into(), "v1".into()), ("f2".into(), "v2".into())]);
    assert_eq!(one(&mut sql, "kv.hdel('h', 'f1', 'nope')"), "1");
    assert_eq!(one(&mut sql, "kv.rpush('l', 'a', 'b', 'c')"), "3");
    assert_eq!(one(&mut sql, "kv.lpush('l', 'z')"), "4");
    let rows = sql.query("SELECT * FROM kv.lrange('l')", &[]).unwrap();
    let got: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(got, vec!["z", "a", "b", "c"]);
    let rows = sql.query("SELECT * FROM kv.lrange('l', 1, 2)", &[]).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(one(&mut sql, "kv.lpop('l')"), "z");
    assert_eq!(one(&mut sql, "kv.rpop('l')"), "c");
    assert_eq!(one(&mut sql, "kv.llen('l')"), "2");
    assert_eq!(one(&mut sql, "kv.sadd('s', 'x', 'y', 'x')"), "2");
    assert_eq!(one(&mut sql, "kv.sismember('s', 'y')"), "true");
    assert_eq!(one(&mut sql, "(SELECT count(*) FROM kv.smembers('s'))"), "2");
    assert_eq!(one(&mut sql, "kv.srem('s', 'x')"), "1");
    assert_eq!(one(&mut sql, "kv.zadd('z', 2.5, 'b')"), "1");
    assert_eq!(one(&mut sql, "kv.zadd('z', 1, 'a')"), "1");
    assert_eq!(one(&mut sql, "kv.zadd('z', 'infinity', 'top')"), "1");
    assert_eq!(one(&mut sql, "kv.zscore('z', 'b')"), "2.5");
    let rows = sql.query("SELECT member, score FROM kv.zrange('z')", &[]).unwrap();
    let got: Vec<(String, f64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(got, vec![("a".into(), 1.0), ("b".into(), 2.5), ("top".into(), f64::INFINITY)]);
    assert_eq!(one(&mut sql, "kv.zrem('z', 'a')"), "1");
    assert_eq!(one(&mut sql, "kv.incr('n')"), "1");
    assert_eq!(one(&mut sql, "kv.incr('n', 41)"), "42");
    assert_eq!(one(&mut sql, "kv.exists('n', 'h', 'nope')"), "2");
    assert_eq!(one(&mut sql, "kv.ttl('n')"), "-1");
    assert_eq!(one(&mut sql, "kv.expire('n', 100000)"), "true");
    assert!(one(&mut sql, "kv.ttl('n')").parse::<i64>().unwrap() > 90000);
    assert_eq!(one(&mut sql, "kv.ttl('nope')"), "-2");
    // RESP clients see the same data.
    let mut r = c.redis();
    let _: () = redis::cmd("SELECT").arg(13).query(&mut r).unwrap();
    let h: Vec<(String, String)> = r.hgetall("h").unwrap();
    assert_eq!(h, vec![("f2".to_string(), "v2".to_string())]);
    let n: i64 = r.get("n").unwrap();
    assert_eq!(n, 42);
    // Wrong types raise Redis's error.
    let err = sql.query_one("SELECT kv.hget('l', 'x')", &[]).unwrap_err();
    assert_eq!(err.as_db_error().unwrap().message(), "WRONGTYPE Operation against a key holding the wrong kind of value");
}

#[test]
fn typed_writes_roll_back_with_the_transaction() {
    let c = shared();
    let mut sql = c.sql();
    sql.batch_execute("SET pgkv.sql_db = 14").unwrap();
    let mut tx = sql.transaction().unwrap();
    tx.execute("SELECT kv.rpush('jobs', 'one', 'two')", &[]).unwrap();
    tx.execute("SELECT kv.hset('user:1', 'name', 'ann')", &[]).unwrap();
    tx.execute("SELECT kv.zadd('board', 10, 'ann')", &[]).unwrap();
    let n: i64 = tx.query_one("SELECT kv.llen('jobs')", &[]).unwrap().get(0);
    assert_eq!(n, 2);
    tx.rollback().unwrap();
    let mut r = c.redis();
    let _: () = redis::cmd("SELECT").arg(14).query(&mut r).unwrap();
    let exists: i64 = redis::cmd("EXISTS").arg("jobs").arg("user:1").arg("board").query(&mut r).unwrap();
    assert_eq!(exists, 0);
    assert_eq!(c.psql("SELECT count(*) FROM kv.keys WHERE db = 14"), "0");
}

/// Adding members a set already has, or rewriting a hash's or sorted
/// set's existing members, leaves the key row as it is (no new version):
/// its count and sequence counter did not change. New members do change it.
#[test]
fn writes_that_add_no_member_leave_the_key_row_alone() {
    let c = shared();
    let mut r = c.redis();
    let _: () = redis::cmd("SELECT").arg(11).query(&mut r).unwrap();
    let mut sql = c.sql();
    let version = |sql: &mut postgres::Client, key: &str| -> (String, i64) {
        let row = sql.query_one("SELECT ctid::text, card FROM kv.keys WHERE db = 11 AND key = convert_to($1, 'UTF8')", &[&key]).unwrap();
        (row.get(0), row.get(1))
    };
    let _: () = redis::cmd("SADD").arg("kr:s").arg(&["a", "b"]).query(&mut r).unwrap();
    let _: () = redis::cmd("HSET").arg("kr:h").arg(&["f", "1", "g", "2"]).query(&mut r).unwrap();
    let _: () = redis::cmd("ZADD").arg("kr:z").arg(&["1", "a", "2", "b"]).query(&mut r).unwrap();
    let before = [version(&mut sql, "kr:s"), version(&mut sql, "kr:h"), version(&mut sql, "kr:z")];
    let (added, updated, rescored, incremented): (i64, i64, i64, f64) = redis::pipe()
        .cmd("SADD").arg("kr:s").arg(&["b", "a", "b"])
        .cmd("HSET").arg("kr:h").arg(&["f", "10", "g", "20"])
        .cmd("ZADD").arg("kr:z").arg(&["5", "a"])
        .cmd("ZINCRBY").arg("kr:z").arg(1).arg("b")
        .query(&mut r)
        .unwrap();
    assert_eq!((added, updated, rescored, incremented), (0, 0, 0, 3.0));
    let after = [version(&mut sql, "kr:s"), version(&mut sql, "kr:h"), version(&mut sql, "kr:z")];
    assert_eq!(after, before, "the key rows kept their versions");
    let h: Vec<(String, String)> = r.hgetall("kr:h").unwrap();
    assert_eq!(h, [("f".to_string(), "10".to_string()), ("g".to_string(), "20".to_string())]);
    let z: Vec<(String, f64)> = r.zrange_withscores("kr:z", 0, -1).unwrap();
    assert_eq!(z, [("b".to_string(), 3.0), ("a".to_string(), 5.0)]);
    // A new member: a new version, with the count.
    let _: () = redis::cmd("SADD").arg("kr:s").arg("c").query(&mut r).unwrap();
    let (tid, card) = version(&mut sql, "kr:s");
    assert_ne!(tid, before[0].0);
    assert_eq!(card, 3);
    let members: Vec<String> = redis::cmd("SSCAN").arg("kr:s").arg(0).arg("COUNT").arg(10).query::<(String, Vec<String>)>(&mut r).unwrap().1;
    assert_eq!(members.len(), 3);
}

#[test]
fn sql_reads_never_see_expired_keys() {
    let c = shared();
    let mut r = c.redis();
    let _: () = redis::cmd("SELECT").arg(15).query(&mut r).unwrap();
    let _: () = redis::cmd("HSET").arg("exp:h").arg("f").arg("v").query(&mut r).unwrap();
    let _: () = redis::cmd("PEXPIRE").arg("exp:h").arg(100).query(&mut r).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut sql = c.sql();
    sql.batch_execute("SET pgkv.sql_db = 15").unwrap();
    // Even in a read-only transaction, which cannot delete the row.
    let mut tx = sql.build_transaction().read_only(true).start().unwrap();
    let v: Option<String> = tx.query_one("SELECT kv.hget('exp:h', 'f')", &[]).unwrap().get(0);
    assert_eq!(v, None);
    let n: i64 = tx.query_one("SELECT count(*) FROM kv.hgetall('exp:h')", &[]).unwrap().get(0);
    assert_eq!(n, 0);
    tx.commit().unwrap();
}

#[test]
fn hot_single_key_queries_use_indexes() {
    let c = shared();
    c.psql("INSERT INTO kv.keys (db, key, type, value) SELECT 5, ('explain:' || g)::bytea, 's', 'x' FROM generate_series(1, 20000) g ON CONFLICT DO NOTHING");
    c.psql("INSERT INTO kv.hashes (id, field, value, seq) SELECT 424242, ('f' || g)::bytea, 'v', g FROM generate_series(1, 20000) g ON CONFLICT DO NOTHING");
    c.psql("INSERT INTO kv.lists (id, pos, value) SELECT 434343, g, 'v' FROM generate_series(1, 20000) g ON CONFLICT DO NOTHING");
    c.psql("INSERT INTO kv.zsets (id, member, score, hash) SELECT 444444, ('m' || g)::bytea, g, kv.zset_member_hash(('m' || g)::bytea) FROM generate_series(1, 20000) g ON CONFLICT DO NOTHING");
    c.psql("ANALYZE kv.keys, kv.hashes, kv.lists, kv.zsets");
    for sql in [
        "SELECT id, type, expire_at, value, card, head FROM kv.keys WHERE db = 5 AND key = 'explain:7'::bytea",
        "DELETE FROM kv.keys WHERE db = 5 AND key = ANY ('{explain:7}'::bytea[])",
        "UPDATE kv.keys SET expire_at = NULL, value = coalesce(NULL, value), card = 1, head = 0 WHERE db = 5 AND key = 'explain:7'::bytea AND id = 7",
        "DELETE FROM kv.keys WHERE db = 5 AND key = 'explain:7'::bytea AND id = 7",
        "SELECT id, type, expire_at, value, card, head FROM kv.keys WHERE db = 5 AND key = 'explain:7'::bytea FOR UPDATE",
        "SELECT value FROM kv.hashes WHERE id = 424242 AND field = 'f7'::bytea",
        "SELECT value FROM kv.lists WHERE id = 434343 AND pos BETWEEN 7 AND 7",
        "DELETE FROM kv.lists WHERE id = 434343 AND pos BETWEEN 1 AND 1",
        "DELETE FROM kv.lists WHERE id = 434343 AND pos < 3",
        "DELETE FROM kv.lists WHERE id = 434343 AND pos > 19990",
        "SELECT NOT EXISTS (SELECT 1 FROM kv.keys WHERE db < 5) AND NOT EXISTS (SELECT 1 FROM kv.keys WHERE db > 5)",
        "SELECT score FROM kv.zsets WHERE id = 444444 AND hash = kv.zset_member_hash('m7') AND member = 'm7'::bytea",
        "SELECT member, score FROM kv.zsets WHERE id = 444444 AND score BETWEEN 5 AND 9 ORDER BY score, member",
        "SELECT count(*) FROM kv.zsets WHERE id = 444444 AND (score, member) < (10::float8, 'm10'::bytea)",
        "SELECT count(*) FROM kv.zsets WHERE id = 444444 AND (score, member) > (19990::float8, 'm19990'::bytea)",
        "SELECT seq, field, value FROM kv.hashes WHERE id = 424242 AND seq >= 500 ORDER BY seq LIMIT 10",
        "SELECT hash, member, score FROM kv.zsets WHERE id = 444444 AND hash >= 500 ORDER BY hash FETCH FIRST 10 ROWS WITH TIES",
        "DELETE FROM kv.zsets AS z USING unnest('{m7,m8}'::bytea[], '{1,2}'::int8[]) AS u(m, h) WHERE z.id = 444444 AND z.hash = u.h AND z.member = u.m",
    ] {
        let plan = c.psql(&format!("EXPLAIN {sql}"));
        assert!(plan.contains("Index") && !plan.contains("Seq Scan"), "{sql}\n{plan}");
        // A rank counts one side of the member, bounded in the index.
        if sql.contains("(score, member)") {
            assert!(plan.contains("zsets_by_score") && plan.contains("Index Cond: ((id = 444444) AND (ROW(score, member)"), "{sql}\n{plan}");
        }
        // LTRIM's ends, and FLUSHDB's look at the other databases, are
        // bounded in the index, not filtered.
        if sql.contains("pos <") || sql.contains("pos >") || sql.contains("db <") {
            assert!(!plan.contains("Filter"), "{sql}\n{plan}");
        }
    }
    c.psql("DELETE FROM kv.hashes WHERE id = 424242; DELETE FROM kv.lists WHERE id = 434343; DELETE FROM kv.zsets WHERE id = 444444; DELETE FROM kv.keys WHERE db = 5");
}

/// The commands of pub/sub, blocking and transactions from SQL: the ones
/// Redis flags `noscript` (connection state, blocking) are refused.
#[test]
fn pubsub_blocking_and_transaction_commands_from_sql() {
    let c = shared();
    let mut sql = c.sql();
    sql.batch_execute("SET pgkv.sql_db = 12").unwrap();
    sql.batch_execute("SELECT kv.call('DEL', 'sqlb:l', 'sqlb:z')").unwrap();
    let call = |sql: &mut postgres::Client, q: &str| -> Result<Option<String>, String> {
        sql.query_one(&format!("SELECT ({q})::text"), &[]).map(|r| r.get::<_, Option<String>>(0)).map_err(|e| {
            e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string())
        })
    };
    // Blocking commands carry Redis 7.0's `noscript` flag: refused from SQL
    // as from scripts. Their non-blocking twins work.
    let refused = Err("ERR This Redis command is not allowed from SQL".to_string());
    assert_eq!(call(&mut sql, "kv.call('BLPOP', 'sqlb:l', '0')"), refused);
    assert_eq!(call(&mut sql, "kv.call('BZPOPMIN', 'sqlb:z', '0')"), refused);
    assert_eq!(call(&mut sql, "kv.rpush('sqlb:l', 'a')"), Ok(Some("1".into())));
    assert_eq!(call(&mut sql, "kv.call('LMPOP', '1', 'sqlb:l', 'LEFT')"), Ok(Some(r#"["sqlb:l", ["a"]]"#.into())));
    assert_eq!(call(&mut sql, "kv.call('PUBLISH', 'sqlb:nobody', 'x')"), Ok(Some("0".into())));
    assert_eq!(call(&mut sql, "kv.call('PUBSUB', 'NUMSUB', 'sqlb:nobody')"), Ok(Some(r#"["sqlb:nobody", 0]"#.into())));
    for cmd in ["'SUBSCRIBE', 'sqlb:ch'", "'MULTI'", "'EXEC'", "'WATCH', 'sqlb:l'"] {
        assert_eq!(call(&mut sql, &format!("kv.call({cmd})")), refused, "{cmd}");
    }
}

/// The batch writes changed key rows back through the executor's
/// single-row update, not an UPDATE statement: a user's trigger on kv.keys
/// still fires once per row written, with the old and new values, as for
/// the statement (`UPDATE OF value`, whose column list the write-back
/// names), and one on a column no write changes (`db`) does not.
/// A key written back twice in one transaction goes by key the second
/// time (the version its lock found is gone).
#[test]
fn key_row_write_back_fires_user_triggers() {
    let c = shared();
    c.psql(
        "CREATE TABLE public.wb_log (key text, old text, new text, expire boolean); \
         CREATE TABLE public.wb_ids (key text); \
         CREATE FUNCTION public.wb_log() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           INSERT INTO public.wb_log VALUES (convert_from(NEW.key, 'UTF8'), convert_from(OLD.value, 'UTF8'), \
             convert_from(NEW.value, 'UTF8'), NEW.expire_at IS NOT NULL); RETURN NULL; END $$; \
         CREATE FUNCTION public.wb_ids() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           INSERT INTO public.wb_ids VALUES (convert_from(NEW.key, 'UTF8')); RETURN NULL; END $$; \
         CREATE TRIGGER wb_log AFTER UPDATE OF value ON kv.keys FOR EACH ROW WHEN (NEW.db = 8) EXECUTE FUNCTION public.wb_log(); \
         CREATE TRIGGER wb_ids AFTER UPDATE OF db ON kv.keys FOR EACH ROW WHEN (NEW.db = 8) EXECUTE FUNCTION public.wb_ids();",
    );
    let mut r = c.redis();
    let _: () = redis::cmd("SELECT").arg(8).query(&mut r).unwrap();
    let _: () = redis::cmd("MSET").arg(&["wb:a", "1", "wb:b", "1", "wb:c", "1"]).query(&mut r).unwrap();
    // One batch: two overwrites in place, a TTL, and a key changed twice
    // with a statement (DEL of another key reads kv.keys wholesale, so the
    // batch writes back what it has before it) in between.
    let mut p = redis::pipe();
    p.cmd("SET").arg("wb:a").arg("2").cmd("SET").arg("wb:b").arg("2").cmd("EXPIRE").arg("wb:b").arg(1000);
    p.cmd("INCR").arg("wb:c").cmd("KEYS").arg("wb:none*").cmd("INCR").arg("wb:c");
    let _: () = p.query(&mut r).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut r).unwrap();
    let _: () = redis::cmd("SET").arg("wb:a").arg("3").query(&mut r).unwrap();
    let _: () = redis::cmd("KEYS").arg("wb:none*").query(&mut r).unwrap();
    let _: () = redis::cmd("SET").arg("wb:a").arg("4").query(&mut r).unwrap();
    let _: () = redis::cmd("EXEC").query(&mut r).unwrap();
    let v: Vec<Option<String>> = redis::cmd("MGET").arg(&["wb:a", "wb:b", "wb:c"]).query(&mut r).unwrap();
    assert_eq!(v, vec![Some("4".into()), Some("2".into()), Some("3".into())]);
    let ttl: i64 = redis::cmd("TTL").arg("wb:b").query(&mut r).unwrap();
    assert!((990..=1000).contains(&ttl), "{ttl}");
    let log = c.psql("SELECT string_agg(key || ':' || old || '>' || new || ':' || expire, ' ' ORDER BY key, old) FROM public.wb_log");
    assert_eq!(log, "wb:a:1>2:false wb:a:2>3:false wb:a:3>4:false wb:b:1>2:true wb:c:1>2:false wb:c:2>3:false");
    assert_eq!(c.psql("SELECT string_agg(key, ' ') FROM public.wb_ids"), "");
    c.psql(
        "DROP TRIGGER wb_log ON kv.keys; DROP TRIGGER wb_ids ON kv.keys; DROP FUNCTION public.wb_log(); \
         DROP FUNCTION public.wb_ids(); DROP TABLE public.wb_log, public.wb_ids; DELETE FROM kv.keys WHERE db = 8",
    );
}

/// Plans are made once and kept (force_generic_plan), so a range read
/// planned while its table was analyzed empty must not become a bitmap
/// scan plus a sort once the table has grown: under the settings the kv
/// functions (and the worker) run with, every range read is an index scan
/// in the index's order, whatever the statistics said at planning time.
#[test]
fn range_reads_planned_on_empty_tables_stay_ordered_index_scans() {
    let c = shared();
    let mut sql = c.sql();
    let config: Vec<String> = sql
        .query_one("SELECT proconfig FROM pg_proc WHERE oid = 'kv.lrange(text, bigint, bigint)'::regprocedure", &[])
        .unwrap()
        .get(0);
    for setting in &config {
        let (name, value) = setting.split_once('=').unwrap();
        sql.batch_execute(&format!("SET {name} = '{value}'")).unwrap();
    }
    assert!(config.iter().any(|s| s == "enable_bitmapscan=off"), "{config:?}");
    sql.batch_execute(
        "CREATE TEMP TABLE lists (LIKE kv.lists INCLUDING ALL); CREATE TEMP TABLE hashes (LIKE kv.hashes INCLUDING ALL); \
         CREATE TEMP TABLE zsets (LIKE kv.zsets INCLUDING ALL); ANALYZE lists, hashes, zsets; \
         PREPARE lrange(int8, int8, int8) AS SELECT value FROM lists WHERE id = $1 AND pos BETWEEN $2 AND $3 ORDER BY pos; \
         PREPARE hgetall(int8) AS SELECT field, value FROM hashes WHERE id = $1 ORDER BY seq; \
         PREPARE zrange(int8, int8, int8) AS SELECT member, score FROM zsets WHERE id = $1 ORDER BY score, member OFFSET $2 LIMIT $3; \
         PREPARE zrangebyscore(int8, float8, float8) AS SELECT member, score FROM zsets WHERE id = $1 AND score BETWEEN $2 AND $3 ORDER BY score, member; \
         PREPARE zrank(int8, float8, bytea) AS SELECT count(*) FROM zsets WHERE id = $1 AND (score, member) < ($2, $3); \
         INSERT INTO lists SELECT 1, g, 'v' FROM generate_series(1, 100000) g; \
         INSERT INTO hashes SELECT 1, ('f' || g)::bytea, 'v', g FROM generate_series(1, 100000) g; \
         INSERT INTO zsets SELECT 1, ('m' || g)::bytea, g, g FROM generate_series(1, 100000) g;",
    )
    .unwrap();
    for run in ["lrange(1, 0, 99)", "hgetall(1)", "zrange(1, 0, 99)", "zrangebyscore(1, 5, 500)", "zrank(1, 50, 'm50')"] {
        let plan: Vec<String> = sql.query(&format!("EXPLAIN EXECUTE {run}"), &[]).unwrap().iter().map(|r| r.get(0)).collect();
        let plan = plan.join("\n");
        assert!((plan.contains("Index Scan") || plan.contains("Index Only Scan")) && !plan.contains("Sort") && !plan.contains("Bitmap"), "{run}\n{plan}");
        if run.starts_with("zrank") {
            assert!(plan.contains("Index Cond: ((id = $1) AND (ROW(score, member) < ROW($2, $3)))"), "{run}\n{plan}");
        }
    }
}

/// A CHECK constraint a user adds to kv.keys binds the worker's writes,
/// and a changed one binds them at once: the worker keeps its tables'
/// compiled CHECK constraints across batches (`direct::checks`), keyed by
/// the constraints' text. On a cluster of its own, as the constraints
/// would bind every other test's writes too.
#[test]
fn user_check_constraints_bind_the_workers_writes() {
    let c = PgCluster::start();
    let mut r = c.redis();
    let set = |r: &mut redis::Connection, value: &str| redis::cmd("SET").arg("k").arg(value).query::<()>(r);
    let get = |r: &mut redis::Connection| -> String { r.get("k").unwrap() };
    // Overwrites in place go through the write-back; a new key through
    // the queued upsert: both are checked.
    set(&mut r, "short").unwrap();
    c.psql("ALTER TABLE kv.keys ADD CONSTRAINT short_values CHECK (length(value) < 10)");
    let err = set(&mut r, "a much longer value").unwrap_err();
    assert!(err.to_string().contains("short_values"), "{err}");
    assert_eq!(get(&mut r), "short");
    let err = redis::cmd("SET").arg("new").arg("a much longer value").query::<()>(&mut r).unwrap_err();
    assert!(err.to_string().contains("short_values"), "{err}");
    // Replaced by a stricter one: the next batch applies the new text.
    set(&mut r, "abc").unwrap();
    c.psql("ALTER TABLE kv.keys DROP CONSTRAINT short_values, ADD CONSTRAINT shorter_values CHECK (length(value) < 4)");
    let err = set(&mut r, "12345").unwrap_err();
    assert!(err.to_string().contains("shorter_values"), "{err}");
    set(&mut r, "123").unwrap();
    assert_eq!(get(&mut r), "123");
    let _: i64 = r.incr("k", 1).unwrap();
    // Dropped: only the table's own constraint is left.
    c.psql("ALTER TABLE kv.keys DROP CONSTRAINT shorter_values");
    set(&mut r, "a much longer value").unwrap();
    assert_eq!(get(&mut r), "a much longer value");
}

/// A new key is inserted at the end of its batch without a conflict check
/// (`direct::insert_keys`). When a SQL transaction creates the same key
/// meanwhile, the insert waits for it, fails on the primary key once it
/// commits, and the worker runs the batch again: the SET then finds the
/// committed row and overwrites it, as the upsert always did, and an INCR
/// increments it. On a cluster of its own, to count the re-runs.
#[test]
fn a_key_created_by_sql_meanwhile_is_overwritten_by_set_and_incremented_by_incr() {
    let c = PgCluster::start();
    let retries = |r: &mut redis::Connection| stats(r, ["pgkv_batch_retries"])[0];
    let mut r = c.redis();
    // A worker's first batches also run statements (loading its settings),
    // which send the queued SETs ahead of the batch's end, as upserts.
    let _: () = r.set("warm", "up").unwrap();
    let before = retries(&mut r);
    let mut sql = c.sql();
    let mut tx = sql.transaction().unwrap();
    tx.batch_execute("SELECT kv.set('race', 'from sql')").unwrap();
    let url = c.redis_url();
    let setter = std::thread::spawn(move || {
        let mut r = redis::Client::open(url).unwrap().get_connection().unwrap();
        redis::cmd("SET").arg("race").arg("from resp").query::<String>(&mut r)
    });
    // The SET's batch found no row (the insert is not committed) and now
    // waits for this transaction on the primary key.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(!setter.is_finished());
    tx.commit().unwrap();
    assert_eq!(setter.join().unwrap().unwrap(), "OK");
    let value: String = r.get("race").unwrap();
    assert_eq!(value, "from resp");
    let rows: i64 = sql.query_one("SELECT count(*) FROM kv.keys WHERE db = 0 AND key = 'race'", &[]).unwrap().get(0);
    assert_eq!(rows, 1);
    assert_eq!(retries(&mut r), before + 1);
    // New keys with no one else about: inserted directly, no re-run.
    let _: () = redis::cmd("MSET").arg(&["new:1", "a", "new:2", "b"]).query(&mut r).unwrap();
    let _: () = redis::cmd("SET").arg("new:3").arg("c").arg("PX").arg(100_000).query(&mut r).unwrap();
    let got: Vec<String> = r.mget(&["new:1", "new:2", "new:3"]).unwrap();
    assert_eq!(got, ["a", "b", "c"]);
    let ttl: i64 = r.pttl("new:3").unwrap();
    assert!(ttl > 0 && ttl <= 100_000, "{ttl}");
    let ids: i64 = sql.query_one("SELECT count(DISTINCT id) FROM kv.keys WHERE db = 0 AND convert_from(key, 'UTF8') LIKE 'new:%'", &[]).unwrap().get(0);
    assert_eq!(ids, 3);
    assert_eq!(retries(&mut r), before + 1);

    // INCR of a missing key queues its creation with the batch's other new
    // keys. Alone: no re-run, and later commands of the batch see it.
    let (a, b, got): (i64, i64, String) = redis::pipe().incr("new:4", 1).incr("new:4", 5).get("new:4").query(&mut r).unwrap();
    assert_eq!((a, b, got.as_str()), (1, 6, "6"));
    assert_eq!(retries(&mut r), before + 1);
    // Created by SQL meanwhile: the batch runs again and increments the
    // committed value; no increment is lost. Then the same where the
    // direct insert does not apply (kv.keys has a column of its own): the
    // queued creation must still not overwrite.
    let race = |sql: &mut postgres::Client, key: &'static str| {
        let mut tx = sql.transaction().unwrap();
        tx.execute("SELECT kv.set($1, '10')", &[&key]).unwrap();
        let url = c.redis_url();
        let incr = std::thread::spawn(move || {
            let mut r = redis::Client::open(url).unwrap().get_connection().unwrap();
            redis::cmd("INCR").arg(key).query::<i64>(&mut r)
        });
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert!(!incr.is_finished());
        tx.commit().unwrap();
        assert_eq!(incr.join().unwrap().unwrap(), 11, "{key}");
    };
    race(&mut sql, "counted");
    assert_eq!(r.get::<_, String>("counted").unwrap(), "11");
    assert_eq!(retries(&mut r), before + 2);
    sql.batch_execute("ALTER TABLE kv.keys ADD COLUMN note text").unwrap();
    race(&mut sql, "counted:2");
    assert_eq!(r.get::<_, String>("counted:2").unwrap(), "11");
    assert_eq!(retries(&mut r), before + 3);
}

/// Overwrites stay HOT updates: key rows and hash fields rewritten again
/// and again, a few per page in each batch, keep their heap pages, because
/// the worker's writes prune the dead versions of earlier batches when a
/// page runs out of room (`direct::make_room`; its index fetches no longer
/// prune). Without that pruning the pages fill up and the rows move to new
/// pages, with new index entries: a tenth of the rows stay. With it, all
/// but a handful do (2997 key rows and 3000 fields of 3000 here). On a
/// cluster of its own, so that no other test's snapshot keeps the dead
/// versions alive.
#[test]
fn overwritten_rows_stay_on_their_heap_pages() {
    let c = PgCluster::start();
    let mut r = c.redis();
    let mut sql = c.sql();
    let (n, stride) = (3000, 20);
    // Round `round` rewrites every stride-th key and field, starting at
    // round % stride: one batch touches a few rows of each page.
    let write = |r: &mut redis::Connection, round: usize, step: usize| {
        let value = format!("value-{round:04}");
        let mut pipe = redis::pipe();
        for i in (round % step..n).step_by(step) {
            pipe.cmd("SET").arg(format!("k{i}")).arg(&value).ignore();
            pipe.cmd("HSET").arg("h").arg(format!("f{i}")).arg(&value).ignore();
        }
        pipe.query::<()>(r).unwrap();
    };
    // Each table's rows by name, with the heap page each is on.
    let pages = |sql: &mut postgres::Client| -> [Vec<(Vec<u8>, i32)>; 2] {
        let keys = "SELECT key, (ctid::text::point)[0]::int FROM kv.keys WHERE db = 0 AND key <> 'h' ORDER BY 1";
        let fields = "SELECT field, (ctid::text::point)[0]::int FROM kv.hashes \
                      WHERE id = (SELECT id FROM kv.keys WHERE db = 0 AND key = 'h') ORDER BY 1";
        [keys, fields].map(|q| sql.query(q, &[]).unwrap().iter().map(|row| (row.get(0), row.get(1))).collect())
    };
    write(&mut r, 0, 1);
    // First passes let the rows settle where the fillfactors put them.
    for round in 1..=3 * stride {
        write(&mut r, round, stride);
    }
    let before = pages(&mut sql);
    let last = 6 * stride;
    for round in 3 * stride + 1..=last {
        write(&mut r, round, stride);
    }
    let after = pages(&mut sql);
    for (table, (before, after)) in ["kv.keys", "kv.hashes"].iter().zip(before.iter().zip(&after)) {
        assert_eq!((before.len(), after.len()), (n, n), "{table}");
        let stayed = before.iter().zip(after).filter(|(b, a)| b == a).count();
        eprintln!("{table}: {stayed} of {n} rows stayed on their page");
        assert!(stayed * 100 >= 90 * n, "{table}: {stayed} of {n} rows stayed on their page");
    }
    // Every row holds the value of the last round that wrote it.
    for i in [0, 7, n / 2, n - 1] {
        let round = (last - stride + 1..=last).find(|round| round % stride == i % stride).unwrap();
        let want = format!("value-{round:04}");
        let got: (String, String) = (r.get(format!("k{i}")).unwrap(), r.hget("h", format!("f{i}")).unwrap());
        assert_eq!(got, (want.clone(), want), "k{i}");
    }
}

/// The worker remembers where each key's row was found and looks there
/// first (`store::locations`). Every way a remembered place goes stale must
/// send the lookup back to the index: rows moved by a non-HOT update, a
/// table rewrite (VACUUM FULL, and FLUSHALL's TRUNCATE), line pointers
/// that VACUUM freed and other keys' rows took, and pages VACUUM cut off
/// the table's end. On a cluster of its own, for the VACUUMs.
#[test]
fn stale_key_locations_send_lookups_back_to_the_index() {
    let c = PgCluster::start();
    let mut r = c.redis();
    let mut sql = c.sql();
    let counters = |r: &mut redis::Connection| stats(r, ["pgkv_row_location_hits", "pgkv_row_location_misses"]);
    let n = 2000;
    let set_all = |r: &mut redis::Connection, keys: std::ops::Range<usize>, tag: &str| {
        let mut pipe = redis::pipe();
        for i in keys {
            pipe.cmd("SET").arg(format!("k{i}")).arg(format!("{tag}-{i}")).ignore();
        }
        pipe.query::<()>(r).unwrap();
    };
    // Every key's value (None for absent ones), read in one pipeline.
    let get_all = |r: &mut redis::Connection, keys: std::ops::Range<usize>| -> Vec<Option<String>> {
        let mut pipe = redis::pipe();
        for i in keys {
            pipe.cmd("GET").arg(format!("k{i}"));
        }
        pipe.query(r).unwrap()
    };
    let want = |keys: std::ops::Range<usize>, tag: &str| -> Vec<Option<String>> { keys.map(|i| Some(format!("{tag}-{i}"))).collect() };
    // The first key of `from..` whose value is not the one wanted.
    let check = |got: Vec<Option<String>>, want: Vec<Option<String>>, from: usize, what: &str| {
        let wrong: Vec<usize> = (0..want.len()).filter(|&i| got.get(i) != Some(&want[i])).collect();
        if let Some(&i) = wrong.first() {
            panic!("{what}: {} of {} keys wrong, k{}: {:?}, not {:?}", wrong.len(), want.len(), from + i, got.get(i), want[i]);
        }
    };

    set_all(&mut r, 0..n, "a");
    check(get_all(&mut r, 0..n), want(0..n, "a"), 0, "after SET");
    // Found where they were inserted or first read.
    let [hits, misses] = counters(&mut r);
    check(get_all(&mut r, 0..n), want(0..n, "a"), 0, "read again");
    let [hits2, misses2] = counters(&mut r);
    assert!((hits2 - hits) * 100 >= 99 * n as i64 && misses2 == misses, "{hits}/{misses} -> {hits2}/{misses2}");

    // Moved by a non-HOT update: values too long for their pages.
    sql.batch_execute("UPDATE kv.keys SET value = value || convert_to(repeat(md5(key::text), 40), 'UTF8') WHERE key < 'k5'")
        .unwrap();
    let moved = sql.query_one("SELECT count(*) FROM kv.keys WHERE key < 'k5'", &[]).unwrap().get::<_, i64>(0) as usize;
    let got = get_all(&mut r, 0..n);
    let long = got.iter().filter(|v| v.as_ref().unwrap().len() > 1000).count();
    assert_eq!(long, moved);
    for (i, v) in got.iter().enumerate() {
        assert!(v.as_ref().unwrap().starts_with(&format!("a-{i}")), "k{i}: {v:?}");
    }
    let [_, misses3] = counters(&mut r);
    assert!(misses3 - misses2 >= moved as i64 / 2, "{misses2} -> {misses3} misses, {moved} rows moved");
    set_all(&mut r, 0..n, "b");
    check(get_all(&mut r, 0..n), want(0..n, "b"), 0, "rewritten through SQL: SET again");

    // A table rewrite: every row elsewhere, in a new file.
    c.psql("VACUUM FULL kv.keys");
    check(get_all(&mut r, 0..n), want(0..n, "b"), 0, "after VACUUM FULL");
    set_all(&mut r, 0..n, "c");
    check(get_all(&mut r, 0..n), want(0..n, "c"), 0, "SET after VACUUM FULL");

    // Freed line pointers taken by other keys: the first half deleted,
    // VACUUM frees their line pointers, new keys take them.
    let deleted: Vec<String> = (0..n / 2).map(|i| format!("k{i}")).collect();
    let places = "SELECT ctid::text FROM kv.keys WHERE db = 0 AND key = ANY($1::text[]::bytea[])";
    let old_places: Vec<String> = sql.query(places, &[&deleted]).unwrap().iter().map(|row| row.get(0)).collect();
    let _: i64 = r.del(&deleted).unwrap();
    c.psql("VACUUM kv.keys");
    set_all(&mut r, n..2 * n, "d");
    let added: Vec<String> = (n..2 * n).map(|i| format!("k{i}")).collect();
    let new_places: Vec<String> = sql.query(places, &[&added]).unwrap().iter().map(|row| row.get(0)).collect();
    let taken = new_places.iter().filter(|p| old_places.contains(p)).count();
    assert!(taken * 10 >= n, "new keys took {taken} of the {} freed places", old_places.len());
    let [_, misses4] = counters(&mut r);
    let mut expected: Vec<Option<String>> = vec![None; n / 2];
    expected.extend(want(n / 2..n, "c"));
    check(get_all(&mut r, 0..n), expected, 0, "deleted, and the keys kept");
    check(get_all(&mut r, n..2 * n), want(n..2 * n, "d"), n, "keys in freed places");
    let [_, misses5] = counters(&mut r);
    assert!(misses5 > misses4, "deleted keys' places are stale");
    // Setting a deleted key creates it; it does not overwrite the key now
    // at its old place.
    set_all(&mut r, 0..n / 2, "e");
    let mut expected = want(0..n / 2, "e");
    expected.extend(want(n / 2..n, "c"));
    expected.extend(want(n..2 * n, "d"));
    check(get_all(&mut r, 0..2 * n), expected, 0, "deleted keys set again");
    let rows: i64 = sql.query_one("SELECT count(*) FROM kv.keys WHERE db = 0", &[]).unwrap().get(0);
    assert_eq!(rows, 2 * n as i64);

    // Pages cut off the table's end: every row deleted, VACUUM truncates.
    sql.batch_execute("DELETE FROM kv.keys").unwrap();
    c.psql("VACUUM kv.keys");
    let pages: i64 = sql.query_one("SELECT pg_relation_size('kv.keys') / 8192", &[]).unwrap().get(0);
    assert_eq!(pages, 0, "VACUUM truncated kv.keys");
    check(get_all(&mut r, 0..2 * n), vec![None; 2 * n], 0, "after the truncating VACUUM");
    set_all(&mut r, 0..n, "f");
    check(get_all(&mut r, 0..n), want(0..n, "f"), 0, "SET after the truncating VACUUM");

    // FLUSHALL truncates the tables (a new file, the old places gone).
    let _: () = redis::cmd("FLUSHALL").query(&mut r).unwrap();
    check(get_all(&mut r, 0..n), vec![None; n], 0, "after FLUSHALL");
    set_all(&mut r, 0..n, "g");
    check(get_all(&mut r, 0..n), want(0..n, "g"), 0, "SET after FLUSHALL");
}

/// `pgkv.row_location_cache` takes effect on reload: 0 turns the
/// remembered places off (every lookup goes by index), a size too small
/// for the keys makes them share slots, and the default brings them back,
/// with every value read right throughout. On a cluster of its own, for
/// ALTER SYSTEM.
#[test]
fn row_location_cache_is_resized_and_turned_off_on_reload() {
    let c = PgCluster::start();
    let mut r = c.redis();
    let counters = |r: &mut redis::Connection| stats(r, ["pgkv_row_location_hits", "pgkv_row_location_misses"]);
    let n = 3000;
    let set_all = |r: &mut redis::Connection, tag: &str| {
        let mut pipe = redis::pipe();
        for i in 0..n {
            pipe.cmd("SET").arg(format!("k{i}")).arg(format!("{tag}-{i}")).ignore();
        }
        pipe.query::<()>(r).unwrap();
    };
    let check_all = |r: &mut redis::Connection, tag: &str| {
        let mut pipe = redis::pipe();
        for i in 0..n {
            pipe.cmd("GET").arg(format!("k{i}"));
        }
        let got: Vec<Option<String>> = pipe.query(r).unwrap();
        for (i, v) in got.iter().enumerate() {
            assert_eq!(v.as_deref(), Some(format!("{tag}-{i}").as_str()), "k{i}");
        }
    };
    // `None`: back to the default.
    let reload = |setting: Option<&str>| {
        match setting {
            Some(setting) => c.psql(&format!("ALTER SYSTEM SET pgkv.row_location_cache = '{setting}'")),
            None => c.psql("ALTER SYSTEM RESET pgkv.row_location_cache"),
        };
        c.psql("SELECT pg_reload_conf()");
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    // Every key set to `tag` and read back twice; the hits and misses of
    // the second read.
    let reread = |r: &mut redis::Connection, tag: &str| -> [i64; 2] {
        set_all(r, tag);
        check_all(r, tag);
        let [hits, misses] = counters(r);
        check_all(r, tag);
        let [hits2, misses2] = counters(r);
        [hits2 - hits, misses2 - misses]
    };

    let [hits, _] = reread(&mut r, "a");
    assert!(hits >= n as i64 * 99 / 100, "{hits} hits");

    reload(Some("0"));
    assert_eq!(counters(&mut r), counters(&mut r), "the counters move only with lookups");
    assert_eq!(reread(&mut r, "b"), [0, 0], "off: no place is looked at");

    // 1 kB: 64 slots for 3000 keys.
    reload(Some("1kB"));
    let [hits, misses] = reread(&mut r, "c");
    assert!(hits <= 64, "{hits} hits: more than slots");
    assert!(hits + misses <= n as i64, "one look per key at most");

    reload(None);
    let [hits, _] = reread(&mut r, "d");
    assert!(hits >= n as i64 * 99 / 100, "{hits} hits");
}

/// Members are looked for where they were last found too. A member's place
/// taken by the same member of another collection (its line pointer freed
/// by VACUUM) must not pass for it, and a sorted-set member found again
/// after a score change (never HOT) is found where the new score went.
#[test]
fn stale_member_locations_send_lookups_back_to_the_index() {
    let c = PgCluster::start();
    let mut r = c.redis();
    let counters = |r: &mut redis::Connection| stats(r, ["pgkv_row_location_hits", "pgkv_row_location_misses"]);
    let n = 1000;
    // One command per member, in one pipeline; the replies summed.
    let each = |r: &mut redis::Connection, args: &dyn Fn(usize) -> Vec<String>| -> i64 {
        let mut pipe = redis::pipe();
        for i in 0..n {
            pipe.cmd(&args(i)[0]);
            for a in &args(i)[1..] {
                pipe.arg(a);
            }
        }
        let replies: Vec<redis::Value> = pipe.query(r).unwrap();
        replies.iter().map(|v| if let redis::Value::Int(k) = v { *k } else { 0 }).sum()
    };
    let hash = |r: &mut redis::Connection, key: &str| -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = r.hgetall(key).unwrap();
        all.sort();
        all
    };
    let fields = |tag: &str| -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = (0..n).map(|i| (format!("f{i}"), format!("{tag}{i}"))).collect();
        all.sort();
        all
    };

    assert_eq!(each(&mut r, &|i| vec!["HSET".into(), "h1".into(), format!("f{i}"), format!("a{i}")]), n as i64);
    assert_eq!(each(&mut r, &|i| vec!["SADD".into(), "s1".into(), format!("m{i}")]), n as i64);
    assert_eq!(each(&mut r, &|i| vec!["ZADD".into(), "z1".into(), i.to_string(), format!("m{i}")]), n as i64);
    let [hits, misses] = counters(&mut r);
    // Every member is found where it was inserted: overwritten in place,
    // already there, and given a new score twice.
    assert_eq!(each(&mut r, &|i| vec!["HSET".into(), "h1".into(), format!("f{i}"), format!("b{i}")]), 0);
    assert_eq!(each(&mut r, &|i| vec!["SADD".into(), "s1".into(), format!("m{i}")]), 0);
    for round in 1..=2 {
        let added = each(&mut r, &|i| vec!["ZADD".into(), "z1".into(), format!("{}.5", i + round * n), format!("m{i}")]);
        assert_eq!(added, 0);
    }
    let [hits2, misses2] = counters(&mut r);
    assert!((hits2 - hits) * 100 >= 99 * 4 * n as i64, "{hits}/{misses} -> {hits2}/{misses2}");
    assert!(misses2 - misses <= n as i64 / 100, "{hits}/{misses} -> {hits2}/{misses2}");
    assert_eq!(hash(&mut r, "h1"), fields("b"));
    let scores: Vec<(String, f64)> = r.zrange_withscores("z1", 0, 2).unwrap();
    assert_eq!(scores, vec![("m0".into(), 2000.5), ("m1".into(), 2001.5), ("m2".into(), 2002.5)]);

    // h3 and s3, new (their rows' places are where their members were
    // found), lose their members; one stays, so their ids stay. h4 and s4
    // take the freed places with members of the same names.
    assert_eq!(each(&mut r, &|i| vec!["HSET".into(), "h3".into(), format!("f{i}"), format!("a{i}")]), n as i64);
    assert_eq!(each(&mut r, &|i| vec!["SADD".into(), "s3".into(), format!("m{i}")]), n as i64);
    let _: i64 = r.hset("h3", "keep", "k").unwrap();
    let _: i64 = r.sadd("s3", "keep").unwrap();
    let places = |table: &str, key: &str| -> Vec<String> {
        let q = format!("SELECT string_agg(ctid::text, ' ') FROM kv.{table} WHERE id = (SELECT id FROM kv.keys WHERE key = '{key}')");
        c.psql(&q).split(' ').map(String::from).collect()
    };
    let freed = [places("hashes", "h3"), places("sets", "s3")];
    assert_eq!(each(&mut r, &|i| vec!["HDEL".into(), "h3".into(), format!("f{i}")]), n as i64);
    assert_eq!(each(&mut r, &|i| vec!["SREM".into(), "s3".into(), format!("m{i}")]), n as i64);
    // VACUUM frees the places.
    c.psql("VACUUM kv.hashes, kv.sets");
    assert_eq!(each(&mut r, &|i| vec!["HSET".into(), "h4".into(), format!("f{i}"), format!("c{i}")]), n as i64);
    assert_eq!(each(&mut r, &|i| vec!["SADD".into(), "s4".into(), format!("m{i}")]), n as i64);
    for (freed, taken) in freed.iter().zip([places("hashes", "h4"), places("sets", "s4")]) {
        let reused = taken.iter().filter(|p| freed.contains(p)).count();
        eprintln!("{reused} of {n} members took a freed place");
        assert!(reused * 10 >= n, "{reused} of {n} members took a freed place");
    }
    // The old members of h3 and s3 are gone: setting them creates them.
    assert_eq!(each(&mut r, &|i| vec!["HSET".into(), "h3".into(), format!("f{i}"), format!("d{i}")]), n as i64);
    assert_eq!(each(&mut r, &|i| vec!["SADD".into(), "s3".into(), format!("m{i}")]), n as i64);
    let mut h3 = fields("d");
    h3.push(("keep".into(), "k".into()));
    h3.sort();
    assert_eq!(hash(&mut r, "h3"), h3);
    assert_eq!(hash(&mut r, "h4"), fields("c"));
    let (s3, s4): (usize, usize) = (r.scard("s3").unwrap(), r.scard("s4").unwrap());
    assert_eq!((s3, s4), (n + 1, n));
    let rows = c.psql("SELECT (SELECT count(*) FROM kv.hashes) || ' ' || (SELECT count(*) FROM kv.sets)");
    assert_eq!(rows, format!("{} {}", 3 * n + 1, 3 * n + 1));
}

/// Outside READ COMMITTED the worker's shortcuts through the access
/// methods and the executor's single-row writes stand aside, and the
/// statements do the work: the same results in a REPEATABLE READ and a
/// SERIALIZABLE transaction.
#[test]
fn typed_functions_in_repeatable_read_and_serializable_transactions() {
    let c = shared();
    let mut sql = c.sql();
    sql.batch_execute("SET pgkv.sql_db = 9").unwrap();
    sql.batch_execute("SELECT kv.call('FLUSHDB')").unwrap();
    let levels = [("r", postgres::IsolationLevel::RepeatableRead), ("s", postgres::IsolationLevel::Serializable)];
    for (tag, level) in levels {
        let mut tx = sql.build_transaction().isolation_level(level).start().unwrap();
        for (call, want) in [
            ("kv.call('SET', '{tag}:n', '5')", "\"OK\""),
            ("kv.incr('{tag}:n')", "6"),
            ("kv.incr('{tag}:n', 10)", "16"),
            ("kv.hset('{tag}:h', 'a', '1')", "1"),
            ("kv.hset('{tag}:h', 'a', '2')", "0"),
            ("kv.call('HSET', '{tag}:h', 'a', '3', 'b', '4')", "1"),
            ("kv.sadd('{tag}:s', 'x', 'y')", "2"),
            ("kv.sadd('{tag}:s', 'y', 'z')", "1"),
            ("kv.zadd('{tag}:z', 1, 'm')", "1"),
            ("kv.call('ZINCRBY', '{tag}:z', '2', 'm')", "3.0"),
            ("kv.rpush('{tag}:l', 'a', 'b')", "2"),
            ("kv.lpush('{tag}:l', 'z')", "3"),
            ("kv.call('EXPIRE', '{tag}:n', '1000')", "1"),
        ] {
            let call = call.replace("{tag}", tag);
            assert_eq!(one(&mut tx, &call), want, "{call} at {level:?}");
        }
        tx.commit().unwrap();
    }
    let mut r = c.redis();
    let _: () = redis::cmd("SELECT").arg(9).query(&mut r).unwrap();
    for tag in ["r", "s"] {
        let n: i64 = r.get(format!("{tag}:n")).unwrap();
        assert_eq!(n, 16);
        let ttl: i64 = redis::cmd("TTL").arg(format!("{tag}:n")).query(&mut r).unwrap();
        assert!((990..=1000).contains(&ttl), "{ttl}");
        let h: Vec<(String, String)> = r.hgetall(format!("{tag}:h")).unwrap();
        assert_eq!(h, vec![("a".to_string(), "3".to_string()), ("b".to_string(), "4".to_string())]);
        let mut s: Vec<String> = r.smembers(format!("{tag}:s")).unwrap();
        s.sort();
        assert_eq!(s, vec!["x", "y", "z"]);
        let z: Vec<(String, f64)> = r.zrange_withscores(format!("{tag}:z"), 0, -1).unwrap();
        assert_eq!(z, vec![("m".to_string(), 3.0)]);
        let l: Vec<String> = r.lrange(format!("{tag}:l"), 0, -1).unwrap();
        assert_eq!(l, vec!["z", "a", "b"]);
    }
}

/// A user's trigger on kv.keys that changes another key's row while the
/// worker writes a batch's key rows back: the write-back must not update
/// by ctid a row the trigger changed since the batch locked it (PostgreSQL
/// would raise "tuple already updated by self"). Every write lands; the
/// trigger's change of tg:z is overwritten by the batch's own write of it
/// or comes after it, depending on which row the batch writes first.
#[test]
fn a_user_trigger_changing_other_key_rows_during_the_write_back() {
    // A cluster of its own: the trigger is on every key row.
    let c = PgCluster::start();
    let mut r = c.redis();
    let keys: Vec<String> = (0..10).map(|i| format!("tg:k{i}")).collect();
    let mut mset = redis::cmd("MSET");
    mset.arg("tg:z").arg("1");
    for k in &keys {
        mset.arg(k).arg("1");
    }
    let _: () = mset.query(&mut r).unwrap();
    c.psql(
        "CREATE FUNCTION public.tg_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           UPDATE kv.keys SET value = 'trigger' WHERE db = 0 AND key = 'tg:z'; RETURN NEW; END $$; \
         CREATE TRIGGER tg_touch BEFORE UPDATE ON kv.keys FOR EACH ROW \
           WHEN (NEW.key <> 'tg:z'::bytea) EXECUTE FUNCTION public.tg_touch();",
    );
    for round in 2..5 {
        // One batch: each key's row locked, then written back in place.
        let mut p = redis::pipe();
        p.cmd("SET").arg("tg:z").arg(round);
        for k in &keys {
            p.cmd("SET").arg(k).arg(round);
        }
        let _: () = p.query(&mut r).unwrap();
        let got: Vec<String> = redis::cmd("MGET").arg(&keys).query(&mut r).unwrap();
        assert!(got.iter().all(|v| *v == round.to_string()), "round {round}: {got:?}");
        let z: String = r.get("tg:z").unwrap();
        assert!(z == round.to_string() || z == "trigger", "round {round}: tg:z = {z}");
    }
}

/// The same for a user's trigger on kv.hashes: while the worker writes a
/// batch's field updates, the trigger rewrites the field the batch writes
/// last (f9, in (id, field) order). Its version as the batch read it is
/// then no longer current, so it must not be replaced by ctid (PostgreSQL
/// would raise "tuple already updated by self", and the batch would run
/// again command by command). Every write lands the first time, in
/// insertion order, and f9 ends as the batch or the trigger left it.
#[test]
fn a_user_trigger_changing_other_member_rows_during_the_write_back() {
    let c = PgCluster::start();
    let mut r = c.redis();
    let fields: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
    let mut hset = redis::cmd("HSET");
    hset.arg("tg:h");
    for f in &fields {
        hset.arg(f).arg("1");
    }
    let _: () = hset.query(&mut r).unwrap();
    c.psql(
        "CREATE FUNCTION public.tg_touch_field() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           UPDATE kv.hashes SET value = 'trigger' WHERE id = NEW.id AND field = 'f9'; RETURN NEW; END $$; \
         CREATE TRIGGER tg_touch_field BEFORE UPDATE ON kv.hashes FOR EACH ROW \
           WHEN (NEW.field <> 'f9'::bytea) EXECUTE FUNCTION public.tg_touch_field();",
    );
    let retries = stats(&mut r, ["pgkv_batch_retries"])[0];
    for round in 2..5 {
        // One batch: the fields read once, then updated where they were.
        let mut p = redis::pipe();
        for f in &fields {
            p.cmd("HSET").arg("tg:h").arg(f).arg(round);
        }
        let added: Vec<i64> = p.query(&mut r).unwrap();
        assert_eq!(added, vec![0; 10], "round {round}");
        let got: Vec<(String, String)> = r.hgetall("tg:h").unwrap();
        let names: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names, fields.iter().map(String::as_str).collect::<Vec<_>>(), "round {round}");
        for (f, v) in &got[..9] {
            assert_eq!(*v, round.to_string(), "round {round}: {f}");
        }
        let last = &got[9].1;
        assert!(*last == round.to_string() || last == "trigger", "round {round}: f9 = {last}");
    }
    assert_eq!(stats(&mut r, ["pgkv_batch_retries"])[0], retries);
}
