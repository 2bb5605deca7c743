/*
 * The parts of Redis 7.0's scripting glue (src/script_lua.c, src/eval.c,
 * src/function_lua.c) that only use the Lua C API: the sandbox (globals
 * allow list, read-only tables), pcall, math.random, the instruction-count
 * hook and the environments of the EVAL and FUNCTION engines. pgkv's Rust
 * side (src/lua) creates the Lua states through mlua and calls these through
 * mlua; the functions that reach the database (redis.call and friends) are
 * Rust callbacks that this file wraps so that their errors are raised from a
 * C function, exactly where Redis raises them (error positions depend on it).
 *
 * Copyright (c) 2009-2022, Redis Ltd. BSD 3-clause (the Redis 7.0 license);
 * adapted for pgkv.
 */

#include <string.h>
#include <math.h>
#include <stdint.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"
#include "rand.h"

int luaopen_cjson(lua_State *L);
int luaopen_struct(lua_State *L);
int luaopen_cmsgpack(lua_State *L);
int luaopen_bit(lua_State *L);

/* Implemented in Rust (src/lua/mod.rs): what the count hook should do.
 * 0 continue, 1 killed by SCRIPT/FUNCTION KILL, 2 FUNCTION LOAD timeout,
 * 3 abort (a PostgreSQL error is pending). Never unwinds. */
extern int pgkv_lua_interrupt(void);

/* Set by Rust while a script runs (Redis checks its run context). */
int pgkv_lua_script_running = 0;

static char *libraries_allow_list[] = {
    "string", "cjson", "bit", "cmsgpack", "math", "table", "struct", NULL,
};

static char *redis_api_allow_list[] = {
    "redis", "__redis__err__handler", NULL,
};

static char *lua_builtins_allow_list[] = {
    "xpcall", "tostring", "setmetatable", "next", "assert", "tonumber",
    "rawequal", "collectgarbage", "getmetatable", "rawset", "pcall",
    "coroutine", "type", "_G", "select", "unpack", "gcinfo", "pairs",
    "rawget", "loadstring", "ipairs", "_VERSION", "load", "error", NULL,
};

/* Redis's lua-enable-deprecated-api is off by default: not allowed. */
static char *lua_builtins_removed_after_initialization_allow_list[] = {
    "debug", NULL,
};

static char **allow_lists[] = {
    libraries_allow_list,
    redis_api_allow_list,
    lua_builtins_allow_list,
    lua_builtins_removed_after_initialization_allow_list,
    NULL,
};

static void luaLoadLib(lua_State *lua, const char *libname, lua_CFunction luafunc) {
    lua_pushcfunction(lua, luafunc);
    lua_pushstring(lua, libname);
    lua_call(lua, 1, 0);
}

static void luaLoadLibraries(lua_State *lua) {
    luaLoadLib(lua, "", luaopen_base);
    luaLoadLib(lua, LUA_TABLIBNAME, luaopen_table);
    luaLoadLib(lua, LUA_STRLIBNAME, luaopen_string);
    luaLoadLib(lua, LUA_MATHLIBNAME, luaopen_math);
    luaLoadLib(lua, LUA_DBLIBNAME, luaopen_debug);
    luaLoadLib(lua, "cjson", luaopen_cjson);
    luaLoadLib(lua, "struct", luaopen_struct);
    luaLoadLib(lua, "cmsgpack", luaopen_cmsgpack);
    luaLoadLib(lua, "bit", luaopen_bit);
}

static int luaProtectedTableError(lua_State *lua) {
    int argc = lua_gettop(lua);
    if (argc != 2) {
        luaL_error(lua, "Wrong number of arguments to luaProtectedTableError");
    }
    if (!lua_isstring(lua, -1) && !lua_isnumber(lua, -1)) {
        luaL_error(lua, "Second argument to luaProtectedTableError must be a string or number");
    }
    const char *variable_name = lua_tostring(lua, -1);
    luaL_error(lua, "Script attempted to access nonexistent global variable '%s'", variable_name);
    return 0;
}

static void luaSetErrorMetatable(lua_State *lua) {
    lua_newtable(lua);
    lua_pushcfunction(lua, luaProtectedTableError);
    lua_setfield(lua, -2, "__index");
    lua_setmetatable(lua, -2);
}

