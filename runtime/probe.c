/* probe.c: system and process probes; libuv where it has them, /proc for the rest. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include "phonehome.h"

/* Reads a small text file whole into buf; returns its length or -errno. */
static int probe_read(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    size_t n;
    int err;

    if (f == NULL)
        return -errno;
    n = fread(buf, 1, size - 1, f);
    err = ferror(f) ? -EIO : 0;
    fclose(f);
    if (err)
        return err;
    buf[n] = '\0';
    return (int)n;
}

/* The value in kB of a "Key:   123 kB" line of a /proc status-like file, in bytes. */
static int probe_kb_field(const char *text, const char *key, lua_Integer *out)
{
    const char *p = strstr(text, key);
    if (p == NULL)
        return -1;
    *out = (lua_Integer)strtoll(p + strlen(key), NULL, 10) * 1024;
    return 0;
}

static int probe_memory_total(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)uv_get_total_memory());
    return 1;
}

/* One "Key: N kB" line of /proc/meminfo, in bytes: libuv's free memory is MemAvailable
 * on some versions and MemFree on others, and 1.44 has no available memory at all. */
static int probe_meminfo(lua_State *L, const char *key)
{
    char buf[8192];
    lua_Integer v;
    int n = probe_read("/proc/meminfo", buf, sizeof buf);

    if (n < 0)
        return binding_fail(L, "/proc/meminfo", NULL, -n, 0);
    if (probe_kb_field(buf, key, &v) < 0)
        return binding_fail(L, "/proc/meminfo", lua_pushfstring(L, "no %s line", key), 0, 0);
    lua_pushinteger(L, v);
    return 1;
}

static int probe_memory_free(lua_State *L)
{
    return probe_meminfo(L, "MemFree:");
}

static int probe_memory_available(lua_State *L)
{
    return probe_meminfo(L, "MemAvailable:");
}

/* The cgroup v2 limit of our own cgroup, which libuv 1.44 does not read. */
static uint64_t probe_cgroup2_limit(void)
{
    char buf[4096], path[4096 + 64];
    char *line, *nl;

    if (probe_read("/proc/self/cgroup", buf, sizeof buf) < 0)
        return 0;
    for (line = buf; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp(line, "0::", 3) == 0) {
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", line + 3);
            if (probe_read(path, buf, sizeof buf) < 0 || strncmp(buf, "max", 3) == 0)
                return 0;
            return strtoull(buf, NULL, 10);
        }
    }
    return 0;
}

/* The memory limit imposed on us by a cgroup, or nil when there is none. */
static int probe_memory_limit(lua_State *L)
{
    uint64_t limit = uv_get_constrained_memory();
    if (limit == 0)
        limit = probe_cgroup2_limit();
    /* "unlimited" is reported as a huge number; any limit above RAM limits nothing */
    if (limit == 0 || limit >= uv_get_total_memory())
        lua_pushnil(L);
    else
        lua_pushinteger(L, (lua_Integer)limit);
    return 1;
}

static int probe_cpu_count(lua_State *L)
{
    uv_cpu_info_t *info;
    int count, err = uv_cpu_info(&info, &count);
    if (err < 0)
        return binding_fail(L, "cpu info", NULL, err, 0);
    uv_free_cpu_info(info, count);
    lua_pushinteger(L, count);
    return 1;
}

static int probe_parallelism(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)uv_available_parallelism());
    return 1;
}

static int probe_system_uptime(lua_State *L)
{
    double up;
    int err = uv_uptime(&up);
    if (err < 0)
        return binding_fail(L, "uptime", NULL, err, 0);
    lua_pushnumber(L, up);
    return 1;
}

static int probe_uname(lua_State *L)
{
    uv_utsname_t u;
    int err = uv_os_uname(&u);
    if (err < 0)
        return binding_fail(L, "uname", NULL, err, 0);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, u.sysname);
    lua_setfield(L, -2, "sysname");
    lua_pushstring(L, u.release);
    lua_setfield(L, -2, "release");
    lua_pushstring(L, u.version);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, u.machine);
    lua_setfield(L, -2, "machine");
    return 1;
}

/* Total and free bytes of the file system holding path. */
static int probe_disk(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    uv_fs_t req;
    uv_statfs_t *s;
    int err = uv_fs_statfs(NULL, &req, path, NULL);

    if (err < 0) {
        uv_fs_req_cleanup(&req);
        return binding_fail(L, path, NULL, err, 0);
    }
    s = req.ptr;
    lua_pushinteger(L, (lua_Integer)(s->f_blocks * s->f_bsize));
    lua_pushinteger(L, (lua_Integer)(s->f_bavail * s->f_bsize));
    uv_fs_req_cleanup(&req);
    return 2;
}

/* Wall-clock time in seconds since the epoch, with microseconds. */
static int probe_time(lua_State *L)
{
    uv_timeval64_t tv;
    int err = uv_gettimeofday(&tv);
    if (err < 0)
        return binding_fail(L, "gettimeofday", NULL, err, 0);
    lua_pushnumber(L, (double)tv.tv_sec + tv.tv_usec / 1e6);
    return 1;
}

/* Monotonic time in seconds, for measuring intervals. */
static int probe_monotonic(lua_State *L)
{
    lua_pushnumber(L, uv_hrtime() / 1e9);
    return 1;
}

