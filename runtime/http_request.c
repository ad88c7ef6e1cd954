/* http_request.c: one request to the collector's HTTP server, from libmicrohttpd's
 * first call of the access handler to its end: the body gathered up to its bound, the
 * Lua handler called with the request, its answer queued, the request's deadline kept. */
#include <arpa/inet.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include "http_server.h"

/* What one request gathers across MHD's calls of the access handler. */
typedef struct request {
    char *body;
    size_t len, cap;
    int too_large;
} request;

static enum MHD_Result httpd_collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                            const char *value)
{
    lua_State *L = cls;
    char name[128];
    size_t i;
    (void)kind;
    for (i = 0; i < sizeof name - 1 && key[i]; i++)
        name[i] = (char)((key[i] >= 'A' && key[i] <= 'Z') ? key[i] + 32 : key[i]);
    name[i] = '\0';
    lua_pushstring(L, value ? value : "");
    lua_setfield(L, -2, name);
    return MHD_YES;
}

/* Queues the answer; extra headers come from the table at index headers (0: none). */
static enum MHD_Result httpd_respond(struct MHD_Connection *c, unsigned status, const char *body,
                                     size_t len, const char *type, lua_State *L, int headers)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    if (headers != 0) {
        lua_pushnil(L);
        while (lua_next(L, headers)) { /* ... key value */
            if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING)
                MHD_add_response_header(r, lua_tostring(L, -2), lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    }
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

void httpd_client(struct MHD_Connection *c, char *out, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (ci == NULL || ci->client_addr == NULL)
        return;
    if (ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, out, size);
    else if (ci->client_addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, out, size);
}

/* What httpd_call needs to know of one request. */
typedef struct httpd_call_args {
    httpd *s;
    struct MHD_Connection *c;
    const char *method, *url;
    request *req;
} httpd_call_args;

/* Runs protected: builds the request table and calls the handler with it; its four
 * results are the answer. */
static int httpd_call(lua_State *L)
{
    httpd_call_args *a = lua_touserdata(L, 1);
    struct MHD_Connection *c = a->c;
    request *req = a->req;
    char client[INET6_ADDRSTRLEN];

    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->s->handler_ref); /* handler */
    lua_createtable(L, 0, 8);                             /* handler request */
    lua_pushstring(L, a->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, a->url);
    lua_setfield(L, -2, "path");
    lua_pushlstring(L, req->body ? req->body : "", req->len);
    lua_setfield(L, -2, "body");
    lua_pushboolean(L, req->too_large);
    lua_setfield(L, -2, "too_large");
    httpd_client(c, client, sizeof client);
    lua_pushstring(L, client);
    lua_setfield(L, -2, "client");
    lua_newtable(L);
    MHD_get_connection_values(c, MHD_HEADER_KIND, httpd_collect_header, L);
    lua_setfield(L, -2, "headers");
    lua_newtable(L);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, httpd_collect_header, L);
    lua_setfield(L, -2, "query");
    lua_call(L, 1, 4); /* status body type headers */
    return 4;
}

/* Calls handler(request) -> status, body, content type [, headers], and queues the
 * answer; an error in the handler fails this request alone, answered 500. */
static enum MHD_Result httpd_dispatch(httpd *s, struct MHD_Connection *c, const char *method,
                                      const char *url, request *req)
{
    lua_State *L = s->L;
    int top = lua_gettop(L), status = 500;
    size_t len = 0;
    const char *body = "", *type = "text/plain";
    httpd_call_args args = {s, c, method, url, req};
    enum MHD_Result ret;
    int headers = 0;

    lua_pushcfunction(L, httpd_call);
    lua_pushlightuserdata(L, &args);
    if (s->api->pcall(L, 1, 4) == 0) {
        status = lua_isinteger(L, -4) ? (int)lua_tointeger(L, -4) : 500;
        body = lua_isstring(L, -3) ? lua_tolstring(L, -3, &len) : "";
        type = lua_isstring(L, -2) ? lua_tostring(L, -2) : "application/json";
        headers = lua_istable(L, -1) ? lua_gettop(L) : 0;
    }
    ret = httpd_respond(c, (unsigned)status, body, len, type, L, headers);
    lua_settop(L, top);
    return ret;
}

enum MHD_Result httpd_access(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *upload,
                             size_t *upload_size, void **con_cls)
{
    httpd *s = cls;
    request *req = *con_cls;
    (void)version;

    if (req == NULL) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        httpd_conn *conn = ci ? ci->socket_context : NULL;
        if ((req = calloc(1, sizeof *req)) == NULL)
            return MHD_NO;
        *con_cls = req;
        if (conn != NULL) /* the headers are in: now the whole request's deadline */
            conn->deadline = conn->since + s->request_ms;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (req->too_large || req->len + n > s->max_body) {
            req->too_large = 1; /* the rest is read and dropped */
            return MHD_YES;
        }
        if (req->len + n > req->cap) {
            size_t cap = req->cap ? req->cap : 4096;
            char *p;
            while (cap < req->len + n)
                cap *= 2;
            if ((p = realloc(req->body, cap)) == NULL)
                return MHD_NO;
            req->body = p;
            req->cap = cap;
        }
        memcpy(req->body + req->len, upload, n);
        req->len += n;
        return MHD_YES;
    }
    return httpd_dispatch(s, c, method, url, req);
}

void httpd_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                     enum MHD_RequestTerminationCode toe)
{
    httpd *s = cls;
    request *req = *con_cls;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    httpd_conn *conn = ci ? ci->socket_context : NULL;
    (void)toe;
    if (req != NULL) {
        free(req->body);
        free(req);
        *con_cls = NULL;
    }
    if (conn != NULL) { /* kept alive: the next request's headers are due */
        conn->since = uv_now(uv_default_loop());
        conn->deadline = conn->since + s->header_ms;
    }
}
