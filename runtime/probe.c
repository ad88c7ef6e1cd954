/* probe.c: system probes (memory, CPUs, uptime, disks, clocks, whether we run in a
 * container); libuv where it has them, /proc for the rest. process.c reads processes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
                                       {NULL, NULL}};

void probe_open(lua_State *L)
{
    luaL_setfuncs(L, probe_funcs, 0);
}
