/* vkdoctor LD_AUDIT module: ground truth for library lifetimes inside a traced program.
 *
 * Records, as JSON lines (see vkdoctor_emit.h):
 *   hello    once per executed image (la_version)
 *   open     every object mapped (la_objopen): path, load bias, PT_LOAD ranges, likely dlopen caller
 *   close    every object unmapped (la_objclose): at_exit tells dlclose from process teardown
 *   bind     every vk* symbol binding (PLT or dlsym) with the requesting and the defining object
 *   gipa / gdpa  every vkGetInstanceProcAddr / vkGetDeviceProcAddr call made by the program:
 *            the loader answers those without consulting layers, so a layer cannot see them;
 *            we hand the program a thin wrapper instead of the loader's entry point.
 *   signal   a fatal signal: faulting address, instruction pointer, code pointers on the stack;
 *            then the signal is re-raised so the program dies exactly as it would have.
 *
 * The program's dlclose is wrapped the same way as the proc-address functions, so a close names
 * its exact caller; dlopen callers are inferred from return addresses on the stack.
 *
 * No Python API, no malloc on the event paths: this code runs inside the dynamic linker (with
 * its lock held) and inside signal handlers.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/uio.h>
#include <sys/ucontext.h>
#include <ucontext.h>

#include "vkdoctor_emit.h"

#define EXPORT __attribute__((visibility("default")))
#define SRC "audit"
#define MAX_OBJS 1024
#define MAX_RANGES 12
#define STACK_SCAN_BYTES (64 * 1024)
#define STACK_HITS 8

static struct vkd_sink g_sink = {-1, 0, VKD_DEFAULT_MAX_BYTES};

struct obj {
    struct link_map *map;
    const char *name;     /* l_name, or the executable path for the main program */
    uintptr_t lo[MAX_RANGES], hi[MAX_RANGES];
    unsigned char exec[MAX_RANGES];
    int nranges;
    int live;
    int system;           /* ld.so, libc, this module: never the "caller" of dlopen/dlclose */
};

static struct obj g_objs[MAX_OBJS];
static int g_nobjs;
static struct link_map *g_main_map;
static int g_started;     /* la_preinit ran: later opens come from dlopen */
static int g_exiting;     /* the main program's la_objclose ran: process teardown */
static pid_t g_pid;       /* pid the state belongs to, to notice fork() lazily */
static char g_exe[1024];

/* ---- helpers ------------------------------------------------------------------------------ */

static const char *base_name(const char *path) {
    const char *b = path;
    for (const char *p = path; p && *p; ++p)
        if (*p == '/') b = p + 1;
    return b;
}

static int is_system_name(const char *name) {
    const char *b = base_name(name);
    return vkd_startswith(b, "ld-linux") || vkd_startswith(b, "libc.so") ||
           vkd_startswith(b, "libdl.so") || vkd_startswith(b, "libpthread.so") ||
           vkd_startswith(b, "linux-vdso") || vkd_startswith(b, "ld64.so");
}

static int is_loader_name(const char *name) {
    /* libvulkan.so.1, not Mesa's drivers (libvulkan_lvp.so ...) */
    return vkd_startswith(base_name(name), "libvulkan.so");
}

static void note_fork(void);

static struct obj *find_obj_by_map(struct link_map *map) {
    for (int i = 0; i < g_nobjs; ++i)
        if (g_objs[i].map == map && g_objs[i].live) return &g_objs[i];
    return NULL;
}

/* Executable ranges of live objects, sorted, for the stack scans: a scan tests thousands of
 * words, so a linear walk over every object would dominate start-up time.  Rebuilt into the
 * idle half of a double buffer (opens and closes are serialised by the linker's lock) and
 * published with one atomic store, so a signal handler always reads a consistent index. */
struct exec_range {
    uintptr_t lo, hi;
    struct obj *obj;
};
struct exec_index {
    int n;
    struct exec_range r[MAX_OBJS];
};
static struct exec_index g_index_buf[2];
static struct exec_index *g_index;

static void rebuild_exec_index(void) {
    struct exec_index *next = g_index == &g_index_buf[0] ? &g_index_buf[1] : &g_index_buf[0];
    int n = 0;
    for (int i = 0; i < g_nobjs; ++i) {
        struct obj *o = &g_objs[i];
        if (!o->live) continue;
        for (int r = 0; r < o->nranges && n < MAX_OBJS; ++r) {
            if (!o->exec[r]) continue;
            int k = n++;
            while (k > 0 && next->r[k - 1].lo > o->lo[r]) {
                next->r[k] = next->r[k - 1];
                --k;
            }
            next->r[k].lo = o->lo[r];
            next->r[k].hi = o->hi[r];
            next->r[k].obj = o;
        }
    }
    next->n = n;
    __atomic_store_n(&g_index, next, __ATOMIC_RELEASE);
}

