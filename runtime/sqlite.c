/* sqlite.c: the SQLite binding: open, exec, run with parameters, rows; statements are
 * prepared once and kept. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include "phonehome.h"

#define SQLITE_HANDLE "phonehome.Db"
#define SQLITE_CACHE 32

static const core_api *api;

typedef struct {
    sqlite3 *db;
    struct {
        char *sql;
        sqlite3_stmt *stmt;
    } cache[SQLITE_CACHE];
} sqlite_db;

static sqlite_db *sqlite_check(lua_State *L)
{
    sqlite_db *d = luaL_checkudata(L, 1, SQLITE_HANDLE);
    if (d->db == NULL)
        luaL_error(L, "database is closed");
    return d;
}

/* nil, "what: SQLite's message", the errno of a failure of the system (nil when it was
 * not one), the extended result code. */
static int sqlite_fail(lua_State *L, sqlite_db *d, const char *what)
{
    int code = sqlite3_extended_errcode(d->db), err = 0;
    switch (code & 0xff) {
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
        err = sqlite3_system_errno(d->db);
        break;
    default:
        break;
    }
    return api->fail(L, what, sqlite3_errmsg(d->db), err, code);
}

static void sqlite_release(sqlite_db *d)
{
    int i;
    for (i = 0; i < SQLITE_CACHE; i++) {
        sqlite3_finalize(d->cache[i].stmt);
        free(d->cache[i].sql);
        d->cache[i].stmt = NULL;
        d->cache[i].sql = NULL;
    }
    if (d->db != NULL) {
        sqlite3_close(d->db);
        d->db = NULL;
    }
}

static int sqlite_close(lua_State *L)
{
    sqlite_release(luaL_checkudata(L, 1, SQLITE_HANDLE));
    return 0;
}

/* core.db_open(path) -> db, or nil, message, errno, code. The file is created if missing,
 * readable by its owner only (SQLite would make it 0644; its -wal and -shm files take the
 * mode of the database). The handle is a userdata made first, so that its finalizer
 * closes what SQLite opened. */
static int sqlite_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    sqlite_db *d = lua_newuserdatauv(L, sizeof *d, 0);
    int rc, fd;

    memset(d, 0, sizeof *d);
    luaL_setmetatable(L, SQLITE_HANDLE);
    /* an empty file is a new database; any failure here is SQLite's to report below */
    if (path[0] != '\0' && strcmp(path, ":memory:") != 0
        && (fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) >= 0)
        close(fd);
    rc = sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        rc = d->db ? sqlite_fail(L, d, path) : api->fail(L, path, NULL, ENOMEM, SQLITE_NOMEM);
        sqlite_release(d);
        return rc;
    }
    sqlite3_extended_result_codes(d->db, 1);
    sqlite3_busy_timeout(d->db, 5000);
    return 1;
}

/* db:exec(sql) runs one or more statements without parameters: true, or nil, message,
 * errno, code. */
