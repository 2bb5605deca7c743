// Compiles the C shims: long double arithmetic (src/ffi/longdouble.c), and
// the Lua libraries Redis bundles for scripts (src/lua/c: cjson, cmsgpack,
// bit, struct), against the headers of the Lua mlua builds
// (vendor/lua-src/lua-5.1.5, Redis's Lua 5.1.5), with Redis's defines.
fn main() {
    println!("cargo:rerun-if-changed=src/ffi/longdouble.c");
    println!("cargo:rerun-if-changed=src/lua/c");
    cc::Build::new().file("src/ffi/longdouble.c").opt_level(2).compile("pgkv_longdouble");
    cc::Build::new()
        .files(["glue.c", "rand.c", "lua_cjson.c", "lua_cmsgpack.c", "lua_bit.c", "lua_struct.c", "strbuf.c", "fpconv.c"].map(|f| format!("src/lua/c/{f}")))
        .include("vendor/lua-src/lua-5.1.5")
        .include("src/lua/c")
        .define("REDIS_STATIC", Some(""))
        .define("ENABLE_CJSON_GLOBAL", None)
        .warnings(false)
        .opt_level(2)
        .compile("pgkv_lualibs");
}