static struct obj *find_obj_by_addr(uintptr_t addr, int exec_only) {
    struct exec_index *index = __atomic_load_n(&g_index, __ATOMIC_ACQUIRE);
    if (index && index->n) {
        int lo = 0, hi = index->n - 1;
        while (lo <= hi) {
            int mid = (lo + hi) / 2;
            if (addr < index->r[mid].lo) {
                hi = mid - 1;
            } else if (addr >= index->r[mid].hi) {
                lo = mid + 1;
            } else {
                return index->r[mid].obj;
            }
        }
    }
    if (exec_only) return NULL;
    for (int i = 0; i < g_nobjs; ++i) {
        struct obj *o = &g_objs[i];
        if (!o->live) continue;
        for (int r = 0; r < o->nranges; ++r)
            if (addr >= o->lo[r] && addr < o->hi[r]) return o;
    }
    return NULL;
}

static const char *map_name(struct link_map *map) {
    if (map == g_main_map && g_exe[0]) return g_exe;
    return map && map->l_name ? map->l_name : "";
}

/* The PT_LOAD ranges of an object, read from its program headers in memory. */
static void fill_ranges(struct obj *o, struct link_map *map) {
    const ElfW(Phdr) *phdr = NULL;
    int phnum = 0;
    uintptr_t bias = map->l_addr;
    if (map == g_main_map) {
        phdr = (const ElfW(Phdr) *)getauxval(AT_PHDR);
        phnum = (int)getauxval(AT_PHNUM);
        if (phdr) {
            for (int i = 0; i < phnum; ++i)
                if (phdr[i].p_type == PT_PHDR) bias = (uintptr_t)phdr - phdr[i].p_vaddr;
        }
    } else if (map->l_addr) {
        const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)map->l_addr;
        if (memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0) {
            phdr = (const ElfW(Phdr) *)(map->l_addr + eh->e_phoff);
            phnum = eh->e_phnum;
        }
    }
    o->nranges = 0;
    for (int i = 0; phdr && i < phnum && o->nranges < MAX_RANGES; ++i) {
        if (phdr[i].p_type != PT_LOAD) continue;
        uintptr_t lo = (bias + phdr[i].p_vaddr) & ~(uintptr_t)0xfff;
        uintptr_t hi = (bias + phdr[i].p_vaddr + phdr[i].p_memsz + 0xfff) & ~(uintptr_t)0xfff;
        o->lo[o->nranges] = lo;
        o->hi[o->nranges] = hi;
        o->exec[o->nranges] = (phdr[i].p_flags & PF_X) != 0;
        o->nranges++;
    }
}

/* Stacks seen before: reading /proc/self/maps costs far more than the scan itself. */
struct stack_range {
    uintptr_t lo, hi;
};
static struct stack_range g_stacks[8];
static int g_stacks_lock;

static uintptr_t cached_stack_end(uintptr_t addr) {
    uintptr_t end = 0;
    if (__atomic_test_and_set(&g_stacks_lock, __ATOMIC_ACQUIRE)) return 0; /* signal: re-read */
    for (int i = 0; i < 8 && !end; ++i)
        if (addr >= g_stacks[i].lo && addr < g_stacks[i].hi) end = g_stacks[i].hi;
    __atomic_clear(&g_stacks_lock, __ATOMIC_RELEASE);
    return end;
}

static void remember_stack(uintptr_t lo, uintptr_t hi) {
    static int next;
    if (__atomic_test_and_set(&g_stacks_lock, __ATOMIC_ACQUIRE)) return;
    g_stacks[next].lo = lo;
    g_stacks[next].hi = hi;
    next = (next + 1) % 8;
    __atomic_clear(&g_stacks_lock, __ATOMIC_RELEASE);
}

/* Upper end of the mapping that holds `addr` (the current stack), from /proc/self/maps.  Read
 * with raw open/read so it is usable in a signal handler and under the linker's lock. */
static uintptr_t mapping_end(uintptr_t addr) {
    uintptr_t cached = cached_stack_end(addr);
    if (cached) return cached;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[16384];
    size_t have = 0;
    uintptr_t found = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - have);
        if (n <= 0) break;
        have += (size_t)n;
        size_t start = 0;
        for (size_t i = 0; i < have; ++i) {
            if (buf[i] != '\n') continue;
            uintptr_t lo = 0, hi = 0;
            size_t j = start;
            for (; j < i && buf[j] != '-'; ++j) {
                char c = buf[j];
                lo = lo * 16 + (uintptr_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
            }
            for (++j; j < i && buf[j] != ' '; ++j) {
                char c = buf[j];
                hi = hi * 16 + (uintptr_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
            }
            if (addr >= lo && addr < hi) {
                found = hi;
                /* Only the main stack is cached: a thread's stack can be unmapped and its
                 * range reused by a smaller mapping, which would make a cached end wrong. */
                if (i >= 7 && buf[i - 1] == ']' && buf[i - 7] == '[' && buf[i - 6] == 's')
                    remember_stack(lo, hi);
            }
            start = i + 1;
        }
        if (found) break;
        /* keep the unfinished line for the next read */
        size_t rest = have - start;
        for (size_t k = 0; k < rest; ++k) buf[k] = buf[start + k];
        have = rest;
        if (have == sizeof buf) have = 0; /* absurdly long line: drop it */
    }
    close(fd);
    return found;
}

