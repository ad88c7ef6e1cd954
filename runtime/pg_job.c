/* pg_job.c: one job of core.pg_query on the libuv loop, through libpq's asynchronous
 * interface: connect, each query in turn with its rows typed by column, the deadline, one
 * callback. libpq resolves host names while it connects, blocking: give addresses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pg.h"

typedef struct {
    uv_work_t req;
    PGcancel *cancel;
} pg_cancel_req;

static void pg_io(pg_job *j);
static void pg_next(pg_job *j);
static int pg_send(pg_job *j);

static void pg_free_handle(uv_handle_t *h)
{
    free(h);
}

/* PQcancel waits for the server: it runs on libuv's thread pool. */
static void pg_cancel_work(uv_work_t *w)
{
    char err[256];
    PQcancel(((pg_cancel_req *)w)->cancel, err, sizeof err);
}

static void pg_cancel_done(uv_work_t *w, int status)
{
    (void)status;
    PQfreeCancel(((pg_cancel_req *)w)->cancel);
    free(w);
}

/* Asks the server to stop the statement it runs, if any: closing the socket would not. */
static void pg_cancel_server(pg_job *j)
{
    pg_cancel_req *c;
    if (j->conn == NULL || PQtransactionStatus(j->conn) != PQTRANS_ACTIVE)
        return;
    if ((c = malloc(sizeof *c)) == NULL)
        return;
    if ((c->cancel = PQgetCancel(j->conn)) == NULL
        || uv_queue_work(uv_default_loop(), &c->req, pg_cancel_work, pg_cancel_done) < 0) {
        PQfreeCancel(c->cancel);
        free(c);
    }
}

/* Frees what a job holds and lets its userdata go. */
void pg_job_release(pg_job *j)
{
    if (j->poll != NULL)
        uv_close((uv_handle_t *)j->poll, pg_free_handle);
    if (j->timer != NULL)
        uv_close((uv_handle_t *)j->timer, pg_free_handle);
    if (j->conn != NULL)
        PQfinish(j->conn);
    PQconninfoFree(j->parsed);
    free(j->err);
    free(j->password);
    if (j->box != NULL)
        *j->box = NULL;
    luaL_unref(j->L, LUA_REGISTRYINDEX, j->fn_ref);
    luaL_unref(j->L, LUA_REGISTRYINDEX, j->self_ref);
    luaL_unref(j->L, LUA_REGISTRYINDEX, j->q_ref);
    luaL_unref(j->L, LUA_REGISTRYINDEX, j->res_ref);
    free(j);
}

/* Calls the callback, protected: fn result, or fn nil message (light userdata). */
static int pg_deliver(lua_State *L)
{
    const char *msg = lua_touserdata(L, 3);
    lua_settop(L, 2);
    if (msg != NULL)
        lua_pushstring(L, msg); /* fn nil message */
    lua_call(L, lua_gettop(L) - 1, 0);
    return 0;
}

/* Copies msg into buf, without its trailing white space. */
static const char *pg_trim(char *buf, size_t cap, const char *msg)
{
    size_t len;
    snprintf(buf, cap, "%s", msg);
    len = strlen(buf);
    while (len > 0 && strchr(" \t\r\n", buf[len - 1]) != NULL)
        buf[--len] = '\0';
    return buf;
}

/* Ends the job: the callback gets the result, or nil and msg trimmed, without the
 * password. The job is freed before the callback runs. */
static void pg_finish(pg_job *j, const char *msg)
{
    const core_api *api = j->api;
    lua_State *L = j->L;
    char buf[1024], *p = buf;
    size_t len = j->password != NULL ? strlen(j->password) : 0;

    if (msg != NULL)
        pg_trim(buf, sizeof buf, msg);
    while (msg != NULL && len > 0 && (p = strstr(p, j->password)) != NULL) {
        memset(p, '*', len);
        p += len;
    }
    lua_pushcfunction(L, pg_deliver);
    lua_rawgeti(L, LUA_REGISTRYINDEX, j->fn_ref);
    if (msg != NULL)
        lua_pushnil(L);
    else
        lua_rawgeti(L, LUA_REGISTRYINDEX, j->res_ref);
    lua_pushlightuserdata(L, msg != NULL ? buf : NULL);
    pg_job_release(j);
    api->pcall(L, 3, 0);
}

static void pg_on_poll(uv_poll_t *p, int status, int events);

/* Watches the socket for events; renew: on a new handle, for the socket may be new. */
static int pg_watch(pg_job *j, int events, int renew)
{
    if (j->poll != NULL && renew) {
        uv_close((uv_handle_t *)j->poll, pg_free_handle);
        j->poll = NULL;
    }
    if (j->poll == NULL) {
        if (PQsocket(j->conn) < 0 || (j->poll = malloc(sizeof *j->poll)) == NULL)
            return -1;
        if (uv_poll_init_socket(uv_default_loop(), j->poll, PQsocket(j->conn)) < 0) {
            free(j->poll);
            j->poll = NULL;
            return -1;
        }
        j->poll->data = j;
    }
    return uv_poll_start(j->poll, events, pg_on_poll);
}

