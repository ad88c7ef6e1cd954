/* process.c: another process as /proc shows it: its figures, its environment, command
 * line, executable and cgroups (what a process writes in its name, arguments or
 * environment is read through procfs.c, capped and binary-safe). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include "phonehome.h"

/* Fields of /proc/PID/stat: comm (2), ppid (4), user and system ticks (14, 15), start
 * ticks after boot (22). The name may hold anything but NUL: it ends at the last ')'. */
static int process_stat(const char *text, size_t len, double *f, const char **comm,
                        size_t *comm_len)
{
    const char *open = memchr(text, '(', len), *close = memrchr(text, ')', len), *p, *end;
    int field;

    if (open == NULL || close == NULL || close < open)
        return -1;
    *comm = open + 1;
    *comm_len = (size_t)(close - open - 1);
    for (p = close + 1, field = 3; field <= 22; field++) {
        if (*p++ != ' ')
            return -1;
        if (field == 3) { /* the state, a letter */
            p += strcspn(p, " ");
            continue;
        }
        f[field] = strtod(p, (char **)&end);
        if (end == p)
            return -1;
        p = end;
    }
    return 0;
}

/* The value in bytes of a "\nKey:   123 kB" line of /proc/PID/status. */
static void process_kb(const char *text, const char *key, lua_Integer *out)
{
    const char *p = strstr(text, key);
    if (p != NULL)
        *out = (lua_Integer)strtoll(p + strlen(key), NULL, 10) * 1024;
}

