/*
 * A Vulkan driver (ICD) for vkdoctor's tests that wraps Mesa's lavapipe and
 * misbehaves in exactly one way, chosen at compile time with -DFAULT_<NAME>.
 *
 * Without a FAULT_ macro (variant "ok") it is a complete, working driver: every
 * entry point the loader asks for is lavapipe's own, so the real loader, the
 * real lavapipe and real Vulkan objects are exercised; only the faulted entry
 * points are wrapped.  Build with tests/faultlib.py, which passes
 * -DLVP_PATH="\"/path/to/libvulkan_lvp.so\"" taken from lavapipe's manifest.
 *
 * No Vulkan headers are needed (CI machines only have the loader runtime): the
 * few types used are declared below with the ABI of vulkan_core.h / vk_icd.h.
 *
 * With VKFAULT_TRACE set in the environment, negotiation prints the interface
 * version it settles on ("vkfault driver (<variant>): negotiated interface
 * version N"), which the loader itself never logs.
 *
 * Variants (macro -> faultlib variant name; see DRIVER_VARIANTS there):
 *   FAULT_NEGOTIATE_CRASH        negotiate-crash
 *   FAULT_NEGOTIATE_HANG         negotiate-hang
 *   FAULT_NEGOTIATE_INCOMPATIBLE negotiate-incompatible
 *   FAULT_OLD_INTERFACE          old-interface
 *   FAULT_NO_EXPORTS             no-exports
 *   FAULT_NO_GIPA                no-gipa
 *   FAULT_CONSTRUCTOR_CRASH      constructor-crash
 *   FAULT_MISSING_DEPENDENCY     missing-dependency (linked against a helper
 *                                library the build deletes afterwards)
 *   FAULT_WRONG_ARCH             wrong-arch (built -m32 -nostdlib; see below)
 *   FAULT_CREATE_INSTANCE_CRASH  create-instance-crash
 *   FAULT_CREATE_INSTANCE_HANG   create-instance-hang
 *   FAULT_CREATE_INSTANCE_FAIL   create-instance-fail
 *   FAULT_ENUMERATE_CRASH        enumerate-crash
 *   FAULT_ENUMERATE_HANG         enumerate-hang
 *   FAULT_ZERO_DEVICES           zero-devices
 *   FAULT_CREATE_DEVICE_CRASH    create-device-crash
 *   FAULT_CREATE_DEVICE_HANG     create-device-hang
 *   FAULT_GDPA_NULL              gdpa-null
 *   FAULT_NO_COMPUTE             no-compute
 *   FAULT_DISPATCH_CRASH         dispatch-crash (vkCmdDispatch dereferences NULL)
 *   FAULT_DISPATCH_HANG          dispatch-hang (vkQueueSubmit never returns)
 *   FAULT_DISPATCH_LOST          dispatch-lost (vkQueueSubmit: VK_ERROR_DEVICE_LOST)
 *   FAULT_SUBMIT_OOM             submit-oom (vkQueueSubmit: VK_ERROR_OUT_OF_DEVICE_MEMORY)
 *   FAULT_SUBMIT_DROPPED         submit-dropped (vkQueueSubmit succeeds, runs nothing:
 *                                the fence never signals, as on a hung GPU)
 *   FAULT_CREATE_DEVICE_FAIL     create-device-fail (VK_ERROR_INITIALIZATION_FAILED)
 *   FAULT_GIPA_NO_CREATE_INSTANCE gipa-no-create-instance (GIPA(NULL, "vkCreateInstance")
 *                                is NULL, as the NVIDIA driver answers without its nodes)
 *   FAULT_EXTENSIONS_REFUSED     extensions-refused (vkCreateDevice with any extension
 *                                enabled: VK_ERROR_EXTENSION_NOT_PRESENT; without, it works)
 *   FAULT_OLD_REVISION           old-revision (reports VK_KHR_push_descriptor at specVersion 1
 *                                and hides its vkCmdPushDescriptorSetKHR, as a driver
 *                                implementing an older revision than the registry would)
 *   FAULT_BOUNDS_OFF_BY_ONE      bounds-off-by-one (vkCmdPushConstants stores the first
 *                                word, the element count n of vkdoctor's shaders, as n + 1:
 *                                the dispatch then really writes one element past the end)
 *   FAULT_PIPELINE_FAIL          pipeline-fail (vkCreateComputePipelines:
 *                                VK_ERROR_OUT_OF_DEVICE_MEMORY, no pipeline made)
 */

