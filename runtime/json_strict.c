/* json_strict.c (json_strict.so): the collector's JSON parser, Jansson's: RFC 8259 and
 * nothing more (no hex, leading zeros, plus signs, NaN, raw control characters, invalid
 * UTF-8, lone surrogates, trailing text), duplicate keys refused, integers exact in int64
 * and refused beyond it. */
#include <stdio.h>
#include <string.h>
#include <jansson.h>
#include "phonehome.h"

#define JSON_DOC "phonehome.JsonDoc"

_Static_assert(sizeof(json_int_t) == sizeof(lua_Integer), "JSON integers are Lua integers");

static const core_api *api;

/* The parsed document, kept in a userdata while it is copied into Lua: a copy that runs
 * out of memory raises, and the finalizer then frees the document. */
typedef struct {
    json_t *root;
} json_doc;

static int json_doc_close(lua_State *L)
{
    json_doc *d = luaL_checkudata(L, 1, JSON_DOC);
    json_decref(d->root);
    d->root = NULL;
    return 0;
}

/* Pushes v as a Lua value: null as the value at index null, arrays with the metatable at
 * index array (0: none). Jansson nests at most 2048 deep (JSON_PARSER_MAX_DEPTH). */
static void json_push(lua_State *L, const json_t *v, int null, int array)
{
    void *iter;
    size_t i, n;

    luaL_checkstack(L, 4, "JSON nested too deep");
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        lua_createtable(L, 0, (int)json_object_size(v)); /* ... t */
        for (iter = json_object_iter((json_t *)v); iter != NULL;
             iter = json_object_iter_next((json_t *)v, iter)) {
            json_push(L, json_object_iter_value(iter), null, array); /* ... t value */
            lua_setfield(L, -2, json_object_iter_key(iter));
        }
        break;
    case JSON_ARRAY:
        n = json_array_size(v);
        lua_createtable(L, (int)n, 0); /* ... t */
        for (i = 0; i < n; i++) {
            json_push(L, json_array_get(v, i), null, array); /* ... t value */
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        if (array != 0) {
            lua_pushvalue(L, array);
            lua_setmetatable(L, -2);
        }
        break;
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(v));
        break;
    case JSON_REAL:
        lua_pushnumber(L, (lua_Number)json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        lua_pushboolean(L, json_is_true(v));
        break;
    case JSON_NULL:
    default:
        lua_pushvalue(L, null);
        break;
    }
}

/* Jansson's message with what is not printable ASCII shown as '?': it quotes the text
 * near the error, which may be the invalid bytes themselves. */
static void json_printable(char *text)
{
    unsigned char *c;
    for (c = (unsigned char *)text; *c != '\0'; c++)
        if (*c < 0x20 || *c >= 0x7f)
            *c = '?';
}

/* core.json_strict(text, null [, array_mt]) -> the value of the JSON text: objects as
 * tables, arrays as sequences (with the metatable array_mt when given), integers as Lua
 * integers, other numbers as floats, null as the value null; or nil, "message at byte N"
 * when the text is not strict JSON. Strings may hold \u0000; object keys may not. */
static int json_strict(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    json_error_t error;
    json_doc *d;

    luaL_checkany(L, 2);
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    d = lua_newuserdatauv(L, sizeof *d, 0); /* text null array_mt doc */
    d->root = NULL;
    luaL_setmetatable(L, JSON_DOC);
    d->root =
        json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    if (d->root == NULL) {
        json_printable(error.text);
        return api->fail(L, NULL, lua_pushfstring(L, "%s at byte %d", error.text, error.position),
                         0, 0);
    }
    json_push(L, d->root, 2, lua_isnil(L, 3) ? 0 : 3); /* text null array_mt doc value */
    json_decref(d->root);
    d->root = NULL;
    return 1;
}

static const luaL_Reg json_doc_methods[] = {{NULL, NULL}};

void phonehome_json_strict_open(lua_State *L, const core_api *core)
{
    api = core;
    api->class_(L, JSON_DOC, json_doc_methods, json_doc_close, NULL, NULL);
    lua_pushcfunction(L, json_strict);
    lua_setfield(L, -2, "json_strict");
}
