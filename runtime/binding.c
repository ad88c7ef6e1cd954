/* binding.c: helpers for writing the Lua bindings: the one failure return and the
 * registration of a userdata class. Every file of the host uses them; they call none. */
#include <string.h>
#include <uv.h>
#include "phonehome.h"

/* A failure of the environment, not of the caller: nil, "what: reason", code.
 * err is a libuv error (negative) or an errno value (positive). */
int binding_fail(lua_State *L, const char *what, int err)
{
    lua_pushnil(L);
    if (err < 0)
        lua_pushfstring(L, "%s: %s", what, uv_strerror(err));
    else
        lua_pushfstring(L, "%s: %s", what, strerror(err));
    lua_pushinteger(L, err < 0 ? -err : err);
    return 3;
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
