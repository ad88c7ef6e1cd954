/* statsd.c (statsd.so): the StatsD listener on the loop: a UDP socket and/or a Unix
 * datagram socket read in batches (recvmmsg), lines counted into the declared metrics'
 * aggregates (statsd_agg.c), drained by Lua into the products' windows. The kernel's
 * count of datagrams dropped for want of buffer space is read with each batch. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>
#include "statsd.h"

#define STATSD_HANDLE "phonehome.StatsD"
#define SD_BATCH 32         /* datagrams per recvmmsg */
#define SD_DATAGRAM 16384   /* bytes of one datagram, at most; longer ones are cut, counted */
#define SD_TURNS 64         /* recvmmsg calls per wake-up, so that the loop goes on */
#define SD_RCVBUF (8 << 20) /* the receive buffer asked for: a burst waits there */

static const core_api *api;

typedef struct sd_socket {
    uv_poll_t *poll;
    int fd;
} sd_socket;

typedef struct sd_listener {
    sd_socket udp, unix_;
    char *unix_path;
    dev_t unix_dev; /* the socket file made, removed at close if still the same */
    ino_t unix_ino;
    sd_table table;
    uint64_t kernel_drops; /* as the kernel last told, per socket summed */
    uint32_t drops_udp, drops_unix;
    char *bufs; /* SD_BATCH datagrams */
    struct mmsghdr msgs[SD_BATCH];
    struct iovec iov[SD_BATCH];
    char ctrl[SD_BATCH][CMSG_SPACE(sizeof(uint32_t))];
    lua_State *L;
    int fn_ref, self_ref;
    int closed;
} sd_listener;

static sd_listener *sd_check(lua_State *L)
{
    sd_listener *l = luaL_checkudata(L, 1, STATSD_HANDLE);
    if (l->closed)
        luaL_error(L, "the StatsD listener is closed");
    return l;
}

static void sd_free_handle(uv_handle_t *h)
{
    free(h);
}

