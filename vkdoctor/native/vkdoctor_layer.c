/* VK_LAYER_VKDOCTOR_trace: an explicit Vulkan layer that records object lifetimes.
 *
 * Intercepts exactly vkCreateInstance, vkDestroyInstance, vkEnumeratePhysicalDevices,
 * vkCreateDevice and vkDestroyDevice and writes one JSON line per call (vkdoctor_emit.h).  Every
 * other command is answered with the next layer's own pointer, so the layer adds no wrapper and
 * no cost to any other call.  The program's vkGetInstanceProcAddr / vkGetDeviceProcAddr queries
 * never reach a layer (the loader answers them from its trampolines and dispatch tables); the
 * audit module records those.
 *
 * Self-contained: declares the few Vulkan and loader-interface types it needs, so it builds
 * without the Vulkan headers.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vkdoctor_emit.h"
#include "vkdoctor_vk.h"

#define EXPORT __attribute__((visibility("default")))
#define SRC "layer"

/* ---- per-object records ------------------------------------------------------------------ */

struct inst_rec {
    struct inst_rec *next;
    VkInstance handle;
    void *dispatch_key; /* physical devices share their instance's dispatch pointer */
    PFN_vkGetInstanceProcAddr gipa;
    PFN_vkDestroyInstance destroy;
    PFN_vkEnumeratePhysicalDevices enumerate;
    PFN_vkCreateDevice create_device;
};

struct dev_rec {
    struct dev_rec *next;
    VkDevice handle;
    VkInstance instance;
    PFN_vkGetDeviceProcAddr gdpa;
    PFN_vkDestroyDevice destroy;
};

