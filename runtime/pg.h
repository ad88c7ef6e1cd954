/* pg.h: what the two files of pg.so share: a job, one read-only connection that runs its
 * queries in turn on the loop (pg_job.c), and core.pg_query, which reads its arguments and
 * starts it (pg.c). */
#ifndef PHONEHOME_PG_H
#define PHONEHOME_PG_H

#include <libpq-fe.h>
#include <uv.h>
#include "phonehome.h"

typedef struct pg_job {
    const core_api *api;
    PGconn *conn;
    PQconninfoOption *parsed; /* a conninfo string's keywords, while they are copied */
    uv_poll_t *poll;          /* on PQsocket, made again at each step of the connection */
    uv_timer_t *timer;        /* the job's deadline; at 0 for a failure found at start */
    lua_State *L;             /* the main thread, where the callback runs */
    int fn_ref, self_ref;     /* the callback; the userdata, anchored while the job runs */
    int q_ref;                /* the queries, as strings: { { sql, param... } } */
    int res_ref;              /* the result being built: { server_version, queries } */
    int nq, qi;               /* queries; the one running, 0 while connecting */
    int copy;                 /* a COPY's status while its data is thrown away */
    int qfailed;              /* the query running failed: the rest of its results are dropped */
    int guard;                /* the transaction of the query running is being opened */
    double timeout;           /* seconds */
    char *err;                /* a failure found at start, told from the loop */
    char *password;           /* kept out of messages */
    lua_Integer max_rows, max_bytes; /* the limits: rows of a query, bytes of all */
    lua_Integer rows, bytes, qbytes; /* rows of the query running; bytes kept; its bytes */
    struct pg_job **box;             /* the userdata's pointer, cleared when the job is freed */
} pg_job;

/* pg.c: records in the result of the query running its entry (res and msg NULL), the rows
 * of res, or { error = msg }; -1 with the reason in err if Lua raised (out of memory). */
int pg_store(pg_job *j, const PGresult *res, const char *msg, char *err, size_t cap);

/* pg_job.c: starts connecting with libpq's keywords and values (or, with err set, only
 * arms the failure); -1 when out of memory. Then the job ends in its callback, or in
 * pg_job_cancel (no callback) or pg_job_release (at the state's close), which free it. */
int pg_job_start(pg_job *j, const char *const *keywords, const char *const *values);
void pg_job_cancel(pg_job *j);
void pg_job_release(pg_job *j);

#endif