static void sd_socket_close(sd_socket *s)
{
    if (s->poll != NULL) {
        uv_poll_stop(s->poll);
        uv_close((uv_handle_t *)s->poll, sd_free_handle);
        s->poll = NULL;
    }
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

static int sd_close(lua_State *L)
{
    sd_listener *l = luaL_checkudata(L, 1, STATSD_HANDLE);
    struct stat st;

    if (l->closed)
        return 0;
    l->closed = 1;
    sd_socket_close(&l->udp);
    sd_socket_close(&l->unix_);
    if (l->unix_path != NULL && stat(l->unix_path, &st) == 0 && st.st_dev == l->unix_dev
        && st.st_ino == l->unix_ino)
        unlink(l->unix_path);
    free(l->unix_path);
    free(l->bufs);
    l->unix_path = NULL;
    l->bufs = NULL;
    sd_table_free(&l->table);
    luaL_unref(L, LUA_REGISTRYINDEX, l->fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, l->self_ref);
    l->fn_ref = l->self_ref = LUA_NOREF;
    return 0;
}

/* Reads what is waiting on one socket, a batch at a time, at most SD_TURNS batches. */
static void sd_receive(sd_listener *l, sd_socket *s, uint32_t *drops)
{
    int turn, n, i;
    struct cmsghdr *c;

    for (turn = 0; turn < SD_TURNS; turn++) {
        for (i = 0; i < SD_BATCH; i++) {
            l->iov[i].iov_base = l->bufs + (size_t)i * SD_DATAGRAM;
            l->iov[i].iov_len = SD_DATAGRAM;
            memset(&l->msgs[i].msg_hdr, 0, sizeof l->msgs[i].msg_hdr);
            l->msgs[i].msg_hdr.msg_iov = &l->iov[i];
            l->msgs[i].msg_hdr.msg_iovlen = 1;
            l->msgs[i].msg_hdr.msg_control = l->ctrl[i];
            l->msgs[i].msg_hdr.msg_controllen = sizeof l->ctrl[i];
        }
        n = recvmmsg(s->fd, l->msgs, SD_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        for (i = 0; i < n; i++) {
            struct msghdr *h = &l->msgs[i].msg_hdr;
            for (c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL)
                    memcpy(drops, CMSG_DATA(c), sizeof *drops);
            if (h->msg_flags & MSG_TRUNC)
                l->table.stats.truncated++;
            sd_feed(&l->table, l->iov[i].iov_base, l->msgs[i].msg_len);
        }
        if (n < SD_BATCH)
            return;
    }
}

/* Tells Lua once that there is something to drain, when there was nothing. */
static void sd_tell(sd_listener *l, int was_dirty)
{
    if (was_dirty || !l->table.dirty || l->fn_ref == LUA_NOREF)
        return;
    lua_rawgeti(l->L, LUA_REGISTRYINDEX, l->fn_ref);
    api->pcall(l->L, 0, 0);
}

static void sd_on_poll(uv_poll_t *p, int status, int events)
{
    sd_listener *l = p->data;
    int was_dirty = l->table.dirty;

    (void)status;
    (void)events;
    if (p == l->udp.poll)
        sd_receive(l, &l->udp, &l->drops_udp);
    else
        sd_receive(l, &l->unix_, &l->drops_unix);
    l->kernel_drops = (uint64_t)l->drops_udp + l->drops_unix;
    sd_tell(l, was_dirty);
}

/* HOST:PORT or [V6]:PORT as a bound datagram socket; -1 with the reason in err. */
static int sd_bind_udp(const char *addr, char *err, size_t errlen)
{
    char host[256];
    const char *port, *colon = strrchr(addr, ':');
    struct addrinfo hints, *res = NULL;
    size_t hlen;
    int fd = -1, rc, on = 1, size = SD_RCVBUF;

    if (colon == NULL || colon[1] == '\0') {
        snprintf(err, errlen, "'%s' is not HOST:PORT", addr);
        return -1;
    }
    port = colon + 1;
    hlen = (size_t)(colon - addr);
    if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
        addr++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof host) {
        snprintf(err, errlen, "'%s' is not HOST:PORT", addr);
        return -1;
    }
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
        return -1;
    }
    if ((fd = socket(res->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0
        || bind(fd, res->ai_addr, res->ai_addrlen) < 0)
        goto fail;
    /* beyond rmem_max only for root; either way the buffer is as large as allowed */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
    freeaddrinfo(res);
    return fd;
fail:
    snprintf(err, errlen, "%s", strerror(errno));
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return -1;
}

/* A Unix datagram socket at path; a socket file left there by an earlier run is
 * replaced, anything else there is an error. */
static int sd_bind_unix(sd_listener *l, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd = -1, size = SD_RCVBUF;

    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "path too long for a socket");
        return -1;
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "exists and is not a socket");
            return -1;
        }
        unlink(path);
    }
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path));
    if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0
        || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || stat(path, &st) < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    l->unix_dev = st.st_dev;
    l->unix_ino = st.st_ino;
    return fd;
}

static int sd_watch(sd_listener *l, sd_socket *s, int fd)
{
    s->fd = fd;
    if ((s->poll = malloc(sizeof *s->poll)) == NULL)
        return ENOMEM;
    if (uv_poll_init(uv_default_loop(), s->poll, fd) != 0) {
        free(s->poll);
        s->poll = NULL;
        return EBADF;
    }
    s->poll->data = l;
    uv_poll_start(s->poll, UV_READABLE, sd_on_poll);
    return 0;
}

/* core.statsd_listen{ udp = "HOST:PORT", unix = PATH, on_data = fn }: a listener on
 * either or both (neither: lines come only through :feed). on_data() is called when
 * lines arrive and there was nothing to drain. nil, message when a socket cannot be
 * made. */
