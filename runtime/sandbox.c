/* sandbox.c: the sandbox host: a sandboxed lua_State with a memory cap and a time budget
 * per call, holding the trusted entry module; the calls themselves run in a child
 * process of their own (isolate.c), each on a copy of this state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <lualib.h>
#include "phonehome.h"

#define SANDBOX_HANDLE "phonehome.Sandbox"
#define SANDBOX_COPY_DEPTH 64
#define SANDBOX_HOOK_COUNT 10000

struct sandbox {
    lua_State *L;
    size_t used, limit; /* bytes allocated by the state, and its cap */
    uint64_t deadline;  /* uv_hrtime() past which the current call is killed */
    double timeout;     /* seconds a call may run */
    int oom;            /* an allocation was refused during this call */
    int expired;        /* the call is being killed: the hook fires on every line */
    char where[256];    /* the script position at which the call was killed */
};

static const char sandbox_entry_key = 'e'; /* registry: the entry table of the sandbox */

/* Opens phonehome.core in a new sandbox: core.c's entry, handed down by sandbox_open so
 * that this file does not call up into the module that opens it. */
static lua_CFunction sandbox_open_core;

/* Counts every byte so that a script can use at most sb->limit; Lua assumes a shrink
 * never fails, so only growth is refused. In 5.4, osize is a type tag when ptr is NULL. */
static void *sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    sandbox *sb = ud;
    size_t old = ptr ? osize : 0;
    void *p;

    if (nsize == 0) {
        free(ptr);
        sb->used -= old;
        return NULL;
    }
    if (nsize > old && sb->used - old + nsize > sb->limit) {
        sb->oom = 1;
        return NULL;
    }
    if ((p = realloc(ptr, nsize)) == NULL) {
        sb->oom = 1;
        return NULL;
    }
    sb->used = sb->used - old + nsize;
    return p;
}

static sandbox *sandbox_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

/* Past the deadline, or once memory ran out, the call is killed. The hook then re-arms
 * on every line and instruction, so a pcall in the script cannot swallow the kill. */
static void sandbox_hook(lua_State *L, lua_Debug *ar)
{
    sandbox *sb = sandbox_of(L);

    if (!sb->expired) {
        if (!sb->oom && uv_hrtime() < sb->deadline)
            return;
        sb->expired = 1;
        if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
            snprintf(sb->where, sizeof sb->where, "%s:%d: ", ar->short_src, ar->currentline);
        lua_sethook(L, sandbox_hook, LUA_MASKCOUNT | LUA_MASKLINE, 1);
    }
    luaL_error(L, "call killed");
}

static sandbox *sandbox_check(lua_State *L, int idx)
{
    sandbox *sb = luaL_checkudata(L, idx, SANDBOX_HANDLE);
    if (sb->L == NULL)
        luaL_error(L, "sandbox is closed");
    return sb;
}

/* Copies the plain value at idx of from onto the top of to: nil, booleans, numbers,
 * strings and tables of those. Returns 0, or -1 with a message in err. */
static int sandbox_copy(lua_State *from, int idx, lua_State *to, int depth, const char **err)
{
    idx = lua_absindex(from, idx);
    if (!lua_checkstack(to, 3) || !lua_checkstack(from, 3)) {
        *err = "stack overflow";
        return -1;
    }
    switch (lua_type(from, idx)) {
    case LUA_TNIL:
        lua_pushnil(to);
        return 0;
    case LUA_TBOOLEAN:
        lua_pushboolean(to, lua_toboolean(from, idx));
        return 0;
    case LUA_TNUMBER:
        if (lua_isinteger(from, idx))
            lua_pushinteger(to, lua_tointeger(from, idx));
        else
            lua_pushnumber(to, lua_tonumber(from, idx));
        return 0;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(from, idx, &len);
        lua_pushlstring(to, s, len);
        return 0;
    }
    case LUA_TTABLE:
        if (depth >= SANDBOX_COPY_DEPTH) {
            *err = "tables nested too deeply (or a cycle)";
            return -1;
        }
        lua_newtable(to);
        lua_pushnil(from);
        while (lua_next(from, idx)) { /* from: ... key value */
            if (sandbox_copy(from, -2, to, depth + 1, err) < 0
                || sandbox_copy(from, -1, to, depth + 1, err) < 0) {
                lua_pop(from, 2);
                return -1;
            }
            lua_rawset(to, -3); /* to: ... table */
            lua_pop(from, 1);
        }
        return 0;
    default:
        *err = lua_typename(from, lua_type(from, idx));
        return -1;
    }
}

