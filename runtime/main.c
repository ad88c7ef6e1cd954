/* main.c: starts the control Lua state and hands the command line to phonehome.cli. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include <lualib.h>
#include "phonehome.h"

#ifndef PHONEHOME_DATADIR
#define PHONEHOME_DATADIR "/usr/local/share/phonehome"
#endif
#ifndef PHONEHOME_PARTDIR
#define PHONEHOME_PARTDIR "/usr/local/lib/phonehome"
#endif
#ifndef PHONEHOME_LMODDIR
#define PHONEHOME_LMODDIR "/usr/share/lua/5.4"
#endif
#ifndef PHONEHOME_CMODDIR
#define PHONEHOME_CMODDIR "/usr/lib/x86_64-linux-gnu/lua/5.4"
#endif

/* Where lib/ and scripts/ are: the nearest ancestor of the binary's directory that
 * holds lib/phonehome/cli.lua when it runs from a source tree (build/phonehome,
 * build/sanitize/phonehome), else the installed data directory. */
static void main_home(char *out, size_t size)
{
    char exe[PATH_MAX], probe[PATH_MAX + 64];
    size_t len = sizeof exe;
    char *slash;
    int up;

    if (size >= PATH_MAX && uv_exepath(exe, &len) == 0 && (slash = strrchr(exe, '/')) != NULL) {
        *slash = '\0';
        for (up = 1; up <= 2; up++) {
            snprintf(probe, sizeof probe, "%s%s/lib/phonehome/cli.lua", exe,
                     up == 1 ? "/.." : "/../..");
            if (access(probe, R_OK) == 0) {
                snprintf(probe, sizeof probe, "%s%s", exe, up == 1 ? "/.." : "/../..");
                if (realpath(probe, out) != NULL)
                    return;
            }
        }
    }
    snprintf(out, size, "%s", PHONEHOME_DATADIR);
}

static int main_traceback(lua_State *L)
{
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

/* Runs in protected mode: package paths, the core module, then cli.main(argv, home). */
static int main_protected(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1), i;
    char **argv = lua_touserdata(L, 2);
    const char *home = lua_tostring(L, 3);

    luaL_openlibs(L);
    luaL_requiref(L, "phonehome.core", luaopen_phonehome_core, 0);
    lua_pop(L, 1);
    /* never LUA_PATH from the environment, never the working directory; Debian's Lua
     * libraries (lyaml, inifile) after our own */
    lua_getglobal(L, "package");
    lua_pushfstring(L,
                    "%s/lib/?.lua;%s/lib/?/init.lua;" PHONEHOME_LMODDIR "/?.lua;" PHONEHOME_LMODDIR
                    "/?/init.lua",
                    home, home);
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, PHONEHOME_CMODDIR "/?.so");
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);

    lua_getglobal(L, "require");
    lua_pushliteral(L, "phonehome.cli");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "main");
    lua_createtable(L, argc, 0);
    for (i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_pushstring(L, home);
    lua_call(L, 2, 1);
    return 1;
}

/* The parts loaded on first use sit in lib/phonehome/ beside the binary in a build
 * directory, else in the installed directory. */
static void main_partdir(void)
{
    char exe[PATH_MAX], dir[PATH_MAX + 32];
    size_t len = sizeof exe;
    char *slash;
    if (uv_exepath(exe, &len) == 0 && (slash = strrchr(exe, '/')) != NULL) {
        *slash = '\0';
        snprintf(dir, sizeof dir, "%s/lib/phonehome/http_client.so", exe);
        if (access(dir, R_OK) == 0) {
            snprintf(dir, sizeof dir, "%s/lib/phonehome", exe);
            core_set_partdir(dir);
            return;
        }
    }
    core_set_partdir(PHONEHOME_PARTDIR);
}

int main(int argc, char **argv)
{
    char home[PATH_MAX];
    lua_State *L;
    int status, code = 1;

    main_home(home, sizeof home);
    main_partdir();
    L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "phonehome: cannot create a Lua state\n");
        return 1;
    }
    lua_pushcfunction(L, main_traceback);
    lua_pushcfunction(L, main_protected);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    lua_pushstring(L, home);
    status = lua_pcall(L, 3, 1, 1);
    if (status != LUA_OK)
        fprintf(stderr, "phonehome: internal error: %s\n", lua_tostring(L, -1));
    else
        code = (int)luaL_optinteger(L, -1, 0);
    lua_close(L);
    /* let libuv finish closing what the state's finalizers closed and take back the work
     * they stopped in the thread pool (sqlite_query.c waited for it to end), then free it */
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    uv_loop_close(uv_default_loop());
    return code;
}