/* Every variant exports this, so a test (or a human with `nm -D`) can tell
 * which fault a library carries even when it exports nothing else. */
#ifndef FAULT_VARIANT_NAME
#define FAULT_VARIANT_NAME "unknown"
#endif
__attribute__((visibility("default"))) const char vkfault_driver_variant[] = FAULT_VARIANT_NAME;

#ifdef FAULT_WRONG_ARCH
/*
 * Built with `cc -m32 -shared -nostdlib -nostartfiles`, which works without a
 * 32-bit libc, so nothing here may include a header.  The loader's dlopen
 * fails with "wrong ELF class: ELFCLASS32" before any of this could run; the
 * exports only make the file look like a plausible driver to ELF inspection.
 */
__attribute__((visibility("default"))) int vk_icdNegotiateLoaderICDInterfaceVersion(
    unsigned int *version) {
    if (*version > 5) *version = 5;
    return 0;
}
__attribute__((visibility("default"))) void *vk_icdGetInstanceProcAddr(void *instance,
                                                                        const char *name) {
    (void)instance;
    (void)name;
    return 0;
}
__attribute__((visibility("default"))) void *vk_icdGetPhysicalDeviceProcAddr(void *instance,
                                                                              const char *name) {
    (void)instance;
    (void)name;
    return 0;
}
#else /* !FAULT_WRONG_ARCH */

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef LVP_PATH
#error "build with -DLVP_PATH=\"/path/to/libvulkan_lvp.so\""
#endif

#include "vkdoctor_vk.h" /* the Vulkan ABI slice, shared with vkdoctor's trace layer */

/* ---- Export control ------------------------------------------------------ */

/* The build uses -fvisibility=hidden, so only what is marked here is exported;
 * the no-exports / no-gipa variants simply leave the mark off. */
#define VKFAULT_EXPORT __attribute__((visibility("default")))

#if defined(FAULT_NO_EXPORTS)
#define EXPORT_NEGOTIATE
#define EXPORT_GIPA
#define EXPORT_GPDPA
#elif defined(FAULT_NO_GIPA)
#define EXPORT_NEGOTIATE VKFAULT_EXPORT
#define EXPORT_GIPA
#define EXPORT_GPDPA VKFAULT_EXPORT
#else
#define EXPORT_NEGOTIATE VKFAULT_EXPORT
#define EXPORT_GIPA VKFAULT_EXPORT
#define EXPORT_GPDPA VKFAULT_EXPORT
#endif

/* ---- Fault primitives ---------------------------------------------------- */

/* A volatile pointer the compiler cannot prove NULL, so the store stays a real
 * memory access (SIGSEGV) instead of being folded into a trap (SIGILL). */
static int *volatile vkfault_null;

__attribute__((unused, noinline)) static void vkfault_crash(const char *where) {
    fprintf(stderr, "vkfault driver (%s): crashing in %s\n", FAULT_VARIANT_NAME, where);
    fflush(stderr);
    *vkfault_null = 0xdead;
}

__attribute__((unused, noinline, noreturn)) static void vkfault_hang(const char *where) {
    fprintf(stderr, "vkfault driver (%s): hanging in %s\n", FAULT_VARIANT_NAME, where);
    fflush(stderr);
    for (;;) pause();
}

#ifdef FAULT_CONSTRUCTOR_CRASH
/* Runs inside the loader's dlopen, before any Vulkan entry point exists. */
__attribute__((constructor)) static void vkfault_constructor(void) {
    vkfault_crash("ELF constructor");
}
#endif

#ifdef FAULT_MISSING_DEPENDENCY
/* Defined in libvkdoctor_gone.so.1, which the build deletes after linking. */
extern int vkfault_gone_helper(void);
#endif

/* ---- lavapipe, loaded on first use ------------------------------------- */

static pthread_once_t lvp_once = PTHREAD_ONCE_INIT;
static PFN_vkGetInstanceProcAddr lvp_gipa;
static PFN_vkNegotiateLoaderICDInterfaceVersion lvp_negotiate;
static PFN_vkGetPhysicalDeviceProcAddr lvp_gpdpa;