static int sqlite_exec(lua_State *L)
{
    sqlite_db *d = sqlite_check(L);
    const char *sql = luaL_checkstring(L, 2);
    /* no copy of the message asked for: sqlite3_errmsg has it, and nothing is to free */
    if (sqlite3_exec(d->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sqlite_fail(L, d, NULL);
    lua_pushboolean(L, 1);
    return 1;
}

/* The prepared statement of sql, from the cache or made now; NULL on a bad statement. */
static sqlite3_stmt *sqlite_prepare(sqlite_db *d, const char *sql)
{
    int i, free_slot = -1;
    sqlite3_stmt *stmt = NULL;

    for (i = 0; i < SQLITE_CACHE; i++) {
        if (d->cache[i].sql && strcmp(d->cache[i].sql, sql) == 0) {
            /* reset already, unless an error was raised while rows were read */
            sqlite3_reset(d->cache[i].stmt);
            sqlite3_clear_bindings(d->cache[i].stmt);
            return d->cache[i].stmt;
        }
        if (d->cache[i].sql == NULL && free_slot < 0)
            free_slot = i;
    }
    if (sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK)
        return NULL;
    if (free_slot >= 0 && (d->cache[free_slot].sql = strdup(sql)) != NULL)
        d->cache[free_slot].stmt = stmt;
    return stmt;
}

static void sqlite_done(sqlite_db *d, sqlite3_stmt *stmt)
{
    int i;
    for (i = 0; i < SQLITE_CACHE; i++)
        if (d->cache[i].stmt == stmt) {
            sqlite3_reset(stmt);
            sqlite3_clear_bindings(stmt);
            return;
        }
    sqlite3_finalize(stmt);
}

/* Binds arguments first.. of the Lua stack to the statement's parameters. */
static int sqlite_bind(lua_State *L, sqlite3_stmt *stmt, int first)
{
    int i, n = lua_gettop(L) - first + 1, rc = SQLITE_OK;
    if (n != sqlite3_bind_parameter_count(stmt))
        return -1;
    for (i = 1; i <= n && rc == SQLITE_OK; i++) {
        int idx = first + i - 1;
        switch (lua_type(L, idx)) {
        case LUA_TNIL:
            rc = sqlite3_bind_null(stmt, i);
            break;
        case LUA_TBOOLEAN:
            rc = sqlite3_bind_int(stmt, i, lua_toboolean(L, idx));
            break;
        case LUA_TNUMBER:
            if (lua_isinteger(L, idx))
                rc = sqlite3_bind_int64(stmt, i, lua_tointeger(L, idx));
            else
                rc = sqlite3_bind_double(stmt, i, lua_tonumber(L, idx));
            break;
        case LUA_TSTRING: {
            size_t len;
            const char *s = lua_tolstring(L, idx, &len);
            rc = sqlite3_bind_text(stmt, i, s, (int)len, SQLITE_TRANSIENT);
            break;
        }
        default:
            return -2 - i;
        }
    }
    return rc == SQLITE_OK ? 0 : -1;
}

/* Prepares and binds, raising on misuse (a wrong parameter), returning NULL with a
 * result pushed on a failure of the database. */
static sqlite3_stmt *sqlite_start(lua_State *L, sqlite_db *d, const char *sql, int *nret)
{
    sqlite3_stmt *stmt = sqlite_prepare(d, sql);
    int r;
    if (stmt == NULL) {
        *nret = sqlite_fail(L, d, "prepare");
        return NULL;
    }
    r = sqlite_bind(L, stmt, 3);
    if (r < -1) {
        sqlite_done(d, stmt);
        luaL_argerror(L, 3 + (-2 - r) - 1, "cannot bind this type");
    }
    if (r == -1) {
        sqlite_done(d, stmt);
        luaL_error(L, "wrong number of parameters for: %s", sql);
    }
    return stmt;
}

/* db:run(sql, ...) -> changes, last rowid; or nil, message, errno, extended code. */
static int sqlite_run(lua_State *L)
{
    sqlite_db *d = sqlite_check(L);
    const char *sql = luaL_checkstring(L, 2);
    int nret, rc;
    sqlite3_stmt *stmt = sqlite_start(L, d, sql, &nret);

    if (stmt == NULL)
        return nret;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        ;
    sqlite_done(d, stmt);
    if (rc != SQLITE_DONE)
        return sqlite_fail(L, d, "step");
    lua_pushinteger(L, sqlite3_changes(d->db));
    lua_pushinteger(L, sqlite3_last_insert_rowid(d->db));
    return 2;
}

/* db:rows(sql, ...) -> a list of rows, each a table by column name; or nil, message,
 * errno, extended code. */
static int sqlite_rows(lua_State *L)
{
    sqlite_db *d = sqlite_check(L);
    const char *sql = luaL_checkstring(L, 2);
    int nret, rc, n = 0, i, cols;
    sqlite3_stmt *stmt = sqlite_start(L, d, sql, &nret);

    if (stmt == NULL)
        return nret;
    lua_newtable(L);
    cols = sqlite3_column_count(stmt);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        lua_createtable(L, 0, cols);
        for (i = 0; i < cols; i++) {
            switch (sqlite3_column_type(stmt, i)) {
            case SQLITE_INTEGER:
                lua_pushinteger(L, sqlite3_column_int64(stmt, i));
                break;
            case SQLITE_FLOAT:
                lua_pushnumber(L, sqlite3_column_double(stmt, i));
                break;
            case SQLITE_NULL:
                continue;
            default:
                lua_pushlstring(L, (const char *)sqlite3_column_text(stmt, i),
                                (size_t)sqlite3_column_bytes(stmt, i));
            }
            lua_setfield(L, -2, sqlite3_column_name(stmt, i));
        }
        lua_rawseti(L, -2, ++n);
    }
    sqlite_done(d, stmt);
    if (rc != SQLITE_DONE)
        return sqlite_fail(L, d, "step");
    return 1;
}

static const luaL_Reg sqlite_methods[] = {{"exec", sqlite_exec},
                                          {"run", sqlite_run},
                                          {"rows", sqlite_rows},
                                          {"close", sqlite_close},
                                          {NULL, NULL}};

void phonehome_sqlite_open(lua_State *L, const core_api *core)
{
    api = core;
    api->class_(L, SQLITE_HANDLE, sqlite_methods, sqlite_close, "db_open", sqlite_open);
    sqlite_query_open(L, core);
}