static int luaNewIndexAllowList(lua_State *lua) {
    int argc = lua_gettop(lua);
    if (argc != 3) {
        luaL_error(lua, "Wrong number of arguments to luaNewIndexAllowList");
    }
    if (!lua_istable(lua, -3)) {
        luaL_error(lua, "first argument to luaNewIndexAllowList must be a table");
    }
    if (!lua_isstring(lua, -2) && !lua_isnumber(lua, -2)) {
        luaL_error(lua, "Second argument to luaNewIndexAllowList must be a string or number");
    }
    const char *variable_name = lua_tostring(lua, -2);
    char ***allow_l = allow_lists;
    for (; *allow_l; ++allow_l) {
        char **c = *allow_l;
        for (; *c; ++c) {
            if (strcmp(*c, variable_name) == 0) break;
        }
        if (*c) break;
    }
    /* Not allowed (deny list or unknown): silently not set, as Redis does. */
    if (*allow_l != NULL) lua_rawset(lua, -3);
    return 0;
}

static void luaSetAllowListProtection(lua_State *lua) {
    lua_newtable(lua);
    lua_pushcfunction(lua, luaNewIndexAllowList);
    lua_setfield(lua, -2, "__newindex");
    lua_setmetatable(lua, -2);
}

static void luaSetTableProtectionRecursively(lua_State *lua) {
    if (lua_isreadonlytable(lua, -1)) return;
    lua_enablereadonlytable(lua, -1, 1);
    lua_checkstack(lua, 2);
    lua_pushnil(lua);
    while (lua_next(lua, -2)) {
        if (lua_istable(lua, -1)) luaSetTableProtectionRecursively(lua);
        lua_pop(lua, 1);
    }
    if (lua_getmetatable(lua, -1)) {
        luaSetTableProtectionRecursively(lua);
        lua_pop(lua, 1);
    }
}

static void luaSetTableProtectionForBasicTypes(lua_State *lua) {
    static const int types[] = {
        LUA_TSTRING, LUA_TNUMBER, LUA_TBOOLEAN, LUA_TNIL, LUA_TFUNCTION, LUA_TTHREAD, LUA_TLIGHTUSERDATA
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        switch (types[i]) {
            case LUA_TSTRING: lua_pushstring(lua, ""); break;
            case LUA_TNUMBER: lua_pushnumber(lua, 0); break;
            case LUA_TBOOLEAN: lua_pushboolean(lua, 0); break;
            case LUA_TNIL: lua_pushnil(lua); break;
            case LUA_TFUNCTION: lua_pushcfunction(lua, luaProtectedTableError); break;
            case LUA_TTHREAD: lua_newthread(lua); break;
            case LUA_TLIGHTUSERDATA: lua_pushlightuserdata(lua, (void*)lua); break;
        }
        if (lua_getmetatable(lua, -1)) {
            luaSetTableProtectionRecursively(lua);
            lua_pop(lua, 1);
        }
        lua_pop(lua, 1);
    }
}

/* Redis's pcall: an error table is turned into its message. */
static int luaRedisPcall(lua_State *lua) {
    int argc = lua_gettop(lua);
    lua_pushboolean(lua, 1);
    lua_insert(lua, 1);
    if (lua_pcall(lua, argc - 1, LUA_MULTRET, 0)) {
        lua_remove(lua, 1);
        if (lua_istable(lua, -1)) {
            lua_getfield(lua, -1, "err");
            if (lua_isstring(lua, -1)) {
                lua_replace(lua, -2);
            }
        }
        lua_pushboolean(lua, 0);
        lua_insert(lua, 1);
    }
    return lua_gettop(lua);
}

static int redis_math_random(lua_State *L) {
    if (!pgkv_lua_script_running) {
        return luaL_error(L, "math.random can only be called inside a script invocation");
    }
    lua_Number r = (lua_Number)(redisLrand48() % REDIS_LRAND48_MAX) / (lua_Number)REDIS_LRAND48_MAX;
    switch (lua_gettop(L)) {
        case 0: {
            lua_pushnumber(L, r);
            break;
        }
        case 1: {
            int u = luaL_checkint(L, 1);
            luaL_argcheck(L, 1 <= u, 1, "interval is empty");
            lua_pushnumber(L, floor(r * u) + 1);
            break;
        }
        case 2: {
            int l = luaL_checkint(L, 1);
            int u = luaL_checkint(L, 2);
            luaL_argcheck(L, l <= u, 2, "interval is empty");
            lua_pushnumber(L, floor(r * (u - l + 1)) + l);
            break;
        }
        default: return luaL_error(L, "wrong number of arguments");
    }
    return 1;
}