static void pg_query_error(pg_job *j, const char *msg);

/* Records in the result what pg_store says; running out of memory fails the query. */
static void pg_record(pg_job *j, const PGresult *res, const char *msg)
{
    char buf[256];
    if (pg_store(j, res, msg, buf, sizeof buf) < 0 && res != NULL)
        pg_query_error(j, buf);
}

/* Fails the query running: its rows are dropped, and so is the rest of its results. */
static void pg_query_error(pg_job *j, const char *msg)
{
    char buf[1024];
    j->qfailed = 1;
    j->bytes -= j->qbytes;
    j->qbytes = 0;
    pg_record(j, NULL, pg_trim(buf, sizeof buf, msg));
}

/* Takes one result of the query running: rows within the limits, an error, or a COPY. */
static void pg_take(pg_job *j, const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    lua_Integer bytes = 0;
    const char *m;
    char msg[64];
    int r, f;

    if (st == PGRES_COPY_OUT || st == PGRES_COPY_IN || st == PGRES_COPY_BOTH)
        j->copy = st;
    if (j->qfailed || st == PGRES_COMMAND_OK || st == PGRES_EMPTY_QUERY)
        return;
    if (j->guard && st != PGRES_TUPLES_OK) { /* our own statements: only their failure */
        m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        pg_query_error(j, m != NULL ? m : PQresultErrorMessage(res));
    }
    if (j->guard)
        return;
    if (j->copy != 0) {
        pg_query_error(j, "COPY is not supported");
    } else if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
        for (r = 0; r < PQntuples(res); r++)
            for (f = 0; f < PQnfields(res); f++)
                bytes += PQgetlength(res, r, f);
        if (j->rows + PQntuples(res) > j->max_rows) {
            snprintf(msg, sizeof msg, "more than %lld rows", (long long)j->max_rows);
            pg_query_error(j, msg);
        } else if (j->bytes + bytes > j->max_bytes) {
            snprintf(msg, sizeof msg, "results over %lld bytes", (long long)j->max_bytes);
            pg_query_error(j, msg);
        } else {
            j->rows += PQntuples(res);
            j->bytes += bytes;
            j->qbytes += bytes;
            pg_record(j, res, NULL);
        }
    } else {
        m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        pg_query_error(j, m != NULL ? m : PQresultErrorMessage(res));
    }
}

/* Throws a COPY's data away (or ends a COPY FROM STDIN); 0 while more is to come. */
static int pg_copy_drain(pg_job *j)
{
    char *buf;
    int n;
    if (j->copy == PGRES_COPY_IN) {
        if ((n = PQputCopyEnd(j->conn, "COPY is not supported")) == 0)
            return 0;
    } else {
        while ((n = PQgetCopyData(j->conn, &buf, 1)) > 0)
            PQfreemem(buf);
        if (n == 0)
            return 0;
    }
    j->copy = 0;
    return 1;
}

/* Reads what the server sent and takes the results of the query running; goes on to the
 * next query once they are all in, else waits on the socket. */
static void pg_io(pg_job *j)
{
    PGresult *res;
    int flush;

    if (!PQconsumeInput(j->conn)) {
        pg_finish(j, PQerrorMessage(j->conn));
        return;
    }
    for (;;) {
        if (j->copy != 0 && !pg_copy_drain(j))
            break;
        if (PQisBusy(j->conn))
            break;
        if ((res = PQgetResult(j->conn)) == NULL) {
            /* the query's transaction is open: the query itself, or the next */
            if (j->guard && !j->qfailed && pg_send(j) == 0)
                continue;
            j->guard = 0;
            pg_next(j);
            return;
        }
        pg_take(j, res);
        PQclear(res);
    }
    if ((flush = PQflush(j->conn)) < 0)
        pg_finish(j, PQerrorMessage(j->conn));
    else if (pg_watch(j, UV_READABLE | (flush ? UV_WRITABLE : 0), 0) < 0)
        pg_finish(j, "cannot watch the connection's socket");
}

/* Each query runs in a read-only transaction of its own whose snapshot is taken before
 * the query: from then on nothing in it (set_config, SET TRANSACTION READ WRITE) can make
 * it writable, and whatever a query did to the session (a COMMIT, a changed
 * default_transaction_read_only) is rolled back or overridden before the next one. */
#define PG_GUARD "START TRANSACTION READ ONLY; SELECT 1"