/* Whether `v` looks like a return address: the bytes before it encode a call instruction.
 * Filters out function pointers and other code addresses sitting in stack variables. */
static int after_call(uintptr_t v, struct obj *o) {
    int r = 0;
    for (; r < o->nranges; ++r)
        if (v >= o->lo[r] + 8 && v < o->hi[r]) break;
    if (r == o->nranges) return 0;
    const unsigned char *p = (const unsigned char *)v;
#if defined(__x86_64__)
    if (p[-5] == 0xe8) return 1;                                 /* call rel32 */
    if (p[-2] == 0xff && ((p[-1] >> 3) & 7) == 2) return 1;      /* call *%reg */
    if (p[-3] == 0xff && ((p[-2] >> 3) & 7) == 2) return 1;      /* call *disp8(%reg) */
    if (p[-6] == 0xff && ((p[-5] >> 3) & 7) == 2) return 1;      /* call *disp32(%rip|reg) */
    if (p[-7] == 0xff && ((p[-6] >> 3) & 7) == 2) return 1;      /* call *disp32(%reg,sib) */
    if (p[-4] == 0xff && ((p[-3] >> 3) & 7) == 2) return 1;      /* call *disp8(sib) */
    return 0;
#else
    (void)p;
    return 1;
#endif
}

/* Code pointers found on the stack above `sp`: return addresses, mostly.  This is how we name the
 * object that called dlopen/dlclose (or crashed) without an unwinder, which would need malloc
 * and locks we cannot take here.  The first non-system object is the likely caller. */
static int scan_stack(uintptr_t sp, struct obj *skip, struct obj **hits, uintptr_t *addrs) {
    uintptr_t end = mapping_end(sp);
    if (!end) return 0;
    if (end - sp > STACK_SCAN_BYTES) end = sp + STACK_SCAN_BYTES;
    int n = 0;
    for (uintptr_t p = (sp + 7) & ~(uintptr_t)7; p + 8 <= end && n < STACK_HITS; p += 8) {
        uintptr_t v = *(const uintptr_t *)p;
        struct obj *o = find_obj_by_addr(v, 1);
        if (!o || o == skip || !after_call(v, o)) continue;
        int seen = 0;
        for (int k = 0; k < n; ++k) seen |= hits[k] == o;
        if (seen) continue;
        hits[n] = o;
        addrs[n] = v;
        n++;
    }
    return n;
}

static void emit_stack(struct vkd_buf *b, uintptr_t sp, struct obj *skip, struct obj *exact) {
    struct obj *hits[STACK_HITS];
    uintptr_t addrs[STACK_HITS];
    int n = scan_stack(sp, skip, hits, addrs);
    const char *by = exact ? exact->name : NULL;
    for (int i = 0; i < n && !by; ++i)
        if (!hits[i]->system) by = hits[i]->name;
    if (by) {
        vkd_key(b, "by");
        vkd_str(b, by);
        vkd_key(b, "by_exact");
        vkd_lit(b, exact ? "true" : "false");
    }
    vkd_key(b, "stack");
    vkd_lit(b, "[");
    for (int i = 0; i < n; ++i) {
        if (i) vkd_lit(b, ",");
        vkd_lit(b, "{\"addr\":");
        vkd_hex(b, addrs[i]);
        vkd_lit(b, ",\"obj\":");
        vkd_str(b, hits[i]->name);
        vkd_lit(b, "}");
    }
    vkd_lit(b, "]");
}

/* ---- proc-address wrappers --------------------------------------------------------------- */

typedef void (*vkd_pfn)(void);
typedef vkd_pfn (*vkd_gpa)(void *handle, const char *name);

#define SLOTS 4
static vkd_gpa g_real_gipa[SLOTS];
static vkd_gpa g_real_gdpa[SLOTS];

/* What each thread is doing inside a wrapper, so a crash in the real call names the query.
 * A tid-indexed table instead of TLS: TLS in audit modules has a history of glibc bugs. */
struct pending {
    long tid;
    const char *fn;
    void *handle;
    const char *name;
};
static struct pending g_pending[64];

/* One slot per distinct real function (one per libvulkan copy, normally one in all). */
static int slot_for(vkd_gpa *reals, vkd_gpa real) {
    for (int i = 0; i < SLOTS; ++i)
        if (reals[i] == real) return i;
    for (int i = 0; i < SLOTS; ++i)
        if (!reals[i]) {
            reals[i] = real;
            return i;
        }
    return -1;
}

static vkd_pfn wrap_gipa_for(int slot);
static vkd_pfn wrap_gdpa_for(int slot);

/* ---- hiding the trace layer ----------------------------------------------------------- */

/* The program must not see VK_LAYER_VKDOCTOR_trace among the instance layers: programs print
 * that list (vulkaninfo), compare it, or enable everything in it.  The loader answers
 * vkEnumerateInstanceLayerProperties itself, without consulting layers, so the program's
 * vkEnumerateInstanceLayerProperties (bound or asked from vkGetInstanceProcAddr) is this filter. */
