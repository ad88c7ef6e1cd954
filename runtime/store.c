/* store.c: files the host reads and writes: scripts, directories, atomic writes, ids. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uuid/uuid.h>
#include <uv.h>
#include "phonehome.h"

#define STORE_MAX_FILE (16 * 1024 * 1024)

/* core.readfile(path [, { max = bytes } | { offset = n, length = n }]) -> the content of
 * a regular file (at most 16 MiB, or max: a larger file is refused), or the bytes of a
 * range of it (fewer at its end), or nil, message. Never opens anything but a regular
 * file (a FIFO would block). The buffer is a userdata made before the file is opened,
 * so no error can be raised while a FILE is open. */
static int store_readfile(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer max = STORE_MAX_FILE, offset = 0, length = -1;
    size_t want, n;
    struct stat st;
    char *buf;
    FILE *f;
    int err;

    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        if (binding_field(L, 2, "max", BINDING_TINTEGER, 1))
            max = lua_tointeger(L, -1);
        if (binding_field(L, 2, "offset", BINDING_TINTEGER, 1))
            offset = lua_tointeger(L, -1);
        if (binding_field(L, 2, "length", BINDING_TINTEGER, 1))
            length = lua_tointeger(L, -1);
        if (max < 0 || max > STORE_MAX_FILE)
            return binding_field_error(L, 2, "max", "not in [0, 16 MiB]");
        if (offset < 0)
            return binding_field_error(L, 2, "offset", "negative");
        if (length > STORE_MAX_FILE)
            return binding_field_error(L, 2, "length", "above 16 MiB");
    }
    if (stat(path, &st) < 0)
        return binding_fail(L, path, NULL, errno, 0);
    if (!S_ISREG(st.st_mode))
        return binding_fail(L, path, NULL, S_ISDIR(st.st_mode) ? EISDIR : EINVAL, 0);
    if (length < 0 && st.st_size > max)
        return binding_fail(L, NULL, lua_pushfstring(L, "%s: larger than %I bytes", path, max),
                            EFBIG, 0);
    if (length >= 0)
        want = offset >= st.st_size ? 0 : (size_t)(st.st_size - offset);
    else
        want = (size_t)st.st_size;
    if (length >= 0 && want > (size_t)length)
        want = (size_t)length;
    buf = lua_newuserdatauv(L, want + 1, 0);
    if ((f = fopen(path, "rb")) == NULL)
        return binding_fail(L, path, NULL, errno, 0);
    if (offset > 0 && fseeko(f, (off_t)offset, SEEK_SET) != 0) {
        err = errno;
        fclose(f);
        return binding_fail(L, path, NULL, err, 0);
    }
    n = fread(buf, 1, want + 1, f);
    /* a whole file that grew while we read is refused; a range reads what it asked */
    err = ferror(f) ? EIO : (length < 0 && n > want) ? EAGAIN : 0;
    fclose(f);
    if (err)
        return binding_fail(L, path, NULL, err, 0);
    lua_pushlstring(L, buf, n > want ? want : n);
    return 1;
}

/* Names of the entries of a directory, sorted, each with its type ("file", "dir", ...). */
static int store_listdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    uv_fs_t req;
    uv_dirent_t ent;
    int i = 0, err = uv_fs_scandir(NULL, &req, path, 0, NULL);

    if (err < 0) {
        uv_fs_req_cleanup(&req);
        return binding_fail(L, path, NULL, err, 0);
    }
    lua_newtable(L);
    while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
        lua_pushstring(L, ent.name);
        lua_rawseti(L, -2, ++i);
    }
    uv_fs_req_cleanup(&req);
    return 1;
}

static int store_isdir(lua_State *L)
{
    struct stat st;
    lua_pushboolean(L, stat(luaL_checkstring(L, 1), &st) == 0 && S_ISDIR(st.st_mode));
    return 1;
}

static int store_exists(lua_State *L)
{
    lua_pushboolean(L, access(luaL_checkstring(L, 1), F_OK) == 0);
    return 1;
}

/* mkdir -p with the given mode; true, or nil, message. */
static int store_mkdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char buf[4096];
    size_t len = strlen(path), i;

    luaL_argcheck(L, len > 0 && len < sizeof buf, 1, "path empty or too long");
    memcpy(buf, path, len + 1);
    for (i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return binding_fail(L, buf, NULL, errno, 0);
        buf[i] = path[i];
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* Writes a file so that readers see the old content or the new, never a part:
 * a temporary file beside it, fsync, rename over, fsync of the directory. */
static int store_write_atomic(lua_State *L)
{
    size_t len;
    const char *path = luaL_checkstring(L, 1);
    const char *data = luaL_checklstring(L, 2, &len);
    lua_Integer mode = luaL_optinteger(L, 3, 0644);
    char tmp[4096], dir[4096];
    const char *slash;
    int fd = -1, dfd = -1, err = 0;
    size_t done = 0;

    luaL_argcheck(L, strlen(path) + 16 < sizeof tmp, 1, "path too long");
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
    if (fd < 0) {
        err = errno;
        goto out;
    }
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            err = errno;
            goto out;
        }
        done += (size_t)w;
    }
    if (fchmod(fd, (mode_t)mode) < 0 || fsync(fd) < 0) {
        err = errno;
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        err = errno;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        err = errno;
        goto out;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0)
        fsync(dfd);
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (err) {
        unlink(tmp);
        return binding_fail(L, path, NULL, err, 0);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* A random (version 4) UUID from libuuid, lower case. */
static int store_uuid(lua_State *L)
{
    uuid_t u;
    char s[37];
    uuid_generate_random(u);
    uuid_unparse_lower(u, s);
    lua_pushstring(L, s);
    return 1;
}

/* Whether a string is a UUID in its canonical 36-character form. */
static int store_uuid_valid(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    uuid_t u;
    lua_pushboolean(L, len == 36 && uuid_parse(s, u) == 0);
    return 1;
}

static int store_getenv(lua_State *L)
{
    lua_pushstring(L, getenv(luaL_checkstring(L, 1)));
    return 1;
}

/* Removes a file or an empty directory: true, or nil, message. */
static int store_remove(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (remove(path) < 0)
        return binding_fail(L, path, NULL, errno, 0);
    lua_pushboolean(L, 1);
    return 1;
}

/* Renames a file or directory (atomically, within one file system): true, or nil,
 * message. */
static int store_rename(lua_State *L)
{
    const char *from = luaL_checkstring(L, 1);
    const char *to = luaL_checkstring(L, 2);
    if (rename(from, to) < 0)
        return binding_fail(L, from, NULL, errno, 0);
    lua_pushboolean(L, 1);
    return 1;
}

/* Whether we run as root, which decides the default data directory. */
static int store_is_root(lua_State *L)
{
    lua_pushboolean(L, geteuid() == 0);
    return 1;
}

static const luaL_Reg store_funcs[] = {{"is_root", store_is_root},
                                       {"remove", store_remove},
                                       {"rename", store_rename},
                                       {"readfile", store_readfile},
                                       {"listdir", store_listdir},
                                       {"isdir", store_isdir},
                                       {"exists", store_exists},
                                       {"mkdir", store_mkdir},
                                       {"write_atomic", store_write_atomic},
                                       {"uuid", store_uuid},
                                       {"uuid_valid", store_uuid_valid},
                                       {"getenv", store_getenv},
                                       {NULL, NULL}};

void store_open(lua_State *L)
{
    luaL_setfuncs(L, store_funcs, 0);
}
