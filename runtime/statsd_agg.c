/* statsd_agg.c: StatsD lines counted into the aggregates of the metrics declared:
 * counters (sample rates applied), gauges (with +/- deltas), timers and histograms (exact
 * values while few, else 2%-wide buckets), sets (HyperLogLog). Names no script declares,
 * lines of the wrong type and malformed lines are counted, never kept. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "statsd.h"

#define SD_GAMMA 1.02     /* a bucket's upper bound over its lower, once values are bucketed */
#define SD_KMAX 1500      /* buckets kept each side of 1: 1.02^1500 is about 8e12 */
#define SD_MAX_VALUE 1e15 /* of one line: sums of any number of them stay finite */
#define SD_MIN_RATE 1e-6  /* a sampled line stands for a million at most */
#define SD_MAX_READ 1e250 /* of a figure read back: a merge of two stays finite */

static const char *const sd_kinds[] = {"counter", "gauge", "histogram", "set"};

int sd_kind(const char *name)
{
    int i;
    for (i = 0; i < 4; i++)
        if (strcmp(name, sd_kinds[i]) == 0)
            return i;
    return -1;
}

const char *sd_kind_name(int kind)
{
    return sd_kinds[kind];
}

/* ---- histograms: value -> count, open addressing ---- */

static size_t sd_slot(double v, size_t cap)
{
    uint64_t bits;
    if (v == 0)
        v = 0; /* -0 and 0 are one value */
    memcpy(&bits, &v, sizeof bits);
    return (size_t)(XXH3_64bits(&bits, sizeof bits) & (cap - 1));
}

static int sd_hist_grow(sd_hist *h, size_t cap)
{
    double *val = calloc(cap, sizeof *val);
    uint64_t *cnt = calloc(cap, sizeof *cnt);
    size_t i, j;

    if (val == NULL || cnt == NULL) {
        free(val);
        free(cnt);
        return -1;
    }
    for (i = 0; i < h->cap; i++) {
        if (h->cnt[i] == 0)
            continue;
        for (j = sd_slot(h->val[i], cap); cnt[j] != 0; j = (j + 1) & (cap - 1)) {
        }
        val[j] = h->val[i];
        cnt[j] = h->cnt[i];
    }
    free(h->val);
    free(h->cnt);
    h->val = val;
    h->cnt = cnt;
    h->cap = cap;
    return 0;
}

/* The bucket's middle for v, within 1% of v. */
static double sd_bucket(double v)
{
    double a = fabs(v), k;
    if (a == 0)
        return 0;
    k = ceil(log(a) / log(SD_GAMMA));
    if (k > SD_KMAX)
        k = SD_KMAX;
    if (k < -SD_KMAX)
        k = -SD_KMAX;
    a = 2 * pow(SD_GAMMA, k) / (SD_GAMMA + 1);
    return v < 0 ? -a : a;
}

static int sd_hist_put(sd_hist *h, double v, uint64_t n)
{
    size_t j;
    if (h->bucketed)
        v = sd_bucket(v);
    if (v == 0)
        v = 0;
    if ((h->len + 1) * 4 > h->cap * 3 && sd_hist_grow(h, h->cap ? h->cap * 2 : 16) < 0)
        return -1;
    for (j = sd_slot(v, h->cap); h->cnt[j] != 0; j = (j + 1) & (h->cap - 1)) {
        if (h->val[j] == v) {
            h->cnt[j] += n;
            return 0;
        }
    }
    h->val[j] = v;
    h->cnt[j] = n;
    h->len++;
    return 0;
}

/* Too many distinct values: each goes to its bucket from now on. */
int sd_hist_buckets(sd_hist *h)
{
    sd_hist b = {0};
    size_t i;

    b.bucketed = 1;
    for (i = 0; i < h->cap; i++)
        if (h->cnt[i] != 0 && sd_hist_put(&b, h->val[i], h->cnt[i]) < 0) {
            sd_hist_free(&b);
            return -1;
        }
    free(h->val);
    free(h->cnt);
    h->val = b.val;
    h->cnt = b.cnt;
    h->len = b.len;
    h->cap = b.cap;
    h->bucketed = 1;
    return 0;
}

int sd_hist_value(sd_hist *h, double v, uint64_t n)
{
    if (!h->bucketed && h->len >= SD_EXACT_VALUES && sd_hist_buckets(h) < 0)
        return -1;
    return sd_hist_put(h, v, n);
}

int sd_hist_add(sd_hist *h, double v, uint64_t n)
{
    if (sd_hist_value(h, v, n) < 0)
        return -1;
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (h->count == 0 || v > h->max)
        h->max = v;
    h->count += n;
    h->sum += v * (double)n;
    return 0;
}

