/* phonehome.h: the one internal header of the C host, prototypes grouped by file. */
#ifndef PHONEHOME_H
#define PHONEHOME_H

#include <dirent.h>
#include <stddef.h>
#include <lua.h>
#include <lauxlib.h>

#define PHONEHOME_VERSION "0.1.0"

/* core.c: the phonehome.core module table; loads the parts on first use */
int luaopen_phonehome_core(lua_State *L);
void core_set_partdir(const char *dir);

/* binding.c: helpers for writing the bindings */
int binding_fail(lua_State *L, const char *what, const char *reason, int err, lua_Integer code);
void binding_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction close,
                   const char *ctor_name, lua_CFunction ctor);
#define BINDING_TINTEGER 100 /* for binding_field: a number with an integer value */
int binding_field(lua_State *L, int arg, const char *key, int type, int optional);
int binding_field_error(lua_State *L, int arg, const char *key, const char *msg);
void binding_on_close(lua_State *L, const char *key, lua_CFunction fn);
void binding_log(const char *level, const char *msg, const char *key, const char *value);

/* probe.c: system probes */
void probe_open(lua_State *L);

/* procfs.c: capped, binary-safe reads of /proc; the list of processes */
#define PROCFS_MAX (1024 * 1024) /* the most read of one file */
typedef struct procfs_read {     /* what a read owns, in a userdata freed by __gc */
    int fd;
    DIR *dir;
    char *buf; /* the file read, NUL-terminated after len bytes */
    size_t len, cap;
    int *pids;
    size_t npids, pidcap;
} procfs_read;
void procfs_open(lua_State *L);
int procfs_pid(lua_State *L, int optional);
int procfs_load(lua_State *L, int pid, const char *name, const char *big, procfs_read **out);
int procfs_slurp(procfs_read *r, const char *path);
void procfs_free(procfs_read *r);
int procfs_fail(lua_State *L, int pid, const char *path, const char *reason, int err);

/* process.c: another process as /proc shows it */
void process_open(lua_State *L);

/* sandbox.c: sandboxed states, one call at a time under their limits */
typedef struct sandbox sandbox;
void sandbox_open(lua_State *L, lua_CFunction open_core);
int sandbox_invoke(lua_State *C, sandbox *sb, const char *name, int first, int nargs);
sandbox *sandbox_arg(lua_State *C, int idx);
int sandbox_has(sandbox *sb, const char *name);
lua_State *sandbox_state(sandbox *sb);
size_t sandbox_limit(sandbox *sb);
double sandbox_timeout(sandbox *sb);

/* isolate.c: sb:call and sb:call_async, each call in a child process with a hard kill */
void isolate_open(lua_State *L);

/* wire.c: plain values as bytes, bounded, shared tables kept shared */
typedef struct wire_buffer {
    char *data;
    size_t len, cap, limit; /* bytes written, allocated, and allowed */
    size_t nodes;           /* values written */
    const char *err;        /* why the last write failed */
} wire_buffer;
int wire_encode(lua_State *L, int first, int n, wire_buffer *b);
int wire_decode(lua_State *L, const char *p, size_t len);

/* store.c: files, directories and identifiers */
void store_open(lua_State *L);

/* loop.c: the libuv loop, timers, signals; protected calls from callbacks */
void loop_open(lua_State *L);
int loop_pcall(lua_State *L, int nargs, int nres);
lua_State *loop_main_thread(lua_State *L);

/* What core lends the parts it loads on first use (http_client.so: libcurl;
 * http_server.so: libmicrohttpd; sqlite.so: SQLite; json_strict.so: Jansson; pg.so: libpq;
 * statsd.so: libxxhash),
 * so that a command that needs none of them never maps them. */
typedef struct core_api {
    int (*fail)(lua_State *L, const char *what, const char *reason, int err, lua_Integer code);
    void (*class_)(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction close,
                   const char *ctor_name, lua_CFunction ctor);
    int (*field)(lua_State *L, int arg, const char *key, int type, int optional);
    int (*field_error)(lua_State *L, int arg, const char *key, const char *msg);
    void (*log)(const char *level, const char *msg, const char *key, const char *value);
    int (*pcall)(lua_State *L, int nargs, int nres);
    lua_State *(*main_thread)(lua_State *L);
    void (*on_close)(lua_State *L, const char *key, lua_CFunction fn);
} core_api;

/* Each part's entry: adds its functions to the module table on top of the stack. */
typedef void (*core_part_open)(lua_State *L, const core_api *api);

/* http_client.c (http_client.so): HTTP requests on the loop (libcurl multi) */
void phonehome_http_client_open(lua_State *L, const core_api *api);

/* http_server.c (http_server.so): the collector's HTTP server (libmicrohttpd) */
void phonehome_http_server_open(lua_State *L, const core_api *api);

/* sqlite.c (sqlite.so): the SQLite binding */
void phonehome_sqlite_open(lua_State *L, const core_api *api);

/* sqlite_query.c (sqlite.so): read-only queries of a product's database, off the loop */
void sqlite_query_open(lua_State *L, const core_api *api);

/* json_strict.c (json_strict.so): the collector's strict JSON parser (Jansson) */
void phonehome_json_strict_open(lua_State *L, const core_api *api);

/* pg.c (pg.so): PostgreSQL queries on the loop (libpq) */
void phonehome_pg_open(lua_State *L, const core_api *api);

/* statsd.c (statsd.so): the StatsD listener and its aggregates (libxxhash) */
void phonehome_statsd_open(lua_State *L, const core_api *api);

#endif