static void lvp_load(void) {
    /* Deliberately never dlclose'd: lavapipe's objects may outlive our own
     * unload, and unloading LLVM-backed libraries is itself fragile. */
    void *lib = dlopen(LVP_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "vkfault driver: cannot load lavapipe: %s\n", dlerror());
        return;
    }
    lvp_negotiate = (PFN_vkNegotiateLoaderICDInterfaceVersion)dlsym(
        lib, "vk_icdNegotiateLoaderICDInterfaceVersion");
    lvp_gpdpa = (PFN_vkGetPhysicalDeviceProcAddr)dlsym(lib, "vk_icdGetPhysicalDeviceProcAddr");
    lvp_gipa = (PFN_vkGetInstanceProcAddr)dlsym(lib, "vk_icdGetInstanceProcAddr");
    if (!lvp_gipa) fprintf(stderr, "vkfault driver: %s lacks vk_icdGetInstanceProcAddr\n", LVP_PATH);
}

static int lvp_ready(void) {
    pthread_once(&lvp_once, lvp_load);
    return lvp_gipa != NULL;
}

/* lavapipe's pointers for the commands a variant wraps.  They are captured when
 * the loader queries them (the wrappers cannot ask lavapipe without an
 * instance); lavapipe returns the same static entry point for every instance. */
#define NEXT(name) static PFN_##name next_##name __attribute__((unused))
NEXT(vkCreateInstance);
NEXT(vkEnumeratePhysicalDevices);
NEXT(vkEnumeratePhysicalDeviceGroups);
NEXT(vkCreateDevice);
NEXT(vkGetDeviceProcAddr);
NEXT(vkGetPhysicalDeviceQueueFamilyProperties);
NEXT(vkGetPhysicalDeviceQueueFamilyProperties2);
static PFN_vkEnumeratePhysicalDeviceGroups next_vkEnumeratePhysicalDeviceGroupsKHR
    __attribute__((unused));
static PFN_vkGetPhysicalDeviceQueueFamilyProperties2 next_vkGetPhysicalDeviceQueueFamilyProperties2KHR
    __attribute__((unused));
#undef NEXT

#define LOAD_NEXT(var) __atomic_load_n(&(var), __ATOMIC_ACQUIRE)
#define STORE_NEXT(var, fn) __atomic_store_n(&(var), (fn), __ATOMIC_RELEASE)

/* ---- Wrapped entry points ---------------------------------------------- */

#if defined(FAULT_CREATE_INSTANCE_CRASH) || defined(FAULT_CREATE_INSTANCE_HANG) || \
    defined(FAULT_CREATE_INSTANCE_FAIL)
#define WRAP_CREATE_INSTANCE 1
static VkResult wrap_vkCreateInstance(const VkInstanceCreateInfo *info,
                                      const VkAllocationCallbacks *alloc, VkInstance *instance) {
#if defined(FAULT_CREATE_INSTANCE_CRASH)
    vkfault_crash("vkCreateInstance");
#elif defined(FAULT_CREATE_INSTANCE_HANG)
    vkfault_hang("vkCreateInstance");
#else
    (void)info;
    (void)alloc;
    (void)instance;
    return VK_ERROR_INITIALIZATION_FAILED;
#endif
    return LOAD_NEXT(next_vkCreateInstance)(info, alloc, instance);
}
#endif

#if defined(FAULT_ENUMERATE_CRASH) || defined(FAULT_ENUMERATE_HANG) || defined(FAULT_ZERO_DEVICES)
#define WRAP_ENUMERATE 1
static VkResult wrap_vkEnumeratePhysicalDevices(VkInstance instance, uint32_t *count,
                                                VkPhysicalDevice *devices) {
#if defined(FAULT_ENUMERATE_CRASH)
    vkfault_crash("vkEnumeratePhysicalDevices");
#elif defined(FAULT_ENUMERATE_HANG)
    vkfault_hang("vkEnumeratePhysicalDevices");
#else
    /* Like a driver that cannot open its device node: success, nothing found. */
    (void)instance;
    (void)devices;
    *count = 0;
    return VK_SUCCESS;
#endif
    return LOAD_NEXT(next_vkEnumeratePhysicalDevices)(instance, count, devices);
}