/* Sends query qi itself (its SQL and parameters are strings in the copy at q_ref), its
 * transaction open: 0, or -1 with the query failed. */
static int pg_send(pg_job *j)
{
    lua_State *L = j->L;
    const char **v;
    int n, i, sent;

    j->guard = 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, j->q_ref); /* qs */
    lua_rawgeti(L, -1, j->qi);                   /* qs { sql, params... } */
    n = (int)lua_rawlen(L, -1);
    if ((v = malloc((size_t)n * sizeof *v)) == NULL) {
        lua_pop(L, 2);
        pg_query_error(j, "out of memory");
        return -1;
    }
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        v[i] = lua_tostring(L, -1); /* the copy holds the string */
        lua_pop(L, 1);
    }
    sent = PQsendQueryParams(j->conn, v[0], n - 1, NULL, v + 1, NULL, NULL, 0);
    free(v);
    lua_pop(L, 2);
    if (!sent) {
        pg_query_error(j, PQerrorMessage(j->conn));
        return -1;
    }
    PQsetSingleRowMode(j->conn); /* so that max_rows and max_bytes bound memory */
    return 0;
}

/* Opens the transaction of the next query (the query follows in pg_io), or ends the job
 * with the result when there is none left. */
static void pg_next(pg_job *j)
{
    int idle;

    while (++j->qi <= j->nq) {
        j->rows = j->qbytes = j->qfailed = 0;
        pg_record(j, NULL, NULL);
        j->guard = 1;
        idle = PQtransactionStatus(j->conn) == PQTRANS_IDLE;
        if (PQsendQuery(j->conn, idle ? PG_GUARD : "ROLLBACK; " PG_GUARD)) {
            pg_io(j);
            return;
        }
        j->guard = 0;
        pg_query_error(j, PQerrorMessage(j->conn));
    }
    pg_finish(j, NULL);
}

static void pg_connect_step(pg_job *j)
{
    PostgresPollingStatusType st = PQconnectPoll(j->conn);
    lua_State *L = j->L;

    if (st == PGRES_POLLING_FAILED || (st == PGRES_POLLING_OK && PQsetnonblocking(j->conn, 1))) {
        pg_finish(j, PQerrorMessage(j->conn));
    } else if (st == PGRES_POLLING_OK) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, j->res_ref);
        lua_pushinteger(L, PQserverVersion(j->conn));
        lua_setfield(L, -2, "server_version"); /* the key is there: nothing allocated */
        lua_pop(L, 1);
        pg_next(j);
    } else if (pg_watch(j, st == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE, 1) < 0) {
        pg_finish(j, "cannot watch the connection's socket");
    }
}

static void pg_on_poll(uv_poll_t *p, int status, int events)
{
    pg_job *j = p->data;
    (void)status; /* libpq finds out for itself */
    (void)events;
    if (j->qi == 0)
        pg_connect_step(j);
    else
        pg_io(j);
}

static void pg_on_timer(uv_timer_t *t)
{
    pg_job *j = t->data;
    char msg[64];
    if (j->err != NULL) {
        pg_finish(j, j->err);
        return;
    }
    snprintf(msg, sizeof msg, "timed out after %g s", j->timeout);
    pg_cancel_server(j);
    pg_finish(j, msg);
}

/* The server's notices go to the log, not raw onto stderr. */
static void pg_on_notice(void *arg, const PGresult *res)
{
    const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    ((pg_job *)arg)->api->log("warn", "postgres notice", "notice", m != NULL ? m : "");
}

int pg_job_start(pg_job *j, const char *const *keywords, const char *const *values)
{
    const char *msg = NULL;

    if ((j->timer = malloc(sizeof *j->timer)) == NULL)
        return -1;
    uv_timer_init(uv_default_loop(), j->timer);
    j->timer->data = j;
    if (j->err == NULL) {
        if ((j->conn = PQconnectStartParams(keywords, values, 0)) == NULL)
            msg = "out of memory";
        else if (PQstatus(j->conn) == CONNECTION_BAD)
            msg = PQerrorMessage(j->conn);
        else if (pg_watch(j, UV_WRITABLE, 1) < 0)
            msg = "cannot watch the connection's socket";
        else
            PQsetNoticeReceiver(j->conn, pg_on_notice, j);
        if (msg != NULL && (j->err = strdup(msg)) == NULL)
            return -1;
    }
    /* a failure found now is told from the loop too, never before core.pg_query returns */
    uv_timer_start(j->timer, pg_on_timer, j->err != NULL ? 0 : (uint64_t)(j->timeout * 1000), 0);
    return 0;
}

/* Ends a job with no callback; the server is asked to stop the statement it runs. */
void pg_job_cancel(pg_job *j)
{
    pg_cancel_server(j);
    pg_job_release(j);
}
