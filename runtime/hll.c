/* hll.c: HyperLogLog sets, how StatsD's `s` metrics count distinct users or instances in
 * fixed memory without keeping any of them. Precision 14 (2^14 registers, relative
 * standard error 0.81%), 64-bit xxHash, and Ertl's improved estimator (O. Ertl, "New
 * cardinality estimation algorithms for HyperLogLog sketches", 2017), which needs no
 * empirical bias tables and holds from a handful of values to billions. */
#include <math.h>
#include <string.h>
#include <xxhash.h>
#include "statsd.h"

#define HLL_Q (64 - HLL_P) /* hash bits left after the register's index */
#define HLL_SPARSE 4096    /* registers set, at most, for the sparse text */

void hll_add(uint8_t *regs, const char *value, size_t len)
{
    uint64_t h = XXH3_64bits(value, len), w = h << HLL_P;
    uint32_t i = (uint32_t)(h >> HLL_Q);
    uint8_t rank = w == 0 ? HLL_Q + 1 : (uint8_t)(__builtin_clzll(w) + 1);

    if (regs[i] < rank)
        regs[i] = rank;
}

void hll_merge(uint8_t *into, const uint8_t *from)
{
    uint32_t i;
    for (i = 0; i < HLL_M; i++)
        if (into[i] < from[i])
            into[i] = from[i];
}

static double hll_sigma(double x)
{
    double y = 1, z = x, prev;
    if (x == 1)
        return INFINITY;
    do {
        x *= x;
        prev = z;
        z += x * y;
        y += y;
    } while (z != prev);
    return z;
}

static double hll_tau(double x)
{
    double y = 1, z = 1 - x, prev;
    if (x == 0 || x == 1)
        return 0;
    do {
        x = sqrt(x);
        prev = z;
        y *= 0.5;
        z -= (1 - x) * (1 - x) * y;
    } while (z != prev);
    return z / 3;
}

double hll_count(const uint8_t *regs)
{
    uint32_t c[HLL_Q + 2] = {0}, i;
    double m = HLL_M, z;
    int k;

    for (i = 0; i < HLL_M; i++)
        c[regs[i]]++;
    z = m * hll_tau(1 - c[HLL_Q + 1] / m);
    for (k = HLL_Q; k >= 1; k--)
        z = 0.5 * (z + c[k]);
    z += m * hll_sigma(c[0] / m);
    return m / (2 * log(2)) * m / z;
}

static size_t hll_set(const uint8_t *regs)
{
    size_t n = 0;
    uint32_t i;
    for (i = 0; i < HLL_M; i++)
        n += regs[i] != 0;
    return n;
}

/* One character per 6 bits, in an alphabet that JSON keeps as it is. */
static const char hll_chars[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";

/* "s" and 4 characters per register set (its index << 6 | its value, 20 bits), or "d"
 * and one character per register (a value is at most 51). */
size_t hll_text_len(const uint8_t *regs)
{
    size_t n = hll_set(regs);
    return n <= HLL_SPARSE ? 1 + 4 * n : 1 + (size_t)HLL_M;
}

void hll_text(const uint8_t *regs, char *out)
{
    uint32_t i, v;
    int d;

    if (hll_set(regs) <= HLL_SPARSE) {
        *out++ = 's';
        for (i = 0; i < HLL_M; i++) {
            if (regs[i] == 0)
                continue;
            v = i << 6 | regs[i];
            for (d = 3; d >= 0; d--)
                *out++ = hll_chars[(v >> (6 * d)) & 63];
        }
        return;
    }
    *out++ = 'd';
    for (i = 0; i < HLL_M; i++)
        *out++ = hll_chars[regs[i]];
}

static int hll_digit(char c)
{
    const char *p = c ? strchr(hll_chars, c) : NULL;
    return p ? (int)(p - hll_chars) : -1;
}

static int hll_read(const char *s, int digits, uint32_t *out)
{
    int i, d;
    *out = 0;
    for (i = 0; i < digits; i++) {
        if ((d = hll_digit(s[i])) < 0)
            return -1;
        *out = *out << 6 | (uint32_t)d;
    }
    return 0;
}

int hll_from_text(uint8_t *regs, const char *text, size_t len)
{
    size_t i;
    uint32_t v;

    memset(regs, 0, HLL_M);
    if (len >= 1 && text[0] == 's' && (len - 1) % 4 == 0 && (len - 1) / 4 <= HLL_SPARSE) {
        for (i = 1; i < len; i += 4) {
            if (hll_read(text + i, 4, &v) < 0 || (v >> 6) >= HLL_M || (v & 63) == 0
                || (v & 63) > HLL_Q + 1)
                return -1;
            regs[v >> 6] = (uint8_t)(v & 63);
        }
        return 0;
    }
    if (len == 1 + (size_t)HLL_M && text[0] == 'd') {
        for (i = 0; i < HLL_M; i++) {
            if (hll_read(text + 1 + i, 1, &v) < 0 || v > HLL_Q + 1)
                return -1;
            regs[i] = (uint8_t)v;
        }
        return 0;
    }
    return -1;
}
