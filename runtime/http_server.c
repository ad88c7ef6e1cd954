/* http_server.c: the HTTP server of `phonehome collect`: libmicrohttpd in external epoll
 * mode on the libuv loop; each complete request is handed to a Lua handler. One client
 * holds a bounded number of connections, and each request has a deadline. */
#include <arpa/inet.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "http_server.h"

#define HTTPD_HANDLE "phonehome.Httpd"

static const core_api *api;

static void httpd_free_handle(uv_handle_t *h)
{
    free(h);
}

/* Closes the connections whose request is past its deadline. Shutting the socket down
 * (MHD owns it and closes it) wakes MHD, which reads the end and closes the connection. */
static void httpd_on_sweep(uv_timer_t *t)
{
    httpd *s = t->data;
    uint64_t now = uv_now(uv_default_loop());
    httpd_conn *conn;
    char client[INET6_ADDRSTRLEN];

    if (s->conns == NULL) {
        uv_timer_stop(t);
        return;
    }
    for (conn = s->conns; conn != NULL; conn = conn->next) {
        const union MHD_ConnectionInfo *ci;
        if (conn->closing || now < conn->deadline)
            continue;
        ci = MHD_get_connection_info(conn->c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci == NULL)
            continue;
        conn->closing = 1;
        shutdown(ci->connect_fd, SHUT_RDWR);
        httpd_client(conn->c, client, sizeof client);
        api->log("warn", "request not complete in time, connection closed", "client", client);
    }
}

/* Keeps each connection in the server's list while it is open, with its deadline. */
static void httpd_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                         enum MHD_ConnectionNotificationCode toe)
{
    httpd *s = cls;
    httpd_conn *conn = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        if ((conn = calloc(1, sizeof *conn)) == NULL) {
            /* no deadline could be kept: not served */
            const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
            if (ci != NULL)
                shutdown(ci->connect_fd, SHUT_RDWR);
            return;
        }
        conn->c = c;
        conn->since = uv_now(uv_default_loop());
        conn->deadline = conn->since + s->header_ms;
        conn->next = s->conns;
        if (s->conns != NULL)
            s->conns->prev = conn;
        s->conns = conn;
        *socket_context = conn;
        if (!uv_is_active((uv_handle_t *)s->sweep))
            uv_timer_start(s->sweep, httpd_on_sweep, 1000, 1000);
    } else if (conn != NULL) {
        if (conn->prev != NULL)
            conn->prev->next = conn->next;
        else
            s->conns = conn->next;
        if (conn->next != NULL)
            conn->next->prev = conn->prev;
        free(conn);
        *socket_context = NULL;
    }
}

static void httpd_schedule(httpd *s);

/* MHD has work: run it, then wait again for its descriptor or its next timeout. */
static void httpd_run(httpd *s)
{
    if (s->mhd == NULL)
        return;
    MHD_run(s->mhd);
    httpd_schedule(s);
}

static void httpd_on_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    httpd_run(p->data);
}

static void httpd_on_timer(uv_timer_t *t)
{
    httpd_run(t->data);
}

static void httpd_schedule(httpd *s)
{
    MHD_UNSIGNED_LONG_LONG ms;
    if (s->mhd == NULL)
        return;
    if (MHD_get_timeout(s->mhd, &ms) == MHD_YES)
        uv_timer_start(s->timer, httpd_on_timer, ms > 60000 ? 60000 : (uint64_t)ms, 0);
    else
        uv_timer_stop(s->timer);
}

static httpd *httpd_check(lua_State *L)
{
    httpd *s = luaL_checkudata(L, 1, HTTPD_HANDLE);
    if (s->mhd == NULL)
        luaL_error(L, "server is closed");
    return s;
}

/* libmicrohttpd's own complaints (MHD_USE_ERROR_LOG), as log lines like every other
 * line that collect writes on stderr. */
static void httpd_log(void *cls, const char *fmt, va_list ap)
{
    char text[512], msg[sizeof text + 16];
    size_t len;
    int saved = errno;

    (void)cls;
    vsnprintf(text, sizeof text, fmt, ap);
    len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        text[--len] = '\0';
    snprintf(msg, sizeof msg, "libmicrohttpd: %s", text);
    api->log("warn", msg, NULL, NULL);
    errno = saved;
}