/* Groups must agree with the flat list, or the loader (which enumerates
 * through either) would see devices the driver claims not to have. */
static VkResult enumerate_groups(PFN_vkEnumeratePhysicalDeviceGroups next, VkInstance instance,
                                 uint32_t *count, VkPhysicalDeviceGroupProperties *groups) {
#if defined(FAULT_ENUMERATE_CRASH)
    vkfault_crash("vkEnumeratePhysicalDeviceGroups");
#elif defined(FAULT_ENUMERATE_HANG)
    vkfault_hang("vkEnumeratePhysicalDeviceGroups");
#else
    (void)next;
    (void)instance;
    (void)groups;
    *count = 0;
    return VK_SUCCESS;
#endif
    return next(instance, count, groups);
}

static VkResult wrap_vkEnumeratePhysicalDeviceGroups(VkInstance instance, uint32_t *count,
                                                     VkPhysicalDeviceGroupProperties *groups) {
    return enumerate_groups(LOAD_NEXT(next_vkEnumeratePhysicalDeviceGroups), instance, count,
                            groups);
}

static VkResult wrap_vkEnumeratePhysicalDeviceGroupsKHR(VkInstance instance, uint32_t *count,
                                                        VkPhysicalDeviceGroupProperties *groups) {
    return enumerate_groups(LOAD_NEXT(next_vkEnumeratePhysicalDeviceGroupsKHR), instance, count,
                            groups);
}
#endif

#if defined(FAULT_CREATE_DEVICE_CRASH) || defined(FAULT_CREATE_DEVICE_HANG) || \
    defined(FAULT_CREATE_DEVICE_FAIL) || defined(FAULT_EXTENSIONS_REFUSED)
#define WRAP_CREATE_DEVICE 1
static VkResult wrap_vkCreateDevice(VkPhysicalDevice gpu, const VkDeviceCreateInfo *info,
                                    const VkAllocationCallbacks *alloc, VkDevice *device) {
#if defined(FAULT_CREATE_DEVICE_CRASH)
    vkfault_crash("vkCreateDevice");
#elif defined(FAULT_CREATE_DEVICE_FAIL)
    (void)gpu, (void)info, (void)alloc, (void)device;
    return VK_ERROR_INITIALIZATION_FAILED;
#elif defined(FAULT_EXTENSIONS_REFUSED)
    /* Advertises its extensions but refuses any of them at device creation. */
    if (info->enabledExtensionCount > 0) return -7; /* VK_ERROR_EXTENSION_NOT_PRESENT */
#else
    vkfault_hang("vkCreateDevice");
#endif
    return LOAD_NEXT(next_vkCreateDevice)(gpu, info, alloc, device);
}
#endif

#if defined(FAULT_GDPA_NULL)
#define WRAP_GDPA 1
/* A required core 1.0 command; a NULL here is what FN-02 is about. */
#define GDPA_NULL_COMMAND "vkCreateBuffer"
static PFN_vkVoidFunction wrap_vkGetDeviceProcAddr(VkDevice device, const char *name) {
    if (strcmp(name, GDPA_NULL_COMMAND) == 0) return NULL;
    if (strcmp(name, "vkGetDeviceProcAddr") == 0) return (PFN_vkVoidFunction)wrap_vkGetDeviceProcAddr;
    return LOAD_NEXT(next_vkGetDeviceProcAddr)(device, name);
}
#endif

#if defined(FAULT_OLD_REVISION)
#define WRAP_OLD_REVISION 1
/* An extension whose registry revision (2) is above the 1 reported here, and one of its
 * commands; tests/faultlib.py names both too. */
#define OLD_REVISION_EXTENSION "VK_KHR_push_descriptor"
#define OLD_REVISION_COMMAND "vkCmdPushDescriptorSetKHR"
typedef VkResult (*vkfault_PFN_vkEnumerateDeviceExtensionProperties)(VkPhysicalDevice, const char *,
                                                                     uint32_t *,
                                                                     VkExtensionProperties *);
static vkfault_PFN_vkEnumerateDeviceExtensionProperties next_vkEnumerateDeviceExtensionProperties;

