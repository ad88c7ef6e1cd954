/* isolate.c: each call into a sandbox runs in a child process of its own. The child is a
 * fork of this process: it runs entry[name](...) on its copy of the sandbox's state under
 * the call's limits, writes the results (wire.c) to a pipe and exits. The parent kills it
 * once the deadline is past, whatever it is doing (one long C call, a coroutine, a
 * finalizer), and the sandbox's own state never runs a line of a script. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>
#include <uv.h>
#include "phonehome.h"

#define ISOLATE_GRACE 0.5 /* seconds past the time limit before the hard kill */
#define ISOLATE_FIELD 256 /* bytes of the progress page for the field, then its position */

typedef struct job {
    pid_t pid;
    int fd;         /* the read end of the child's pipe */
    char *progress; /* a page shared with the child: the field it is computing */
    char *in;       /* what the child wrote */
    size_t len, cap, limit;
    uint64_t deadline; /* uv_hrtime() of the hard kill */
    double timeout;
    /* when waited for on the loop */
    uv_poll_t poll;
    uv_timer_t timer;
    lua_State *L;
    int fn_ref, closing;
    struct job *next, *prev; /* the jobs on the loop */
} job;

static char *isolate_progress; /* in a child: its progress page */
static job *isolate_jobs;      /* asynchronous calls in flight, for shutdown */

/* core.progress(field, where): in a child running a call, the field it is computing now,
 * for the message if it has to be killed. Nothing anywhere else. */
static int isolate_set_progress(lua_State *L)
{
    const char *field = luaL_checkstring(L, 1), *where = luaL_checkstring(L, 2);
    if (isolate_progress != NULL) {
        strncpy(isolate_progress, field, ISOLATE_FIELD - 1);
        strncpy(isolate_progress + ISOLATE_FIELD, where, ISOLATE_FIELD - 1);
    }
    return 0;
}

static void isolate_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* The child: limits, the call, its results on the pipe. Never returns. */
static void isolate_child(lua_State *C, sandbox *sb, const char *name, int first, int nargs, int fd,
                          char *progress, pid_t parent)
{
    static const int reset[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGPIPE, SIGCHLD};
    lua_State *L = sandbox_state(sb);
    wire_buffer b = {NULL, 0, 0, sandbox_limit(sb), 0, NULL};
    struct rlimit cpu;
    size_t i;
    int n;

    /* the parent's handlers would write to the parent's loop */
    for (i = 0; i < sizeof reset / sizeof reset[0]; i++)
        signal(reset[i], SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1); /* the parent died before the line above */
    cpu.rlim_cur = (rlim_t)sandbox_timeout(sb) + 2;
    cpu.rlim_max = cpu.rlim_cur + 1;
    setrlimit(RLIMIT_CPU, &cpu);
    isolate_progress = progress;
    n = sandbox_invoke(C, sb, name, first, nargs);
    if (n >= 0) {
        lua_pushboolean(L, 1);
        lua_insert(L, 2); /* h true results... */
        if (wire_encode(L, 2, n + 1, &b) < 0) {
            b.len = b.nodes = 0;
            lua_settop(L, 1);
            lua_pushboolean(L, 0);
            lua_pushfstring(L, "%s returned a value that cannot leave the sandbox: %s", name,
                            b.err);
            wire_encode(L, 2, 2, &b);
        }
    } else {
        /* false, message, then the field being computed, if the entry says */
        lua_pushboolean(L, 0);
        lua_pushvalue(L, -2);
        wire_encode(L, lua_gettop(L) - 1, 2, &b);
        if (sandbox_invoke(C, sb, "current", first, 0) == 2)
            wire_encode(L, 2, 2, &b);
    }
    isolate_write_all(fd, b.data, b.len);
    _exit(0);
}