/* Parses "HOST:PORT" (an IPv4 address) into a socket address. */
static int httpd_parse_listen(const char *listen, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(listen, ':');
    char *end;
    long port;

    if (colon == NULL || (size_t)(colon - listen) >= sizeof host)
        return -1;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535)
        return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &sa->sin_addr) == 1 ? 0 : -1;
}

/* Starts libmicrohttpd for s on sa, with TLS when cert is given, at most per_client
 * connections from one address: 0, an errno value, or -1 when the key or certificate is
 * refused. */
static int httpd_start(httpd *s, struct sockaddr_in *sa, const char *cert, const char *key,
                       unsigned per_client)
{
    unsigned int flags = MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct MHD_OptionItem opts[14];
    size_t n = 0;
    int err;

    /* the logger first, so that it hears every complaint; the key and certificate only
     * with TLS, else libmicrohttpd complains of them */
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)httpd_log, NULL};
    if (cert != NULL) {
        flags |= MHD_USE_TLS;
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, sa};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)httpd_completed, s};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)httpd_notify, s};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_client, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, 10, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, 32 * 1024, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, 1000, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    errno = 0; /* still 0 after a failure: not one of the system (a bad key, say) */
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, httpd_access, s, MHD_OPTION_ARRAY, opts,
                              MHD_OPTION_END);
    err = errno;
    if (s->mhd != NULL)
        return 0;
    if (cert != NULL && err == 0)
        return -1;
    return err ? err : EADDRINUSE;
}

/* Puts s's epoll descriptor and timeouts on the libuv loop: 0, or an errno value with
 * the server stopped. */
static int httpd_attach(httpd *s)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    int fd = info ? info->epoll_fd : -1, err;

    s->poll = malloc(sizeof *s->poll);
    s->timer = malloc(sizeof *s->timer);
    s->sweep = malloc(sizeof *s->sweep);
    err = fd < 0 ? EBADF : 0;
    if (err == 0 && (s->poll == NULL || s->timer == NULL || s->sweep == NULL))
        err = ENOMEM;
    if (err != 0 || (err = -uv_poll_init(uv_default_loop(), s->poll, fd)) != 0)
        goto fail;
    uv_timer_init(uv_default_loop(), s->timer);
    uv_timer_init(uv_default_loop(), s->sweep);
    s->poll->data = s->timer->data = s->sweep->data = s;
    uv_poll_start(s->poll, UV_READABLE, httpd_on_poll);
    return 0;
fail:
    free(s->poll);
    free(s->timer);
    free(s->sweep);
    s->poll = NULL;
    s->timer = NULL;
    s->sweep = NULL;
    MHD_stop_daemon(s->mhd);
    s->mhd = NULL;
    return err;
}

/* core.httpd{ listen = "127.0.0.1:8080", max_body = bytes, handler = fn, tls_cert = PEM,
 * tls_key = PEM, max_client_connections = n, header_timeout = s, request_timeout = s }:
 * a server on the loop, HTTPS when given a certificate and key; handler(request) returns
 * status, body, content type and, optionally, a table of extra headers. One address
 * holds at most max_client_connections (64) connections; a request's headers must be in
 * within header_timeout seconds (10) of its beginning, and all of it within
 * request_timeout (60), else its connection is closed. nil, message when the address
 * cannot be bound. */