static VkResult wrap_vkEnumerateDeviceExtensionProperties(VkPhysicalDevice gpu, const char *layer,
                                                          uint32_t *count,
                                                          VkExtensionProperties *props) {
    VkResult result = LOAD_NEXT(next_vkEnumerateDeviceExtensionProperties)(gpu, layer, count, props);
    for (uint32_t i = 0; props && result >= 0 && i < *count; i++)
        if (strcmp(props[i].extensionName, OLD_REVISION_EXTENSION) == 0) props[i].specVersion = 1;
    return result;
}

static PFN_vkVoidFunction wrap_vkGetDeviceProcAddr(VkDevice device, const char *name) {
    if (strcmp(name, OLD_REVISION_COMMAND) == 0) return NULL;
    if (strcmp(name, "vkGetDeviceProcAddr") == 0) return (PFN_vkVoidFunction)wrap_vkGetDeviceProcAddr;
    return LOAD_NEXT(next_vkGetDeviceProcAddr)(device, name);
}
#endif

#if defined(FAULT_BOUNDS_OFF_BY_ONE)
#define WRAP_PUSH 1
typedef void (*vkfault_PFN_vkCmdPushConstants)(void *cmd, uint64_t layout, uint32_t stages,
                                               uint32_t offset, uint32_t size, const void *values);
static vkfault_PFN_vkCmdPushConstants next_vkCmdPushConstants;

static void wrap_vkCmdPushConstants(void *cmd, uint64_t layout, uint32_t stages, uint32_t offset,
                                    uint32_t size, const void *values) {
    unsigned char copy[256];
    if (offset == 0 && size >= 4 && size <= sizeof copy) {
        uint32_t n;
        memcpy(copy, values, size);
        memcpy(&n, copy, 4);
        n += 1;
        memcpy(copy, &n, 4);
        values = copy;
    }
    LOAD_NEXT(next_vkCmdPushConstants)(cmd, layout, stages, offset, size, values);
}

static PFN_vkVoidFunction wrap_vkGetDeviceProcAddr(VkDevice device, const char *name) {
    if (strcmp(name, "vkGetDeviceProcAddr") == 0) return (PFN_vkVoidFunction)wrap_vkGetDeviceProcAddr;
    PFN_vkVoidFunction real = LOAD_NEXT(next_vkGetDeviceProcAddr)(device, name);
    if (real && strcmp(name, "vkCmdPushConstants") == 0) {
        STORE_NEXT(next_vkCmdPushConstants, (vkfault_PFN_vkCmdPushConstants)real);
        return (PFN_vkVoidFunction)wrap_vkCmdPushConstants;
    }
    return real;
}
#endif

#if defined(FAULT_PIPELINE_FAIL)
#define WRAP_PIPELINE 1
/* Handles opaque, as for the dispatch wrappers; a failing call leaves every handle NULL. */
static VkResult wrap_vkCreateComputePipelines(void *device, uint64_t cache, uint32_t count,
                                              const void *infos, const void *alloc,
                                              uint64_t *pipelines) {
    (void)device, (void)cache, (void)infos, (void)alloc;
    for (uint32_t i = 0; i < count; i++) pipelines[i] = 0;
    return -2; /* VK_ERROR_OUT_OF_DEVICE_MEMORY */
}

static PFN_vkVoidFunction wrap_vkGetDeviceProcAddr(VkDevice device, const char *name) {
    if (strcmp(name, "vkGetDeviceProcAddr") == 0) return (PFN_vkVoidFunction)wrap_vkGetDeviceProcAddr;
    PFN_vkVoidFunction real = LOAD_NEXT(next_vkGetDeviceProcAddr)(device, name);
    if (real && strcmp(name, "vkCreateComputePipelines") == 0)
        return (PFN_vkVoidFunction)wrap_vkCreateComputePipelines;
    return real;
}
#endif

#if defined(FAULT_NO_COMPUTE)
#define WRAP_QUEUE_FAMILIES 1
static void wrap_vkGetPhysicalDeviceQueueFamilyProperties(VkPhysicalDevice gpu, uint32_t *count,
                                                          VkQueueFamilyProperties *props) {
    LOAD_NEXT(next_vkGetPhysicalDeviceQueueFamilyProperties)(gpu, count, props);
    for (uint32_t i = 0; props && i < *count; i++) props[i].queueFlags &= ~VK_QUEUE_COMPUTE_BIT;
}