void sd_hist_free(sd_hist *h)
{
    free(h->val);
    free(h->cnt);
    memset(h, 0, sizeof *h);
}

/* ---- the table of declared metrics ---- */

static size_t sd_name_slot(const char *name, size_t len, size_t cap)
{
    return (size_t)(XXH3_64bits(name, len) & (cap - 1));
}

sd_metric *sd_find(sd_table *t, const char *name, size_t len)
{
    size_t j;
    if (t->cap == 0)
        return NULL;
    for (j = sd_name_slot(name, len, t->cap); t->slots[j] != NULL; j = (j + 1) & (t->cap - 1))
        if (strncmp(t->slots[j]->name, name, len) == 0 && t->slots[j]->name[len] == '\0')
            return t->slots[j];
    return NULL;
}

static int sd_table_grow(sd_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 16, i, j;
    sd_metric **slots = calloc(cap, sizeof *slots);

    if (slots == NULL)
        return -1;
    for (i = 0; i < t->cap; i++) {
        sd_metric *m = t->slots[i];
        if (m == NULL)
            continue;
        for (j = sd_name_slot(m->name, strlen(m->name), cap); slots[j] != NULL;
             j = (j + 1) & (cap - 1)) {
        }
        slots[j] = m;
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

sd_metric *sd_declare(sd_table *t, const char *name, int kind)
{
    sd_metric *m;
    size_t j;

    if ((t->len + 1) * 2 > t->cap && sd_table_grow(t) < 0)
        return NULL;
    if ((m = calloc(1, sizeof *m)) == NULL || (m->name = strdup(name)) == NULL) {
        free(m);
        return NULL;
    }
    m->kind = kind;
    for (j = sd_name_slot(name, strlen(name), t->cap); t->slots[j] != NULL;
         j = (j + 1) & (t->cap - 1)) {
    }
    t->slots[j] = m;
    t->len++;
    return m;
}

static void sd_metric_free(sd_metric *m)
{
    sd_hist_free(&m->hist);
    free(m->regs);
    free(m->name);
    free(m);
}

void sd_reset(sd_metric *m)
{
    m->changed = 0;
    m->lines = 0;
    if (m->kind != SD_GAUGE)
        m->value = 0;
    sd_hist_free(&m->hist);
    if (m->regs != NULL)
        memset(m->regs, 0, HLL_M);
}

void sd_table_free(sd_table *t)
{
    size_t i;
    for (i = 0; i < t->cap; i++)
        if (t->slots[i] != NULL)
            sd_metric_free(t->slots[i]);
    for (i = 0; i < SD_NAMES; i++)
        free(t->undeclared[i]);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

/* ---- lines ---- */

static void sd_malformed(sd_table *t, const char *line, size_t len)
{
    size_t n = len < sizeof t->malformed - 1 ? len : sizeof t->malformed - 1;
    t->stats.malformed++;
    if (t->malformed[0] == '\0' && n > 0) {
        memcpy(t->malformed, line, n);
        t->malformed[n] = '\0';
    }
}

static void sd_undeclared(sd_table *t, const char *name, size_t len)
{
    int i;
    t->stats.undeclared++;
    for (i = 0; i < SD_NAMES && t->undeclared[i] != NULL; i++) {
        if (strncmp(t->undeclared[i], name, len) == 0 && t->undeclared[i][len] == '\0') {
            t->undeclared_n[i]++;
            return;
        }
    }
    if (i < SD_NAMES && (t->undeclared[i] = strndup(name, len)) != NULL)
        t->undeclared_n[i] = 1;
}

/* A number as StatsD writes them: digits, a point, an exponent; finite. */
static int sd_number(const char *s, size_t len, double *out)
{
    char buf[64], *end;
    size_t i;

    if (len == 0 || len >= sizeof buf)
        return -1;
    for (i = 0; i < len; i++)
        if (strchr("0123456789.eE+-", s[i]) == NULL)
            return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    *out = strtod(buf, &end);
    return end == buf + len && isfinite(*out) ? 0 : -1;
}

/* The type of a line: its letters -> the kind of metric that takes it. */
static int sd_line_kind(const char *s, size_t len)
{
    if (len == 1 && s[0] == 'c')
        return SD_COUNTER;
    if (len == 1 && s[0] == 'g')
        return SD_GAUGE;
    if (len == 1 && s[0] == 's')
        return SD_SET;
    if ((len == 2 && memcmp(s, "ms", 2) == 0) || (len == 1 && (s[0] == 'h' || s[0] == 'd')))
        return SD_HISTOGRAM;
    return -1;
}

/* name:value|type[|@rate][|#tags][|c:container][|T<unix time>] */
static void sd_line(sd_table *t, const char *line, size_t len)
{
    const char *end = line + len, *colon, *bar, *sec, *next;
    const char *value;
    size_t vlen, nlen;
    double v = 0, rate = 1;
    int kind;
    sd_metric *m;

    colon = memchr(line, ':', len);
    bar = colon ? memchr(colon, '|', (size_t)(end - colon)) : NULL;
    if (colon == NULL || bar == NULL || colon == line)
        return sd_malformed(t, line, len);
    nlen = (size_t)(colon - line);
    value = colon + 1;
    vlen = (size_t)(bar - value);
    sec = bar + 1;
    next = memchr(sec, '|', (size_t)(end - sec));
    kind = sd_line_kind(sec, (size_t)((next ? next : end) - sec));
    if (kind < 0 || vlen == 0 || memchr(line, '|', nlen) != NULL)
        return sd_malformed(t, line, len);
    while (next != NULL) {
        sec = next + 1;
        next = memchr(sec, '|', (size_t)(end - sec));
        size_t slen = (size_t)((next ? next : end) - sec);
        if (slen >= 1 && sec[0] == '@') {
            if (sd_number(sec + 1, slen - 1, &rate) < 0 || !(rate >= SD_MIN_RATE && rate <= 1))
                return sd_malformed(t, line, len);
        } else if (!(slen >= 1 && sec[0] == '#') && !(slen >= 2 && memcmp(sec, "c:", 2) == 0)
                   && !(slen >= 2 && sec[0] == 'T')) {
            return sd_malformed(t, line, len);
        }
    }
    if (kind != SD_SET && (sd_number(value, vlen, &v) < 0 || fabs(v) > SD_MAX_VALUE))
        return sd_malformed(t, line, len);
    if ((m = sd_find(t, line, nlen)) == NULL)
        return sd_undeclared(t, line, nlen);
    if (m->kind != kind) {
        t->stats.wrong_type++;
        return sd_malformed(t, line, len);
    }
    switch (kind) {
    case SD_COUNTER:
        m->value += v / rate;
        break;
    case SD_GAUGE:
        /* a sign makes it a change of the value (StatsD's rule); without one, the value */
        if (value[0] == '+' || value[0] == '-')
            m->value += v;
        else
            m->value = v;
        m->has_value = 1;
        break;
    case SD_HISTOGRAM:
        /* a sampled timer stands for 1/rate values */
        if (sd_hist_add(&m->hist, v, (uint64_t)llround(1 / rate)) < 0)
            return sd_malformed(t, line, len);
        break;
    case SD_SET:
        if (m->regs == NULL && (m->regs = calloc(1, HLL_M)) == NULL)
            return sd_malformed(t, line, len);
        hll_add(m->regs, value, vlen);
        break;
    }
    m->changed = 1;
    m->lines++;
    t->stats.lines++;
}

void sd_feed(sd_table *t, const char *data, size_t len)
{
    const char *p = data, *end = data + len, *nl;

    t->stats.datagrams++;
    t->dirty = 1;
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n > 0)
            sd_line(t, p, n);
        p = nl ? nl + 1 : end;
    }
}

/* ---- Lua's view of an aggregate ---- */

/* A whole number as an integer (StatsD's "3" reads back as 3, not 3.0), else a float. */
static void sd_pushnum(lua_State *L, double v)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushnumber(L, v);
}