static int httpd_new(lua_State *L)
{
    struct sockaddr_in sa;
    const char *listen, *cert, *key;
    lua_Integer max_body, per_client;
    lua_Number header_s, request_s;
    httpd *s;
    int err;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    api->field(L, 1, "listen", LUA_TSTRING, 0);                      /* 2 */
    api->field(L, 1, "max_body", BINDING_TINTEGER, 1);               /* 3 */
    api->field(L, 1, "handler", LUA_TFUNCTION, 0);                   /* 4 */
    api->field(L, 1, "tls_cert", LUA_TSTRING, 1);                    /* 5 */
    api->field(L, 1, "tls_key", LUA_TSTRING, 1);                     /* 6 */
    api->field(L, 1, "max_client_connections", BINDING_TINTEGER, 1); /* 7 */
    api->field(L, 1, "header_timeout", LUA_TNUMBER, 1);              /* 8 */
    api->field(L, 1, "request_timeout", LUA_TNUMBER, 1);             /* 9 */
    listen = lua_tostring(L, 2);
    max_body = luaL_optinteger(L, 3, 1024 * 1024);
    cert = lua_tostring(L, 5);
    key = lua_tostring(L, 6);
    per_client = luaL_optinteger(L, 7, 64);
    header_s = luaL_optnumber(L, 8, 10);
    request_s = luaL_optnumber(L, 9, 60);
    luaL_argcheck(L, (cert == NULL) == (key == NULL), 1, "tls_cert and tls_key go together");
    if (max_body <= 0)
        return api->field_error(L, 1, "max_body", "must be positive");
    if (per_client <= 0 || per_client > 1000)
        return api->field_error(L, 1, "max_client_connections", "must be from 1 to 1000");
    if (!(header_s > 0 && header_s <= 3600))
        return api->field_error(L, 1, "header_timeout", "must be over 0 and at most 3600 seconds");
    if (!(request_s >= header_s && request_s <= 3600))
        return api->field_error(L, 1, "request_timeout",
                                "must be from header_timeout to 3600 seconds");
    if (httpd_parse_listen(listen, &sa) < 0)
        return luaL_error(L, "listen address '%s' is not IPv4-ADDRESS:PORT", listen);

    s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    s->handler_ref = LUA_NOREF;
    luaL_setmetatable(L, HTTPD_HANDLE);
    s->L = api->main_thread(L);
    s->api = api;
    s->max_body = (size_t)max_body;
    s->header_ms = (uint64_t)(header_s * 1000);
    s->request_ms = (uint64_t)(request_s * 1000);
    if ((err = httpd_start(s, &sa, cert, key, (unsigned)per_client)) != 0) {
        const char *what = lua_pushfstring(L, "cannot listen on %s", listen);
        if (err < 0)
            return api->fail(L, what, "bad TLS certificate or key", 0, 0);
        return api->fail(L, what, NULL, err, 0);
    }
    if ((err = httpd_attach(s)) != 0)
        return api->fail(L, "cannot set up the HTTP server on the loop", NULL, err, 0);
    /* from here on the userdata's finalizer closes all of it */
    lua_pushvalue(L, 4);
    s->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    httpd_schedule(s);
    return 1;
}

/* The port it listens on (useful with port 0). */
static int httpd_port(lua_State *L)
{
    httpd *s = httpd_check(L);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    lua_pushinteger(L, info ? info->port : 0);
    return 1;
}

/* Stops accepting connections; those open are served to their end. */
static int httpd_quiesce(lua_State *L)
{
    httpd *s = httpd_check(L);
    if (!s->quiesced) {
        MHD_socket fd = MHD_quiesce_daemon(s->mhd);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
        s->quiesced = 1;
    }
    return 0;
}

static int httpd_connections(lua_State *L)
{
    httpd *s = httpd_check(L);
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    lua_pushinteger(L, info ? (lua_Integer)info->num_connections : 0);
    return 1;
}

static int httpd_close(lua_State *L)
{
    httpd *s = luaL_checkudata(L, 1, HTTPD_HANDLE);
    if (s->mhd != NULL) {
        uv_close((uv_handle_t *)s->poll, httpd_free_handle);
        uv_close((uv_handle_t *)s->timer, httpd_free_handle);
        uv_close((uv_handle_t *)s->sweep, httpd_free_handle);
        MHD_stop_daemon(s->mhd); /* closes every connection: the list empties */
        s->mhd = NULL;
        luaL_unref(L, LUA_REGISTRYINDEX, s->handler_ref);
        s->handler_ref = LUA_NOREF;
    }
    return 0;
}

static const luaL_Reg httpd_methods[] = {{"port", httpd_port},
                                         {"quiesce", httpd_quiesce},
                                         {"connections", httpd_connections},
                                         {"close", httpd_close},
                                         {NULL, NULL}};

void phonehome_http_server_open(lua_State *L, const core_api *core)
{
    api = core;
    api->class_(L, HTTPD_HANDLE, httpd_methods, httpd_close, "httpd", httpd_new);
}
