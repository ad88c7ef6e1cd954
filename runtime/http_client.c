/* http_client.c: HTTP requests through one long-lived libcurl multi handle driven by the
 * libuv loop, each ending in a Lua callback; and URLs parsed by libcurl's own parser, so
 * that what is judged of a URL is what the transfer will use. */
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <uv.h>
#include "phonehome.h"

#define HTTP_REQUEST "phonehome.HttpRequest"
#define HTTP_URL "phonehome.Url"

typedef struct http_request {
    CURL *easy;
    struct curl_slist *headers;
    char *body; /* response, the first max_body bytes */
    size_t len, max_body, total;
    lua_State *L;
    int fn_ref, self_ref;
    struct http_request **box; /* the userdata's pointer, cleared when we are done */
} http_request;

typedef struct {
    http_request *r;
} http_box;

/* A socket libcurl wants watched. */
typedef struct {
    uv_poll_t poll;
    curl_socket_t fd;
} http_socket;

static const core_api *api;
static CURLM *http_multi;
static uv_timer_t *http_timer;
static int http_running;

static void http_check_done(void);

static void http_free_handle(uv_handle_t *h)
{
    free(h);
}

static void http_on_poll(uv_poll_t *p, int status, int events)
{
    http_socket *s = (http_socket *)p;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (!status && (events & UV_READABLE))
        flags |= CURL_CSELECT_IN;
    if (!status && (events & UV_WRITABLE))
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(http_multi, s->fd, flags, &http_running);
    http_check_done();
}

static int http_on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    http_socket *s = socketp;
    int events = 0;
    (void)easy;
    (void)userp;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, http_free_handle);
            curl_multi_assign(http_multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        if ((s = calloc(1, sizeof *s)) == NULL)
            return -1;
        s->fd = fd;
        uv_poll_init_socket(uv_default_loop(), &s->poll, fd);
        curl_multi_assign(http_multi, fd, s);
    }
    if (what != CURL_POLL_OUT)
        events |= UV_READABLE;
    if (what != CURL_POLL_IN)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, http_on_poll);
    return 0;
}

static void http_on_timeout(uv_timer_t *t)
{
    (void)t;
    curl_multi_socket_action(http_multi, CURL_SOCKET_TIMEOUT, 0, &http_running);
    http_check_done();
}

static int http_on_timer(CURLM *multi, long ms, void *userp)
{
    (void)multi;
    (void)userp;
    if (ms < 0)
        uv_timer_stop(http_timer);
    else
        uv_timer_start(http_timer, http_on_timeout, (uint64_t)ms, 0);
    return 0;
}

/* The one multi handle, made on first use. */
static int http_init(void)
{
    if (http_multi != NULL)
        return 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    if ((http_timer = malloc(sizeof *http_timer)) == NULL
        || (http_multi = curl_multi_init()) == NULL)
        goto fail;
    uv_timer_init(uv_default_loop(), http_timer);
    curl_multi_setopt(http_multi, CURLMOPT_SOCKETFUNCTION, http_on_socket);
    curl_multi_setopt(http_multi, CURLMOPT_TIMERFUNCTION, http_on_timer);
    return 0;
fail:
    free(http_timer);
    http_timer = NULL;
    curl_global_cleanup();
    return -1;
}

static size_t http_on_body(char *data, size_t size, size_t n, void *userp)
{
    http_request *r = userp;
    size_t len = size * n, keep = len;
    r->total += len;
    if (r->len + keep > r->max_body)
        keep = r->max_body - r->len; /* the rest is counted and dropped */
    if (keep > 0) {
        char *p = realloc(r->body, r->len + keep + 1);
        if (p == NULL)
            return 0;
        r->body = p;
        memcpy(r->body + r->len, data, keep);
        r->len += keep;
    }
    return len;
}

