/* loop.c: the libuv loop as Lua sees it: run and stop, one-shot timers, signals, watched
 * directories; every callback into Lua goes through loop_pcall. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>
#include "phonehome.h"

#define LOOP_HANDLE "phonehome.Handle"

typedef struct loop_handle {
    union {
        uv_handle_t handle;
        uv_timer_t timer;
        uv_signal_t signal;
        uv_fs_event_t fs;
    } u;
    lua_State *L; /* the main thread of the state that made it */
    int fn_ref;   /* the Lua callback */
    int self_ref; /* keeps the userdata alive while the handle is active */
    dev_t dev;    /* a watch: the directory watched, which its path must still name */
    ino_t ino;
} loop_handle;

typedef struct {
    loop_handle *h;
} loop_box;

static int loop_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL && !luaL_callmeta(L, 1, "__tostring"))
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg ? msg : lua_tostring(L, -1), 1);
    return 1;
}

/* Calls the function below nargs arguments on L's stack, protected, with a traceback.
 * An error fails that callback alone: it is logged as one line and the loop goes on.
 * Returns 0 with nres results pushed, or -1 with nothing pushed. */
int loop_pcall(lua_State *L, int nargs, int nres)
{
    int base = lua_gettop(L) - nargs, status;
    const char *msg;

    lua_pushcfunction(L, loop_traceback);
    lua_insert(L, base);                      /* ... traceback f args */
    status = lua_pcall(L, nargs, nres, base); /* ... traceback results|error */
    lua_remove(L, base);
    if (status != LUA_OK) {
        msg = lua_tostring(L, -1);
        binding_log("error", "callback failed", "error", msg ? msg : "(no message)");
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

/* The main thread of L's state: callbacks run there, not in a coroutine that may be gone. */
lua_State *loop_main_thread(lua_State *L)
{
    lua_State *main;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    main = lua_tothread(L, -1);
    lua_pop(L, 1);
    return main;
}

/* core.run(): runs the loop until nothing is active or core.stop() is called. An error
 * in a callback fails that callback, not the loop: it is logged, never raised here. */
static int loop_run(lua_State *L)
{
    (void)L;
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    return 0;
}

static int loop_stop(lua_State *L)
{
    (void)L;
    uv_stop(uv_default_loop());
    return 0;
}

static void loop_free(uv_handle_t *handle)
{
    free(handle);
}

/* Releases the callback and the anchor; the handle memory goes when libuv is done. */
static void loop_release(loop_handle *h)
{
    luaL_unref(h->L, LUA_REGISTRYINDEX, h->fn_ref);
    luaL_unref(h->L, LUA_REGISTRYINDEX, h->self_ref);
    h->fn_ref = h->self_ref = LUA_NOREF;
}

static void loop_box_close(loop_box *b)
{
    if (b->h != NULL) {
        loop_release(b->h);
        uv_close(&b->h->u.handle, loop_free);
        b->h = NULL;
    }
}

static int loop_handle_close(lua_State *L)
{
    loop_box_close(luaL_checkudata(L, 1, LOOP_HANDLE));
    return 0;
}

/* Makes the userdata and its handle, anchored until closed; nothing raises once the
 * handle is allocated, so the caller initialises it before anything can close it. */
static loop_handle *loop_handle_new(lua_State *L, int fn_index)
{
    lua_State *main = loop_main_thread(L);
    int fn_ref, self_ref;
    loop_box *b;
    loop_handle *h;

    luaL_checktype(L, fn_index, LUA_TFUNCTION);
    b = lua_newuserdatauv(L, sizeof *b, 0);
    b->h = NULL;
    luaL_setmetatable(L, LOOP_HANDLE);
    lua_pushvalue(L, fn_index);
    fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, -1);
    self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if ((h = calloc(1, sizeof *h)) == NULL) {
        luaL_unref(L, LUA_REGISTRYINDEX, fn_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, self_ref);
        luaL_error(L, "out of memory");
    }
    h->L = main;
    h->fn_ref = fn_ref;
    h->self_ref = self_ref;
    b->h = h;
    return h;
}

static void loop_callback(loop_handle *h, int close_after)
{
    lua_State *L = h->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->fn_ref);
    if (close_after)
        loop_release(h); /* a one-shot timer: the callback may not run twice */
    loop_pcall(L, 0, 0);
}

static void loop_on_timer(uv_timer_t *t)
{
    loop_callback((loop_handle *)t, 1);
}

