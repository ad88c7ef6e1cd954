/* statsd.h: what the files of statsd.so share: the aggregates of declared metrics
 * (statsd_agg.c), HyperLogLog sets (hll.c), and the listener that feeds them from UDP and
 * Unix datagram sockets on the loop (statsd.c). */
#ifndef PHONEHOME_STATSD_H
#define PHONEHOME_STATSD_H

#include <stddef.h>
#include <stdint.h>
#include "phonehome.h"

/* hll.c: a set of 2^14 one-byte registers; 64-bit xxHash; relative standard error 0.81% */
#define HLL_P 14
#define HLL_M (1u << HLL_P)
void hll_add(uint8_t *regs, const char *value, size_t len);
void hll_merge(uint8_t *into, const uint8_t *from);
double hll_count(const uint8_t *regs);
/* As text for the state file (6 bits a character, sparse while few registers are set); its
 * length is returned. From text: 0, or -1 when it is not one hll_text wrote. */
size_t hll_text_len(const uint8_t *regs);
void hll_text(const uint8_t *regs, char *out);
int hll_from_text(uint8_t *regs, const char *text, size_t len);

/* statsd_agg.c: the metrics declared, each with its aggregate since the last drain */
enum { SD_COUNTER, SD_GAUGE, SD_HISTOGRAM, SD_SET };
#define SD_EXACT_VALUES 1024 /* a histogram keeps exact values up to this many distinct */

typedef struct sd_hist { /* a histogram's (or timer's) values */
    uint64_t count;
    double sum, min, max;
    double *val; /* open addressing on the value; cnt 0 is an empty slot */
    uint64_t *cnt;
    size_t len, cap;
    int bucketed; /* values rounded to buckets 2% wide once there were too many */
} sd_hist;

typedef struct sd_metric {
    char *name;
    int kind;
    int changed; /* since the last drain */
    uint64_t lines;
    double value; /* a counter's sum, a gauge's value */
    int has_value;
    sd_hist hist;
    uint8_t *regs; /* a set's registers, allocated on its first value */
} sd_metric;

typedef struct sd_stats {
    uint64_t lines, malformed, undeclared, wrong_type, datagrams, truncated;
} sd_stats;

#define SD_NAMES 64 /* undeclared names remembered between two drains */
typedef struct sd_table {
    sd_metric **slots; /* open addressing on the name */
    size_t cap, len;
    sd_stats stats;
    char *undeclared[SD_NAMES]; /* names seen, with their counts */
    uint64_t undeclared_n[SD_NAMES];
    char malformed[128]; /* the first malformed line since the last drain, cut */
    int dirty;           /* anything counted since the last drain */
} sd_table;

int sd_kind(const char *name); /* "counter"... -> SD_*, or -1 */
const char *sd_kind_name(int kind);
sd_metric *sd_find(sd_table *t, const char *name, size_t len);
/* Adds a metric of kind (its aggregate empty); NULL when out of memory. */
sd_metric *sd_declare(sd_table *t, const char *name, int kind);
void sd_table_free(sd_table *t);
/* Counts one datagram's lines into the table. */
void sd_feed(sd_table *t, const char *data, size_t len);
/* Empties an aggregate after a drain; a gauge keeps its value (deltas apply to it). */
void sd_reset(sd_metric *m);
void sd_hist_free(sd_hist *h);
/* Adds n of value v, with its count, sum, min and max; -1 when out of memory. */
int sd_hist_add(sd_hist *h, double v, uint64_t n);
/* Adds n of value v to the values alone (a merge, whose totals are known). */
int sd_hist_value(sd_hist *h, double v, uint64_t n);
/* Rounds every value to its bucket, as when there are too many; -1 out of memory. */
int sd_hist_buckets(sd_hist *h);
/* statsd_agg.c: Lua's view: pushes m's aggregate as a table; reads one back into m
 * (0, or -1 with the reason in err) */
void sd_push(lua_State *L, const sd_metric *m);
int sd_read(lua_State *L, int idx, sd_metric *m, const char **err);

#endif