static int redis_math_randomseed(lua_State *L) {
    if (!pgkv_lua_script_running) {
        return luaL_error(L, "math.randomseed can only be called inside a script invocation");
    }
    redisSrand48(luaL_checkint(L, 1));
    return 0;
}

/* A Rust callback (upvalue 1) returns (ok, values...). On ok the values
 * are returned; otherwise the second value is raised from here, a C
 * function, so the error handler reports the caller's line as Redis does. */
static int pgkv_rust_trampoline(lua_State *L) {
    int argc = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, argc, LUA_MULTRET);
    if (!lua_toboolean(L, 1)) {
        lua_settop(L, 2);
        return lua_error(L);
    }
    lua_remove(L, 1);
    return lua_gettop(L);
}

static void set_rust_function(lua_State *L, int fns, const char *name) {
    lua_pushstring(L, name);
    lua_getfield(L, fns, name);
    lua_pushcclosure(L, pgkv_rust_trampoline, 1);
    lua_settable(L, -3);
}

static void set_number(lua_State *L, const char *name, lua_Number n) {
    lua_pushstring(L, name);
    lua_pushnumber(L, n);
    lua_settable(L, -3);
}

/* The version pgkv follows (HELLO and INFO report the same). */
static void luaRegisterVersion(lua_State *lua) {
    set_number(lua, "REDIS_VERSION_NUM", 0x0007000f);
    lua_pushstring(lua, "REDIS_VERSION");
    lua_pushstring(lua, "7.0.15");
    lua_settable(lua, -3);
}

static void luaRegisterLogFunction(lua_State *lua, int fns) {
    set_rust_function(lua, fns, "log");
    set_number(lua, "LOG_DEBUG", 0);
    set_number(lua, "LOG_VERBOSE", 1);
    set_number(lua, "LOG_NOTICE", 2);
    set_number(lua, "LOG_WARNING", 3);
}

/* Starts from empty globals and no loaded modules, whatever the state was
 * created with, so luaLoadLibraries below fills them through the allow list
 * exactly as in Redis (print, loadfile and dofile never make it). */
static void clear_table(lua_State *lua, int index) {
    lua_pushvalue(lua, index);
    lua_pushnil(lua);
    while (lua_next(lua, -2)) {
        lua_pop(lua, 1);
        lua_pushvalue(lua, -1);
        lua_pushnil(lua);
        lua_rawset(lua, -4);
    }
    lua_pop(lua, 1);
}

static void luaRegisterRedisAPI(lua_State *lua, int fns) {
    clear_table(lua, LUA_GLOBALSINDEX);
    luaL_findtable(lua, LUA_REGISTRYINDEX, "_LOADED", 1);
    clear_table(lua, lua_gettop(lua));
    lua_pop(lua, 1);
    lua_pushvalue(lua, LUA_GLOBALSINDEX);
    luaSetAllowListProtection(lua);
    lua_pop(lua, 1);

    luaLoadLibraries(lua);

    lua_pushcfunction(lua, luaRedisPcall);
    lua_setglobal(lua, "pcall");

    lua_newtable(lua);
    set_rust_function(lua, fns, "call");
    set_rust_function(lua, fns, "pcall");
    luaRegisterLogFunction(lua, fns);
    luaRegisterVersion(lua);
    set_rust_function(lua, fns, "setresp");
    set_rust_function(lua, fns, "sha1hex");
    set_rust_function(lua, fns, "error_reply");
    set_rust_function(lua, fns, "status_reply");
    set_rust_function(lua, fns, "set_repl");
    set_number(lua, "REPL_NONE", 0);
    set_number(lua, "REPL_AOF", 1);
    set_number(lua, "REPL_SLAVE", 2);
    set_number(lua, "REPL_REPLICA", 2);
    set_number(lua, "REPL_ALL", 3);
    set_rust_function(lua, fns, "acl_check_cmd");
    lua_setglobal(lua, "redis");

    lua_getglobal(lua, "math");
    lua_pushstring(lua, "random");
    lua_pushcfunction(lua, redis_math_random);
    lua_settable(lua, -3);
    lua_pushstring(lua, "randomseed");
    lua_pushcfunction(lua, redis_math_randomseed);
    lua_settable(lua, -3);
    lua_setglobal(lua, "math");
}