/* Runs inside the sandbox, protected: copies the caller's arguments in, so that
 * running out of the sandbox's memory is an error there, not a panic. */
static int sandbox_copy_in(lua_State *L)
{
    lua_State *from = lua_touserdata(L, 1);
    int first = (int)lua_tointeger(L, 2), n = (int)lua_tointeger(L, 3), i;
    const char *err = NULL;

    lua_settop(L, 0);
    luaL_checkstack(L, n + 3, "too many arguments");
    for (i = 0; i < n; i++)
        if (sandbox_copy(from, first + i, L, 0, &err) < 0)
            return luaL_error(L, "argument %d cannot enter the sandbox: %s", i + 1, err);
    return n;
}

/* Message handler: errors keep their position; anything but a string or a number is
 * described by its type: a __tostring of the script's is not run while a call fails. */
static int sandbox_message(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TSTRING && lua_type(L, 1) != LUA_TNUMBER)
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    return 1;
}

/* Runs entry[name](args) inside the sandbox under its budgets, the args being nargs
 * values of C from index first. Returns the number of results, left at indices 2.. of
 * the sandbox's stack; or -1 with the message of the failure on top of it. */
int sandbox_invoke(lua_State *C, sandbox *sb, const char *name, int first, int nargs)
{
    lua_State *L = sb->L;
    int status;

    lua_settop(L, 0);
    lua_pushcfunction(L, sandbox_message);                 /* h */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sandbox_entry_key); /* h entry */
    if (lua_getfield(L, -1, name) != LUA_TFUNCTION) {
        lua_settop(L, 1);
        lua_pushfstring(L, "sandbox has no function '%s'", name);
        return -1;
    }
    lua_remove(L, 2); /* h f */
    sb->oom = 0;
    sb->expired = 0;
    sb->where[0] = '\0';
    lua_pushcfunction(L, sandbox_copy_in);
    lua_pushlightuserdata(L, C);
    lua_pushinteger(L, first);
    lua_pushinteger(L, nargs);
    status = lua_pcall(L, 3, nargs, 1); /* h f args... */
    if (status == LUA_OK) {
        sb->deadline = uv_hrtime() + (uint64_t)(sb->timeout * 1e9);
        lua_sethook(L, sandbox_hook, LUA_MASKCOUNT, SANDBOX_HOOK_COUNT);
        status = lua_pcall(L, nargs, LUA_MULTRET, 1); /* h results... */
        lua_sethook(L, NULL, 0, 0);
    }
    if (status == LUA_OK && !sb->oom && !sb->expired)
        return lua_gettop(L) - 1;
    /* a message of the sandbox's own: what the script raised could be anything */
    if (sb->oom || status == LUA_ERRMEM) {
        lua_settop(L, 0);
        lua_gc(L, LUA_GCCOLLECT);
        lua_pushfstring(L, "%sscript exceeded its memory limit of %d KiB", sb->where,
                        (int)(sb->limit / 1024));
    } else if (sb->expired) {
        lua_settop(L, 0);
        lua_pushfstring(L, "%sscript exceeded its time limit of %d ms", sb->where,
                        (int)(sb->timeout * 1000));
    } else if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pushliteral(L, "(error object is not a string)");
    }
    return -1;
}

/* The state, memory cap and time limit of a sandbox argument, for the process that runs
 * its calls (isolate.c). */
sandbox *sandbox_arg(lua_State *C, int idx)
{
    return sandbox_check(C, idx);
}

/* Whether the entry module has a function of that name. */
int sandbox_has(sandbox *sb, const char *name)
{
    int has;
    lua_rawgetp(sb->L, LUA_REGISTRYINDEX, &sandbox_entry_key);
    has = lua_getfield(sb->L, -1, name) == LUA_TFUNCTION;
    lua_pop(sb->L, 2);
    return has;
}

lua_State *sandbox_state(sandbox *sb)
{
    return sb->L;
}

size_t sandbox_limit(sandbox *sb)
{
    return sb->limit;
}

double sandbox_timeout(sandbox *sb)
{
    return sb->timeout;
}

static int sandbox_close(lua_State *C)
{
    sandbox *sb = luaL_checkudata(C, 1, SANDBOX_HANDLE);
    if (sb->L != NULL) {
        lua_close(sb->L);
        sb->L = NULL;
    }
    return 0;
}

/* Bytes the sandbox's state holds now. */
static int sandbox_memory(lua_State *C)
{
    sandbox *sb = sandbox_check(C, 1);
    lua_pushinteger(C, (lua_Integer)sb->used);
    return 1;
}