/* core.timer(ms, fn): calls fn once after ms milliseconds; h:close() cancels it. */
static int loop_timer(lua_State *L)
{
    lua_Integer ms = luaL_checkinteger(L, 1);
    loop_handle *h;

    luaL_argcheck(L, ms >= 0, 1, "negative delay");
    h = loop_handle_new(L, 2);
    uv_timer_init(uv_default_loop(), &h->u.timer);
    uv_timer_start(&h->u.timer, loop_on_timer, (uint64_t)ms, 0);
    return 1;
}

static void loop_on_signal(uv_signal_t *s, int signum)
{
    loop_handle *h = (loop_handle *)s;
    lua_State *L = h->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->fn_ref);
    lua_pushstring(L, signum == SIGTERM   ? "SIGTERM"
                      : signum == SIGINT  ? "SIGINT"
                      : signum == SIGHUP  ? "SIGHUP"
                      : signum == SIGUSR1 ? "SIGUSR1"
                                          : "signal");
    loop_pcall(L, 1, 0);
}

/* core.signal(name, fn): calls fn(name) on each delivery of that signal. */
static int loop_signal(lua_State *L)
{
    static const char *const names[] = {"SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", NULL};
    static const int numbers[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};
    int which = luaL_checkoption(L, 1, NULL, names);
    loop_handle *h = loop_handle_new(L, 2);

    uv_signal_init(uv_default_loop(), &h->u.signal);
    uv_signal_start(&h->u.signal, loop_on_signal, numbers[which]);
    /* a pending signal alone must not keep the loop alive */
    uv_unref(&h->u.handle);
    return 1;
}

/* Whether the watched path still names the directory the watch was started on. An
 * event on the directory itself (removed, renamed away: inotify's DELETE_SELF,
 * MOVE_SELF, IGNORED) comes named by the directory's own name; after it the watch sees
 * nothing more, and a directory made again in its place may even have the same inode. */
static int loop_watch_alive(uv_fs_event_t *e, const char *filename)
{
    const loop_handle *h = (const loop_handle *)e;
    char path[4096];
    size_t len = sizeof path;
    const char *base;
    struct stat st;

    if (uv_fs_event_getpath(e, path, &len) < 0 || stat(path, &st) < 0)
        return 0;
    base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    if (filename != NULL && strcmp(filename, base) == 0)
        return 0;
    return st.st_dev == h->dev && st.st_ino == h->ino;
}

static void loop_on_fs(uv_fs_event_t *e, const char *filename, int events, int status)
{
    loop_handle *h = (loop_handle *)e;
    lua_State *L = h->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->fn_ref);
    if (status < 0) {
        lua_pushnil(L);
        lua_pushstring(L, uv_strerror(status));
    } else if (!loop_watch_alive(e, filename)) {
        lua_pushnil(L);
        lua_pushliteral(L, "the directory was removed or replaced");
    } else {
        lua_pushstring(L, filename ? filename : "");
        lua_pushstring(L, (events & UV_RENAME) ? "rename" : "change");
    }
    loop_pcall(L, 2, 0);
}

/* core.watch(dir, fn): calls fn(name, "rename"|"change") for each change of an entry of
 * the directory, fn(nil, message) when the watch fails or the directory is removed or
 * replaced (then nothing more is seen: watch again); nil, message if it cannot start.
 * The directory is watched, not its files: editors replace files by rename. */
static int loop_watch(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    loop_handle *h;
    struct stat st;
    int err;

    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (stat(dir, &st) < 0)
        return binding_fail(L, dir, NULL, errno, 0);
    h = loop_handle_new(L, 2);
    h->dev = st.st_dev;
    h->ino = st.st_ino;
    uv_fs_event_init(uv_default_loop(), &h->u.fs);
    if ((err = uv_fs_event_start(&h->u.fs, loop_on_fs, dir, 0)) < 0) {
        loop_box_close(lua_touserdata(L, -1));
        return binding_fail(L, dir, NULL, err, 0);
    }
    return 1;
}

static const luaL_Reg loop_funcs[] = {{"watch", loop_watch},   {"run", loop_run},
                                      {"stop", loop_stop},     {"timer", loop_timer},
                                      {"signal", loop_signal}, {NULL, NULL}};

void loop_open(lua_State *L)
{
    static const luaL_Reg methods[] = {{"close", loop_handle_close}, {NULL, NULL}};
    binding_class(L, LOOP_HANDLE, methods, loop_handle_close, NULL, NULL);
    luaL_setfuncs(L, loop_funcs, 0);
}