static void strip_compute2(PFN_vkGetPhysicalDeviceQueueFamilyProperties2 next,
                           VkPhysicalDevice gpu, uint32_t *count,
                           VkQueueFamilyProperties2 *props) {
    next(gpu, count, props);
    for (uint32_t i = 0; props && i < *count; i++)
        props[i].queueFamilyProperties.queueFlags &= ~VK_QUEUE_COMPUTE_BIT;
}

static void wrap_vkGetPhysicalDeviceQueueFamilyProperties2(VkPhysicalDevice gpu, uint32_t *count,
                                                           VkQueueFamilyProperties2 *props) {
    strip_compute2(LOAD_NEXT(next_vkGetPhysicalDeviceQueueFamilyProperties2), gpu, count, props);
}

static void wrap_vkGetPhysicalDeviceQueueFamilyProperties2KHR(VkPhysicalDevice gpu,
                                                              uint32_t *count,
                                                              VkQueueFamilyProperties2 *props) {
    strip_compute2(LOAD_NEXT(next_vkGetPhysicalDeviceQueueFamilyProperties2KHR), gpu, count,
                   props);
}
#endif

#if defined(FAULT_DISPATCH_CRASH) || defined(FAULT_DISPATCH_HANG) || \
    defined(FAULT_DISPATCH_LOST) || defined(FAULT_SUBMIT_OOM) || defined(FAULT_SUBMIT_DROPPED)
#define WRAP_DISPATCH 1
/* Device-level commands reach the loader's dispatch table through the driver's
 * vkGetDeviceProcAddr, so that is where the two wrappers are handed out.  The
 * handles are opaque here (vkdoctor_vk.h carries no command-buffer types). */
typedef void (*vkfault_PFN_vkCmdDispatch)(void *cmd, uint32_t x, uint32_t y, uint32_t z);
typedef VkResult (*vkfault_PFN_vkQueueSubmit)(void *queue, uint32_t count, const void *submits,
                                              uint64_t fence);
static vkfault_PFN_vkCmdDispatch next_vkCmdDispatch;
static vkfault_PFN_vkQueueSubmit next_vkQueueSubmit;

static void wrap_vkCmdDispatch(void *cmd, uint32_t x, uint32_t y, uint32_t z) {
#if defined(FAULT_DISPATCH_CRASH)
    vkfault_crash("vkCmdDispatch");
#endif
    LOAD_NEXT(next_vkCmdDispatch)(cmd, x, y, z);
}

static VkResult wrap_vkQueueSubmit(void *queue, uint32_t count, const void *submits,
                                   uint64_t fence) {
#if defined(FAULT_DISPATCH_HANG)
    vkfault_hang("vkQueueSubmit");
#elif defined(FAULT_DISPATCH_LOST)
    return -4; /* VK_ERROR_DEVICE_LOST */
#elif defined(FAULT_SUBMIT_OOM)
    return -2; /* VK_ERROR_OUT_OF_DEVICE_MEMORY */
#elif defined(FAULT_SUBMIT_DROPPED)
    (void)queue, (void)count, (void)submits, (void)fence;
    return VK_SUCCESS;
#endif
    return LOAD_NEXT(next_vkQueueSubmit)(queue, count, submits, fence);
}

static PFN_vkVoidFunction wrap_vkGetDeviceProcAddr(VkDevice device, const char *name) {
    if (strcmp(name, "vkGetDeviceProcAddr") == 0) return (PFN_vkVoidFunction)wrap_vkGetDeviceProcAddr;
    PFN_vkVoidFunction real = LOAD_NEXT(next_vkGetDeviceProcAddr)(device, name);
    if (real && strcmp(name, "vkCmdDispatch") == 0) {
        STORE_NEXT(next_vkCmdDispatch, (vkfault_PFN_vkCmdDispatch)real);
        return (PFN_vkVoidFunction)wrap_vkCmdDispatch;
    }
    if (real && strcmp(name, "vkQueueSubmit") == 0) {
        STORE_NEXT(next_vkQueueSubmit, (vkfault_PFN_vkQueueSubmit)real);
        return (PFN_vkVoidFunction)wrap_vkQueueSubmit;
    }
    return real;
}
#endif

