/* binding.c: helpers for writing the Lua bindings: the one failure return, the fields of
 * a table argument, the registration of a userdata class. Every file of the host uses
 * them; they call none. */
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
    t = lua_getfield(L, arg, key);                      /* ... value */
    if (t == LUA_TNIL && optional)
        return 0;
    if (type == BINDING_TINTEGER && t == LUA_TNUMBER) {
        n = lua_tointegerx(L, -1, &exact);
        if (!exact)
            return binding_field_error(L, arg, key, "number has no integer representation");
        lua_pop(L, 1);
        lua_pushinteger(L, n);                          /* ... integer */
        return 1;
    }
    if (t != (type == BINDING_TINTEGER ? LUA_TNUMBER : type))
        return binding_field_error(L, arg, key, lua_pushfstring(L, "%s expected, got %s",
                                   type == BINDING_TINTEGER ? "integer" : lua_typename(L, type),
                                   luaL_typename(L, -1)));
    return 1;
}