typedef struct {
    char layerName[256];
    uint32_t specVersion;
    uint32_t implementationVersion;
    char description[256];
} vkd_layer_properties;
typedef int32_t (*vkd_enum_layers_fn)(uint32_t *, vkd_layer_properties *);
static vkd_enum_layers_fn g_real_enum_layers;
#define TRACE_LAYER_NAME "VK_LAYER_VKDOCTOR_trace"
#define VKD_INCOMPLETE 5

static int32_t wrap_enum_layers(uint32_t *count, vkd_layer_properties *props) {
    vkd_enum_layers_fn real = g_real_enum_layers;
    if (!real) return -3; /* VK_ERROR_INITIALIZATION_FAILED */
    if (!count) return real(count, props);
    uint32_t n = 0;
    int32_t res = real(&n, NULL);
    if (res != 0 || n == 0) {
        *count = n;
        return res;
    }
    vkd_layer_properties *all = calloc(n, sizeof *all);
    if (!all) return real(count, props);
    res = real(&n, all);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; ++i)
        if (!vkd_streq(all[i].layerName, TRACE_LAYER_NAME)) all[kept++] = all[i];
    if (res == 0 || res == VKD_INCOMPLETE) {
        if (!props) {
            *count = kept;
            res = 0;
        } else {
            uint32_t copied = *count < kept ? *count : kept;
            memcpy(props, all, copied * sizeof *all);
            res = copied < kept ? VKD_INCOMPLETE : 0;
            *count = copied;
        }
    }
    free(all);
    return res;
}

static uintptr_t hide_layer(const char *name, uintptr_t value) {
    if (!value || !vkd_streq(name, "vkEnumerateInstanceLayerProperties")) return value;
    if (value == (uintptr_t)wrap_enum_layers) return value;
    if (!g_real_enum_layers) g_real_enum_layers = (vkd_enum_layers_fn)value;
    return value == (uintptr_t)g_real_enum_layers ? (uintptr_t)wrap_enum_layers : value;
}

static vkd_pfn proc_addr_common(int device_level, int slot, void *handle, const char *name,
                                void *caller) {
    note_fork();
    vkd_gpa real = device_level ? g_real_gdpa[slot] : g_real_gipa[slot];
    long tid = syscall(SYS_gettid);
    struct pending *pend = &g_pending[tid & 63];
    pend->tid = tid;
    pend->fn = device_level ? "vkGetDeviceProcAddr" : "vkGetInstanceProcAddr";
    pend->handle = handle;
    pend->name = name;
    vkd_pfn result = real ? real(handle, name) : NULL;
    pend->tid = 0;
    vkd_pfn returned = result;
    if (result && name) {
        /* Keep the program on our wrappers when it asks for the proc-address functions
         * themselves (volk and vulkan.hpp do). */
        if (vkd_streq(name, "vkGetInstanceProcAddr") && (vkd_gpa)result == g_real_gipa[slot]) {
            returned = wrap_gipa_for(slot);
        } else if (vkd_streq(name, "vkGetDeviceProcAddr")) {
            int gdpa_slot = slot_for(g_real_gdpa, (vkd_gpa)result);
            if (gdpa_slot >= 0) returned = wrap_gdpa_for(gdpa_slot);
        } else if (!device_level) {
            returned = (vkd_pfn)hide_layer(name, (uintptr_t)result);
        }
    }
    char storage[2048];
    struct vkd_buf b;
    vkd_begin(&b, storage, sizeof storage, SRC, device_level ? "gdpa" : "gipa");
    vkd_key(&b, "h");
    vkd_hex(&b, (uintptr_t)handle);
    vkd_key(&b, "name");
    vkd_str(&b, name);
    vkd_key(&b, "ret");
    vkd_hex(&b, (uintptr_t)result);
    vkd_key(&b, "caller");
    vkd_hex(&b, (uintptr_t)caller);
    vkd_end(&g_sink, &b);
    return returned;
}

#define WRAPPERS(i)                                                                         \
    static vkd_pfn wrap_gipa_##i(void *h, const char *n) {                                  \
        return proc_addr_common(0, i, h, n, __builtin_return_address(0));                   \
    }                                                                                       \
    static vkd_pfn wrap_gdpa_##i(void *h, const char *n) {                                  \
        return proc_addr_common(1, i, h, n, __builtin_return_address(0));                   \
    }
WRAPPERS(0)
WRAPPERS(1)
WRAPPERS(2)
WRAPPERS(3)

static vkd_pfn wrap_gipa_for(int slot) {
    static const vkd_gpa table[SLOTS] = {wrap_gipa_0, wrap_gipa_1, wrap_gipa_2, wrap_gipa_3};
    return (vkd_pfn)table[slot];
}

static vkd_pfn wrap_gdpa_for(int slot) {
    static const vkd_gpa table[SLOTS] = {wrap_gdpa_0, wrap_gdpa_1, wrap_gdpa_2, wrap_gdpa_3};
    return (vkd_pfn)table[slot];
}