struct pd_rec {
    struct pd_rec *next;
    VkPhysicalDevice handle;
    VkInstance instance;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct inst_rec *g_instances;
static struct dev_rec *g_devices;
static struct pd_rec *g_pds;
static struct vkd_sink g_sink = {-1, 0, VKD_DEFAULT_MAX_BYTES};
static int g_quiet; /* VKDOCTOR_TRACE_DISABLE: stay in the chain, record nothing */

static void *dispatch_key(const void *handle) { return handle ? *(void *const *)handle : NULL; }

static struct inst_rec *find_instance(VkInstance handle) {
    for (struct inst_rec *r = g_instances; r; r = r->next)
        if (r->handle == handle) return r;
    return NULL;
}

static struct dev_rec *find_device(VkDevice handle) {
    for (struct dev_rec *r = g_devices; r; r = r->next)
        if (r->handle == handle) return r;
    return NULL;
}

static struct inst_rec *instance_of_pd(VkPhysicalDevice pd) {
    for (struct pd_rec *r = g_pds; r; r = r->next)
        if (r->handle == pd) return find_instance(r->instance);
    void *key = dispatch_key(pd);
    for (struct inst_rec *r = g_instances; r; r = r->next)
        if (r->dispatch_key == key) return r;
    if (g_instances && !g_instances->next) return g_instances;
    return NULL;
}

static int count_instances(void) {
    int n = 0;
    for (struct inst_rec *r = g_instances; r; r = r->next) ++n;
    return n;
}

static int count_devices(void) {
    int n = 0;
    for (struct dev_rec *r = g_devices; r; r = r->next) ++n;
    return n;
}

static void emit_names(struct vkd_buf *b, const char *key, uint32_t count,
                       const char *const *names) {
    vkd_key(b, key);
    vkd_lit(b, "[");
    for (uint32_t i = 0; names && i < count && i < 64; ++i) {
        if (i) vkd_lit(b, ",");
        vkd_str(b, names[i]);
    }
    vkd_lit(b, "]");
}

#define EVENT(name, size)  \
    char storage_[size];   \
    struct vkd_buf b_;     \
    int on_ = !g_quiet;    \
    if (on_) vkd_begin(&b_, storage_, sizeof storage_, SRC, name)
#define DONE() \
    if (on_) vkd_end(&g_sink, &b_)

static void remember_fast(VkDevice device, PFN_vkGetDeviceProcAddr gdpa);

/* ---- which loader exports a device lacks -------------------------------------------------- */

/* Number of symbols in a DT_GNU_HASH table (the dynamic section does not store it). */
static uint32_t gnu_hash_symbols(const uint32_t *table) {
    uint32_t nbuckets = table[0], symoffset = table[1], bloom_words = table[2];
    const uint32_t *buckets = (const uint32_t *)((const ElfW(Addr) *)(table + 4) + bloom_words);
    const uint32_t *chain = buckets + nbuckets;
    uint32_t last = 0;
    for (uint32_t i = 0; i < nbuckets; ++i)
        if (buckets[i] > last) last = buckets[i];
    if (last < symoffset) return symoffset;
    while (!(chain[last - symoffset] & 1)) ++last;
    return last + 1;
}

struct exports_scan {
    VkDevice device;
    PFN_vkGetDeviceProcAddr gdpa;
    struct vkd_buf *b;
    int n;
    int done;
};

/* For every vk* function libvulkan exports, ask the next vkGetDeviceProcAddr whether this
 * device has it.  A program that takes such an export with dlsym gets a loader trampoline that
 * jumps through the device's dispatch slot: where the answer is NULL, the slot is empty and the
 * call jumps to address 0.  Recording the NULL answers once per device lets the analysis tell
 * which dlsym'd command a crash went through. */
static int scan_loader_exports(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct exports_scan *scan = data;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    const char *base = name;
    for (const char *p = name; *p; ++p)
        if (*p == '/') base = p + 1;
    if (scan->done || !vkd_startswith(base, "libvulkan.so")) return 0;
    const ElfW(Dyn) *dyn = NULL;
    for (int i = 0; i < info->dlpi_phnum; ++i)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    if (!dyn) return 0;
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const uint32_t *gnu_hash = NULL;
    for (; dyn->d_tag != DT_NULL; ++dyn) {
        /* ld.so relocates these in place on most targets; add the bias where it did not. */
        ElfW(Addr) ptr = dyn->d_un.d_ptr;
        if (ptr < info->dlpi_addr) ptr += info->dlpi_addr;
        if (dyn->d_tag == DT_SYMTAB) symtab = (const ElfW(Sym) *)ptr;
        if (dyn->d_tag == DT_STRTAB) strtab = (const char *)ptr;
        if (dyn->d_tag == DT_GNU_HASH) gnu_hash = (const uint32_t *)ptr;
    }
    if (!symtab || !strtab || !gnu_hash) return 0;
    scan->done = 1;
    uint32_t count = gnu_hash_symbols(gnu_hash);
    for (uint32_t i = 0; i < count && i < 8192; ++i) {
        const ElfW(Sym) *sym = &symtab[i];
        if (sym->st_shndx == SHN_UNDEF || ELF64_ST_TYPE(sym->st_info) != STT_FUNC) continue;
        const char *sym_name = strtab + sym->st_name;
        if (sym_name[0] != 'v' || sym_name[1] != 'k') continue;
        if (scan->gdpa(scan->device, sym_name)) continue;
        if (scan->n++) vkd_lit(scan->b, ",");
        vkd_str(scan->b, sym_name);
    }
    return 1;
}

/* ---- intercepted commands ---------------------------------------------------------------- */

static VkResult create_instance(const VkInstanceCreateInfo *info, const VkAllocationCallbacks *alloc,
                                VkInstance *out) {
    VkLayerInstanceCreateInfo *chain = (VkLayerInstanceCreateInfo *)(info ? info->pNext : NULL);
    while (chain && !(chain->sType == VK_STRUCTURE_TYPE_LOADER_INSTANCE_CREATE_INFO &&
                      chain->function == VK_LAYER_LINK_INFO))
        chain = (VkLayerInstanceCreateInfo *)chain->pNext;
    if (!chain || !chain->u.pLayerInfo) return VK_ERROR_INITIALIZATION_FAILED;
    PFN_vkGetInstanceProcAddr next_gipa = chain->u.pLayerInfo->pfnNextGetInstanceProcAddr;
    chain->u.pLayerInfo = chain->u.pLayerInfo->pNext; /* the next layer reads its own link */
    PFN_vkCreateInstance next_create = (PFN_vkCreateInstance)next_gipa(NULL, "vkCreateInstance");
    if (!next_create) return VK_ERROR_INITIALIZATION_FAILED;

    VkResult res = next_create(info, alloc, out);
    VkInstance handle = (res == VK_SUCCESS && out) ? *out : NULL;
    if (handle) {
        struct inst_rec *rec = calloc(1, sizeof *rec);
        if (rec) {
            rec->handle = handle;
            rec->dispatch_key = dispatch_key(handle);
            rec->gipa = next_gipa;
            rec->destroy = (PFN_vkDestroyInstance)next_gipa(handle, "vkDestroyInstance");
            rec->enumerate =
                (PFN_vkEnumeratePhysicalDevices)next_gipa(handle, "vkEnumeratePhysicalDevices");
            rec->create_device = (PFN_vkCreateDevice)next_gipa(handle, "vkCreateDevice");
            pthread_mutex_lock(&g_lock);
            rec->next = g_instances;
            g_instances = rec;
            pthread_mutex_unlock(&g_lock);
        }
    }
    EVENT("create_instance", 8192);
    if (on_) {
        vkd_key(&b_, "inst");
        vkd_hex(&b_, (uintptr_t)handle);
        vkd_key(&b_, "res");
        vkd_i64(&b_, res);
        const VkApplicationInfo *app = info ? info->pApplicationInfo : NULL;
        vkd_key(&b_, "api");
        vkd_u64(&b_, app ? app->apiVersion : 0);
        vkd_key(&b_, "app");
        vkd_str(&b_, app ? app->pApplicationName : NULL);
        if (info)
            emit_names(&b_, "exts", info->enabledExtensionCount, info->ppEnabledExtensionNames);
        vkd_key(&b_, "next");
        vkd_hex(&b_, (uintptr_t)next_gipa);
    }
    DONE();
    return res;
}

static void destroy_instance(VkInstance instance, const VkAllocationCallbacks *alloc) {
    pthread_mutex_lock(&g_lock);
    struct inst_rec **link = &g_instances;
    while (*link && (*link)->handle != instance) link = &(*link)->next;
    struct inst_rec *rec = *link;
    if (rec) *link = rec->next;
    for (struct pd_rec **p = &g_pds; *p;) {
        if ((*p)->instance == instance) {
            struct pd_rec *dead = *p;
            *p = dead->next;
            free(dead);
        } else {
            p = &(*p)->next;
        }
    }
    int live_devices = 0;
    for (struct dev_rec *d = g_devices; d; d = d->next) live_devices += d->instance == instance;
    pthread_mutex_unlock(&g_lock);

    /* Recorded before the call: the loader unloads drivers and layers inside it. */
    EVENT("destroy_instance", 512);
    if (on_) {
        vkd_key(&b_, "inst");
        vkd_hex(&b_, (uintptr_t)instance);
        vkd_key(&b_, "known");
        vkd_lit(&b_, rec ? "true" : "false");
        vkd_key(&b_, "live_devices");
        vkd_i64(&b_, live_devices);
    }
    DONE();
    if (rec && rec->destroy) rec->destroy(instance, alloc);
    free(rec);
}

static VkResult enumerate_physical_devices(VkInstance instance, uint32_t *count,
                                           VkPhysicalDevice *pds) {
    pthread_mutex_lock(&g_lock);
    struct inst_rec *rec = find_instance(instance);
    PFN_vkEnumeratePhysicalDevices next = rec ? rec->enumerate : NULL;
    pthread_mutex_unlock(&g_lock);
    VkResult res = next ? next(instance, count, pds) : VK_ERROR_INITIALIZATION_FAILED;
    uint32_t n = count ? *count : 0;
    if (pds && (res == VK_SUCCESS || res == VK_INCOMPLETE)) {
        pthread_mutex_lock(&g_lock);
        for (uint32_t i = 0; i < n; ++i) {
            int known = 0;
            for (struct pd_rec *r = g_pds; r; r = r->next) known |= r->handle == pds[i];
            if (known) continue;
            struct pd_rec *pr = calloc(1, sizeof *pr);
            if (!pr) break;
            pr->handle = pds[i];
            pr->instance = instance;
            pr->next = g_pds;
            g_pds = pr;
        }
        pthread_mutex_unlock(&g_lock);
    }
    EVENT("enum_pd", 512);
    if (on_) {
        vkd_key(&b_, "inst");
        vkd_hex(&b_, (uintptr_t)instance);
        vkd_key(&b_, "res");
        vkd_i64(&b_, res);
        vkd_key(&b_, "count");
        vkd_u64(&b_, n);
        vkd_key(&b_, "query");
        vkd_lit(&b_, pds ? "false" : "true");
        vkd_key(&b_, "known");
        vkd_lit(&b_, rec ? "true" : "false");
    }
    DONE();
    return res;
}

static VkResult create_device(VkPhysicalDevice pd, const VkDeviceCreateInfo *info,
                              const VkAllocationCallbacks *alloc, VkDevice *out) {
    VkLayerDeviceCreateInfo *chain = (VkLayerDeviceCreateInfo *)(info ? info->pNext : NULL);
    while (chain && !(chain->sType == VK_STRUCTURE_TYPE_LOADER_DEVICE_CREATE_INFO &&
                      chain->function == VK_LAYER_LINK_INFO))
        chain = (VkLayerDeviceCreateInfo *)chain->pNext;
    if (!chain || !chain->u.pLayerInfo) return VK_ERROR_INITIALIZATION_FAILED;
    PFN_vkGetInstanceProcAddr next_gipa = chain->u.pLayerInfo->pfnNextGetInstanceProcAddr;
    PFN_vkGetDeviceProcAddr next_gdpa = chain->u.pLayerInfo->pfnNextGetDeviceProcAddr;
    chain->u.pLayerInfo = chain->u.pLayerInfo->pNext;

    pthread_mutex_lock(&g_lock);
    struct inst_rec *irec = instance_of_pd(pd);
    VkInstance instance = irec ? irec->handle : NULL;
    pthread_mutex_unlock(&g_lock);
    PFN_vkCreateDevice next_create = (PFN_vkCreateDevice)next_gipa(instance, "vkCreateDevice");
    if (!next_create) return VK_ERROR_INITIALIZATION_FAILED;

    VkResult res = next_create(pd, info, alloc, out);
    VkDevice handle = (res == VK_SUCCESS && out) ? *out : NULL;
    PFN_vkVoidFunction anchor = NULL;
    if (handle) {
        struct dev_rec *rec = calloc(1, sizeof *rec);
        if (rec) {
            rec->handle = handle;
            rec->instance = instance;
            rec->gdpa = next_gdpa;
            rec->destroy = (PFN_vkDestroyDevice)next_gdpa(handle, "vkDestroyDevice");
            pthread_mutex_lock(&g_lock);
            rec->next = g_devices;
            g_devices = rec;
            remember_fast(handle, next_gdpa);
            pthread_mutex_unlock(&g_lock);
        }
        /* A command no layer normally intercepts: its address names the driver below us. */
        anchor = next_gdpa(handle, "vkCmdDispatch");
    }
    EVENT("create_device", 8192);
    if (on_) {
        vkd_key(&b_, "dev");
        vkd_hex(&b_, (uintptr_t)handle);
        vkd_key(&b_, "inst");
        vkd_hex(&b_, (uintptr_t)instance);
        vkd_key(&b_, "pd");
        vkd_hex(&b_, (uintptr_t)pd);
        vkd_key(&b_, "res");
        vkd_i64(&b_, res);
        vkd_key(&b_, "anchor");
        vkd_hex(&b_, (uintptr_t)anchor);
        if (info)
            emit_names(&b_, "exts", info->enabledExtensionCount, info->ppEnabledExtensionNames);
    }
    DONE();
    if (handle && on_) {
        char storage[32768];
        struct vkd_buf b;
        vkd_begin(&b, storage, sizeof storage, SRC, "device_nulls");
        vkd_key(&b, "dev");
        vkd_hex(&b, (uintptr_t)handle);
        vkd_key(&b, "names");
        vkd_lit(&b, "[");
        struct exports_scan scan = {handle, next_gdpa, &b, 0, 0};
        dl_iterate_phdr(scan_loader_exports, &scan);
        vkd_lit(&b, "]");
        vkd_end(&g_sink, &b);
    }
    return res;
}

static void destroy_device(VkDevice device, const VkAllocationCallbacks *alloc) {
    pthread_mutex_lock(&g_lock);
    struct dev_rec **link = &g_devices;
    while (*link && (*link)->handle != device) link = &(*link)->next;
    struct dev_rec *rec = *link;
    if (rec) *link = rec->next;
    pthread_mutex_unlock(&g_lock);
    EVENT("destroy_device", 512);
    if (on_) {
        vkd_key(&b_, "dev");
        vkd_hex(&b_, (uintptr_t)device);
        vkd_key(&b_, "known");
        vkd_lit(&b_, rec ? "true" : "false");
    }
    DONE();
    /* An unknown handle (already destroyed, or never created) is not passed down: there is
     * no next function to call, and the loader would crash on it anyway. */
    if (rec && rec->destroy) rec->destroy(device, alloc);
    free(rec);
}

/* ---- queue work in a forked child ---------------------------------------------------------- */

/* A child forked with a device alive inherits the program's function pointers, so its Vulkan
 * work never reaches vkGet*ProcAddr again.  The layer answers the submit and wait commands
 * with thin wrappers that note, once per command, that a forked child called them, and
 * otherwise only jump on: one flag test and one table lookup per call.  The table is
 * append-only and never freed, so it is read without a lock. */
typedef VkResult (*vkd_submit_fn)(void *, uint32_t, const void *, uint64_t);
typedef VkResult (*vkd_one_fn)(void *);
#define FAST_SLOTS 64
struct fast_dev {
    void *key; /* the dispatch pointer shared by the device and its queues */
    vkd_submit_fn submit, submit2, submit2_khr;
    vkd_one_fn queue_wait_idle, device_wait_idle;
};
static struct fast_dev g_fast[FAST_SLOTS];
static int g_nfast;
static volatile int g_in_forked_child;

static struct fast_dev *fast_for(const void *handle) {
    void *key = dispatch_key(handle);
    int n = __atomic_load_n(&g_nfast, __ATOMIC_ACQUIRE);
    for (int i = n - 1; i >= 0; --i)
        if (g_fast[i].key == key) return &g_fast[i];
    return NULL;
}

static void remember_fast(VkDevice device, PFN_vkGetDeviceProcAddr gdpa) {
    void *key = dispatch_key(device);
    if (fast_for(device) || g_nfast >= FAST_SLOTS) return; /* under g_lock: one writer */
    struct fast_dev *f = &g_fast[g_nfast];
    f->key = key;
    f->submit = (vkd_submit_fn)gdpa(device, "vkQueueSubmit");
    f->submit2 = (vkd_submit_fn)gdpa(device, "vkQueueSubmit2");
    f->submit2_khr = (vkd_submit_fn)gdpa(device, "vkQueueSubmit2KHR");
    f->queue_wait_idle = (vkd_one_fn)gdpa(device, "vkQueueWaitIdle");
    f->device_wait_idle = (vkd_one_fn)gdpa(device, "vkDeviceWaitIdle");
    __atomic_store_n(&g_nfast, g_nfast + 1, __ATOMIC_RELEASE);
}

static void note_child_call(const char *command, int *reported) {
    if (*reported) return;
    *reported = 1;
    EVENT("child_call", 256);
    if (on_) {
        vkd_key(&b_, "fn");
        vkd_str(&b_, command);
        vkd_key(&b_, "ppid");
        vkd_i64(&b_, (int64_t)getppid());
    }
    DONE();
}

#define CHILD_NOTE(name)                                   \
    do {                                                   \
        static int reported_;                              \
        if (g_in_forked_child) note_child_call(name, &reported_); \
    } while (0)

static VkResult wrap_queue_submit(void *q, uint32_t n, const void *s, uint64_t fence) {
    CHILD_NOTE("vkQueueSubmit");
    struct fast_dev *f = fast_for(q);
    return f && f->submit ? f->submit(q, n, s, fence) : VK_ERROR_INITIALIZATION_FAILED;
}

static VkResult wrap_queue_submit2(void *q, uint32_t n, const void *s, uint64_t fence) {
    CHILD_NOTE("vkQueueSubmit2");
    struct fast_dev *f = fast_for(q);
    return f && f->submit2 ? f->submit2(q, n, s, fence) : VK_ERROR_INITIALIZATION_FAILED;
}

static VkResult wrap_queue_submit2_khr(void *q, uint32_t n, const void *s, uint64_t fence) {
    CHILD_NOTE("vkQueueSubmit2KHR");
    struct fast_dev *f = fast_for(q);
    return f && f->submit2_khr ? f->submit2_khr(q, n, s, fence) : VK_ERROR_INITIALIZATION_FAILED;
}

static VkResult wrap_queue_wait_idle(void *q) {
    CHILD_NOTE("vkQueueWaitIdle");
    struct fast_dev *f = fast_for(q);
    return f && f->queue_wait_idle ? f->queue_wait_idle(q) : VK_ERROR_INITIALIZATION_FAILED;
}

static VkResult wrap_device_wait_idle(void *d) {
    CHILD_NOTE("vkDeviceWaitIdle");
    struct fast_dev *f = fast_for(d);
    return f && f->device_wait_idle ? f->device_wait_idle(d) : VK_ERROR_INITIALIZATION_FAILED;
}

/* Our wrapper for `name` where the device has the command (NULL stays NULL). */
static PFN_vkVoidFunction child_wrapper(VkDevice device, const char *name) {
    struct fast_dev *f = fast_for(device);
    if (!f || name[0] != 'v' || (name[2] != 'Q' && name[2] != 'D')) return NULL;
    if (vkd_streq(name, "vkQueueSubmit") && f->submit) return (PFN_vkVoidFunction)wrap_queue_submit;
    if (vkd_streq(name, "vkQueueSubmit2") && f->submit2)
        return (PFN_vkVoidFunction)wrap_queue_submit2;
    if (vkd_streq(name, "vkQueueSubmit2KHR") && f->submit2_khr)
        return (PFN_vkVoidFunction)wrap_queue_submit2_khr;
    if (vkd_streq(name, "vkQueueWaitIdle") && f->queue_wait_idle)
        return (PFN_vkVoidFunction)wrap_queue_wait_idle;
    if (vkd_streq(name, "vkDeviceWaitIdle") && f->device_wait_idle)
        return (PFN_vkVoidFunction)wrap_device_wait_idle;
    return NULL;
}

/* ---- proc-address entry points ----------------------------------------------------------- */

static PFN_vkVoidFunction layer_gdpa(VkDevice device, const char *name);

static PFN_vkVoidFunction layer_gipa(VkInstance instance, const char *name) {
    if (!name) return NULL;
    if (vkd_streq(name, "vkGetInstanceProcAddr")) return (PFN_vkVoidFunction)layer_gipa;
    if (vkd_streq(name, "vkCreateInstance")) return (PFN_vkVoidFunction)create_instance;
    if (vkd_streq(name, "vkDestroyInstance")) return (PFN_vkVoidFunction)destroy_instance;
    if (vkd_streq(name, "vkEnumeratePhysicalDevices"))
        return (PFN_vkVoidFunction)enumerate_physical_devices;
    if (vkd_streq(name, "vkCreateDevice")) return (PFN_vkVoidFunction)create_device;
    if (vkd_streq(name, "vkGetDeviceProcAddr")) return (PFN_vkVoidFunction)layer_gdpa;
    if (vkd_streq(name, "vkDestroyDevice")) return (PFN_vkVoidFunction)destroy_device;
    /* We implement no physical-device commands: the loader then skips us for those. */
    if (vkd_streq(name, "vk_layerGetPhysicalDeviceProcAddr")) return NULL;
    pthread_mutex_lock(&g_lock);
    struct inst_rec *rec = find_instance(instance);
    PFN_vkGetInstanceProcAddr next = rec ? rec->gipa : NULL;
    pthread_mutex_unlock(&g_lock);
    return next ? next(instance, name) : NULL;
}

static PFN_vkVoidFunction layer_gdpa(VkDevice device, const char *name) {
    if (!name) return NULL;
    if (vkd_streq(name, "vkGetDeviceProcAddr")) return (PFN_vkVoidFunction)layer_gdpa;
    if (vkd_streq(name, "vkDestroyDevice")) return (PFN_vkVoidFunction)destroy_device;
    PFN_vkVoidFunction wrapper = child_wrapper(device, name);
    if (wrapper) return wrapper;
    pthread_mutex_lock(&g_lock);
    struct dev_rec *rec = find_device(device);
    PFN_vkGetDeviceProcAddr next = rec ? rec->gdpa : NULL;
    pthread_mutex_unlock(&g_lock);
    return next ? next(device, name) : NULL;
}

EXPORT VkResult vkNegotiateLoaderLayerInterfaceVersion(VkNegotiateLayerInterface *iface) {
    if (!iface || iface->loaderLayerInterfaceVersion < 2) return VK_ERROR_INITIALIZATION_FAILED;
    iface->loaderLayerInterfaceVersion = 2;
    iface->pfnGetInstanceProcAddr = layer_gipa;
    iface->pfnGetDeviceProcAddr = layer_gdpa;
    iface->pfnGetPhysicalDeviceProcAddr = NULL;
    return VK_SUCCESS;
}

/* ---- library lifetime and fork ----------------------------------------------------------- */

static void after_fork_in_child(void) {
    /* Only the forking thread exists here; the lock may have been held by another thread. */
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    g_lock = fresh;
    g_in_forked_child = 1;
    EVENT("fork", 256);
    if (on_) {
        vkd_key(&b_, "ppid");
        vkd_i64(&b_, (int64_t)getppid());
        vkd_key(&b_, "live_instances");
        vkd_i64(&b_, count_instances());
        vkd_key(&b_, "live_devices");
        vkd_i64(&b_, count_devices());
    }
    DONE();
}

__attribute__((constructor)) static void layer_loaded(void) {
    const char *off = getenv("VKDOCTOR_TRACE_DISABLE");
    g_quiet = off != NULL; /* like the loader's disable_environment: defined at all means off */
    /* glibc drops this registration when the layer is dlclose'd (keyed by __dso_handle). */
    pthread_atfork(NULL, NULL, after_fork_in_child);
    /* Stay mapped when the loader dlcloses us (vkDestroyInstance): a program that still calls a
     * device command we answered (vkDestroyDevice) must then crash where it would crash
     * without the trace, in the driver, not in the former mapping of this layer. */
    Dl_info self;
    if (dladdr((void *)&layer_loaded, &self) && self.dli_fname)
        dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    EVENT("layer_load", 256);
    DONE();
}

__attribute__((destructor)) static void layer_unloaded(void) {
    EVENT("layer_unload", 256);
    if (on_) {
        vkd_key(&b_, "live_instances");
        vkd_i64(&b_, count_instances());
        vkd_key(&b_, "live_devices");
        vkd_i64(&b_, count_devices());
    }
    DONE();
}
