/* wire.c: plain Lua values as bytes, for results that leave a sandbox's child process:
 * nil, booleans, integers (exact), floats, strings and tables of those, as trees. A table
 * met twice (shared or cyclic) is refused: a few shared tables unfold into gigabytes in
 * whatever walks them later. The bytes and the number of values are bounded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "phonehome.h"

#define WIRE_DEPTH 64
#define WIRE_NODES 100000 /* values in one result: a definition has a few hundred */

enum {
    W_NIL = 'n',
    W_TRUE = 't',
    W_FALSE = 'f',
    W_INT = 'i',
    W_FLOAT = 'd',
    W_STR = 's',
    W_TABLE = '{',
    W_END = '}'
};

static int wire_put(wire_buffer *b, const void *p, size_t n)
{
    char *grown;
    size_t cap;

    if (n > b->limit - b->len) {
        b->err = "result larger than the memory limit";
        return -1;
    }
    if (b->len + n > b->cap) {
        cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        if ((grown = realloc(b->data, cap)) == NULL) {
            b->err = "out of memory";
            return -1;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* Every value starts with its tag: counting tags bounds what the reader will build. */
static int wire_tag(wire_buffer *b, char tag)
{
    if (tag != W_END && ++b->nodes > WIRE_NODES) {
        b->err = "result has too many values";
        return -1;
    }
    return wire_put(b, &tag, 1);
}

/* seen: stack index of the set of tables written. */
static int wire_value(lua_State *L, int idx, int seen, int depth, wire_buffer *b)
{
    idx = lua_absindex(L, idx);
    if (!lua_checkstack(L, 4)) {
        b->err = "stack overflow";
        return -1;
    }
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return wire_tag(b, W_NIL);
    case LUA_TBOOLEAN:
        return wire_tag(b, lua_toboolean(L, idx) ? W_TRUE : W_FALSE);
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            int64_t i = (int64_t)lua_tointeger(L, idx);
            return wire_tag(b, W_INT) < 0 ? -1 : wire_put(b, &i, sizeof i);
        } else {
            double d = (double)lua_tonumber(L, idx);
            return wire_tag(b, W_FLOAT) < 0 ? -1 : wire_put(b, &d, sizeof d);
        }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        uint64_t n = len;
        if (wire_tag(b, W_STR) < 0 || wire_put(b, &n, sizeof n) < 0)
            return -1;
        return wire_put(b, s, len);
    }
    case LUA_TTABLE: {
        if (lua_rawgetp(L, seen, lua_topointer(L, idx)) != LUA_TNIL) { /* ... seen? */
            lua_pop(L, 1);
            b->err = "a table appears twice (shared or cyclic)";
            return -1;
        }
        lua_pop(L, 1);
        if (depth >= WIRE_DEPTH) {
            b->err = "tables nested too deeply";
            return -1;
        }
        lua_pushboolean(L, 1);
        lua_rawsetp(L, seen, lua_topointer(L, idx));
        if (wire_tag(b, W_TABLE) < 0)
            return -1;
        lua_pushnil(L);
        while (lua_next(L, idx)) { /* ... key value */
            if (wire_value(L, -2, seen, depth + 1, b) < 0
                || wire_value(L, -1, seen, depth + 1, b) < 0) {
                lua_pop(L, 2);
                return -1;
            }
            lua_pop(L, 1);
        }
        return wire_tag(b, W_END);
    }
    default:
        b->err = lua_typename(L, lua_type(L, idx));
        return -1;
    }
}

/* Appends the values at indices first..first+n-1 of L. 0, or -1 with b->err set. */
int wire_encode(lua_State *L, int first, int n, wire_buffer *b)
{
    int i, seen;

    first = lua_absindex(L, first);
    lua_newtable(L);
    seen = lua_gettop(L);
    for (i = 0; i < n; i++) {
        if (wire_value(L, first + i, seen, 0, b) < 0) {
            lua_settop(L, seen - 1);
            return -1;
        }
    }
    lua_settop(L, seen - 1);
    return 0;
}

typedef struct {
    const char *p;
    size_t len, pos, nodes;
} wire_reader;

static int wire_get(wire_reader *r, void *out, size_t n)
{
    if (n > r->len - r->pos)
        return -1;
    memcpy(out, r->p + r->pos, n);
    r->pos += n;
    return 0;
}

/* Pushes one value read from r onto L; -1 on bytes that are not a whole value. */
static int wire_read(lua_State *L, wire_reader *r, int depth)
{
    char tag;
    if (!lua_checkstack(L, 4) || ++r->nodes > WIRE_NODES || wire_get(r, &tag, 1) < 0)
        return -1;
    switch (tag) {
    case W_NIL:
        lua_pushnil(L);
        return 0;
    case W_TRUE:
    case W_FALSE:
        lua_pushboolean(L, tag == W_TRUE);
        return 0;
    case W_INT: {
        int64_t i;
        if (wire_get(r, &i, sizeof i) < 0)
            return -1;
        lua_pushinteger(L, (lua_Integer)i);
        return 0;
    }
    case W_FLOAT: {
        double d;
        if (wire_get(r, &d, sizeof d) < 0)
            return -1;
        lua_pushnumber(L, (lua_Number)d);
        return 0;
    }
    case W_STR: {
        uint64_t n;
        if (wire_get(r, &n, sizeof n) < 0 || n > r->len - r->pos)
            return -1;
        lua_pushlstring(L, r->p + r->pos, (size_t)n);
        r->pos += (size_t)n;
        return 0;
    }
    case W_TABLE:
        if (depth >= WIRE_DEPTH)
            return -1;
        lua_newtable(L);
        for (;;) {
            if (r->pos < r->len && r->p[r->pos] == W_END) {
                r->pos++;
                return 0;
            }
            if (wire_read(L, r, depth + 1) < 0)
                return -1;
            if (lua_isnil(L, -1) || wire_read(L, r, depth + 1) < 0)
                return -1; /* a nil key cannot be: the bytes are broken */
            lua_rawset(L, -3);
        }
    default:
        return -1;
    }
}

/* Pushes the values encoded in p[0..len) onto L and returns how many, or -1 (with
 * nothing pushed) when the bytes are not whole values. */
int wire_decode(lua_State *L, const char *p, size_t len)
{
    wire_reader r = {p, len, 0, 0};
    int top = lua_gettop(L), n = 0;

    while (r.pos < len) {
        if (wire_read(L, &r, 0) < 0) {
            lua_settop(L, top);
            return -1;
        }
        n++;
    }
    return n;
}