void sd_push(lua_State *L, const sd_metric *m)
{
    size_t i, n = 0;
    char *text;

    lua_createtable(L, 0, 8);
    lua_pushstring(L, sd_kinds[m->kind]);
    lua_setfield(L, -2, "kind");
    lua_pushinteger(L, (lua_Integer)m->lines);
    lua_setfield(L, -2, "lines");
    switch (m->kind) {
    case SD_COUNTER:
        sd_pushnum(L, m->value);
        lua_setfield(L, -2, "value");
        break;
    case SD_GAUGE:
        if (m->has_value) {
            sd_pushnum(L, m->value);
            lua_setfield(L, -2, "value");
        }
        break;
    case SD_HISTOGRAM:
        lua_pushinteger(L, (lua_Integer)m->hist.count);
        lua_setfield(L, -2, "count");
        sd_pushnum(L, m->hist.sum);
        lua_setfield(L, -2, "sum");
        sd_pushnum(L, m->hist.min);
        lua_setfield(L, -2, "min");
        sd_pushnum(L, m->hist.max);
        lua_setfield(L, -2, "max");
        lua_pushboolean(L, m->hist.bucketed);
        lua_setfield(L, -2, "bucketed");
        lua_createtable(L, (int)m->hist.len, 0);
        lua_createtable(L, (int)m->hist.len, 0);
        for (i = 0; i < m->hist.cap; i++) {
            if (m->hist.cnt[i] == 0)
                continue;
            n++;
            sd_pushnum(L, m->hist.val[i]);
            lua_rawseti(L, -3, (lua_Integer)n);
            lua_pushinteger(L, (lua_Integer)m->hist.cnt[i]);
            lua_rawseti(L, -2, (lua_Integer)n);
        }
        lua_setfield(L, -3, "counts");
        lua_setfield(L, -2, "values");
        break;
    case SD_SET:
        if (m->regs == NULL) {
            lua_pushinteger(L, 0);
            lua_setfield(L, -2, "distinct");
            break;
        }
        lua_pushinteger(L, (lua_Integer)llround(hll_count(m->regs)));
        lua_setfield(L, -2, "distinct");
        text = lua_newuserdatauv(L, hll_text_len(m->regs), 0);
        hll_text(m->regs, text);
        lua_pushlstring(L, text, hll_text_len(m->regs));
        lua_setfield(L, -3, "hll");
        lua_pop(L, 1);
        break;
    }
}