static const luaL_Reg sandbox_libs[] = {
    {LUA_GNAME, luaopen_base},          {LUA_LOADLIBNAME, luaopen_package},
    {LUA_COLIBNAME, luaopen_coroutine}, {LUA_TABLIBNAME, luaopen_table},
    {LUA_STRLIBNAME, luaopen_string},   {LUA_MATHLIBNAME, luaopen_math},
    {LUA_UTF8LIBNAME, luaopen_utf8},    {LUA_OSLIBNAME, luaopen_os},
    {LUA_DBLIBNAME, luaopen_debug},     {NULL, NULL}};

/* Runs inside the new state, protected: opens the libraries the trusted library
 * needs (no io; the script itself gets only an allow-list), sets package.path and
 * package.cpath (the trusted library's parsers, such as LibYAML's; a script's require
 * reaches none of them), and requires the entry module. */
static int sandbox_init(lua_State *L)
{
    const char *path = lua_tostring(L, 1), *entry = lua_tostring(L, 2);
    const char *cpath = lua_tostring(L, 3);
    const luaL_Reg *lib;

    for (lib = sandbox_libs; lib->func; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    luaL_requiref(L, "phonehome.core", sandbox_open_core, 0);
    lua_pop(L, 1);
    lua_getglobal(L, "package");
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, cpath);
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
    lua_getglobal(L, "require");
    lua_pushstring(L, entry);
    lua_call(L, 1, 1); /* entry table */
    luaL_checktype(L, -1, LUA_TTABLE);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sandbox_entry_key);
    return 0;
}

/* core.sandbox{ path = package.path, cpath = package.cpath (default none), entry =
 * "module", memory = bytes, timeout = s }: a new state running the entry module; its
 * functions are reached with sb:call. */
static int sandbox_new(lua_State *C)
{
    sandbox *sb;
    const char *path, *entry, *cpath;
    lua_Integer memory;
    double timeout;
    int status;

    luaL_checktype(C, 1, LUA_TTABLE);
    lua_settop(C, 1);
    binding_field(C, 1, "path", LUA_TSTRING, 0);        /* t path */
    binding_field(C, 1, "entry", LUA_TSTRING, 0);       /* t path entry */
    binding_field(C, 1, "memory", BINDING_TINTEGER, 1); /* t path entry memory */
    binding_field(C, 1, "timeout", LUA_TNUMBER, 1);     /* t path entry memory timeout */
    binding_field(C, 1, "cpath", LUA_TSTRING, 1);       /* ... cpath */
    path = lua_tostring(C, 2);
    cpath = luaL_optstring(C, 6, "");
    entry = lua_tostring(C, 3);
    memory = luaL_optinteger(C, 4, 64 * 1024 * 1024);
    timeout = luaL_optnumber(C, 5, 1.0);
    if (memory < 256 * 1024)
        return binding_field_error(C, 1, "memory", "below 256 KiB");
    if (!(timeout > 0 && timeout <= 3600))
        return binding_field_error(C, 1, "timeout", "not in (0, 3600] seconds");

    sb = lua_newuserdatauv(C, sizeof *sb, 0);
    memset(sb, 0, sizeof *sb);
    luaL_setmetatable(C, SANDBOX_HANDLE);
    sb->limit = (size_t)memory;
    sb->timeout = timeout;
    sb->L = lua_newstate(sandbox_alloc, sb);
    if (sb->L == NULL)
        return luaL_error(C, "cannot create a Lua state");
    lua_pushcfunction(sb->L, sandbox_init);
    lua_pushstring(sb->L, path);
    lua_pushstring(sb->L, entry);
    lua_pushstring(sb->L, cpath);
    status = lua_pcall(sb->L, 3, 0, 0);
    if (status != LUA_OK) {
        lua_pushfstring(C, "cannot start sandbox: %s",
                        status == LUA_ERRMEM ? "memory limit too low" : lua_tostring(sb->L, -1));
        lua_close(sb->L);
        sb->L = NULL;
        return lua_error(C);
    }
    return 1;
}

static const luaL_Reg sandbox_methods[] = {
    {"memory", sandbox_memory}, {"close", sandbox_close}, {NULL, NULL}};

void sandbox_open(lua_State *L, lua_CFunction open_core)
{
    sandbox_open_core = open_core;
    binding_class(L, SANDBOX_HANDLE, sandbox_methods, sandbox_close, "sandbox", sandbox_new);
}
