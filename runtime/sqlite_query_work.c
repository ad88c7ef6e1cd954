/* sqlite_query_work.c: the worker of core.sqlite_query, on libuv's thread pool: opens the
 * database read-only, refuses what would write, prepares, binds and steps each query, and
 * keeps its rows in C within the job's bounds; a flag, the deadline and sqlite3_interrupt
 * stop it. Values, parameters and rows alike, are kept one after the other in a buffer. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "sqlite_query.h"

/* Appends a value to b: 0, or -1 out of memory. */
int query_put(query_buf *b, int type, sqlite3_int64 i, double d, const void *s, uint64_t n)
{
    size_t need = 1 + (type == SQLITE_NULL ? 0 : 8) + (type == SQLITE_TEXT ? n : 0);
    if (b->len + need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap < b->len + need)
            cap *= 2;
        if ((p = realloc(b->p, cap)) == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    b->p[b->len] = (char)type;
    if (type != SQLITE_NULL)
        memcpy(b->p + b->len + 1,
               type == SQLITE_INTEGER ? (void *)&i
               : type == SQLITE_FLOAT ? (void *)&d
                                      : (void *)&n,
               8);
    if (type == SQLITE_TEXT && n > 0)
        memcpy(b->p + b->len + 9, s, n);
    b->len += need;
    return 0;
}

/* The value at *at in b, *at moved past it. */
query_value query_get(const query_buf *b, size_t *at)
{
    query_value v = {(unsigned char)b->p[*at], 0, 0, NULL, 0};
    if (v.type == SQLITE_INTEGER)
        memcpy(&v.i, b->p + *at + 1, 8);
    else if (v.type == SQLITE_FLOAT)
        memcpy(&v.d, b->p + *at + 1, 8);
    else if (v.type == SQLITE_TEXT)
        memcpy(&v.n, b->p + *at + 1, 8), v.s = b->p + *at + 9;
    *at += 1 + (v.type == SQLITE_NULL ? 0 : 8) + v.n;
    return v;
}

static int query_stopped(query_job *j)
{
    return atomic_load(&j->stop) != QUERY_RUN || uv_hrtime() >= j->deadline;
}

/* Fails query q with a message, or "timed out" if rc says it was stopped; its rows go. */
void query_fail(query_job *j, query_one *q, int rc, const char *fmt, ...)
{
    va_list ap;
    if (q->error[0] != '\0')
        return;
    va_start(ap, fmt);
    if ((rc == SQLITE_INTERRUPT || rc == SQLITE_BUSY) && query_stopped(j))
        snprintf(q->error, sizeof q->error, "timed out after %g s", j->timeout);
    else
        vsnprintf(q->error, sizeof q->error, fmt, ap);
    va_end(ap);
    if (q->error[0] == '\0')
        snprintf(q->error, sizeof q->error, "failed");
    free(q->rows.p);
    memset(&q->rows, 0, sizeof q->rows);
    q->nrows = 0;
}

/* Keeps the row st is on, within the job's bounds: 0, or -1 with q failed. */
static int query_row(query_job *j, query_one *q, sqlite3_stmt *st)
{
    int c;
    if (q->nrows++ == j->max_rows) {
        query_fail(j, q, SQLITE_OK, "more than %zu rows", j->max_rows);
        return -1;
    }
    for (c = 0; c < q->ncols; c++) {
        int type = sqlite3_column_type(st, c);
        const void *s = type == SQLITE_TEXT   ? (const void *)sqlite3_column_text(st, c)
                        : type == SQLITE_BLOB ? sqlite3_column_blob(st, c)
                                              : NULL;
        uint64_t n = s != NULL ? (uint64_t)sqlite3_column_bytes(st, c) : 0;
        if (j->bytes + q->rows.len + 9 + n > j->max_bytes) { /* checked before the copy */
            query_fail(j, q, SQLITE_OK, "more than %zu bytes of results", j->max_bytes);
            return -1;
        }
        if ((s == NULL && type == SQLITE_TEXT)
            || query_put(&q->rows, type == SQLITE_BLOB ? SQLITE_TEXT : type,
                         type == SQLITE_INTEGER ? sqlite3_column_int64(st, c) : 0,
                         type == SQLITE_FLOAT ? sqlite3_column_double(st, c) : 0, s, n)
                   < 0) {
            query_fail(j, q, SQLITE_NOMEM, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* Runs query q, keeping its rows or its error. */
static void query_run(query_job *j, sqlite3 *db, query_one *q)
{
    sqlite3_stmt *st = NULL, *more = NULL;
    const char *tail = NULL, *name;
    size_t at = 0;
    int rc, i;

    rc = sqlite3_prepare_v2(db, q->sql, -1, &st, &tail);
    if (rc == SQLITE_OK && st == NULL)
        query_fail(j, q, rc, "no statement");
    else if (rc == SQLITE_OK
             && (sqlite3_prepare_v2(db, tail, -1, &more, NULL) != SQLITE_OK || more != NULL))
        query_fail(j, q, rc, "one statement per query");
    else if (rc == SQLITE_AUTH || (rc == SQLITE_OK && !sqlite3_stmt_readonly(st)))
        query_fail(j, q, rc, "not a read-only statement");
    else if (rc != SQLITE_OK)
        query_fail(j, q, rc, "%s", sqlite3_errmsg(db));
    else if (q->nparams != sqlite3_bind_parameter_count(st))
        query_fail(j, q, rc, "%d parameters given, the statement takes %d", q->nparams,
                   sqlite3_bind_parameter_count(st));
    for (i = 1; q->error[0] == '\0' && i <= q->nparams && rc == SQLITE_OK; i++) {
        query_value v = query_get(&q->params, &at);
        rc = v.type == SQLITE_INTEGER ? sqlite3_bind_int64(st, i, v.i)
             : v.type == SQLITE_FLOAT
                 ? sqlite3_bind_double(st, i, v.d)
                 : sqlite3_bind_text64(st, i, v.s, v.n, SQLITE_STATIC, SQLITE_UTF8);
        if (rc != SQLITE_OK)
            query_fail(j, q, rc, "%s", sqlite3_errmsg(db));
    }
    if (q->error[0] != '\0')
        goto out;
    q->ncols = sqlite3_column_count(st);
    for (i = 0; i < q->ncols; i++)
        if ((name = sqlite3_column_name(st, i)) == NULL
            || query_put(&q->rows, SQLITE_TEXT, 0, 0, name, strlen(name)) < 0) {
            query_fail(j, q, SQLITE_NOMEM, "out of memory");
            goto out;
        }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (query_row(j, q, st) < 0)
            goto out;
    if (rc != SQLITE_DONE)
        query_fail(j, q, rc, "%s", sqlite3_errmsg(db));
    j->bytes += q->rows.len; /* what the queries before took: none when q failed */
out:
    sqlite3_finalize(more);
    sqlite3_finalize(st);
}

/* A writer holds a lock: wait while the job has time and is not stopped. */
static int query_busy(void *p, int n)
{
    (void)n;
    if (query_stopped(p))
        return 0;
    uv_sleep(5);
    return 1;
}

static int query_progress(void *p)
{
    return query_stopped(p);
}

/* What sqlite3_stmt_readonly lets through that still changes something: ATTACH (of a
 * file of the caller's choice), and pragmas given a value, but for those that only read. */
static int query_authorize(void *p, int action, const char *a, const char *b, const char *db,
                           const char *trigger)
{
    static const char *const readers[] = {
        "table_info", "table_xinfo",       "table_list",      "index_info",  "index_xinfo",
        "index_list", "foreign_key_check", "integrity_check", "quick_check", "foreign_key_list"};
    size_t i;
    (void)p, (void)db, (void)trigger;
    if (action == SQLITE_ATTACH || action == SQLITE_DETACH)
        return SQLITE_DENY;
    for (i = 0; action == SQLITE_PRAGMA && b != NULL && i < sizeof readers / sizeof *readers; i++)
        if (strcasecmp(a, readers[i]) == 0)
            return SQLITE_OK;
    return action == SQLITE_PRAGMA && b != NULL ? SQLITE_DENY : SQLITE_OK;
}

void query_set_state(query_job *j, int state)
{
    uv_mutex_lock(&j->lock);
    j->state = state;
    uv_cond_broadcast(&j->ended);
    uv_mutex_unlock(&j->lock);
}

/* Whether the file is a database in WAL mode (bytes 18 and 19 of its header are 2) whose
 * -wal or -shm file is missing: the product is not running. */
static int query_wal_missing(const char *path)
{
    unsigned char head[20];
    char aux[PATH_MAX + 8];
    int fd, missing = 0;

    if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
        return 0;
    if (read(fd, head, sizeof head) == (ssize_t)sizeof head && (head[18] == 2 || head[19] == 2)) {
        snprintf(aux, sizeof aux, "%s-wal", path);
        missing = access(aux, F_OK) != 0;
        snprintf(aux, sizeof aux, "%s-shm", path);
        missing |= access(aux, F_OK) != 0;
    }
    close(fd);
    return missing;
}

/* Opens the database read-only, creating nothing: an SQLite result code, or -1 with the
 * job's error set. Only a regular file is opened: a FIFO would hold this thread, and the
 * state's close that waits for it, forever. SQLite creates a WAL database's -wal and -shm
 * files even for a read-only connection, as the user phonehome runs as (root, say), and a
 * product running as another user could no longer open its own database: when they are
 * missing, the file is opened as immutable instead (what a -wal left without its -shm by
 * a crash holds is then not seen). */
static int query_open(query_job *j, sqlite3 **db)
{
    static const char hex[] = "0123456789ABCDEF";
    char uri[3 * PATH_MAX + 32], *u = uri;
    const unsigned char *p;
    struct stat st;

    if (stat(j->path, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(j->error, sizeof j->error, "%s: %s", j->path,
                 access(j->path, F_OK) < 0 ? strerror(errno) : "not a regular file");
        return -1;
    }
    if (!query_wal_missing(j->path))
        return sqlite3_open_v2(j->path, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    /* file:PATH?immutable=1, the path percent-encoded; an absolute one after an empty
     * authority, so that one starting with // is not read as a host */
    u += snprintf(u, 8, "file:%s", j->path[0] == '/' ? "//" : "");
    for (p = (const unsigned char *)j->path; *p != '\0'; p++) {
        if (strchr("/._-~", *p) != NULL || (*p < 128 && (*p | 32) >= 'a' && (*p | 32) <= 'z')
            || (*p >= '0' && *p <= '9')) {
            *u++ = (char)*p;
        } else {
            *u++ = '%';
            *u++ = hex[*p >> 4];
            *u++ = hex[*p & 15];
        }
    }
    snprintf(u, 16, "?immutable=1");
    return sqlite3_open_v2(uri, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
                           NULL);
}

/* The worker: opens the file read-only (never creating it), then runs each query. */
void query_work(uv_work_t *w)
{
    query_job *j = w->data;
    sqlite3 *db = NULL;
    int rc, i;

    query_set_state(j, QUERY_WORKING);
    if ((rc = query_open(j, &db)) == -1)
        goto out;
    if (rc == SQLITE_OK) {
        uv_mutex_lock(&j->lock);
        j->db = db; /* a stop asked before it was set is seen by the handlers */
        uv_mutex_unlock(&j->lock);
        sqlite3_busy_handler(db, query_busy, j);
        sqlite3_progress_handler(db, 1000, query_progress, j);
        /* reading the schema tells a file that is not a database */
        rc = sqlite3_exec(db, "PRAGMA query_only = 1; SELECT 1 FROM sqlite_schema LIMIT 1", NULL,
                          NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        sqlite3_set_authorizer(db, query_authorize, NULL);
        for (i = 0; i < j->nq; i++)
            if (query_stopped(j))
                query_fail(j, &j->q[i], SQLITE_INTERRUPT, "interrupted");
            else
                query_run(j, db, &j->q[i]);
    } else if ((rc == SQLITE_INTERRUPT || rc == SQLITE_BUSY) && query_stopped(j)) {
        for (i = 0; i < j->nq; i++)
            query_fail(j, &j->q[i], rc, "interrupted");
    } else if ((rc & 0xff) == SQLITE_CANTOPEN && db != NULL && sqlite3_system_errno(db) != 0) {
        snprintf(j->error, sizeof j->error, "%s: %s (%s)", j->path, sqlite3_errmsg(db),
                 strerror(sqlite3_system_errno(db)));
    } else {
        snprintf(j->error, sizeof j->error, "%s: %s", j->path,
                 db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    }
out:
    uv_mutex_lock(&j->lock);
    j->db = NULL;
    uv_mutex_unlock(&j->lock);
    sqlite3_close(db);
    query_set_state(j, QUERY_DONE);
}
