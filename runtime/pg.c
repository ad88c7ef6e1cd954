/* pg.c: core.pg_query, read-only PostgreSQL queries on the loop, as Lua sees it: the
 * arguments read and checked, the connection's keywords (ours merged with the caller's),
 * the queries copied as strings, the results built as tables, the job's handle. pg_job.c
 * drives libpq. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pg.h"

#define PG_JOB "phonehome.PgJob"

typedef struct {
    pg_job *j;
} pg_box;

/* the server's type OIDs (catalog/pg_type_d.h is not in libpq's headers) */
enum { PG_BOOL = 16, PG_INT8 = 20, PG_INT2 = 21, PG_INT4 = 23, PG_OID = 26 };
enum { PG_FLOAT4 = 700, PG_FLOAT8 = 701, PG_NUMERIC = 1700 };

static const core_api *api;

/* Pushes a value as its column's type says: integers, numbers, booleans; else text. */
static void pg_push_value(lua_State *L, const PGresult *res, int r, int f)
{
    const char *v = PQgetvalue(res, r, f);
    Oid t = PQftype(res, f);
    if (t == PG_INT2 || t == PG_INT4 || t == PG_INT8 || t == PG_OID)
        lua_pushinteger(L, (lua_Integer)strtoll(v, NULL, 10));
    else if (t == PG_FLOAT4 || t == PG_FLOAT8 || t == PG_NUMERIC)
        lua_pushnumber(L, strtod(v, NULL));
    else if (t == PG_BOOL)
        lua_pushboolean(L, v[0] == 't');
    else
        lua_pushlstring(L, v, (size_t)PQgetlength(res, r, f));
}

/* Protected (light userdata job, result, message): makes the entry of the query running,
 * { columns = {}, rows = {} }, or { error = message }; or adds the rows of result to it. */
static int pg_apply(lua_State *L)
{
    pg_job *j = lua_touserdata(L, 1);
    const PGresult *res = lua_touserdata(L, 2);
    const char *msg = lua_touserdata(L, 3);
    int r, f, n, nf = res ? PQnfields(res) : 0;

    lua_rawgeti(L, LUA_REGISTRYINDEX, j->res_ref);
    lua_getfield(L, -1, "queries"); /* result queries */
    if (res == NULL) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, msg); /* pushes nil for NULL */
        lua_setfield(L, -2, "error");
        if (msg == NULL) {
            lua_newtable(L);
            lua_setfield(L, -2, "columns");
            lua_newtable(L);
            lua_setfield(L, -2, "rows");
        }
        lua_rawseti(L, -2, j->qi);
        return 0;
    }
    lua_rawgeti(L, -1, j->qi);      /* result queries q */
    lua_getfield(L, -1, "columns"); /* result queries q columns */
    for (f = (int)lua_rawlen(L, -1) == 0 ? 0 : nf; f < nf; f++) {
        lua_pushstring(L, PQfname(res, f));
        lua_rawseti(L, -2, f + 1);
    }
    lua_getfield(L, -2, "rows"); /* result queries q columns rows */
    n = (int)lua_rawlen(L, -1);
    for (r = 0; r < PQntuples(res); r++) {
        lua_createtable(L, 0, nf); /* ... rows row */
        for (f = 0; f < nf; f++) {
            if (PQgetisnull(res, r, f))
                continue;
            pg_push_value(L, res, r, f);
            lua_setfield(L, -2, PQfname(res, f));
        }
        lua_rawseti(L, -2, ++n);
    }
    return 0;
}

/* Runs pg_apply protected, so that running out of memory fails no more than the query:
 * 0, or -1 with the error in err. */