/* Frees what a request holds and lets its userdata go. */
static void http_release(http_request *r)
{
    if (r->easy != NULL) {
        curl_multi_remove_handle(http_multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->headers);
    free(r->body);
    if (r->box != NULL)
        *r->box = NULL;
    luaL_unref(r->L, LUA_REGISTRYINDEX, r->fn_ref);
    luaL_unref(r->L, LUA_REGISTRYINDEX, r->self_ref);
    free(r);
}

/* Calls back with { status, body, bytes, retry_after, location } or { error, code },
 * then frees. retry_after: the seconds a Retry-After header asks for, as libcurl reads
 * it (delay or date), when positive; location: a redirect's target, made absolute. */
static void http_finish(http_request *r, CURLcode code)
{
    lua_State *L = r->L;
    long status = 0;
    curl_off_t retry_after = 0;
    char *location = NULL;

    lua_rawgeti(L, LUA_REGISTRYINDEX, r->fn_ref);
    lua_createtable(L, 0, 5);
    if (code == CURLE_OK) {
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        lua_pushinteger(L, status);
        lua_setfield(L, -2, "status");
        lua_pushlstring(L, r->body ? r->body : "", r->len);
        lua_setfield(L, -2, "body");
        lua_pushinteger(L, (lua_Integer)r->total);
        lua_setfield(L, -2, "bytes");
        if (curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK
            && retry_after > 0) {
            lua_pushinteger(L, (lua_Integer)retry_after);
            lua_setfield(L, -2, "retry_after");
        }
        /* the string is the handle's: pushed before the handle is freed */
        if (curl_easy_getinfo(r->easy, CURLINFO_REDIRECT_URL, &location) == CURLE_OK
            && location != NULL) {
            lua_pushstring(L, location);
            lua_setfield(L, -2, "location");
        }
    } else {
        lua_pushstring(L, curl_easy_strerror(code));
        lua_setfield(L, -2, "error");
        lua_pushinteger(L, code);
        lua_setfield(L, -2, "code");
    }
    http_release(r);
    api->pcall(L, 1, 0);
}

static void http_check_done(void)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(http_multi, &left)) != NULL) {
        http_request *r = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        http_finish(r, msg->data.result);
    }
}

/* What core.http's first argument asks for; its strings stay on the Lua stack. */
typedef struct http_options {
    const char *url, *method, *body, *ua, *ca, *user, *password, *bearer;
    size_t body_len;
    double connect_timeout, timeout;
    lua_Integer max_body;
    int nheaders; /* the headers are at stack index 11 */
} http_options;

/* Reads and checks the fields of the table at index 1 onto stack slots 3 to 11. */
static void http_read_options(lua_State *L, http_options *o)
{
    int i;

    lua_settop(L, 2);
    api->field(L, 1, "url", LUA_TSTRING, 0);                                             /* 3 */
    api->field(L, 1, "method", LUA_TSTRING, 1);                                          /* 4 */
    api->field(L, 1, "body", LUA_TSTRING, 1);                                            /* 5 */
    api->field(L, 1, "user_agent", LUA_TSTRING, 1);                                      /* 6 */
    api->field(L, 1, "connect_timeout", LUA_TNUMBER, 1);                                 /* 7 */
    api->field(L, 1, "timeout", LUA_TNUMBER, 1);                                         /* 8 */
    api->field(L, 1, "max_body", BINDING_TINTEGER, 1);                                   /* 9 */
    api->field(L, 1, "ca_file", LUA_TSTRING, 1);                                         /* 10 */
    o->nheaders = api->field(L, 1, "headers", LUA_TTABLE, 1) ? (int)luaL_len(L, 11) : 0; /* 11 */
    api->field(L, 1, "username", LUA_TSTRING, 1);                                        /* 12 */
    api->field(L, 1, "password", LUA_TSTRING, 1);                                        /* 13 */
    api->field(L, 1, "bearer", LUA_TSTRING, 1);                                          /* 14 */
    o->user = lua_tostring(L, 12);
    o->password = lua_tostring(L, 13);
    o->bearer = lua_tostring(L, 14);
    o->url = lua_tostring(L, 3);
    o->method = luaL_optstring(L, 4, "GET");
    o->body_len = 0;
    o->body = luaL_optlstring(L, 5, NULL, &o->body_len);
    o->ua = luaL_optstring(L, 6, "phonehome/" PHONEHOME_VERSION);
    o->connect_timeout = luaL_optnumber(L, 7, 10);
    o->timeout = luaL_optnumber(L, 8, 30);
    o->max_body = luaL_optinteger(L, 9, 64 * 1024);
    o->ca = luaL_optstring(L, 10, NULL);
    if (!(o->connect_timeout > 0))
        api->field_error(L, 1, "connect_timeout", "must be positive");
    if (!(o->timeout > 0))
        api->field_error(L, 1, "timeout", "must be positive");
    if (o->max_body < 0)
        api->field_error(L, 1, "max_body", "must not be negative");
    for (i = 1; i <= o->nheaders; i++) {
        if (lua_geti(L, 11, i) != LUA_TSTRING) /* ... header */
            api->field_error(
                L, 1, "headers",
                lua_pushfstring(L, "string expected at [%d], got %s", i, luaL_typename(L, -1)));
        lua_pop(L, 1);
    }
}