static int sd_read_number(lua_State *L, int idx, const char *key, double *out)
{
    int ok;
    lua_getfield(L, idx, key);
    *out = lua_tonumberx(L, -1, &ok);
    lua_pop(L, 1);
    return ok && fabs(*out) <= SD_MAX_READ ? 0 : -1;
}

/* The aggregate at idx (as sd_push made it, or as the state file kept it) into m, whose
 * kind is set and whose aggregate is empty. */
int sd_read(lua_State *L, int idx, sd_metric *m, const char **err)
{
    double lines = 0, count;
    size_t n, i, len;
    const char *text;
    int rc;

    idx = lua_absindex(L, idx);
    *err = "not a table";
    if (!lua_istable(L, idx))
        return -1;
    *err = "bad lines";
    if (sd_read_number(L, idx, "lines", &lines) < 0 || lines < 0)
        return -1;
    m->lines = (uint64_t)lines;
    *err = "bad value";
    switch (m->kind) {
    case SD_COUNTER:
        return sd_read_number(L, idx, "value", &m->value);
    case SD_GAUGE:
        lua_getfield(L, idx, "value");
        m->has_value = !lua_isnil(L, -1);
        lua_pop(L, 1);
        return m->has_value ? sd_read_number(L, idx, "value", &m->value) : 0;
    case SD_HISTOGRAM:
        *err = "bad count, sum, min or max";
        if (sd_read_number(L, idx, "count", &count) < 0 || count < 0
            || sd_read_number(L, idx, "sum", &m->hist.sum) < 0
            || sd_read_number(L, idx, "min", &m->hist.min) < 0
            || sd_read_number(L, idx, "max", &m->hist.max) < 0)
            return -1;
        m->hist.count = (uint64_t)count;
        lua_getfield(L, idx, "bucketed");
        m->hist.bucketed = lua_toboolean(L, -1);
        lua_getfield(L, idx, "values");
        lua_getfield(L, idx, "counts");
        *err = "values and counts must be lists of one length";
        if (!lua_istable(L, -2) || !lua_istable(L, -1)
            || (n = lua_rawlen(L, -2)) != lua_rawlen(L, -1)) {
            lua_pop(L, 3);
            return -1;
        }
        for (i = 1; i <= n; i++) {
            double v, c;
            int okv, okc;
            lua_rawgeti(L, -2, (lua_Integer)i);
            lua_rawgeti(L, -2, (lua_Integer)i);
            v = lua_tonumberx(L, -2, &okv);
            c = lua_tonumberx(L, -1, &okc);
            lua_pop(L, 2);
            *err = "a value or count is not a number";
            if (!okv || !okc || !(fabs(v) <= SD_MAX_READ) || !(c >= 1 && c < 1e18)) {
                lua_pop(L, 3);
                return -1;
            }
            *err = "out of memory";
            if (sd_hist_value(&m->hist, v, (uint64_t)c) < 0) {
                lua_pop(L, 3);
                return -1;
            }
        }
        lua_pop(L, 3);
        return 0;
    case SD_SET:
        lua_getfield(L, idx, "hll");
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            return 0;
        }
        *err = "bad hll";
        rc = -1;
        if (lua_type(L, -1) == LUA_TSTRING) {
            text = lua_tolstring(L, -1, &len);
            if ((m->regs = calloc(1, HLL_M)) == NULL)
                *err = "out of memory";
            else
                rc = hll_from_text(m->regs, text, len);
        }
        lua_pop(L, 1);
        return rc;
    }
    return -1;
}