/* ---- dlclose callers ------------------------------------------------------------------- */

/* The program's dlclose calls go through this wrapper (substituted in la_symbind like the
 * proc-address functions), so la_objclose can name the exact caller.  dlopen is deliberately
 * not wrapped: glibc picks the namespace and $ORIGIN from dlopen's return address. */
typedef int (*vkd_dlclose_fn)(void *);
static vkd_dlclose_fn g_real_dlclose;

struct closer {
    long tid;
    void *caller;
};
static struct closer g_closers[64];

static int wrap_dlclose(void *handle) {
    long tid = syscall(SYS_gettid);
    struct closer *c = &g_closers[tid & 63];
    struct closer saved = *c;
    c->tid = tid;
    c->caller = __builtin_return_address(0);
    int result = g_real_dlclose ? g_real_dlclose(handle) : -1;
    *c = saved;
    return result;
}

static struct obj *dlclose_caller(void) {
    long tid = syscall(SYS_gettid);
    struct closer *c = &g_closers[tid & 63];
    return c->tid == tid ? find_obj_by_addr((uintptr_t)c->caller, 1) : NULL;
}

/* ---- fork and exit ----------------------------------------------------------------------- */

static void emit_hello(const char *ev) {
    char storage[2048];
    struct vkd_buf b;
    vkd_begin(&b, storage, sizeof storage, SRC, ev);
    vkd_key(&b, "schema");
    vkd_u64(&b, VKD_SCHEMA);
    vkd_key(&b, "ppid");
    vkd_i64(&b, (int64_t)getppid());
    vkd_key(&b, "exe");
    vkd_str(&b, g_exe);
    vkd_end(&g_sink, &b);
}

/* A forked child shares our state; mark its first event so the tracker can split the pids. */
static void note_fork(void) {
    pid_t pid = getpid();
    if (pid == g_pid) return;
    g_pid = pid;
    emit_hello("fork_seen");
}

/* ---- fatal signals ----------------------------------------------------------------------- */

static const int g_fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGABRT, SIGFPE};
#define NFATAL (sizeof g_fatal / sizeof g_fatal[0])
static struct sigaction g_prev[NFATAL];
static char g_altstack[64 * 1024];

/* Reads memory that may not be mapped without faulting again: process_vm_readv on ourselves
 * returns EFAULT instead of raising SIGSEGV, and is a plain syscall (async-signal-safe). */
static int safe_read(uintptr_t addr, void *out, size_t n) {
    struct iovec local = {out, n};
    struct iovec remote = {(void *)addr, n};
    return syscall(SYS_process_vm_readv, (long)getpid(), &local, 1L, &remote, 1L, 0L) ==
           (long)n;
}

#define BT_FRAMES 32

/* The crash backtrace: return addresses on the stack, in stack order, each checked to follow a
 * call instruction.  An unwinder (libgcc_s) cannot be used here: loaded into the audit
 * namespace, dl_iterate_phdr would show it only the audit namespace's objects, so it could not
 * unwind through the program.  A frame-pointer walk fails on distribution libraries built
 * without frame pointers.  The scan can include stale return addresses left in dead stack
 * slots; the analysis treats frames after the first program frame as context only. */
static int crash_frames(uintptr_t sp, uintptr_t first, uintptr_t *out) {
    int n = 0;
    if (first) out[n++] = first;
    uintptr_t end = mapping_end(sp);
    if (!end) return n;
    if (end - sp > STACK_SCAN_BYTES) end = sp + STACK_SCAN_BYTES;
    for (uintptr_t p = (sp + 7) & ~(uintptr_t)7; p + 8 <= end && n < BT_FRAMES; p += 8) {
        uintptr_t v = *(const uintptr_t *)p;
        if (p == sp && v == first) continue; /* already the exact first frame */
        struct obj *o = find_obj_by_addr(v, 1);
        if (!o || !after_call(v, o)) continue;
        if (n && out[n - 1] == v) continue;
        out[n++] = v;
    }
    return n;
}

#if defined(__x86_64__)
/* x86 register numbers (ModRM/REX order) to ucontext slots, and their names. */
static const int g_reg_slot[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP,
                                   REG_RSI, REG_RDI, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                   REG_R12, REG_R13, REG_R14, REG_R15};
static const char *const g_reg_name[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp",
                                           "rsi", "rdi", "r8",  "r9",  "r10", "r11",
                                           "r12", "r13", "r14", "r15"};
/* Registers a callee (a loader trampoline, a driver) must preserve: what they hold at the
 * crash is what the caller's call instruction used. */
static int callee_saved(int reg) {
    return reg == 3 || reg == 5 || (reg >= 12 && reg <= 15);
}

/* Which pointer the program called: decode the indirect call before the return address `ret`
 * and compute its target from the registers (and the memory slot it read).  Register and base
 * values are only trustworthy for callee-saved registers, or when nothing ran since the call
 * (the crash is at the call target itself). */
