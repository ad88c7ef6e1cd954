/* binding.c: helpers for writing the Lua bindings: the one failure return and the
 * registration of a userdata class. Every file of the host uses them; they call none. */
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