int pg_store(pg_job *j, const PGresult *res, const char *msg, char *err, size_t cap)
{
    lua_State *L = j->L;
    lua_pushcfunction(L, pg_apply);
    lua_pushlightuserdata(L, j);
    lua_pushlightuserdata(L, (void *)res);
    lua_pushlightuserdata(L, (void *)msg);
    if (lua_pcall(L, 3, 0, 0) == LUA_OK)
        return 0;
    snprintf(err, cap, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
    lua_pop(L, 1);
    return -1;
}

static int pg_has_nul(lua_State *L, int idx)
{
    size_t len;
    return strlen(lua_tolstring(L, idx, &len)) != len;
}

/* Pushes the value on top as the text of the SQL (k = 0) or of parameter k of query i,
 * which the server types; raises if it cannot be one. */
static void pg_text(lua_State *L, int i, int k)
{
    int t = lua_type(L, -1), prec;
    double x = lua_tonumber(L, -1);
    char num[32];

    if (t == LUA_TSTRING && !pg_has_nul(L, -1)) {
        lua_pushvalue(L, -1);
    } else if (k == 0 || (t != LUA_TBOOLEAN && t != LUA_TNUMBER)) {
        if (k == 0)
            lua_pushfstring(L, "sql of query %d: string without NUL bytes", i);
        else
            lua_pushfstring(L,
                            "params[%d] of query %d: string without NUL bytes, number or "
                            "boolean",
                            k, i);
        api->field_error(
            L, 1, "queries",
            lua_pushfstring(L, "%s expected, got %s", lua_tostring(L, -1), luaL_typename(L, -2)));
    } else if (t == LUA_TBOOLEAN) {
        lua_pushstring(L, lua_toboolean(L, -1) ? "true" : "false");
    } else if (lua_isinteger(L, -1)) {
        lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, -1));
    } else {
        for (prec = 15; prec < 17; prec++) /* the shortest text that reads back the same */
            if (snprintf(num, sizeof num, "%.*g", prec, x) > 0 && strtod(num, NULL) == x)
                break;
        snprintf(num, sizeof num, "%.*g", prec, x);
        lua_pushstring(L, num);
    }
}

/* Copies the queries (table at index q) as { { sql, param... } } of strings, on top. */
static void pg_read_queries(lua_State *L, int q)
{
    int i, k, n = (int)lua_rawlen(L, q), t;

    lua_createtable(L, n, 0); /* copy */
    for (i = 1; i <= n; i++) {
        if (lua_rawgeti(L, q, i) != LUA_TTABLE) /* copy query */
            api->field_error(L, 1, "queries", lua_pushfstring(L, "query %d: table expected", i));
        lua_createtable(L, 1, 0);   /* copy query entry */
        lua_getfield(L, -2, "sql"); /* copy query entry sql */
        pg_text(L, i, 0);           /* copy query entry sql text */
        lua_rawseti(L, -3, 1);
        lua_pop(L, 1);
        t = lua_getfield(L, -2, "params"); /* copy query entry params */
        if (t != LUA_TNIL && t != LUA_TTABLE)
            api->field_error(L, 1, "queries",
                             lua_pushfstring(L, "params of query %d: table expected", i));
        for (k = 1; t == LUA_TTABLE && k <= (int)lua_rawlen(L, -1); k++) {
            lua_rawgeti(L, -1, k);     /* ... entry params value */
            pg_text(L, i, k);          /* ... entry params value text */
            lua_rawseti(L, -4, k + 1); /* ... entry params value */
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        lua_rawseti(L, -3, i); /* copy query */
        lua_pop(L, 1);
    }
}

/* Appends keyword k = v to the list on top, { k1, v1, k2, v2, ... }. */
static void pg_append(lua_State *L, const char *k, const char *v)
{
    int n = (int)lua_rawlen(L, -1);
    lua_pushstring(L, k);
    lua_rawseti(L, -2, n + 1);
    lua_pushstring(L, v);
    lua_rawseti(L, -2, n + 2);
}

/* A keyword the caller gave: options are kept apart, to be merged with ours; the password
 * is remembered, to be kept out of messages. */
static void pg_keyword(lua_State *L, pg_job *j, const char *k, const char *v)
{
    if (strcmp(k, "options") == 0) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, "options");
        return;
    }
    if (strcmp(k, "password") == 0) {
        free(j->password);
        if ((j->password = strdup(v)) == NULL)
            luaL_error(L, "out of memory");
    }
    pg_append(L, k, v);
}