static int probe_file_contains(const char *path, const char *needle)
{
    char buf[16384];
    return probe_read(path, buf, sizeof buf) >= 0 && strstr(buf, needle) != NULL;
}

/* Whether we run in a container, and whether that container is a Kubernetes pod. */
static int probe_container(lua_State *L)
{
    int kube = getenv("KUBERNETES_SERVICE_HOST") != NULL
               || probe_file_contains("/proc/self/cgroup", "kubepods");
    int container = kube || access("/.dockerenv", F_OK) == 0
                    || access("/run/.containerenv", F_OK) == 0 || getenv("container") != NULL
                    || probe_file_contains("/proc/1/cgroup", "docker")
                    || probe_file_contains("/proc/1/cgroup", "containerd")
                    || probe_file_contains("/proc/1/cgroup", "lxc");
    lua_pushboolean(L, container);
    lua_pushboolean(L, kube);
    return 2;
}

/* Fields 14, 15 and 22 of /proc/PID/stat: user and system ticks, start ticks after boot. */
static int probe_stat(const char *text, double *utime, double *stime, double *start)
{
    const char *p = strrchr(text, ')'); /* the command name may hold spaces and parens */
    char *end;
    int field;

    if (p == NULL)
        return -1;
    p += 2; /* field 3, the state, starts here */
    for (field = 3; field < 22; field++) {
        double v = strtod(p, &end);
        if (field == 14)
            *utime = v;
        else if (field == 15)
            *stime = v;
        p = strchr(p, ' ');
        if (p == NULL)
            return -1;
        p++;
    }
    *start = strtod(p, NULL);
    return 0;
}

static void probe_setnum(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void probe_setint(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

/* One reading of a process: pid, rss, peak_rss (bytes), user_cpu, system_cpu (s),
 * start_time (epoch s), uptime (s), cpu_percent (average % of one core since start).
 * The target is given by pid; without one, it is this process. */
static int probe_process(lua_State *L)
{
    lua_Integer pid = luaL_optinteger(L, 1, 0);
    char path[64], stat[4096], status[8192];
    double utime = 0, stime = 0, start = 0, now, age, ticks = (double)sysconf(_SC_CLK_TCK);
    struct timespec boot;
    lua_Integer rss = 0, peak = 0;
    uv_timeval64_t tv;
    int n;

    luaL_argcheck(L, pid >= 0 && pid <= 0x7fffffff, 1, "not a process id");
    if (pid == 0)
        pid = uv_os_getpid();
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if ((n = probe_read(path, stat, sizeof stat)) < 0)
        return binding_fail(L, NULL, lua_pushfstring(L, "no process with pid %d", (int)pid), -n, 0);
    if (probe_stat(stat, &utime, &stime, &start) < 0)
        return binding_fail(L, path, "unexpected format", 0, 0);
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if ((n = probe_read(path, status, sizeof status)) < 0)
        return binding_fail(L, path, NULL, -n, 0);
    /* kernel threads and zombies have no VmRSS line: their resident memory is zero */
    probe_kb_field(status, "VmRSS:", &rss);
    probe_kb_field(status, "VmHWM:", &peak);
    if (pid == uv_os_getpid()) {
        /* our own figures, from libuv, which measures them directly */
        uv_rusage_t ru;
        size_t r;
        if (uv_getrusage(&ru) == 0) {
            utime = (ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6) * ticks;
            stime = (ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6) * ticks;
            peak = (lua_Integer)ru.ru_maxrss * 1024;
        }
        if (uv_resident_set_memory(&r) == 0)
            rss = (lua_Integer)r;
    }
    /* the age from the clock the start ticks count on (btime is whole seconds) */
    clock_gettime(CLOCK_BOOTTIME, &boot);
    age = (double)boot.tv_sec + boot.tv_nsec / 1e9 - start / ticks;
    if (age < 0)
        age = 0;
    uv_gettimeofday(&tv);
    now = (double)tv.tv_sec + tv.tv_usec / 1e6;
    lua_createtable(L, 0, 8);
    probe_setint(L, "pid", pid);
    probe_setint(L, "rss", rss);
    probe_setint(L, "peak_rss", peak > rss ? peak : rss);
    probe_setnum(L, "user_cpu", utime / ticks);
    probe_setnum(L, "system_cpu", stime / ticks);
    probe_setnum(L, "start_time", now - age);
    probe_setnum(L, "uptime", age);
    probe_setnum(L, "cpu_percent", age > 0 ? (utime + stime) / ticks / age * 100 : 0);
    return 1;
}

static const luaL_Reg probe_funcs[] = {{"memory_total", probe_memory_total},
                                       {"memory_free", probe_memory_free},
                                       {"memory_available", probe_memory_available},
                                       {"memory_limit", probe_memory_limit},
                                       {"cpu_count", probe_cpu_count},
                                       {"parallelism", probe_parallelism},
                                       {"system_uptime", probe_system_uptime},
                                       {"uname", probe_uname},
                                       {"disk", probe_disk},
                                       {"time", probe_time},
                                       {"monotonic", probe_monotonic},
                                       {"container", probe_container},
                                       {"process", probe_process},
                                       {NULL, NULL}};

void probe_open(lua_State *L)
{
    luaL_setfuncs(L, probe_funcs, 0);
}
