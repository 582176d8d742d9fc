/* LD_PRELOAD'ed into the simulated board's process (sim/shim.py builds it).
 *
 * Two things the unix port does differently from a board's stock firmware:
 * - its mbedTLS allocates with libc calloc, where rp2's allocates from the GC heap;
 *   this counts the libc bytes allocated while the board's tls wrapper has
 *   tracking on (and every later free of those blocks), so the sim can charge
 *   them to the GC heap;
 * - its mbedTLS reads the host's clock (time()), where a board's reads the RTC;
 *   this adds the simulated RTC's offset to time().
 * The board talks to it through getenv("OVPNKX_SHIM:<command>") (MicroPython's
 * os.getenv), which answers from here; every other name is looked up in environ.
 * Commands: "on", "off" (-> "LIVE PEAK BIG", peak reset to live), "q" (-> "LIVE PEAK BIG"),
 * "rtc=SECONDS" (offset added to time()). BIG lists the sizes of the live tracked blocks
 * of BIG_BLOCK bytes or more, comma-separated ("-": none): mbedTLS's record buffers are
 * single allocations (16 KB and more), which on the board need that much heap in one piece.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);
extern char **environ;

#define SLOTS (1u << 17)
#define TOMB ((void *)1)
static void *slot_ptr[SLOTS];
static size_t slot_size[SLOTS];
static int tracking;
static long live, peak;
static long rtc_offset;
static char answer[512];
#define BIG_BLOCK 4096
#define BIG_MAX 32
static void *big_ptr[BIG_MAX];
static size_t big_size[BIG_MAX];

static unsigned hash(void *p) { return (unsigned)(((uintptr_t)p >> 4) * 2654435761u) & (SLOTS - 1); }

static void big_add(void *p, size_t n) {
    for (int k = 0; k < BIG_MAX; k++)
        if (big_ptr[k] == NULL) {
            big_ptr[k] = p;
            big_size[k] = n;
            return;
        }
}

static void big_remove(void *p) {
    for (int k = 0; k < BIG_MAX; k++)
        if (big_ptr[k] == p) big_ptr[k] = NULL;
}

static void track(void *p, size_t n) {
    unsigned i = hash(p);
    if (n >= BIG_BLOCK) big_add(p, n);
    for (unsigned k = 0; k < SLOTS; k++, i = (i + 1) & (SLOTS - 1)) {
        if (slot_ptr[i] == NULL || slot_ptr[i] == TOMB) {
            slot_ptr[i] = p;
            slot_size[i] = n;
            live += (long)n;
            if (live > peak) peak = live;
            return;
        }
    }
}

static long untrack(void *p) {
    unsigned i = hash(p);
    for (unsigned k = 0; k < SLOTS; k++, i = (i + 1) & (SLOTS - 1)) {
        if (slot_ptr[i] == NULL) return -1;
        if (slot_ptr[i] == p) {
            long n = (long)slot_size[i];
            slot_ptr[i] = TOMB;
            if (n >= BIG_BLOCK) big_remove(p);
            live -= n;
            return n;
        }
    }
    return -1;
}

void *malloc(size_t n) {
    void *p = __libc_malloc(n);
    if (p && tracking) track(p, malloc_usable_size(p));
    return p;
}

void *calloc(size_t a, size_t b) {
    void *p = __libc_calloc(a, b);
    if (p && tracking) track(p, malloc_usable_size(p));
    return p;
}

void *memalign(size_t a, size_t n) {
    void *p = __libc_memalign(a, n);
    if (p && tracking) track(p, malloc_usable_size(p));
    return p;
}

void *aligned_alloc(size_t a, size_t n) { return memalign(a, n); }

int posix_memalign(void **out, size_t a, size_t n) {
    void *p = memalign(a, n);
    if (!p) return 12;
    *out = p;
    return 0;
}

void *realloc(void *q, size_t n) {
    int was = q && untrack(q) >= 0;
    void *p = __libc_realloc(q, n);
    if (p && (tracking || was)) track(p, malloc_usable_size(p));
    else if (!p && n && was) track(q, malloc_usable_size(q));  /* failed: q still stands */
    return p;
}

void free(void *p) {
    if (p) untrack(p);
    __libc_free(p);
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t t = ts.tv_sec + rtc_offset;
    if (out) *out = t;
    return t;
}

static char *command(const char *cmd) {
    if (strcmp(cmd, "on") == 0) {
        tracking = 1;
        peak = live;
        return "ok";
    }
    if (strncmp(cmd, "rtc=", 4) == 0) {
        rtc_offset = strtol(cmd + 4, NULL, 10);
        return "ok";
    }
    if (strcmp(cmd, "off") == 0) tracking = 0;
    else if (strcmp(cmd, "q") != 0) return NULL;
    int at = snprintf(answer, sizeof answer, "%ld %ld ", live, peak);
    int any = 0;
    for (int k = 0; k < BIG_MAX && at < (int)sizeof answer - 24; k++)
        if (big_ptr[k] != NULL) {
            at += snprintf(answer + at, sizeof answer - at, "%s%zu", any ? "," : "", big_size[k]);
            any = 1;
        }
    if (!any) snprintf(answer + at, sizeof answer - at, "-");
    peak = live;
    return answer;
}

char *getenv(const char *name) {
    if (strncmp(name, "OVPNKX_SHIM:", 12) == 0) return command(name + 12);
    size_t n = strlen(name);
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}