static void emit_call_site(struct vkd_buf *b, uintptr_t ret, const greg_t *g) {
    unsigned char c[8];
    if (!safe_read(ret - 8, c, 8)) return;
    /* c[7] is the byte just before ret. */
    int reg = -1, mem = 0, rip = 0;
    int64_t disp = 0;
    int len = 0;
    if (c[2] == 0xff && c[3] == 0x15) { /* call *disp32(%rip) */
        int32_t d;
        memcpy(&d, c + 4, 4);
        disp = d, rip = 1, mem = 1, len = 6;
    } else if (c[6] == 0xff && (c[7] >> 6) == 3 && ((c[7] >> 3) & 7) == 2) { /* call *%reg */
        reg = c[7] & 7, len = 2;
    } else if (c[6] == 0xff && (c[7] >> 6) == 0 && ((c[7] >> 3) & 7) == 2 && (c[7] & 7) != 4 &&
               (c[7] & 7) != 5) { /* call *(%reg) */
        reg = c[7] & 7, mem = 1, len = 2;
    } else if (c[5] == 0xff && (c[6] >> 6) == 1 && ((c[6] >> 3) & 7) == 2 && (c[6] & 7) != 4) {
        reg = c[6] & 7, mem = 1, disp = (int8_t)c[7], len = 3; /* call *disp8(%reg) */
    } else if (c[2] == 0xff && (c[3] >> 6) == 2 && ((c[3] >> 3) & 7) == 2 && (c[3] & 7) != 4) {
        int32_t d; /* call *disp32(%reg) */
        memcpy(&d, c + 4, 4);
        reg = c[3] & 7, mem = 1, disp = d, len = 6;
    } else if (c[3] == 0xe8) { /* call rel32: a direct call, the target is in the code */
        int32_t d;
        memcpy(&d, c + 4, 4);
        vkd_key(b, "call");
        vkd_lit(b, "{\"form\":\"direct\",\"target\":");
        vkd_hex(b, ret + (uintptr_t)(int64_t)d);
        vkd_lit(b, ",\"reliable\":true}");
        return;
    } else {
        return;
    }
    if (reg >= 0 && len < 8 && (c[7 - len] & 0xf1) == 0x41) reg += 8; /* REX.B */
    uintptr_t base = rip ? ret : (uintptr_t)g[g_reg_slot[reg]];
    uintptr_t slot = mem ? base + (uintptr_t)disp : 0;
    uintptr_t target = 0;
    int have_target = 1;
    if (mem) have_target = safe_read(slot, &target, sizeof target);
    else target = base;
    vkd_key(b, "call");
    vkd_lit(b, "{\"form\":");
    vkd_str(b, rip ? "rip" : mem ? "mem" : "reg");
    if (reg >= 0) {
        vkd_lit(b, ",\"reg\":");
        vkd_str(b, g_reg_name[reg]);
    }
    if (mem) {
        vkd_lit(b, ",\"slot\":");
        vkd_hex(b, slot);
    }
    if (have_target) {
        vkd_lit(b, ",\"target\":");
        vkd_hex(b, target);
    }
    vkd_lit(b, ",\"reliable\":");
    vkd_lit(b, rip || (reg >= 0 && callee_saved(reg)) ? "true" : "false");
    vkd_lit(b, "}");
}

static void emit_regs(struct vkd_buf *b, const greg_t *g) {
    vkd_key(b, "regs");
    vkd_lit(b, "{\"rip\":");
    vkd_hex(b, (uintptr_t)g[REG_RIP]);
    for (int r = 0; r < 16; ++r) {
        vkd_lit(b, ",\"");
        vkd_lit(b, g_reg_name[r]);
        vkd_lit(b, "\":");
        vkd_hex(b, (uintptr_t)g[g_reg_slot[r]]);
    }
    vkd_lit(b, "}");
}
#endif

