/* binding.c: helpers for writing the Lua bindings: the one failure return, the fields of
 * a table argument, the registration of a userdata class, and the log line for what
 * cannot be returned to a caller. Every file of the host uses them; they call none. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "phonehome.h"

/* The one return of a failure of the environment, not of the caller (a file missing, a
 * connection refused; misuse raises instead): nil, "what: reason", errno [, code].
 * what: the file or operation, or NULL for the reason alone; reason: NULL for the text
 * of err. err: an errno value, or a libuv error (negative), returned positive; 0 when the
 * system reported none, returned as nil. code: the failing library's own code (a SQLite
 * extended result code), returned fourth; 0 when there is none, and then not returned.
 * Call it once C owns nothing more: pushing may raise. */
int binding_fail(lua_State *L, const char *what, const char *reason, int err, lua_Integer code)
{
    if (reason == NULL)
        reason = err < 0 ? uv_strerror(err) : err > 0 ? strerror(err) : "failed";
    lua_pushnil(L);
    if (what != NULL)
        lua_pushfstring(L, "%s: %s", what, reason);
    else
        lua_pushstring(L, reason);
    if (err != 0)
        lua_pushinteger(L, err < 0 ? -(lua_Integer)err : err);
    else
        lua_pushnil(L);
    if (code == 0)
        return 3;
    lua_pushinteger(L, code);
    return 4;
}

/* Registers the metatable of a userdata class: methods as __index; close serves as
 * __gc and __close; then puts the constructor into the module table on top. */
void binding_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction close,
                   const char *ctor_name, lua_CFunction ctor)
{
    if (luaL_newmetatable(L, name)) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, close);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    if (ctor != NULL) {
        lua_pushcfunction(L, ctor);
        lua_setfield(L, -2, ctor_name);
    }
}

/* Calls fn when the state closes (after the finalizers of userdata made before this call),
 * through a userdata kept in the registry under key: how a part frees what is global to
 * it (libcurl's multi handle, calls still in flight). */
void binding_on_close(lua_State *L, const char *key, lua_CFunction fn)
{
    lua_newuserdatauv(L, 1, 0); /* sentinel */
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, fn);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, key);
}

/* Raises the error of a bad field of the table argument arg, in luaL_argerror's words. */
int binding_field_error(lua_State *L, int arg, const char *key, const char *msg)
{
    return luaL_error(L, "bad field '%s' in argument #%d (%s)", key, arg, msg);
}

/* Pushes field key of the table argument arg, checked as luaL_check* checks an argument:
 * of the given type (a LUA_T* constant, or BINDING_TINTEGER for a number with an integer
 * value, pushed as an integer), or nil when optional. Returns 0 when it is nil, else 1.
 * The value stays on the stack, so that a string read from it stays valid. Strings and
 * numbers are not converted into each other: a field of the wrong type is misuse. */
int binding_field(lua_State *L, int arg, const char *key, int type, int optional)
{
    int t, exact;
    lua_Integer n;

    luaL_checktype(L, arg, LUA_TTABLE);
    t = lua_getfield(L, arg, key); /* ... value */
    if (t == LUA_TNIL && optional)
        return 0;
    if (type == BINDING_TINTEGER && t == LUA_TNUMBER) {
        n = lua_tointegerx(L, -1, &exact);
        if (!exact)
            return binding_field_error(L, arg, key, "number has no integer representation");
        lua_pop(L, 1);
        lua_pushinteger(L, n); /* ... integer */
        return 1;
    }
    if (t != (type == BINDING_TINTEGER ? LUA_TNUMBER : type))
        return binding_field_error(
            L, arg, key,
            lua_pushfstring(L, "%s expected, got %s",
                            type == BINDING_TINTEGER ? "integer" : lua_typename(L, type),
                            luaL_typename(L, -1)));
    return 1;
}

/* A log line being written; what would not fit in cap - 1 bytes is cut (the newline
 * always fits). */
typedef struct {
    char *p;
    size_t len, cap;
} binding_line;

static void binding_put(binding_line *b, const char *s, size_t n)
{
    if (n > b->cap - 1 - b->len)
        n = b->cap - 1 - b->len;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* Appends a value as lib/phonehome/log.lua's quote() does: bare when it needs no quotes;
 * else quoted, with \\, \" and \n escaped and other control characters as \xNN. */
static void binding_quote(binding_line *b, const char *v)
{
    const unsigned char *c;
    int bare = *v != '\0';
    char esc[8];

    for (c = (const unsigned char *)v; *c != '\0' && bare; c++)
        if (*c == ' ' || *c < 0x20 || *c == 0x7f || *c == '"' || *c == '=' || *c == '\\')
            bare = 0;
    if (bare) {
        binding_put(b, v, strlen(v));
        return;
    }
    binding_put(b, "\"", 1);
    for (c = (const unsigned char *)v; *c != '\0'; c++) {
        if (*c == '\\' || *c == '"') {
            esc[0] = '\\';
            esc[1] = (char)*c;
            binding_put(b, esc, 2);
        } else if (*c == '\n') {
            binding_put(b, "\\n", 2);
        } else if (*c < 0x20 || *c == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", *c);
            binding_put(b, esc, 4);
        } else {
            binding_put(b, (const char *)c, 1);
        }
    }
    binding_put(b, "\"", 1);
}

/* Writes one logfmt line on stderr, as lib/phonehome/log.lua does: level=LEVEL msg=MSG
 * and, when key is not NULL, key=VALUE. For what C cannot return to a caller: an error
 * in a callback, a library's own complaints. errno is kept. */
void binding_log(const char *level, const char *msg, const char *key, const char *value)
{
    int saved = errno;
    char fallback[1024];
    binding_line b = {NULL, 0, 0};

    if (value == NULL)
        value = "";
    b.cap = 32 + strlen(level) + 4 * strlen(msg) + (key ? strlen(key) + 4 * strlen(value) : 0);
    if ((b.p = malloc(b.cap)) == NULL) {
        b.p = fallback;
        b.cap = sizeof fallback;
    }
    binding_put(&b, "level=", 6);
    binding_put(&b, level, strlen(level));
    binding_put(&b, " msg=", 5);
    binding_quote(&b, msg);
    if (key != NULL) {
        binding_put(&b, " ", 1);
        binding_put(&b, key, strlen(key));
        binding_put(&b, "=", 1);
        binding_quote(&b, value);
    }
    b.p[b.len++] = '\n';
    fwrite(b.p, 1, b.len, stderr);
    fflush(stderr);
    if (b.p != fallback)
        free(b.p);
    errno = saved;
}