/* Lists the keywords of the conninfo at index 3 (a string, or a table of keywords) on
 * top; a string libpq cannot read fails the job (its message cut before any quoted part,
 * which may be the password). */
static void pg_read_conninfo(lua_State *L, pg_job *j)
{
    PQconninfoOption *o;
    char *err = NULL, *quote;
    lua_Integer n;
    size_t len;
    int exact;

    lua_newtable(L); /* keywords */
    pg_append(L, "application_name", "phonehome");
    if (lua_type(L, 3) == LUA_TSTRING) {
        if ((j->parsed = PQconninfoParse(lua_tostring(L, 3), &err)) == NULL) {
            if (err != NULL && (quote = strchr(err, '"')) != NULL) {
                while (quote > err && strchr(" :", quote[-1]) != NULL)
                    quote--;
                *quote = '\0';
            }
            j->err = strdup(err != NULL ? err : "out of memory");
            PQfreemem(err);
            if (j->err == NULL)
                luaL_error(L, "out of memory");
            return;
        }
        for (o = j->parsed; o->keyword != NULL; o++)
            if (o->val != NULL)
                pg_keyword(L, j, o->keyword, o->val);
        return;
    }
    lua_pushnil(L);
    while (lua_next(L, 3)) { /* keywords key value */
        if (lua_type(L, -2) != LUA_TSTRING)
            api->field_error(L, 1, "conninfo", "keys must be strings");
        n = lua_tointegerx(L, -1, &exact);
        if (lua_type(L, -1) == LUA_TNUMBER && exact)
            lua_pushfstring(L, "%I", (LUAI_UACINT)n);
        else if (lua_type(L, -1) == LUA_TSTRING && strlen(lua_tolstring(L, -1, &len)) == len)
            lua_pushvalue(L, -1);
        else
            api->field_error(
                L, 1, "conninfo",
                lua_pushfstring(L, "%s: string without NUL bytes or integer expected, got %s",
                                lua_tostring(L, -2), luaL_typename(L, -1)));
        lua_pushvalue(L, -4); /* keywords key value text keywords */
        pg_keyword(L, j, lua_tostring(L, -4), lua_tostring(L, -2));
        lua_pop(L, 3);
    }
}

/* core.pg_query({ conninfo, passfile, queries = { { sql, params } }, timeout,
 * statement_timeout_ms, max_rows, max_bytes }, callback) -> job. One read-only connection
 * runs the queries in turn; callback(result) gets { server_version, queries = { {
 * columns, rows } or { error } } }, callback(nil, message) a failure of the connection or
 * of the deadline. job:cancel() ends it with no callback. */