static int luaRedisBreakpointCommand(lua_State *lua) {
    lua_pushboolean(lua, 0); /* no debugger */
    return 1;
}

static int luaRedisDebugCommand(lua_State *lua) {
    (void)lua;
    return 0; /* no debugger */
}

static int luaRedisReplicateCommandsCommand(lua_State *lua) {
    lua_pushboolean(lua, 1);
    return 1;
}

static void lock_globals(lua_State *lua) {
    lua_pushvalue(lua, LUA_GLOBALSINDEX);
    luaSetErrorMetatable(lua);
    luaSetTableProtectionRecursively(lua);
    lua_pop(lua, 1);
    luaSetTableProtectionForBasicTypes(lua);
}

/* EVAL's engine (eval.c, scriptingInit). Argument: a table of the Rust
 * callbacks and version constants. */
int pgkv_lua_init_eval(lua_State *lua) {
    int fns = 1;
    luaRegisterRedisAPI(lua, fns);

    lua_getglobal(lua, "redis");
    lua_pushstring(lua, "breakpoint");
    lua_pushcfunction(lua, luaRedisBreakpointCommand);
    lua_settable(lua, -3);
    lua_pushstring(lua, "debug");
    lua_pushcfunction(lua, luaRedisDebugCommand);
    lua_settable(lua, -3);
    lua_pushstring(lua, "replicate_commands");
    lua_pushcfunction(lua, luaRedisReplicateCommandsCommand);
    lua_settable(lua, -3);
    lua_setglobal(lua, "redis");

    {
        char *errh_func = "local dbg = debug\n"
                          "debug = nil\n"
                          "function __redis__err__handler(err)\n"
                          "  local i = dbg.getinfo(2,'nSl')\n"
                          "  if i and i.what == 'C' then\n"
                          "    i = dbg.getinfo(3,'nSl')\n"
                          "  end\n"
                          "  if type(err) ~= 'table' then\n"
                          "    err = {err='ERR ' .. tostring(err)}"
                          "  end"
                          "  if i then\n"
                          "    err['source'] = i.source\n"
                          "    err['line'] = i.currentline\n"
                          "  end"
                          "  return err\n"
                          "end\n";
        luaL_loadbuffer(lua, errh_func, strlen(errh_func), "@err_handler_def");
        lua_pcall(lua, 0, 0, 0);
    }
    lock_globals(lua);
    lua_getglobal(lua, "__redis__err__handler");
    return 1;
}

/* The FUNCTION engine (function_lua.c, luaEngineInitEngine). Returns the
 * error handler, the library-load API table, and the globals table that
 * library code runs with together with its metatable (whose __index is
 * switched between the load API and the real globals). */