static void on_fatal(int sig, siginfo_t *info, void *ctx) {
    ucontext_t *uc = (ucontext_t *)ctx;
    uintptr_t ip = 0, sp = 0;
#if defined(__x86_64__)
    ip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    ip = (uintptr_t)uc->uc_mcontext.pc;
    sp = (uintptr_t)uc->uc_mcontext.sp;
#endif
    char storage[8192];
    struct vkd_buf b;
    vkd_begin(&b, storage, sizeof storage, SRC, "signal");
    vkd_key(&b, "sig");
    vkd_i64(&b, sig);
    vkd_key(&b, "code");
    vkd_i64(&b, info ? info->si_code : 0);
    vkd_key(&b, "addr");
    vkd_hex(&b, info ? (uintptr_t)info->si_addr : 0);
    vkd_key(&b, "ip");
    vkd_hex(&b, ip);
    struct obj *at = find_obj_by_addr(ip, 0);
    if (at) {
        vkd_key(&b, "ip_obj");
        vkd_str(&b, at->name);
    }
    long tid = syscall(SYS_gettid);
    struct pending *pend = &g_pending[tid & 63];
    if (pend->tid == tid) {
        vkd_key(&b, "inside");
        vkd_lit(&b, "{\"fn\":");
        vkd_str(&b, pend->fn);
        vkd_lit(&b, ",\"h\":");
        vkd_hex(&b, (uintptr_t)pend->handle);
        vkd_lit(&b, ",\"name\":");
        vkd_str(&b, pend->name);
        vkd_lit(&b, "}");
    }
    if (sp) emit_stack(&b, sp, NULL, NULL);
    /* When the instruction pointer is not in any live code (a jump to NULL, or into an
     * unloaded library), nothing ran since the call: the word at the stack pointer is the
     * exact return address into the caller. */
    uintptr_t first = 0;
    if (sp && !find_obj_by_addr(ip, 1)) {
        uintptr_t word = 0;
        if (safe_read(sp, &word, sizeof word) && find_obj_by_addr(word, 1)) first = word;
    }
    if (first) {
        vkd_key(&b, "ret");
        vkd_hex(&b, first);
    }
#if defined(__x86_64__)
    emit_regs(&b, uc->uc_mcontext.gregs);
    if (first) emit_call_site(&b, first, uc->uc_mcontext.gregs);
#endif
    if (sp) {
        uintptr_t frames[BT_FRAMES];
        int n = crash_frames(sp, first, frames);
        vkd_key(&b, "bt");
        vkd_lit(&b, "[");
        for (int i = 0; i < n; ++i) {
            if (i) vkd_lit(&b, ",");
            vkd_hex(&b, frames[i]);
        }
        vkd_lit(&b, "]");
#if defined(__x86_64__)
        /* Calls through a function-pointer variable (call *disp32(%rip)) read memory, not
         * registers, so their target is still exact deep in the stack: which pointer the
         * program called when the crash happened further down, in a driver. */
        vkd_key(&b, "calls");
        vkd_lit(&b, "[");
        int emitted = 0;
        for (int i = 0; i < n && i < 12; ++i) {
            unsigned char c[8];
            if (!safe_read(frames[i] - 8, c, 8) || c[2] != 0xff || c[3] != 0x15) continue;
            int32_t d;
            memcpy(&d, c + 4, 4);
            uintptr_t slot = frames[i] + (uintptr_t)(int64_t)d, target = 0;
            if (!safe_read(slot, &target, sizeof target)) continue;
            if (emitted++) vkd_lit(&b, ",");
            vkd_lit(&b, "{\"ret\":");
            vkd_hex(&b, frames[i]);
            vkd_lit(&b, ",\"slot\":");
            vkd_hex(&b, slot);
            vkd_lit(&b, ",\"target\":");
            vkd_hex(&b, target);
            vkd_lit(&b, "}");
        }
        vkd_lit(&b, "]");
#endif
    }
    vkd_end(&g_sink, &b);

    /* Hand the signal back to whoever had it before us (normally SIG_DFL) and re-raise it: the
     * exit status and the core dump stay what they would have been without vkdoctor. */
    for (unsigned i = 0; i < NFATAL; ++i)
        if (g_fatal[i] == sig) sigaction(sig, &g_prev[i], NULL);
    raise(sig);
}

static void install_signal_handlers(void) {
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = g_altstack;
    ss.ss_size = sizeof g_altstack;
    stack_t old;
    /* Only if the program has none: a stack overflow must still be reportable. */
    if (sigaltstack(NULL, &old) == 0 && (old.ss_flags & SS_DISABLE)) sigaltstack(&ss, NULL);
    for (unsigned i = 0; i < NFATAL; ++i) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fatal;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(g_fatal[i], &sa, &g_prev[i]);
    }
}

/* ---- rtld-audit interface ---------------------------------------------------------------- */

EXPORT unsigned int la_version(unsigned int version) {
    g_pid = getpid();
    ssize_t n = readlink("/proc/self/exe", g_exe, sizeof g_exe - 1);
    g_exe[n > 0 ? n : 0] = '\0';
    emit_hello("hello");
    return version < LAV_CURRENT ? version : LAV_CURRENT;
}