static int pg_query(lua_State *L)
{
    double timeout;
    lua_Integer stmt_ms;
    const char **words;
    pg_box *box;
    pg_job *j;
    int i, n, t;

    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    t = lua_getfield(L, 1, "conninfo"); /* 3 */
    if ((t != LUA_TSTRING && t != LUA_TTABLE) || (t == LUA_TSTRING && pg_has_nul(L, 3)))
        api->field_error(L, 1, "conninfo",
                         lua_pushfstring(L, "string without NUL bytes or table expected, got %s",
                                         luaL_typename(L, 3)));
    if (api->field(L, 1, "passfile", LUA_TSTRING, 1) && pg_has_nul(L, 4)) /* 4 */
        api->field_error(L, 1, "passfile", "holds a NUL byte");
    api->field(L, 1, "timeout", LUA_TNUMBER, 1);                   /* 5 */
    api->field(L, 1, "statement_timeout_ms", BINDING_TINTEGER, 1); /* 6 */
    api->field(L, 1, "max_rows", BINDING_TINTEGER, 1);             /* 7 */
    api->field(L, 1, "max_bytes", BINDING_TINTEGER, 1);            /* 8 */
    api->field(L, 1, "queries", LUA_TTABLE, 0);                    /* 9 */
    timeout = luaL_optnumber(L, 5, 10);
    if (!(timeout > 0 && timeout <= 1e6))
        api->field_error(L, 1, "timeout", "must be positive, at most 1e6");
    stmt_ms = luaL_optinteger(L, 6, (lua_Integer)(timeout * 1000 + 0.5));
    if (stmt_ms < 0 || stmt_ms > 2147483647)
        api->field_error(L, 1, "statement_timeout_ms", "must be from 0 to 2^31 - 1");
    if (luaL_optinteger(L, 7, 0) < 0)
        api->field_error(L, 1, "max_rows", "must not be negative");
    if (luaL_optinteger(L, 8, 0) < 0)
        api->field_error(L, 1, "max_bytes", "must not be negative");
    pg_read_queries(L, 9); /* 10 */

    box = lua_newuserdatauv(L, sizeof *box, 0); /* 11 */
    box->j = NULL;
    luaL_setmetatable(L, PG_JOB);
    if ((j = calloc(1, sizeof *j)) == NULL)
        return luaL_error(L, "out of memory");
    /* j is the userdata's: an error raised from here on leaves it to the finalizer */
    box->j = j;
    j->box = &box->j;
    j->api = api;
    j->L = api->main_thread(L);
    j->fn_ref = j->self_ref = j->q_ref = j->res_ref = LUA_NOREF;
    j->timeout = timeout;
    j->max_rows = luaL_optinteger(L, 7, 10000);
    j->max_bytes = luaL_optinteger(L, 8, 8 << 20);
    j->nq = (int)lua_rawlen(L, 10);

    pg_read_conninfo(L, j); /* 12 */
    lua_getfield(L, 12, "options");
    lua_pushfstring(L, "%s -c default_transaction_read_only=on -c statement_timeout=%I",
                    lua_isnil(L, -1) ? "" : lua_tostring(L, -1), (LUAI_UACINT)stmt_ms);
    lua_pushvalue(L, 12);
    pg_append(L, "options", lua_tostring(L, -2));
    if (!lua_isnil(L, 4))
        pg_append(L, "passfile", lua_tostring(L, 4));
    lua_settop(L, 12);
    n = (int)lua_rawlen(L, 12) / 2;
    words = lua_newuserdatauv(L, 2 * ((size_t)n + 1) * sizeof *words, 0); /* 13 */
    for (i = 0; i < 2 * n; i++) {
        lua_rawgeti(L, 12, i + 1);
        words[i / 2 + (i % 2) * (n + 1)] = lua_tostring(L, -1); /* the list holds it */
        lua_pop(L, 1);
    }
    words[n] = words[2 * n + 1] = NULL;
    lua_pushvalue(L, 2);
    j->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 10);
    j->q_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_createtable(L, 0, 2); /* the result */
    lua_pushinteger(L, 0);
    lua_setfield(L, -2, "server_version");
    lua_newtable(L);
    lua_setfield(L, -2, "queries");
    j->res_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 11);
    j->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (pg_job_start(j, words, words + n + 1) < 0)
        return luaL_error(L, "out of memory");
    PQconninfoFree(j->parsed);
    j->parsed = NULL;
    lua_settop(L, 11);
    return 1;
}

/* job:cancel(): ends the job; its callback is not called. */
static int pg_cancel(lua_State *L)
{
    pg_box *box = luaL_checkudata(L, 1, PG_JOB);
    if (box->j != NULL)
        pg_job_cancel(box->j);
    return 0;
}

static int pg_gc(lua_State *L)
{
    pg_box *box = luaL_checkudata(L, 1, PG_JOB);
    if (box->j != NULL)
        pg_job_release(box->j); /* only at the state's close: running jobs are anchored */
    return 0;
}

static const luaL_Reg pg_methods[] = {{"cancel", pg_cancel}, {NULL, NULL}};

void phonehome_pg_open(lua_State *L, const core_api *core)
{
    api = core;
    api->class_(L, PG_JOB, pg_methods, pg_gc, "pg_query", pg_query);
}