int pgkv_lua_init_functions(lua_State *lua) {
    int fns = 1;
    luaRegisterRedisAPI(lua, fns);

    lua_newtable(lua); /* load library globals */
    lua_newtable(lua); /* load library `redis` table */
    set_rust_function(lua, fns, "register_function");
    luaRegisterLogFunction(lua, fns);
    luaRegisterVersion(lua);
    luaSetErrorMetatable(lua);
    lua_setfield(lua, -2, "redis");
    luaSetErrorMetatable(lua);
    luaSetTableProtectionRecursively(lua);
    int library_api = lua_gettop(lua);

    char *errh_func = "local dbg = debug\n"
                      "debug = nil\n"
                      "local error_handler = function (err)\n"
                      "  local i = dbg.getinfo(2,'nSl')\n"
                      "  if i and i.what == 'C' then\n"
                      "    i = dbg.getinfo(3,'nSl')\n"
                      "  end\n"
                      "  if type(err) ~= 'table' then\n"
                      "    err = {err='ERR ' .. tostring(err)}"
                      "  end"
                      "  if i then\n"
                      "    err['source'] = i.source\n"
                      "    err['line'] = i.currentline\n"
                      "  end"
                      "  return err\n"
                      "end\n"
                      "return error_handler";
    luaL_loadbuffer(lua, errh_func, strlen(errh_func), "@err_handler_def");
    lua_pcall(lua, 0, 1, 0);
    int handler = lua_gettop(lua);

    lua_pushvalue(lua, LUA_GLOBALSINDEX);
    luaSetErrorMetatable(lua);
    luaSetTableProtectionRecursively(lua);
    lua_pop(lua, 1);

    lua_newtable(lua); /* new globals */
    int globals = lua_gettop(lua);
    lua_newtable(lua); /* new globals metatable */
    int meta = lua_gettop(lua);
    lua_pushvalue(lua, LUA_GLOBALSINDEX);
    lua_setfield(lua, meta, "__index");
    lua_enablereadonlytable(lua, meta, 1);
    lua_pushvalue(lua, meta);
    lua_setmetatable(lua, globals);
    lua_enablereadonlytable(lua, globals, 1);

    luaSetTableProtectionForBasicTypes(lua);

    lua_pushvalue(lua, handler);
    lua_pushvalue(lua, library_api);
    lua_pushvalue(lua, globals);
    lua_pushvalue(lua, meta);
    lua_pushvalue(lua, LUA_GLOBALSINDEX);
    return 5;
}

/* (meta, value): meta.__index = value, through the read-only flag. */
int pgkv_lua_set_index(lua_State *lua) {
    lua_enablereadonlytable(lua, 1, 0);
    lua_pushvalue(lua, 2);
    lua_setfield(lua, 1, "__index");
    lua_enablereadonlytable(lua, 1, 1);
    return 0;
}

/* (code, chunkname [, env]) -> function | nil, message */
int pgkv_lua_compile(lua_State *lua) {
    size_t len;
    const char *code = lua_tolstring(lua, 1, &len);
    const char *name = lua_tostring(lua, 2);
    if (luaL_loadbuffer(lua, code, len, name)) {
        lua_pushnil(lua);
        lua_insert(lua, -2);
        return 2;
    }
    if (lua_gettop(lua) >= 4 && lua_istable(lua, 3)) {
        lua_pushvalue(lua, 3);
        lua_setfenv(lua, -2);
    }
    return 1;
}

/* (t, key, value): sets a global of a read-only globals table (KEYS, ARGV). */
int pgkv_lua_set_global(lua_State *lua) {
    lua_enablereadonlytable(lua, LUA_GLOBALSINDEX, 0);
    lua_pushvalue(lua, 2);
    lua_setglobal(lua, lua_tostring(lua, 1));
    lua_enablereadonlytable(lua, LUA_GLOBALSINDEX, 1);
    return 0;
}

static void pgkv_count_hook(lua_State *lua, lua_Debug *ar) {
    (void)ar;
    int action = pgkv_lua_interrupt();
    if (action == 0) return;
    /* Keep raising on every line, so a pcall cannot swallow it for good. */
    lua_sethook(lua, pgkv_count_hook, LUA_MASKLINE, 0);
    lua_newtable(lua);
    lua_pushstring(lua, "err");
    switch (action) {
        case 1: lua_pushstring(lua, "ERR Script killed by user with SCRIPT KILL..."); break;
        case 2: lua_pushstring(lua, "ERR FUNCTION LOAD timeout"); break;
        default: lua_pushstring(lua, "ERR script aborted: a PostgreSQL error is pending"); break;
    }
    lua_settable(lua, -3);
    lua_error(lua);
}

/* (handler|nil, f, args...) -> ok, result. Runs f with the count hook
 * armed, under the error handler (Redis's lua_pcall with errfunc). */
int pgkv_lua_run(lua_State *lua) {
    int nargs = lua_gettop(lua) - 2;
    int errfunc = lua_isnil(lua, 1) ? 0 : 1;
    lua_sethook(lua, pgkv_count_hook, LUA_MASKCOUNT, 100000);
    pgkv_lua_script_running = 1;
    int err = lua_pcall(lua, nargs, 1, errfunc);
    pgkv_lua_script_running = 0;
    lua_sethook(lua, NULL, 0, 0);
    lua_pushboolean(lua, err == 0);
    lua_replace(lua, 1);
    return 2;
}