/* Sets up the transfer of r as o asks: bounded, verified, http(s) only, no redirects. */
static void http_setopts(http_request *r, const http_options *o)
{
    CURL *e = r->easy;

    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, o->method);
    if (o->body != NULL) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)o->body_len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, o->ua);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(o->connect_timeout * 1000));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(o->timeout * 1000));
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    /* reports are minutes or hours apart: no idle connection kept to wake us */
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    /* Debian sets a CA directory too, which defeats the cached CA store */
    curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    if (o->ca != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca);
    /* credentials go to libcurl, never into a header the caller could log */
    if (o->user != NULL || o->password != NULL) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, o->user ? o->user : "");
        curl_easy_setopt(e, CURLOPT_PASSWORD, o->password ? o->password : "");
    }
    if (o->bearer != NULL) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, o->bearer);
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
}

/* core.http({ url, method, headers = { "K: V" }, body, user_agent, connect_timeout,
 * timeout (seconds), max_body, ca_file, username, password, bearer }, callback) -> request. The
 * callback gets { status, body, bytes, retry_after, location } or { error, code }; request:cancel()
 * ends it. */
static int http_new(lua_State *L)
{
    http_options o;
    http_request *r;
    http_box *box;
    int i;

    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    http_read_options(L, &o);
    if (http_init() < 0)
        return luaL_error(L, "cannot initialise libcurl");

    box = lua_newuserdatauv(L, sizeof *box, 0);
    box->r = NULL;
    luaL_setmetatable(L, HTTP_REQUEST);
    if ((r = calloc(1, sizeof *r)) == NULL || (r->easy = curl_easy_init()) == NULL) {
        free(r);
        return luaL_error(L, "out of memory");
    }
    box->r = r;
    r->box = &box->r;
    r->L = api->main_thread(L);
    r->max_body = (size_t)o.max_body;
    r->fn_ref = r->self_ref = LUA_NOREF;
    /* r is the userdata's: an error raised from here on leaves it to the finalizer */
    for (i = 1; i <= o.nheaders; i++) {
        struct curl_slist *h;
        const char *line;
        lua_geti(L, 11, i); /* ... header */
        line = lua_tostring(L, -1);
        h = line != NULL ? curl_slist_append(r->headers, line) : NULL;
        lua_pop(L, 1);
        if (h == NULL)
            return luaL_error(L, "cannot add header %d", i);
        r->headers = h;
    }
    http_setopts(r, &o);
    lua_pushvalue(L, 2);
    r->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, -1);
    r->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (curl_multi_add_handle(http_multi, r->easy) != CURLM_OK) {
        http_release(r);
        return luaL_error(L, "cannot start the transfer");
    }
    return 1;
}

/* request:cancel(): ends a transfer in flight; its callback gets { error = "cancelled" }. */
static int http_cancel(lua_State *L)
{
    http_box *box = luaL_checkudata(L, 1, HTTP_REQUEST);
    http_request *r = box->r;
    lua_State *main;
    if (r == NULL)
        return 0;
    main = r->L;
    lua_rawgeti(main, LUA_REGISTRYINDEX, r->fn_ref);
    http_release(r);
    lua_createtable(main, 0, 2);
    lua_pushliteral(main, "cancelled");
    lua_setfield(main, -2, "error");
    api->pcall(main, 1, 0);
    return 0;
}

static int http_gc(lua_State *L)
{
    http_box *box = luaL_checkudata(L, 1, HTTP_REQUEST);
    if (box->r != NULL)
        http_release(box->r); /* only at the state's close: active requests are anchored */
    return 0;
}

