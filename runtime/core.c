/* core.c: builds the phonehome.core module, the one door between C and Lua. */
#include <string.h>
#include <uv.h>
#include "phonehome.h"

/* A failure of the environment, not of the caller: nil, "what: reason", code.
 * err is a libuv error (negative) or an errno value (positive). */
int core_fail(lua_State *L, const char *what, int err)
{
    lua_pushnil(L);
    if (err < 0)
        lua_pushfstring(L, "%s: %s", what, uv_strerror(err));
    else
        lua_pushfstring(L, "%s: %s", what, strerror(err));
    lua_pushinteger(L, err < 0 ? -err : err);
    return 3;
}

int luaopen_phonehome_core(lua_State *L)
{
    lua_newtable(L);
    probe_open(L);
    host_open(L);
    store_open(L);
    loop_open(L);
    db_open_module(L);
    collect_open(L);
    lua_pushliteral(L, PHONEHOME_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