static void process_setnum(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void process_setint(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

/* One reading of a process: pid, ppid, comm, rss, peak_rss (bytes), user_cpu,
 * system_cpu (s), start_time (epoch s), uptime (s), cpu_percent (average % of one core
 * since start). The target is given by pid; without one, it is this process. */
static int process_process(lua_State *L)
{
    int pid = procfs_pid(L, 1), n;
    double f[23] = {0}, now, age, ticks = (double)sysconf(_SC_CLK_TCK);
    const char *comm = NULL;
    size_t comm_len = 0;
    lua_Integer rss = 0, peak = 0;
    struct timespec boot;
    uv_timeval64_t tv;
    procfs_read *r;

    if ((n = procfs_load(L, pid, "stat", NULL, &r)) > 0)
        return n;
    if (process_stat(r->buf, r->len, f, &comm, &comm_len) < 0)
        return binding_fail(L, lua_pushfstring(L, "/proc/%d/stat", pid), "unexpected format", 0, 0);
    lua_createtable(L, 0, 10); /* holder result */
    lua_pushlstring(L, comm, comm_len);
    lua_setfield(L, -2, "comm");
    if ((n = procfs_slurp(r, lua_pushfstring(L, "/proc/%d/status", pid))) != 0)
        return procfs_fail(L, pid, lua_tostring(L, -1), NULL, n);
    lua_pop(L, 1);
    /* kernel threads and zombies have no VmRSS line: their resident memory is zero */
    process_kb(r->buf, "\nVmRSS:", &rss);
    process_kb(r->buf, "\nVmHWM:", &peak);
    procfs_free(r);
    if (pid == (int)uv_os_getpid()) {
        /* our own figures, from libuv, which measures them directly */
        uv_rusage_t ru;
        size_t res;
        if (uv_getrusage(&ru) == 0) {
            f[14] = (ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6) * ticks;
            f[15] = (ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6) * ticks;
            peak = (lua_Integer)ru.ru_maxrss * 1024;
        }
        if (uv_resident_set_memory(&res) == 0)
            rss = (lua_Integer)res;
    }
    /* the age from the clock the start ticks count on (btime is whole seconds) */
    clock_gettime(CLOCK_BOOTTIME, &boot);
    age = (double)boot.tv_sec + boot.tv_nsec / 1e9 - f[22] / ticks;
    if (age < 0)
        age = 0;
    uv_gettimeofday(&tv);
    now = (double)tv.tv_sec + tv.tv_usec / 1e6;
    process_setint(L, "pid", pid);
    process_setint(L, "ppid", (lua_Integer)f[4]);
    process_setint(L, "rss", rss);
    process_setint(L, "peak_rss", peak > rss ? peak : rss);
    process_setnum(L, "user_cpu", f[14] / ticks);
    process_setnum(L, "system_cpu", f[15] / ticks);
    process_setnum(L, "start_time", now - age);
    process_setnum(L, "uptime", age);
    process_setnum(L, "cpu_percent", age > 0 ? (f[14] + f[15]) / ticks / age * 100 : 0);
    return 1;
}

/* Sets t[name] = value for each NAME=VALUE entry of an environment block, the first of
 * a name winning as with getenv; entries without a name or an '=' are skipped. */
static void process_env_table(lua_State *L, const char *p, const char *end)
{
    const char *eq;
    for (lua_newtable(L); p < end; p += strlen(p) + 1) {
        if ((eq = strchr(p, '=')) == NULL || eq == p)
            continue;
        lua_pushlstring(L, p, (size_t)(eq - p)); /* t name */
        if (lua_rawget(L, -2) == LUA_TNIL) {
            lua_pushlstring(L, p, (size_t)(eq - p));
            lua_pushstring(L, eq + 1);
            lua_rawset(L, -4);
        }
        lua_pop(L, 1);
    }
}

/* The environment of a process, NAME -> VALUE, from /proc/PID/environ. */
static int process_environ(lua_State *L)
{
    int pid = procfs_pid(L, 0), n;
    procfs_read *r;

    if ((n = procfs_load(L, pid, "environ", "environment larger than 1 MiB", &r)) > 0)
        return n;
    process_env_table(L, r->buf, r->buf + r->len);
    procfs_free(r);
    return 1;
}

/* The arguments of a process, argv[0] first, from /proc/PID/cmdline. */
static int process_cmdline(lua_State *L)
{
    int pid = procfs_pid(L, 0), n, i = 0;
    procfs_read *r;
    const char *p;

    if ((n = procfs_load(L, pid, "cmdline", "command line larger than 1 MiB", &r)) > 0)
        return n;
    lua_newtable(L);
    for (p = r->buf; p < r->buf + r->len; p += strlen(p) + 1) {
        lua_pushstring(L, p);
        lua_rawseti(L, -2, ++i);
    }
    procfs_free(r);
    return 1;
}

/* The executable of a process, as the kernel names it (" (deleted)" included). */
static int process_exe(lua_State *L)
{
    int pid = procfs_pid(L, 0);
    char path[64], target[4096 + 1];
    ssize_t n;

    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    if ((n = readlink(path, target, sizeof target)) < 0)
        return procfs_fail(L, pid, path, NULL, errno);
    if ((size_t)n == sizeof target)
        return procfs_fail(L, pid, path, NULL, ENAMETOOLONG);
    lua_pushlstring(L, target, (size_t)n);
    return 1;
}

/* Whether s (n bytes) is a container id: 64 lowercase hex digits. */
static int process_is_id(const char *s, size_t n)
{
    return n == 64 && strspn(s, "0123456789abcdef") >= 64;
}

/* The last container id in a cgroup path (docker-ID.scope, cri-containerd-ID.scope,
 * crio-ID, libpod-ID, /docker/ID, a pod's /kubepods/.../ID) copied into id[65]. */
static void process_find_id(const char *path, size_t len, char *id)
{
    static const char *const prefixes[] = {"docker-", "cri-containerd-", "crio-", "libpod-"};
    const char *c = path, *end = path + len, *slash, *prev = "";
    int bare = memmem(path, len, "kubepods", 8) != NULL;
    size_t n, i, k;

    for (; c < end; prev = c, c = slash + 1) {
        slash = memchr(c, '/', (size_t)(end - c));
        if (slash == NULL)
            slash = end;
        n = (size_t)(slash - c);
        if (n > 6 && memcmp(slash - 6, ".scope", 6) == 0)
            n -= 6;
        for (i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
            k = strlen(prefixes[i]);
            if (n > k && memcmp(c, prefixes[i], k) == 0 && process_is_id(c + k, n - k))
                memcpy(id, c + k, 64);
        }
        if (process_is_id(c, n) && (bare || strncmp(prev, "docker/", 7) == 0))
            memcpy(id, c, 64);
        if (slash == end)
            break;
    }
    id[64] = '\0';
}

/* The cgroups of a process: { paths, container, kubernetes, container_id }. Its
 * environment, when readable, tells too: container= (podman, systemd-nspawn) and a
 * Kubernetes service variable. */
static int process_cgroup(lua_State *L)
{
    int pid = procfs_pid(L, 0), n, i = 0, kube = 0, in_container;
    char id[65] = "", path[64];
    procfs_read *r;
    const char *p, *nl, *path_start;

    if ((n = procfs_load(L, pid, "cgroup", NULL, &r)) > 0)
        return n;
    lua_createtable(L, 0, 4); /* holder result */
    lua_newtable(L);
    for (p = r->buf; p < r->buf + r->len; p = nl + 1) {
        if ((nl = memchr(p, '\n', (size_t)(r->buf + r->len - p))) == NULL)
            nl = r->buf + r->len;
        if (nl == p)
            continue;
        lua_pushlstring(L, p, (size_t)(nl - p));
        lua_rawseti(L, -2, ++i);
        kube = kube || memmem(p, (size_t)(nl - p), "kubepods", 8) != NULL;
        /* hierarchy-ID:controllers:path */
        path_start = memchr(p, ':', (size_t)(nl - p));
        path_start = path_start ? memchr(path_start + 1, ':', (size_t)(nl - path_start - 1)) : NULL;
        if (id[0] == '\0' && path_start != NULL)
            process_find_id(path_start + 1, (size_t)(nl - path_start - 1), id);
    }
    lua_setfield(L, -2, "paths");
    in_container = id[0] != '\0';
    snprintf(path, sizeof path, "/proc/%d/environ", pid);
    if (procfs_slurp(r, path) == 0) {
        for (p = r->buf; p < r->buf + r->len; p += strlen(p) + 1) {
            if (strncmp(p, "KUBERNETES_SERVICE_HOST=", 24) == 0)
                kube = 1;
            else if (strncmp(p, "container=", 10) == 0)
                in_container = 1;
        }
    }
    procfs_free(r);
    lua_pushboolean(L, in_container || kube);
    lua_setfield(L, -2, "container");
    lua_pushboolean(L, kube);
    lua_setfield(L, -2, "kubernetes");
    if (id[0] != '\0') {
        lua_pushstring(L, id);
        lua_setfield(L, -2, "container_id");
    }
    return 1;
}

static const luaL_Reg process_funcs[] = {
    {"process", process_process},         {"process_environ", process_environ},
    {"process_cmdline", process_cmdline}, {"process_exe", process_exe},
    {"process_cgroup", process_cgroup},   {NULL, NULL}};

void process_open(lua_State *L)
{
    luaL_setfuncs(L, process_funcs, 0);
}
