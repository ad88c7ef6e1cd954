/* sqlite_query.c: core.sqlite_query, read-only queries of a product's own SQLite database
 * off the loop: the options are read into a job (sqlite_query.h) whose worker runs on
 * libuv's thread pool (sqlite_query_work.c); the loop makes the Lua tables and calls back.
 * A timer on the loop bounds the job; cancel and the state's close interrupt it. */
#include <stdlib.h>
#include <string.h>
#include "sqlite_query.h"

#define QUERY_HANDLE "phonehome.SqliteQuery"

static const core_api *api;
static query_job *query_jobs; /* queued or working, for the state's close */

static void query_free(query_job *j)
{
    int i;
    for (i = 0; i < j->nq; i++) {
        free(j->q[i].sql);
        free(j->q[i].params.p);
        free(j->q[i].rows.p);
    }
    free(j->q);
    free(j->path);
    uv_cond_destroy(&j->ended);
    uv_mutex_destroy(&j->lock);
    free(j);
}

/* On the loop: asks the job to stop: a flag for the handlers, an interrupt for what runs,
 * and work not started yet is taken back from the pool. */
static void query_stop(query_job *j, int why)
{
    int run = QUERY_RUN, queued;
    atomic_compare_exchange_strong(&j->stop, &run, why);
    uv_mutex_lock(&j->lock);
    if (j->db != NULL)
        sqlite3_interrupt(j->db);
    queued = j->state == QUERY_QUEUED;
    uv_mutex_unlock(&j->lock);
    if (queued && uv_cancel((uv_req_t *)&j->work) == 0)
        query_set_state(j, QUERY_CANCELLED);
}

static void query_on_timer(uv_timer_t *t)
{
    query_stop(t->data, QUERY_TIMEOUT);
}

static void query_timer_closed(uv_handle_t *h)
{
    query_job *j = h->data;
    if (--j->holds == 0)
        query_free(j);
}

/* Takes the job off the list and closes its timer: it is over, or the state is closing. */
static void query_end(query_job *j)
{
    if (j->prev != NULL)
        j->prev->next = j->next;
    else if (query_jobs == j)
        query_jobs = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
    j->prev = j->next = NULL;
    if (!j->timer_closed)
        uv_close((uv_handle_t *)&j->timer, query_timer_closed);
    j->timer_closed = 1;
}

/* Nobody waits for the job any more: its callback and its handle let go. */
static void query_detach(query_job *j)
{
    if (j->L != NULL) {
        luaL_unref(j->L, LUA_REGISTRYINDEX, j->fn_ref);
        luaL_unref(j->L, LUA_REGISTRYINDEX, j->self_ref);
    }
    if (j->box != NULL)
        *j->box = NULL;
    j->box = NULL;
    j->L = NULL;
}

/* Pushes the table of one query: { columns, rows } or { error }. */
static void query_push(lua_State *L, const query_one *q)
{
    size_t at = 0, r;
    int c;
    lua_createtable(L, 0, 2); /* query */
    if (q->error[0] != '\0') {
        lua_pushstring(L, q->error);
        lua_setfield(L, -2, "error");
        return;
    }
    lua_createtable(L, q->ncols, 0); /* query columns */
    for (c = 1; c <= q->ncols; c++) {
        query_value v = query_get(&q->rows, &at);
        lua_pushlstring(L, v.s, v.n);
        lua_rawseti(L, -2, c);
    }
    lua_createtable(L, q->nrows < INT_MAX ? (int)q->nrows : 0, 0); /* query columns rows */
    for (r = 1; r <= q->nrows; r++) {
        lua_createtable(L, 0, q->ncols); /* query columns rows row */
        for (c = 1; c <= q->ncols; c++) {
            query_value v = query_get(&q->rows, &at);
            if (v.type == SQLITE_NULL)
                continue;
            lua_rawgeti(L, -3, c); /* ... row name */
            if (v.type == SQLITE_INTEGER)
                lua_pushinteger(L, v.i);
            else if (v.type == SQLITE_FLOAT)
                lua_pushnumber(L, v.d);
            else
                lua_pushlstring(L, v.s, v.n); /* ... row name value */
            lua_rawset(L, -3);
        }
        lua_rawseti(L, -2, (lua_Integer)r);
    }
    lua_setfield(L, -3, "rows");
    lua_setfield(L, -2, "columns");
}

