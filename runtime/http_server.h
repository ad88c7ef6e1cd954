/* http_server.h: what the two files of http_server.so share: the server, its open
 * connections, and the request handlers libmicrohttpd calls (http_request.c). */
#ifndef PHONEHOME_HTTP_SERVER_H
#define PHONEHOME_HTTP_SERVER_H

#include <stdint.h>
#include <microhttpd.h>
#include <uv.h>
#include "phonehome.h"

/* One open connection, in its server's list: MHD's idle timeout is no deadline (a byte
 * every few seconds keeps a connection alive), so the server keeps its own. */
typedef struct httpd_conn {
    struct MHD_Connection *c;
    uint64_t since;    /* loop time the request began: connected, or the previous ended */
    uint64_t deadline; /* loop time it is closed at if the request is not over */
    int closing;
    struct httpd_conn *prev, *next;
} httpd_conn;

typedef struct httpd {
    const core_api *api;
    struct MHD_Daemon *mhd;
    uv_poll_t *poll;   /* on MHD's epoll descriptor; freed by libuv */
    uv_timer_t *timer; /* MHD's own timeouts */
    uv_timer_t *sweep; /* closes the connections past their deadline */
    lua_State *L;      /* main thread that runs the handler */
    int handler_ref;
    size_t max_body;
    uint64_t header_ms;  /* from its beginning, the request's headers are complete within */
    uint64_t request_ms; /* and the whole request (body, answer) within */
    httpd_conn *conns;
    int quiesced;
} httpd;

/* http_request.c: one request, from its first call of the access handler to its end */
enum MHD_Result httpd_access(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *upload,
                             size_t *upload_size, void **con_cls);
void httpd_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                     enum MHD_RequestTerminationCode toe);
void httpd_client(struct MHD_Connection *c, char *out, size_t size); /* its address, as text */

#endif
