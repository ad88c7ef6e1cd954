/* core.c: builds the phonehome.core module, the one door between C and Lua, from the
 * parts linked in and, on first use of one of their functions, the parts loaded apart. */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "phonehome.h"

#ifndef PHONEHOME_PARTDIR
#define PHONEHOME_PARTDIR "/usr/local/lib/phonehome"
#endif

static char core_partdir[PATH_MAX]; /* where the parts (http_client.so, ...) are */

/* The binary says where its parts are; as a module, they are beside core.so. */
void core_set_partdir(const char *dir)
{
    snprintf(core_partdir, sizeof core_partdir, "%s", dir);
}

static const core_api core_lent = {binding_fail,        binding_class,   binding_field,
                                   binding_field_error, binding_log,     loop_pcall,
                                   loop_main_thread,    binding_on_close};

static const struct {
    const char *name, *part, *entry;
} core_parts[] = {
    {"http", "http_client.so", "phonehome_http_client_open"},
    {"url_parse", "http_client.so", "phonehome_http_client_open"},
    {"httpd", "http_server.so", "phonehome_http_server_open"},
    {"db_open", "sqlite.so", "phonehome_sqlite_open"},
    {"sqlite_query", "sqlite.so", "phonehome_sqlite_open"},
    {"json_strict", "json_strict.so", "phonehome_json_strict_open"},
    {"pg_query", "pg.so", "phonehome_pg_open"},
    {"statsd_listen", "statsd.so", "phonehome_statsd_open"},
    {"statsd_merge", "statsd.so", "phonehome_statsd_open"},
};

/* __index of the module: a function of a part not loaded yet loads that part. The
 * handle is never closed: the part's functions live as long as the process. */
static int core_index(lua_State *L)
{
    const char *key = luaL_checkstring(L, 2);
    char path[PATH_MAX + 32];
    core_part_open open_part;
    void *lib;
    size_t i;

    for (i = 0; i < sizeof core_parts / sizeof core_parts[0]; i++) {
        if (strcmp(key, core_parts[i].name) != 0)
            continue;
        if (core_partdir[0] == '\0') {
            Dl_info info;
            char *slash;
            if (dladdr((void *)core_index, &info) && info.dli_fname != NULL)
                snprintf(core_partdir, sizeof core_partdir, "%s", info.dli_fname);
            slash = strrchr(core_partdir, '/');
            if (slash != NULL)
                *slash = '\0';
            else
                snprintf(core_partdir, sizeof core_partdir, "%s", PHONEHOME_PARTDIR);
        }
        snprintf(path, sizeof path, "%s/%s", core_partdir, core_parts[i].part);
        if ((lib = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL)
            return luaL_error(L, "cannot load %s: %s", path, dlerror());
        *(void **)&open_part = dlsym(lib, core_parts[i].entry);
        if (open_part == NULL)
            return luaL_error(L, "%s has no %s", path, core_parts[i].entry);
        lua_settop(L, 2);
        lua_pushvalue(L, 1);
        open_part(L, &core_lent);
        lua_settop(L, 2);
        lua_rawget(L, 1);
        return 1;
    }
    return 0;
}

int luaopen_phonehome_core(lua_State *L)
{
    lua_newtable(L);
    probe_open(L);
    procfs_open(L);
    process_open(L);
    sandbox_open(L, luaopen_phonehome_core);
    isolate_open(L);
    store_open(L);
    loop_open(L);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, core_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_pushliteral(L, PHONEHOME_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