static int sd_listen(lua_State *L)
{
    const char *udp, *path;
    char err[300];
    sd_listener *l;
    int fd, rc;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    api->field(L, 1, "udp", LUA_TSTRING, 1);       /* 2 */
    api->field(L, 1, "unix", LUA_TSTRING, 1);      /* 3 */
    api->field(L, 1, "on_data", LUA_TFUNCTION, 1); /* 4 */
    udp = lua_tostring(L, 2);
    path = lua_tostring(L, 3);
    l = lua_newuserdatauv(L, sizeof *l, 0); /* 5 */
    memset(l, 0, sizeof *l);
    l->udp.fd = l->unix_.fd = -1;
    l->fn_ref = l->self_ref = LUA_NOREF;
    l->L = api->main_thread(L);
    luaL_setmetatable(L, STATSD_HANDLE);
    /* from here on the finalizer frees what was made */
    if ((udp || path) && (l->bufs = malloc((size_t)SD_BATCH * SD_DATAGRAM)) == NULL)
        return luaL_error(L, "out of memory");
    if (udp != NULL) {
        if ((fd = sd_bind_udp(udp, err, sizeof err)) < 0)
            return api->fail(L, lua_pushfstring(L, "StatsD on udp %s", udp), err, 0, 0);
        if ((rc = sd_watch(l, &l->udp, fd)) != 0)
            return api->fail(L, "StatsD on the loop", NULL, rc, 0);
    }
    if (path != NULL) {
        if ((fd = sd_bind_unix(l, path, err, sizeof err)) < 0)
            return api->fail(L, lua_pushfstring(L, "StatsD on unix %s", path), err, 0, 0);
        if ((l->unix_path = strdup(path)) == NULL) {
            close(fd);
            return luaL_error(L, "out of memory");
        }
        if ((rc = sd_watch(l, &l->unix_, fd)) != 0)
            return api->fail(L, "StatsD on the loop", NULL, rc, 0);
    }
    if (!lua_isnil(L, 4)) {
        lua_pushvalue(L, 4);
        l->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    /* anchored while it listens: a listener forgotten by Lua goes on until closed */
    lua_pushvalue(L, 5);
    l->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

/* l:address() -> "HOST:PORT" the UDP socket is bound to (useful with port 0), or nil. */
static int sd_address(lua_State *L)
{
    sd_listener *l = sd_check(L);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[NI_MAXHOST], port[NI_MAXSERV];

    if (l->udp.fd < 0 || getsockname(l->udp.fd, (struct sockaddr *)&ss, &len) < 0
        || getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, port, sizeof port,
                       NI_NUMERICHOST | NI_NUMERICSERV)
               != 0)
        return 0;
    lua_pushfstring(L, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
    return 1;
}

/* l:declare{ { name = , kind = "counter"|"gauge"|"histogram"|"set", value = gauge's },
 * ... }: the metrics accepted from now on. A metric declared again with its kind keeps
 * what it holds; a gauge not holding a value takes value (its value kept by the daemon). */
static int sd_declare_all(lua_State *L)
{
    sd_listener *l = sd_check(L);
    sd_table next = {0};
    lua_Integer i, n;
    int kind;

    luaL_checktype(L, 2, LUA_TTABLE);
    n = (lua_Integer)lua_rawlen(L, 2);
    for (i = 1; i <= n; i++) {
        const char *name, *kname;
        sd_metric *m, *old;
        lua_rawgeti(L, 2, i);
        if (!lua_istable(L, -1))
            goto bad;
        lua_getfield(L, -1, "name");
        lua_getfield(L, -2, "kind");
        name = lua_tostring(L, -2);
        kname = lua_tostring(L, -1);
        if (name == NULL || kname == NULL || (kind = sd_kind(kname)) < 0 || name[0] == '\0'
            || strpbrk(name, ":|\n") != NULL || sd_find(&next, name, strlen(name)) != NULL)
            goto bad;
        if ((m = sd_declare(&next, name, kind)) == NULL) {
            sd_table_free(&next);
            return luaL_error(L, "out of memory");
        }
        old = sd_find(&l->table, name, strlen(name));
        if (old != NULL && old->kind == kind) {
            /* the aggregate moves to the new table */
            sd_metric tmp = *m;
            *m = *old;
            m->name = tmp.name;
            old->hist = (sd_hist){0};
            old->regs = NULL;
        }
        lua_getfield(L, -3, "value");
        if (kind == SD_GAUGE && !m->has_value && lua_type(L, -1) == LUA_TNUMBER) {
            m->value = lua_tonumber(L, -1);
            m->has_value = 1;
        }
        lua_pop(L, 4);
    }
    /* what was counted and not drained stays counted */
    next.stats = l->table.stats;
    next.dirty = l->table.dirty;
    memcpy(next.malformed, l->table.malformed, sizeof next.malformed);
    memcpy(next.undeclared, l->table.undeclared, sizeof next.undeclared);
    memcpy(next.undeclared_n, l->table.undeclared_n, sizeof next.undeclared_n);
    memset(l->table.undeclared, 0, sizeof l->table.undeclared);
    sd_table_free(&l->table);
    l->table = next;
    return 0;
bad:
    sd_table_free(&next);
    return luaL_error(L,
                      "bad metric #%d: a table of name (no ':', '|' or newline, not "
                      "declared twice) and kind (counter, gauge, histogram or set)",
                      (int)i);
}

/* l:feed(datagram): counts its lines as if received. */
static int sd_feed_lua(lua_State *L)
{
    sd_listener *l = sd_check(L);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    int was_dirty = l->table.dirty;

    sd_feed(&l->table, data, len);
    sd_tell(l, was_dirty);
    return 0;
}

static void sd_set_count(lua_State *L, const char *key, uint64_t n)
{
    lua_pushinteger(L, (lua_Integer)n);
    lua_setfield(L, -2, key);
}

/* l:drain() -> { [name] = aggregate } of the metrics that changed, and what was counted:
 * { lines, malformed, undeclared, wrong_type, datagrams, truncated, kernel_drops (since
 * the listener began), undeclared_names = { [name] = lines }, malformed_line }. Then
 * starts again from nothing (a gauge keeps its value). */
static int sd_drain(lua_State *L)
{
    sd_listener *l = sd_check(L);
    sd_table *t = &l->table;
    size_t i;

    lua_settop(L, 1);
    lua_newtable(L);
    for (i = 0; i < t->cap; i++) {
        if (t->slots[i] == NULL || !t->slots[i]->changed)
            continue;
        sd_push(L, t->slots[i]);
        lua_setfield(L, 2, t->slots[i]->name);
    }
    lua_createtable(L, 0, 9);
    sd_set_count(L, "lines", t->stats.lines);
    sd_set_count(L, "malformed", t->stats.malformed);
    sd_set_count(L, "undeclared", t->stats.undeclared);
    sd_set_count(L, "wrong_type", t->stats.wrong_type);
    sd_set_count(L, "datagrams", t->stats.datagrams);
    sd_set_count(L, "truncated", t->stats.truncated);
    sd_set_count(L, "kernel_drops", l->kernel_drops);
    lua_newtable(L);
    for (i = 0; i < SD_NAMES && t->undeclared[i] != NULL; i++) {
        lua_pushinteger(L, (lua_Integer)t->undeclared_n[i]);
        lua_setfield(L, -2, t->undeclared[i]);
    }
    lua_setfield(L, -2, "undeclared_names");
    if (t->malformed[0] != '\0') {
        lua_pushstring(L, t->malformed);
        lua_setfield(L, -2, "malformed_line");
    }
    /* all of it pushed: nothing below raises */
    for (i = 0; i < t->cap; i++)
        if (t->slots[i] != NULL)
            sd_reset(t->slots[i]);
    for (i = 0; i < SD_NAMES; i++) {
        free(t->undeclared[i]);
        t->undeclared[i] = NULL;
    }
    memset(&t->stats, 0, sizeof t->stats);
    t->malformed[0] = '\0';
    t->dirty = 0;
    return 2;
}

/* Two aggregates being merged, in a userdata whose finalizer frees them whatever raises. */
#define STATSD_SCRATCH "phonehome.StatsDMerge"
typedef struct sd_pair {
    sd_metric a, b;
} sd_pair;

static int sd_pair_free(lua_State *L)
{
    sd_pair *p = luaL_checkudata(L, 1, STATSD_SCRATCH);
    sd_hist_free(&p->a.hist);
    sd_hist_free(&p->b.hist);
    free(p->a.regs);
    free(p->b.regs);
    p->a.regs = p->b.regs = NULL;
    return 0;
}

static void sd_merge_hist(sd_hist *a, const sd_hist *b, int *failed)
{
    size_t i;
    if (b->count == 0)
        return;
    a->min = a->count == 0 || b->min < a->min ? b->min : a->min;
    a->max = a->count == 0 || b->max > a->max ? b->max : a->max;
    a->count += b->count;
    a->sum += b->sum;
    if (b->bucketed && !a->bucketed && sd_hist_buckets(a) < 0)
        *failed = 1;
    for (i = 0; i < b->cap && !*failed; i++)
        if (b->cnt[i] != 0 && sd_hist_value(a, b->val[i], b->cnt[i]) < 0)
            *failed = 1;
}

/* core.statsd_merge(a, b) -> the aggregate of a's lines then b's (as l:drain gives them,
 * of one kind); an error names what is wrong with either. */
static int sd_merge(lua_State *L)
{
    sd_pair *p;
    const char *err = NULL, *kname;
    int kind, failed = 0;

    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_getfield(L, 1, "kind");
    kname = lua_tostring(L, -1);
    if (kname == NULL || (kind = sd_kind(kname)) < 0)
        return luaL_error(L, "bad aggregate #1: no kind");
    lua_getfield(L, 2, "kind");
    if (lua_tostring(L, -1) == NULL || strcmp(lua_tostring(L, -1), kname) != 0)
        return luaL_error(L, "bad aggregate #2: not a %s", kname);
    p = lua_newuserdatauv(L, sizeof *p, 0);
    memset(p, 0, sizeof *p);
    luaL_setmetatable(L, STATSD_SCRATCH);
    p->a.kind = p->b.kind = kind;
    if (sd_read(L, 1, &p->a, &err) < 0)
        return luaL_error(L, "bad aggregate #1: %s", err);
    if (sd_read(L, 2, &p->b, &err) < 0)
        return luaL_error(L, "bad aggregate #2: %s", err);
    p->a.lines += p->b.lines;
    switch (kind) {
    case SD_COUNTER:
        p->a.value += p->b.value;
        break;
    case SD_GAUGE:
        if (p->b.has_value) {
            p->a.value = p->b.value;
            p->a.has_value = 1;
        }
        break;
    case SD_HISTOGRAM:
        sd_merge_hist(&p->a.hist, &p->b.hist, &failed);
        break;
    case SD_SET:
        if (p->a.regs == NULL) {
            p->a.regs = p->b.regs;
            p->b.regs = NULL;
        } else if (p->b.regs != NULL) {
            hll_merge(p->a.regs, p->b.regs);
        }
        break;
    }
    if (failed)
        return luaL_error(L, "out of memory");
    sd_push(L, &p->a);
    return 1;
}

static const luaL_Reg sd_methods[] = {{"address", sd_address}, {"declare", sd_declare_all},
                                      {"feed", sd_feed_lua},   {"drain", sd_drain},
                                      {"close", sd_close},     {NULL, NULL}};

void phonehome_statsd_open(lua_State *L, const core_api *a)
{
    static const luaL_Reg none[] = {{NULL, NULL}};
    api = a;
    api->class_(L, STATSD_HANDLE, sd_methods, sd_close, "statsd_listen", sd_listen);
    api->class_(L, STATSD_SCRATCH, none, sd_pair_free, "statsd_merge", sd_merge);
}