static const luaL_Reg http_methods[] = {{"cancel", http_cancel}, {NULL, NULL}};

/* A URL being parsed: its handle and the part being read are the userdata's, so that an
 * error raised while they are held frees them. */
typedef struct {
    CURLU *u;
    char *part;
} http_url;

static int http_url_gc(lua_State *L)
{
    http_url *b = luaL_checkudata(L, 1, HTTP_URL);
    curl_free(b->part);
    b->part = NULL;
    curl_url_cleanup(b->u);
    b->u = NULL;
    return 0;
}

static const luaL_Reg http_url_methods[] = {{NULL, NULL}};

/* Sets field name of the table on top to part of the URL in b, when the URL has it. */
static void http_url_field(lua_State *L, http_url *b, CURLUPart part, const char *name)
{
    CURLUcode rc = curl_url_get(b->u, part, &b->part, 0);
    if (rc == CURLUE_OUT_OF_MEMORY)
        luaL_error(L, "out of memory");
    if (rc != CURLUE_OK || b->part == NULL)
        return;
    if (part == CURLUPART_PORT)
        lua_pushinteger(L, strtol(b->part, NULL, 10)); /* t port */
    else
        lua_pushstring(L, b->part); /* t value */
    curl_free(b->part);
    b->part = NULL;
    lua_setfield(L, -2, name);
}

/* core.url_parse(url) -> { url, scheme, user, password, host, port, path, query,
 * fragment }, or nil, message, nil, CURLUcode: the URL as libcurl reads it (the scheme
 * lower-cased, the host decoded, numeric IPv4 hosts in dotted form, IPv6 hosts in
 * brackets); url is its normalised text; parts it lacks are nil. Any scheme parses. */
static int http_url_parse(lua_State *L)
{
    static const struct {
        CURLUPart part;
        const char *name;
    } parts[] = {{CURLUPART_URL, "url"},          {CURLUPART_SCHEME, "scheme"},
                 {CURLUPART_USER, "user"},        {CURLUPART_PASSWORD, "password"},
                 {CURLUPART_HOST, "host"},        {CURLUPART_PORT, "port"},
                 {CURLUPART_PATH, "path"},        {CURLUPART_QUERY, "query"},
                 {CURLUPART_FRAGMENT, "fragment"}};
    size_t len, i;
    const char *url = luaL_checklstring(L, 1, &len);
    http_url *b;
    CURLUcode rc;

    if (strlen(url) != len)
        return api->fail(L, NULL, "the URL holds a NUL byte", 0, 0);
    b = lua_newuserdatauv(L, sizeof *b, 0); /* url b */
    b->u = NULL;
    b->part = NULL;
    luaL_setmetatable(L, HTTP_URL);
    if ((b->u = curl_url()) == NULL)
        return luaL_error(L, "out of memory");
    rc = curl_url_set(b->u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (rc != CURLUE_OK) {
        curl_url_cleanup(b->u);
        b->u = NULL;
        return api->fail(L, NULL, curl_url_strerror(rc), 0, rc);
    }
    lua_createtable(L, 0, (int)(sizeof parts / sizeof parts[0])); /* url b t */
    for (i = 0; i < sizeof parts / sizeof parts[0]; i++)
        http_url_field(L, b, parts[i].part, parts[i].name);
    curl_url_cleanup(b->u);
    b->u = NULL;
    return 1;
}

/* When the state closes (after every request's finalizer: this one was made first):
 * the multi handle and libcurl's globals. */
static int http_shutdown(lua_State *L)
{
    (void)L;
    if (http_multi == NULL)
        return 0;
    curl_multi_cleanup(http_multi);
    http_multi = NULL;
    uv_close((uv_handle_t *)http_timer, http_free_handle);
    curl_global_cleanup();
    return 0;
}

void phonehome_http_client_open(lua_State *L, const core_api *core)
{
    api = core;
    api->on_close(L, "phonehome.http.shutdown", http_shutdown);
    api->class_(L, HTTP_REQUEST, http_methods, http_gc, "http", http_new);
    api->class_(L, HTTP_URL, http_url_methods, http_url_gc, "url_parse", http_url_parse);
}