/* Forks the child of a call of sb: sb:call's arguments are at 2 (name) and 3.. */
static int isolate_start(lua_State *C, job *j)
{
    sandbox *sb = sandbox_arg(C, 1);
    const char *name = luaL_checkstring(C, 2);
    int nargs = lua_gettop(C) - 2, fds[2], err;
    pid_t parent;

    if (!sandbox_has(sb, name))
        luaL_error(C, "sandbox has no function '%s'", name);
    memset(j, 0, sizeof *j);
    j->fd = -1;
    j->fn_ref = LUA_NOREF;
    j->timeout = sandbox_timeout(sb);
    j->limit = sandbox_limit(sb) + 64;
    j->progress =
        mmap(NULL, 2 * ISOLATE_FIELD, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (j->progress == MAP_FAILED) {
        j->progress = NULL;
        return errno;
    }
    if (pipe2(fds, O_CLOEXEC) < 0)
        return errno;
    fflush(NULL); /* nothing buffered may be written twice */
    parent = getpid();
    j->pid = fork();
    if (j->pid == 0) {
        close(fds[0]);
        isolate_child(C, sb, name, 3, nargs, fds[1], j->progress, parent);
    }
    err = errno;
    close(fds[1]);
    j->fd = fds[0];
    if (j->pid < 0)
        return err;
    j->deadline = uv_hrtime() + (uint64_t)((j->timeout + ISOLATE_GRACE) * 1e9);
    return 0;
}

/* Reads what the child wrote, up to the limit: 1 at the end of its output, 0 when there is
 * nothing more now, -1 when it wrote too much. */
static int isolate_read(job *j)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(j->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
        if (n == 0)
            return 1;
        if ((size_t)n > j->limit - j->len)
            return -1;
        if (j->len + (size_t)n > j->cap) {
            size_t cap = j->cap ? j->cap * 2 : sizeof buf;
            char *grown;
            while (cap < j->len + (size_t)n)
                cap *= 2;
            if ((grown = realloc(j->in, cap)) == NULL)
                return -1;
            j->in = grown;
            j->cap = cap;
        }
        memcpy(j->in + j->len, buf, (size_t)n);
        j->len += (size_t)n;
    }
}

/* Ends the child and pushes the call's outcome onto L: true, results... or false,
 * message [, field, position]. how: 1 the child finished, 0 its deadline passed, -1 it
 * wrote more than a result may hold. Frees what the job holds. */
static int isolate_finish(lua_State *L, job *j, int how)
{
    int status = 0, n = -1;

    kill(j->pid, SIGKILL);
    while (waitpid(j->pid, &status, 0) < 0 && errno == EINTR)
        ;
    close(j->fd);
    j->fd = -1;
    if (how == 1 && j->len > 0)
        n = wire_decode(L, j->in, j->len);
    if (n < 1 || lua_type(L, -n) != LUA_TBOOLEAN) {
        if (n > 0)
            lua_pop(L, n);
        lua_pushboolean(L, 0);
        if (how == -1)
            lua_pushliteral(L, "script returned more than its memory limit allows");
        else if (how == 0 || (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU))
            lua_pushfstring(L, "script exceeded its time limit of %d ms", (int)(j->timeout * 1000));
        else if (WIFSIGNALED(status))
            lua_pushfstring(L, "the script's process died of signal %d", WTERMSIG(status));
        else
            lua_pushliteral(L, "the script's process ended without a result");
        n = 2;
        if (j->progress[0] != '\0') {
            lua_pushstring(L, j->progress);
            lua_pushstring(L, j->progress + ISOLATE_FIELD);
            n = 4;
        }
    }
    munmap(j->progress, 2 * ISOLATE_FIELD);
    j->progress = NULL;
    free(j->in);
    j->in = NULL;
    return n;
}

/* sb:call(name, ...) -> true, results... | false, message [, field, position]: runs
 * entry[name](...) in a child process and waits for it, at most its time limit and a
 * grace. */
static int isolate_call(lua_State *C)
{
    job j;
    int err = isolate_start(C, &j), done = 0;

    if (err != 0) {
        if (j.progress != NULL)
            munmap(j.progress, 2 * ISOLATE_FIELD);
        if (j.fd >= 0)
            close(j.fd);
        return luaL_error(C, "cannot start the sandbox's process: %s", strerror(err));
    }
    fcntl(j.fd, F_SETFL, O_NONBLOCK);
    while (done == 0) {
        uint64_t now = uv_hrtime();
        struct pollfd p = {j.fd, POLLIN, 0};
        int r;
        if (now >= j.deadline)
            break;
        r = poll(&p, 1, (int)((j.deadline - now) / 1000000) + 1);
        if (r < 0 && errno != EINTR)
            done = 1;
        else if (r > 0)
            done = isolate_read(&j);
    }
    return isolate_finish(C, &j, done);
}

static void isolate_free(uv_handle_t *h)
{
    job *j = h->data;
    if (++j->closing == 2)
        free(j);
}