EXPORT unsigned int la_objopen(struct link_map *map, Lmid_t lmid, uintptr_t *cookie) {
    note_fork();
    *cookie = (uintptr_t)map;
    if (!g_main_map && lmid == LM_ID_BASE) g_main_map = map;

    struct obj *o = NULL;
    for (int i = 0; i < g_nobjs && !o; ++i)
        if (!g_objs[i].live) o = &g_objs[i];
    if (!o && g_nobjs < MAX_OBJS) o = &g_objs[g_nobjs++];
    if (o) {
        memset(o, 0, sizeof *o);
        o->map = map;
        o->name = map_name(map);
        fill_ranges(o, map);
        o->system = is_system_name(o->name);
        o->live = 1;
        /* ourselves: an address inside this very function */
        uintptr_t self = (uintptr_t)&la_objopen;
        for (int r = 0; r < o->nranges; ++r)
            if (self >= o->lo[r] && self < o->hi[r]) o->system = 1;
        rebuild_exec_index();
    }

    char storage[4096];
    struct vkd_buf b;
    vkd_begin(&b, storage, sizeof storage, SRC, "open");
    vkd_key(&b, "path");
    vkd_str(&b, map_name(map));
    vkd_key(&b, "base");
    vkd_hex(&b, map->l_addr);
    vkd_key(&b, "lmid");
    vkd_i64(&b, (int64_t)lmid);
    vkd_key(&b, "main");
    vkd_lit(&b, map == g_main_map ? "true" : "false");
    if (o) {
        vkd_key(&b, "ranges");
        vkd_lit(&b, "[");
        for (int r = 0; r < o->nranges; ++r) {
            if (r) vkd_lit(&b, ",");
            vkd_lit(&b, "[");
            vkd_hex(&b, o->lo[r]);
            vkd_lit(&b, ",");
            vkd_hex(&b, o->hi[r]);
            vkd_lit(&b, o->exec[r] ? ",\"x\"]" : ",\"-\"]");
        }
        vkd_lit(&b, "]");
    }
    if (g_started) emit_stack(&b, (uintptr_t)__builtin_frame_address(0), o, NULL);
    vkd_end(&g_sink, &b);
    return LA_FLG_BINDTO | LA_FLG_BINDFROM;
}

EXPORT unsigned int la_objclose(uintptr_t *cookie) {
    note_fork();
    struct link_map *map = (struct link_map *)*cookie;
    /* _dl_fini closes the main program first in the base namespace; anything after that is
     * process teardown, not a dlclose. */
    if (map == g_main_map && !g_exiting) {
        g_exiting = 1;
        char storage[256];
        struct vkd_buf b;
        vkd_begin(&b, storage, sizeof storage, SRC, "exit");
        vkd_end(&g_sink, &b);
    }
    struct obj *o = find_obj_by_map(map);
    char storage[4096];
    struct vkd_buf b;
    vkd_begin(&b, storage, sizeof storage, SRC, "close");
    vkd_key(&b, "path");
    vkd_str(&b, map_name(map));
    vkd_key(&b, "base");
    vkd_hex(&b, map->l_addr);
    vkd_key(&b, "at_exit");
    vkd_lit(&b, g_exiting ? "true" : "false");
    if (!g_exiting) emit_stack(&b, (uintptr_t)__builtin_frame_address(0), o, dlclose_caller());
    vkd_end(&g_sink, &b);
    if (o) {
        o->live = 0;
        rebuild_exec_index();
    }
    /* The wrapper slots keep the loader's old address on purpose: a program that still calls
     * through them after this point crashes at that address, which is exactly what we report. */
    return 0;
}

EXPORT void la_preinit(uintptr_t *cookie) {
    (void)cookie;
    g_started = 1;
    install_signal_handlers();
}

EXPORT uintptr_t la_symbind64(Elf64_Sym *sym, unsigned int ndx, uintptr_t *refcook,
                              uintptr_t *defcook, unsigned int *flags, const char *symname) {
    (void)ndx;
    if (!symname) return sym->st_value;
    if (symname[0] == 'd' && vkd_streq(symname, "dlclose")) {
        if (!g_real_dlclose) g_real_dlclose = (vkd_dlclose_fn)sym->st_value;
        return sym->st_value == (uintptr_t)g_real_dlclose ? (uintptr_t)wrap_dlclose
                                                          : sym->st_value;
    }
    if (symname[0] != 'v' || symname[1] != 'k') return sym->st_value;
    note_fork();
    struct link_map *from = (struct link_map *)*refcook;
    struct link_map *to = (struct link_map *)*defcook;
    uintptr_t value = sym->st_value;
    int dlsym_bind = flags && (*flags & LA_SYMB_DLSYM);

    uintptr_t replaced = value;
    if (from != to && !is_loader_name(map_name(from))) {
        if (vkd_streq(symname, "vkGetInstanceProcAddr")) {
            int slot = slot_for(g_real_gipa, (vkd_gpa)value);
            if (slot >= 0) replaced = (uintptr_t)wrap_gipa_for(slot);
        } else if (vkd_streq(symname, "vkGetDeviceProcAddr")) {
            int slot = slot_for(g_real_gdpa, (vkd_gpa)value);
            if (slot >= 0) replaced = (uintptr_t)wrap_gdpa_for(slot);
        } else {
            replaced = hide_layer(symname, value);
        }
    }

    char storage[4096];
    struct vkd_buf b;
    vkd_begin(&b, storage, sizeof storage, SRC, "bind");
    vkd_key(&b, "sym");
    vkd_str(&b, symname);
    vkd_key(&b, "from");
    vkd_str(&b, map_name(from));
    vkd_key(&b, "to");
    vkd_str(&b, map_name(to));
    vkd_key(&b, "addr");
    vkd_hex(&b, value);
    vkd_key(&b, "dlsym");
    vkd_lit(&b, dlsym_bind ? "true" : "false");
    if (replaced != value) {
        vkd_key(&b, "wrapped");
        vkd_lit(&b, "true");
    }
    vkd_end(&g_sink, &b);
    return replaced;
}
