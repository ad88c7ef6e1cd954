/* sqlite_query.h: what the two files of core.sqlite_query share: a job, from the options
 * read on the loop (sqlite_query.c) to the rows kept by the worker on libuv's thread pool
 * (sqlite_query_work.c), which touches no Lua. */
#ifndef PHONEHOME_SQLITE_QUERY_H
#define PHONEHOME_SQLITE_QUERY_H

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sqlite3.h>
#include <uv.h>
#include "phonehome.h"

enum { QUERY_RUN, QUERY_TIMEOUT, QUERY_CANCEL };                       /* why a job stops */
enum { QUERY_QUEUED = 1, QUERY_WORKING, QUERY_DONE, QUERY_CANCELLED }; /* where it is */

typedef struct {
    char *p;
    size_t len, cap;
} query_buf;

/* A value as query_put wrote it: an SQLITE_* type (a blob is text); s: n bytes. */
typedef struct {
    int type;
    sqlite3_int64 i;
    double d;
    const char *s;
    uint64_t n;
} query_value;

typedef struct {
    char *sql;
    query_buf params, rows; /* rows: the columns' names, then nrows rows of ncols values */
    int nparams, ncols;
    size_t nrows;
    char error[256]; /* empty unless the query failed */
} query_one;

/* Once queued, the options are read-only; the worker alone writes the queries' rows and
 * errors, bytes and error until the loop gets the work back; state and db are under lock,
 * stop is atomic; the rest (timer, handle, callback, list) is the loop's. */
typedef struct query_job {
    uv_work_t work;
    uv_timer_t timer;
    uv_mutex_t lock; /* state and db, which the loop interrupts */
    uv_cond_t ended;
    int state, queued, holds, timer_closed; /* holds: the after-work call, the timer */
    sqlite3 *db;
    atomic_int stop;
    uint64_t deadline; /* uv_hrtime() */
    double timeout;
    size_t max_rows, max_bytes, bytes; /* bytes: of the queries done */
    char *path, error[PATH_MAX + 256]; /* error: why the file could not be read */
    query_one *q;
    int nq;
    lua_State *L, *owner; /* L: the main thread to call back, NULL once nobody waits */
    int fn_ref, self_ref;
    struct query_job **box, *prev, *next;
} query_job;

/* sqlite_query_work.c: values in a buffer; the worker and what it shares with the loop */
int query_put(query_buf *b, int type, sqlite3_int64 i, double d, const void *s, uint64_t n);
query_value query_get(const query_buf *b, size_t *at);
void query_fail(query_job *j, query_one *q, int rc, const char *fmt, ...);
void query_set_state(query_job *j, int state);
void query_work(uv_work_t *w);

#endif