/* Protected: makes the result of the job (argument 1) and calls fn (argument 2) with it. */
static int query_deliver(lua_State *L)
{
    const query_job *j = lua_touserdata(L, 1);
    int i;
    if (j->error[0] != '\0') {
        lua_pushnil(L);
        lua_pushstring(L, j->error); /* j fn nil message */
        lua_call(L, 2, 0);
        return 0;
    }
    lua_createtable(L, 0, 2); /* j fn result */
    lua_pushstring(L, sqlite3_libversion());
    lua_setfield(L, -2, "version");
    lua_createtable(L, j->nq, 0); /* j fn result queries */
    for (i = 0; i < j->nq; i++) {
        query_push(L, &j->q[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "queries");
    lua_call(L, 1, 0);
    return 0;
}

/* On the loop, once the worker is done or the work was taken back: the callback. */
static void query_after(uv_work_t *w, int status)
{
    query_job *j = w->data;
    lua_State *L = j->L;
    int i;

    query_end(j);
    for (i = 0; status == UV_ECANCELED && i < j->nq; i++)
        query_fail(j, &j->q[i], SQLITE_INTERRUPT, "interrupted");
    if (L != NULL) {
        lua_pushcfunction(L, query_deliver);
        lua_pushlightuserdata(L, j);
        lua_rawgeti(L, LUA_REGISTRYINDEX, j->fn_ref); /* deliver j fn */
        query_detach(j);
        api->pcall(L, 2, 0);
    }
    query_timer_closed((uv_handle_t *)&j->timer); /* lets go of the after-work's hold */
}

/* Raises the error of query i (from 0) of the options. */
static int query_bad(lua_State *L, int i, const char *what, const char *expected, const char *got)
{
    return api->field_error(
        L, 1, "queries",
        lua_pushfstring(L, "[%d]%s: %s expected, got %s", i + 1, what, expected, got));
}

/* Copies query i of the list at index 8 into j. */
static void query_read_one(lua_State *L, query_job *j, int i)
{
    query_one *q = &j->q[i];
    size_t len;
    const char *s;
    int k, n, t;

    if (lua_geti(L, 8, i + 1) != LUA_TTABLE) /* ... query */
        query_bad(L, i, "", "table", luaL_typename(L, -1));
    if (lua_getfield(L, -1, "sql") != LUA_TSTRING) /* ... query sql */
        query_bad(L, i, ".sql", "string", luaL_typename(L, -1));
    s = lua_tolstring(L, -1, &len);
    if (strlen(s) != len)
        query_bad(L, i, ".sql", "string without NUL bytes", "NUL");
    if ((q->sql = strdup(s)) == NULL)
        luaL_error(L, "out of memory");
    if ((t = lua_getfield(L, -2, "params")) != LUA_TTABLE && t != LUA_TNIL) /* query sql params */
        query_bad(L, i, ".params", "table", luaL_typename(L, -1));
    n = t == LUA_TNIL ? 0 : (int)luaL_len(L, -1);
    for (k = 1; k <= n; k++, q->nparams++) {
        t = lua_geti(L, -1, k); /* ... query sql params value */
        if (t == LUA_TSTRING)
            s = lua_tolstring(L, -1, &len);
        if (t != LUA_TNUMBER && t != LUA_TBOOLEAN && t != LUA_TSTRING) {
            const char *got = luaL_typename(L, -1);
            query_bad(L, i, lua_pushfstring(L, ".params[%d]", k),
                      "integer, number, string or boolean", got);
        }
        if (query_put(&q->params,
                      t == LUA_TSTRING                            ? SQLITE_TEXT
                      : t == LUA_TNUMBER && !lua_isinteger(L, -1) ? SQLITE_FLOAT
                                                                  : SQLITE_INTEGER,
                      t == LUA_TBOOLEAN ? lua_toboolean(L, -1) : lua_tointeger(L, -1),
                      lua_tonumber(L, -1), s, len)
            < 0)
            luaL_error(L, "out of memory");
        lua_pop(L, 1);
    }
    lua_pop(L, 3);
}

/* Reads the options (argument 1) into j, on stack slots 4 to 8. */
static void query_read(lua_State *L, query_job *j)
{
    lua_Integer max_rows, max_bytes, n;
    const char *path;
    size_t len;
    int i;

    api->field(L, 1, "path", LUA_TSTRING, 0);           /* 4 */
    api->field(L, 1, "timeout", LUA_TNUMBER, 1);        /* 5 */
    api->field(L, 1, "max_rows", BINDING_TINTEGER, 1);  /* 6 */
    api->field(L, 1, "max_bytes", BINDING_TINTEGER, 1); /* 7 */
    api->field(L, 1, "queries", LUA_TTABLE, 0);         /* 8 */
    path = lua_tolstring(L, 4, &len);
    j->timeout = luaL_optnumber(L, 5, 10);
    max_rows = luaL_optinteger(L, 6, 10000);
    max_bytes = luaL_optinteger(L, 7, 8 << 20);
    if (len == 0 || strlen(path) != len || len >= PATH_MAX)
        api->field_error(L, 1, "path", "empty, too long, or holding a NUL byte");
    if (!(j->timeout > 0 && j->timeout <= 86400))
        api->field_error(L, 1, "timeout", "must be positive, at most a day");
    if (max_rows < 0 || max_rows > INT_MAX)
        api->field_error(L, 1, "max_rows", "out of range");
    if (max_bytes < 0)
        api->field_error(L, 1, "max_bytes", "must not be negative");
    if ((n = luaL_len(L, 8)) > INT_MAX / (lua_Integer)sizeof *j->q)
        api->field_error(L, 1, "queries", "too many");
    j->max_rows = (size_t)max_rows;
    j->max_bytes = (size_t)max_bytes;
    if ((j->path = strdup(path)) == NULL
        || (n > 0 && (j->q = calloc((size_t)n, sizeof *j->q)) == NULL))
        luaL_error(L, "out of memory");
    j->nq = n > 0 ? (int)n : 0;
    for (i = 0; i < j->nq; i++)
        query_read_one(L, j, i);
}

/* handle:cancel(), and its finalizer: no callback after it; work in flight is interrupted
 * and freed when the pool hands it back. */
static int query_cancel(lua_State *L)
{
    query_job **box = luaL_checkudata(L, 1, QUERY_HANDLE), *j = *box;
    if (j != NULL && !j->queued) { /* an error was raised while the options were read */
        *box = NULL;
        query_free(j);
    } else if (j != NULL) {
        query_stop(j, QUERY_CANCEL);
        query_detach(j);
    }
    return 0;
}

/* core.sqlite_query({ path, queries = { { sql, params } }, timeout, max_rows, max_bytes },
 * callback) -> handle. callback({ version, queries = { { columns, rows } or { error } } }),
 * or callback(nil, message) when the file cannot be read as a database. */
static int query_new(lua_State *L)
{
    query_job **box, *j;

    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    box = lua_newuserdatauv(L, sizeof *box, 0); /* opts fn box */
    *box = NULL;
    luaL_setmetatable(L, QUERY_HANDLE);
    if ((j = calloc(1, sizeof *j)) == NULL || uv_mutex_init(&j->lock) != 0)
        goto oom;
    if (uv_cond_init(&j->ended) != 0) {
        uv_mutex_destroy(&j->lock);
        goto oom;
    }
    *box = j;
    j->box = box;
    query_read(L, j); /* j is the box's: an error raised there leaves it to the finalizer */
    j->deadline = uv_hrtime() + (uint64_t)(j->timeout * 1e9);
    j->work.data = j->timer.data = j;
    j->state = QUERY_QUEUED;
    if (uv_queue_work(uv_default_loop(), &j->work, query_work, query_after) != 0)
        return luaL_error(L, "cannot queue the query");
    j->queued = 1;
    j->holds = 2;
    uv_timer_init(uv_default_loop(), &j->timer);
    uv_update_time(uv_default_loop()); /* the loop's time is that of its last turn */
    uv_timer_start(&j->timer, query_on_timer, (uint64_t)(j->timeout * 1000) + 1, 0);
    j->L = j->owner = api->main_thread(L);
    lua_pushvalue(L, 2);
    j->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 3);
    j->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if ((j->next = query_jobs) != NULL)
        query_jobs->prev = j;
    query_jobs = j;
    lua_settop(L, 3);
    return 1;
oom:
    free(j);
    return luaL_error(L, "out of memory");
}

/* When the state closes: its jobs are stopped, their callbacks dropped, and the workers
 * running waited for (interrupted, they end soon), so that nothing runs past the state;
 * what they hold is freed when the loop takes the work back, or goes with the process. */
static int query_shutdown(lua_State *L)
{
    lua_State *owner = api->main_thread(L);
    query_job *j, *next;
    for (j = query_jobs; j != NULL; j = next) {
        next = j->next;
        if (j->owner != owner)
            continue;
        query_stop(j, QUERY_CANCEL);
        if (j->box != NULL)
            *j->box = NULL;
        j->box = NULL;
        j->L = NULL; /* the registry goes with the state */
        query_end(j);
        uv_mutex_lock(&j->lock);
        while (j->state == QUERY_QUEUED || j->state == QUERY_WORKING)
            uv_cond_wait(&j->ended, &j->lock);
        uv_mutex_unlock(&j->lock);
    }
    return 0;
}

void sqlite_query_open(lua_State *L, const core_api *core)
{
    static const luaL_Reg methods[] = {{"cancel", query_cancel}, {NULL, NULL}};
    api = core;
    api->on_close(L, "phonehome.sqlite_query.shutdown", query_shutdown);
    api->class_(L, QUERY_HANDLE, methods, query_cancel, "sqlite_query", query_new);
}