/* The child of an asynchronous call ended, overran, or wrote too much: its callback. */
static void isolate_done(job *j, int how)
{
    lua_State *L = j->L;
    int n;

    if (j->prev != NULL)
        j->prev->next = j->next;
    else
        isolate_jobs = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
    uv_poll_stop(&j->poll);
    uv_timer_stop(&j->timer);
    lua_rawgeti(L, LUA_REGISTRYINDEX, j->fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, j->fn_ref);
    n = isolate_finish(L, j, how);
    uv_close((uv_handle_t *)&j->poll, isolate_free);
    uv_close((uv_handle_t *)&j->timer, isolate_free);
    loop_pcall(L, n, 0);
}

static void isolate_on_readable(uv_poll_t *p, int status, int events)
{
    job *j = p->data;
    int r = status < 0 ? 1 : isolate_read(j);
    (void)events;
    if (r != 0)
        isolate_done(j, r);
}

static void isolate_on_deadline(uv_timer_t *t)
{
    isolate_done(t->data, 0);
}

/* sb:call_async(callback, name, ...): sb:call without waiting; callback(ok, ...) gets its
 * outcome on the loop. */
static int isolate_call_async(lua_State *C)
{
    job *j;
    int err, ref;
    uint64_t now;

    luaL_checktype(C, 2, LUA_TFUNCTION);
    if (!sandbox_has(sandbox_arg(C, 1), luaL_checkstring(C, 3)))
        return luaL_error(C, "sandbox has no function '%s'", lua_tostring(C, 3));
    /* nothing below raises before the job is on the loop */
    if ((j = malloc(sizeof *j)) == NULL)
        return luaL_error(C, "out of memory");
    lua_pushvalue(C, 2);
    ref = luaL_ref(C, LUA_REGISTRYINDEX);
    lua_remove(C, 2); /* sb name args... */
    if ((err = isolate_start(C, j)) != 0) {
        if (j->progress != NULL)
            munmap(j->progress, 2 * ISOLATE_FIELD);
        if (j->fd >= 0)
            close(j->fd);
        free(j);
        luaL_unref(C, LUA_REGISTRYINDEX, ref);
        return luaL_error(C, "cannot start the sandbox's process: %s", strerror(err));
    }
    fcntl(j->fd, F_SETFL, O_NONBLOCK);
    j->L = loop_main_thread(C);
    j->fn_ref = ref;
    uv_poll_init(uv_default_loop(), &j->poll, j->fd);
    uv_timer_init(uv_default_loop(), &j->timer);
    j->poll.data = j->timer.data = j;
    uv_poll_start(&j->poll, UV_READABLE, isolate_on_readable);
    now = uv_hrtime();
    uv_timer_start(&j->timer, isolate_on_deadline,
                   j->deadline > now ? (j->deadline - now) / 1000000 + 1 : 0, 0);
    j->prev = NULL;
    j->next = isolate_jobs;
    if (isolate_jobs != NULL)
        isolate_jobs->prev = j;
    isolate_jobs = j;
    return 0;
}

/* When the state closes (the process ends): the calls still in flight are ended, their
 * callbacks never run, and what they hold goes with libuv's last pass. */
static int isolate_shutdown(lua_State *L)
{
    (void)L;
    while (isolate_jobs != NULL) {
        job *j = isolate_jobs;
        isolate_jobs = j->next;
        kill(j->pid, SIGKILL);
        while (waitpid(j->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        close(j->fd);
        munmap(j->progress, 2 * ISOLATE_FIELD);
        free(j->in);
        uv_close((uv_handle_t *)&j->poll, isolate_free);
        uv_close((uv_handle_t *)&j->timer, isolate_free);
    }
    return 0;
}

static const luaL_Reg isolate_methods[] = {
    {"call", isolate_call}, {"call_async", isolate_call_async}, {NULL, NULL}};

/* Adds call and call_async to the sandbox's methods, and core.progress to the module on
 * top of the stack. */
void isolate_open(lua_State *L)
{
    binding_on_close(L, "phonehome.isolate.shutdown", isolate_shutdown);
    lua_pushcfunction(L, isolate_set_progress);
    lua_setfield(L, -2, "progress");
    luaL_getmetatable(L, "phonehome.Sandbox"); /* core mt */
    lua_getfield(L, -1, "__index");            /* core mt methods */
    luaL_setfuncs(L, isolate_methods, 0);
    lua_pop(L, 2);
}
