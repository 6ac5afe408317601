/* Bounded JSON-lines writer shared by the audit module and the trace layer.
 *
 * Both native parts append one event per write(2) to the file named by VKDOCTOR_TRACE_FILE,
 * opened O_APPEND so lines from several threads, processes (fork) and both modules never
 * interleave inside a line.  Everything here is async-signal-safe (no malloc, no stdio, no locks)
 * because the audit module also emits from a fatal-signal handler and from inside the dynamic
 * linker, where the lock on the link maps is held.
 */
#ifndef VKDOCTOR_EMIT_H
#define VKDOCTOR_EMIT_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define VKD_SCHEMA 1
#define VKD_DEFAULT_MAX_BYTES (64ull << 20)
#define VKD_MAX_STR 1024
#define VKD_FN static __attribute__((unused))

struct vkd_buf {
    char *p;
    size_t len;
    size_t cap;
    int overflow;
};

VKD_FN void vkd_raw(struct vkd_buf *b, const char *s, size_t n) {
    if (b->len + n + 3 > b->cap) { /* keep room for the closing "}\n" */
        b->overflow = 1;
        return;
    }
    for (size_t i = 0; i < n; ++i) b->p[b->len++] = s[i];
}

VKD_FN size_t vkd_strlen(const char *s) {
    size_t n = 0;
    while (s[n]) ++n;
    return n;
}

VKD_FN int vkd_streq(const char *a, const char *b) {
    if (!a || !b) return 0;
    while (*a && *a == *b) ++a, ++b;
    return *a == *b;
}

VKD_FN int vkd_startswith(const char *s, const char *prefix) {
    if (!s) return 0;
    while (*prefix)
        if (*s++ != *prefix++) return 0;
    return 1;
}

VKD_FN void vkd_lit(struct vkd_buf *b, const char *s) { vkd_raw(b, s, vkd_strlen(s)); }

VKD_FN void vkd_u64(struct vkd_buf *b, uint64_t v) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    char out[24];
    for (int i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
    vkd_raw(b, out, (size_t)n);
}

VKD_FN void vkd_i64(struct vkd_buf *b, int64_t v) {
    if (v < 0) {
        vkd_lit(b, "-");
        vkd_u64(b, (uint64_t)(-(v + 1)) + 1);
    } else {
        vkd_u64(b, (uint64_t)v);
    }
}

/* Addresses travel as JSON strings ("0x7f..."): JSON numbers lose precision above 2^53. */
VKD_FN void vkd_hex(struct vkd_buf *b, uint64_t v) {
    static const char digits[] = "0123456789abcdef";
    char out[20];
    int n = 0;
    out[n++] = '"';
    out[n++] = '0';
    out[n++] = 'x';
    int started = 0;
    for (int shift = 60; shift >= 0; shift -= 4) {
        unsigned d = (unsigned)(v >> shift) & 0xf;
        if (d || started || shift == 0) {
            out[n++] = digits[d];
            started = 1;
        }
    }
    out[n++] = '"';
    vkd_raw(b, out, (size_t)n);
}

VKD_FN void vkd_str(struct vkd_buf *b, const char *s) {
    static const char digits[] = "0123456789abcdef";
    if (!s) {
        vkd_lit(b, "null");
        return;
    }
    vkd_lit(b, "\"");
    for (size_t i = 0; s[i] && i < VKD_MAX_STR; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            vkd_raw(b, esc, 2);
        } else if (c < 0x20 || c >= 0x7f) {
            /* Bytes, not code points: keeps the line valid JSON whatever the path encoding. */
            char esc[6] = {'\\', 'u', '0', '0', digits[c >> 4], digits[c & 0xf]};
            vkd_raw(b, esc, 6);
        } else {
            vkd_raw(b, (const char *)&c, 1);
        }
    }
    vkd_lit(b, "\"");
}

VKD_FN void vkd_key(struct vkd_buf *b, const char *key) {
    vkd_lit(b, ",\"");
    vkd_lit(b, key);
    vkd_lit(b, "\":");
}

struct vkd_sink {
    int fd;           /* -1 until first use, -2 when tracing is off */
    int full;         /* the size bound was reached; nothing more is written */
    uint64_t max_bytes;
};

VKD_FN uint64_t vkd_parse_u64(const char *s, uint64_t fallback) {
    if (!s || !*s) return fallback;
    uint64_t v = 0;
    for (; *s; ++s) {
        if (*s < '0' || *s > '9') return fallback;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    return v;
}

/* getenv is not async-signal-safe in theory but only reads environ; the sink is opened on the
 * first event, normally long before any signal. */
VKD_FN int vkd_sink_fd(struct vkd_sink *s) {
    int fd = __atomic_load_n(&s->fd, __ATOMIC_ACQUIRE);
    if (fd != -1) return fd;
    const char *path = getenv("VKDOCTOR_TRACE_FILE");
    int opened = -2;
    if (path && *path) {
        int f = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (f >= 0) opened = f;
    }
    s->max_bytes = vkd_parse_u64(getenv("VKDOCTOR_TRACE_MAX_BYTES"), VKD_DEFAULT_MAX_BYTES);
    int expected = -1;
    if (!__atomic_compare_exchange_n(&s->fd, &expected, opened, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        if (opened >= 0) close(opened);
        return expected;
    }
    return opened;
}

VKD_FN uint64_t vkd_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Start an event: {"ev":..,"src":..,"pid":..,"tid":..,"t":.. */
VKD_FN void vkd_begin(struct vkd_buf *b, char *storage, size_t cap, const char *src,
                      const char *ev) {
    b->p = storage;
    b->len = 0;
    b->cap = cap;
    b->overflow = 0;
    vkd_lit(b, "{\"ev\":");
    vkd_str(b, ev);
    vkd_key(b, "src");
    vkd_str(b, src);
    vkd_key(b, "pid");
    vkd_i64(b, (int64_t)getpid());
    vkd_key(b, "tid");
    vkd_i64(b, (int64_t)syscall(SYS_gettid));
    vkd_key(b, "t");
    vkd_u64(b, vkd_now_ns());
}

VKD_FN void vkd_end(struct vkd_sink *s, struct vkd_buf *b) {
    int fd = vkd_sink_fd(s);
    if (fd < 0 || __atomic_load_n(&s->full, __ATOMIC_RELAXED)) return;
    if (b->overflow) vkd_lit(b, ",\"clipped\":true");
    /* vkd_raw always leaves room for these two bytes. */
    b->p[b->len++] = '}';
    b->p[b->len++] = '\n';
    struct stat st;
    if (fstat(fd, &st) == 0 && (uint64_t)st.st_size + b->len > s->max_bytes) {
        if (!__atomic_exchange_n(&s->full, 1, __ATOMIC_ACQ_REL)) {
            static const char marker[] = "{\"ev\":\"truncated\"}\n";
            ssize_t ignored = write(fd, marker, sizeof marker - 1);
            (void)ignored;
        }
        return;
    }
    ssize_t ignored = write(fd, b->p, b->len);
    (void)ignored;
}

#endif