/* Swap lavapipe's pointer for a wrapper, remembering lavapipe's.  A NULL from
 * lavapipe stays NULL so we never advertise what lavapipe lacks. */
#define INTERCEPT(cmd, wrapper, next)                                   \
    if (strcmp(name, cmd) == 0) {                                       \
        PFN_vkVoidFunction real = lookup(instance, name);               \
        if (!real) return NULL;                                         \
        STORE_NEXT(next, (__typeof__(next))real);                       \
        return (PFN_vkVoidFunction)(wrapper);                           \
    }

/* Returns lavapipe's pointer (found with `lookup`, its GIPA or GPDPA), or a
 * wrapper for the commands this variant faults. */
static PFN_vkVoidFunction proc_addr(PFN_vkGetInstanceProcAddr lookup, VkInstance instance,
                                    const char *name) {
#ifdef WRAP_CREATE_INSTANCE
    INTERCEPT("vkCreateInstance", wrap_vkCreateInstance, next_vkCreateInstance)
#endif
#ifdef WRAP_ENUMERATE
    INTERCEPT("vkEnumeratePhysicalDevices", wrap_vkEnumeratePhysicalDevices,
              next_vkEnumeratePhysicalDevices)
    INTERCEPT("vkEnumeratePhysicalDeviceGroups", wrap_vkEnumeratePhysicalDeviceGroups,
              next_vkEnumeratePhysicalDeviceGroups)
    INTERCEPT("vkEnumeratePhysicalDeviceGroupsKHR", wrap_vkEnumeratePhysicalDeviceGroupsKHR,
              next_vkEnumeratePhysicalDeviceGroupsKHR)
#endif
#ifdef WRAP_CREATE_DEVICE
    INTERCEPT("vkCreateDevice", wrap_vkCreateDevice, next_vkCreateDevice)
#endif
#ifdef WRAP_GDPA
    INTERCEPT("vkGetDeviceProcAddr", wrap_vkGetDeviceProcAddr, next_vkGetDeviceProcAddr)
    /* lavapipe also answers device commands through GIPA; keep both paths agreeing. */
    if (strcmp(name, GDPA_NULL_COMMAND) == 0) return NULL;
#endif
#ifdef WRAP_OLD_REVISION
    INTERCEPT("vkGetDeviceProcAddr", wrap_vkGetDeviceProcAddr, next_vkGetDeviceProcAddr)
    INTERCEPT("vkEnumerateDeviceExtensionProperties", wrap_vkEnumerateDeviceExtensionProperties,
              next_vkEnumerateDeviceExtensionProperties)
    if (strcmp(name, OLD_REVISION_COMMAND) == 0) return NULL;
#endif
#ifdef WRAP_PUSH
    INTERCEPT("vkGetDeviceProcAddr", wrap_vkGetDeviceProcAddr, next_vkGetDeviceProcAddr)
    INTERCEPT("vkCmdPushConstants", wrap_vkCmdPushConstants, next_vkCmdPushConstants)
#endif
#ifdef WRAP_PIPELINE
    INTERCEPT("vkGetDeviceProcAddr", wrap_vkGetDeviceProcAddr, next_vkGetDeviceProcAddr)
    if (strcmp(name, "vkCreateComputePipelines") == 0 && lookup(instance, name))
        return (PFN_vkVoidFunction)wrap_vkCreateComputePipelines;
#endif
#ifdef WRAP_DISPATCH
    INTERCEPT("vkGetDeviceProcAddr", wrap_vkGetDeviceProcAddr, next_vkGetDeviceProcAddr)
    INTERCEPT("vkCmdDispatch", wrap_vkCmdDispatch, next_vkCmdDispatch)
    INTERCEPT("vkQueueSubmit", wrap_vkQueueSubmit, next_vkQueueSubmit)
#endif
#ifdef WRAP_QUEUE_FAMILIES
    INTERCEPT("vkGetPhysicalDeviceQueueFamilyProperties",
              wrap_vkGetPhysicalDeviceQueueFamilyProperties,
              next_vkGetPhysicalDeviceQueueFamilyProperties)
    INTERCEPT("vkGetPhysicalDeviceQueueFamilyProperties2",
              wrap_vkGetPhysicalDeviceQueueFamilyProperties2,
              next_vkGetPhysicalDeviceQueueFamilyProperties2)
    INTERCEPT("vkGetPhysicalDeviceQueueFamilyProperties2KHR",
              wrap_vkGetPhysicalDeviceQueueFamilyProperties2KHR,
              next_vkGetPhysicalDeviceQueueFamilyProperties2KHR)
#endif
    return lookup(instance, name);
}

