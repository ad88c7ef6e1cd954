/* procfs.c: reading /proc safely: a capped, binary-safe read of one file of a process
 * that a raised error cannot leak, the failure that names it, and the list of processes.
 * What a process writes in its name, arguments or environment is not trusted. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include "phonehome.h"

#define PROCFS_READ "phonehome.ProcfsRead"

/* Releases what a read holds; the holder can be used again. */
void procfs_free(procfs_read *r)
{
    if (r->fd >= 0)
        close(r->fd);
    if (r->dir != NULL)
        closedir(r->dir);
    free(r->buf);
    free(r->pids);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}

static int procfs_gc(lua_State *L)
{
    procfs_free(luaL_checkudata(L, 1, PROCFS_READ));
    return 0;
}

static procfs_read *procfs_holder(lua_State *L)
{
    procfs_read *r = lua_newuserdatauv(L, sizeof *r, 0);
    memset(r, 0, sizeof *r);
    r->fd = -1;
    luaL_setmetatable(L, PROCFS_READ);
    return r;
}

/* Reads path whole into r->buf, NUL-terminated after r->len bytes; 0, or an errno
 * (EFBIG beyond PROCFS_MAX bytes). */
int procfs_slurp(procfs_read *r, const char *path)
{
    ssize_t n;
    int err = 0;

    r->len = 0;
    if ((r->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return errno;
    while (err == 0) {
        if (r->cap - r->len < 2) {
            size_t cap = r->cap ? r->cap * 2 : 4096;
            char *p = realloc(r->buf, cap < PROCFS_MAX + 2 ? cap : PROCFS_MAX + 2);
            if (p == NULL) {
                err = ENOMEM;
                break;
            }
            r->buf = p;
            r->cap = cap < PROCFS_MAX + 2 ? cap : PROCFS_MAX + 2;
        }
        n = read(r->fd, r->buf + r->len, r->cap - r->len - 1);
        if (n < 0 && errno != EINTR)
            err = errno;
        else if (n == 0)
            break;
        else if (n > 0 && (r->len += (size_t)n) > PROCFS_MAX)
            err = EFBIG;
    }
    close(r->fd);
    r->fd = -1;
    if (r->buf != NULL)
        r->buf[r->len] = '\0';
    return err;
}

/* The failure of a read of path: "no process with pid N" once the process is gone. */
int procfs_fail(lua_State *L, int pid, const char *path, const char *reason, int err)
{
    char dir[32];
    snprintf(dir, sizeof dir, "/proc/%d", pid);
    if ((err == ENOENT || err == ESRCH) && access(dir, F_OK) != 0)
        return binding_fail(L, NULL, lua_pushfstring(L, "no process with pid %d", pid), err, 0);
    return binding_fail(L, lua_pushfstring(L, "cannot read %s", path), reason, err, 0);
}

/* Reads /proc/PID/name into a new holder on the stack (*out); 0, or the number of
 * failure results pushed. big: the reason given for a file beyond PROCFS_MAX. */
int procfs_load(lua_State *L, int pid, const char *name, const char *big, procfs_read **out)
{
    char path[64];
    int err;

    snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
    *out = procfs_holder(L);
    if ((err = procfs_slurp(*out, path)) != 0) {
        procfs_free(*out);
        return procfs_fail(L, pid, path, err == EFBIG ? big : NULL, err);
    }
    return 0;
}

/* The pid argument: required, or (optional) this process when absent. */
int procfs_pid(lua_State *L, int optional)
{
    lua_Integer pid = optional ? luaL_optinteger(L, 1, 0) : luaL_checkinteger(L, 1);
    luaL_argcheck(L, pid >= (optional ? 0 : 1) && pid <= 0x7fffffff, 1, "not a process id");
    return pid == 0 ? (int)uv_os_getpid() : (int)pid;
}

static int procfs_compare(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The pids of all processes, sorted: the numeric names in /proc. */
static int procfs_processes(lua_State *L)
{
    procfs_read *r = procfs_holder(L);
    struct dirent *e;
    size_t i;
    long pid;
    char *end;

    if ((r->dir = opendir("/proc")) == NULL)
        return binding_fail(L, "cannot read /proc", NULL, errno, 0);
    while ((errno = 0, e = readdir(r->dir)) != NULL) {
        pid = strtol(e->d_name, &end, 10);
        if (e->d_name[0] < '1' || e->d_name[0] > '9' || *end != '\0' || pid > 0x7fffffff)
            continue;
        if (r->npids == r->pidcap) {
            int *p = realloc(r->pids, (r->pidcap = r->pidcap ? r->pidcap * 2 : 512) * sizeof *p);
            if (p == NULL)
                return binding_fail(L, "cannot read /proc", NULL, ENOMEM, 0);
            r->pids = p;
        }
        r->pids[r->npids++] = (int)pid;
    }
    if (errno != 0)
        return binding_fail(L, "cannot read /proc", NULL, errno, 0);
    closedir(r->dir);
    r->dir = NULL;
    qsort(r->pids, r->npids, sizeof *r->pids, procfs_compare);
    lua_createtable(L, (int)r->npids, 0);
    for (i = 0; i < r->npids; i++) {
        lua_pushinteger(L, r->pids[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    procfs_free(r);
    return 1;
}

static const luaL_Reg procfs_none[] = {{NULL, NULL}};

/* Registers the holder's class and core.processes. */
void procfs_open(lua_State *L)
{
    binding_class(L, PROCFS_READ, procfs_none, procfs_gc, NULL, NULL);
    lua_pushcfunction(L, procfs_processes);
    lua_setfield(L, -2, "processes");
}