/* ---- The loader-facing interface (vk_icd.h) ----------------------------- */

EXPORT_NEGOTIATE VkResult vk_icdNegotiateLoaderICDInterfaceVersion(uint32_t *version);
EXPORT_GPDPA PFN_vkVoidFunction vk_icdGetPhysicalDeviceProcAddr(VkInstance instance,
                                                                const char *name);

EXPORT_GIPA PFN_vkVoidFunction vk_icdGetInstanceProcAddr(VkInstance instance, const char *name) {
    if (!lvp_ready()) return NULL;
    /* Interface 7 lets the loader reach these through GIPA(NULL, ...) too; answer
     * with ours so lavapipe's never bypass the wrapper. */
    if (strcmp(name, "vk_icdNegotiateLoaderICDInterfaceVersion") == 0)
        return (PFN_vkVoidFunction)vk_icdNegotiateLoaderICDInterfaceVersion;
    if (strcmp(name, "vk_icdGetPhysicalDeviceProcAddr") == 0)
        return (PFN_vkVoidFunction)vk_icdGetPhysicalDeviceProcAddr;
    if (strcmp(name, "vkGetInstanceProcAddr") == 0)
        return (PFN_vkVoidFunction)vk_icdGetInstanceProcAddr;
#if defined(FAULT_GIPA_NO_CREATE_INSTANCE)
    if (instance == NULL && strcmp(name, "vkCreateInstance") == 0) return NULL;
#endif
    return proc_addr(lvp_gipa, instance, name);
}

EXPORT_GPDPA PFN_vkVoidFunction vk_icdGetPhysicalDeviceProcAddr(VkInstance instance,
                                                                const char *name) {
    if (!lvp_ready() || !lvp_gpdpa) return NULL;
    /* lavapipe's GPDPA answers only physical-device commands, as the loader
     * requires, so wrappers of other levels are never handed out here. */
    return proc_addr(lvp_gpdpa, instance, name);
}

EXPORT_NEGOTIATE VkResult vk_icdNegotiateLoaderICDInterfaceVersion(uint32_t *version) {
#if defined(FAULT_NEGOTIATE_CRASH)
    vkfault_crash("vk_icdNegotiateLoaderICDInterfaceVersion");
#elif defined(FAULT_NEGOTIATE_HANG)
    vkfault_hang("vk_icdNegotiateLoaderICDInterfaceVersion");
#elif defined(FAULT_NEGOTIATE_INCOMPATIBLE)
    (void)version;
    return VK_ERROR_INCOMPATIBLE_DRIVER;
#elif defined(FAULT_NO_GIPA)
    /* Claims a modern interface, then lacks the entry point it implies. */
    if (*version > 5) *version = 5;
    return VK_SUCCESS;
#endif
#ifdef FAULT_MISSING_DEPENDENCY
    /* Never reached in tests (dlopen fails first); makes the dependency real. */
    (void)vkfault_gone_helper();
#endif
    if (!lvp_ready() || !lvp_negotiate) return VK_ERROR_INCOMPATIBLE_DRIVER;
    VkResult result = lvp_negotiate(version);
#if defined(FAULT_OLD_INTERFACE)
    /* lavapipe keeps whatever it negotiated; the loader is told 1, which it
     * accepts but flags for a manifest claiming Vulkan >= 1.1 (LDP_DRIVER_7). */
    if (result == VK_SUCCESS) *version = 1;
#endif
    if (getenv("VKFAULT_TRACE"))
        fprintf(stderr, "vkfault driver (%s): negotiated interface version %u, result %d\n",
                FAULT_VARIANT_NAME, *version, result);
    return result;
}

#endif /* !FAULT_WRONG_ARCH */
