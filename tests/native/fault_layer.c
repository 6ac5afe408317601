/*
 * A minimal pass-through Vulkan layer for vkdoctor's tests (loader-layer
 * interface version 2), broken in one way chosen at compile time:
 *
 *   (none)                       ok: correct pass-through
 *   FAULT_CREATE_INSTANCE_CRASH  create-instance-crash: SIGSEGV in vkCreateInstance
 *   FAULT_CREATE_INSTANCE_HANG   create-instance-hang: blocks forever in vkCreateInstance
 *   FAULT_CREATE_DEVICE_CRASH    create-device-crash: SIGSEGV in vkCreateDevice
 *   FAULT_NEGOTIATE_FAIL         negotiate-fail: negotiation returns
 *                                VK_ERROR_INITIALIZATION_FAILED (GIPA/GDPA still
 *                                exported, as a real layer would have them)
 *   FAULT_NO_NEGOTIATE           no-negotiate: exports neither the negotiate
 *                                function nor vkGetInstanceProcAddr
 *   FAULT_GIPA_UNEXPECTED        gipa-unexpected: answers UNEXPECTED_COMMAND, a
 *                                physical-device command of an instance
 *                                extension, whether or not the application
 *                                enabled that extension (the spec says NULL
 *                                then), from vkGetInstanceProcAddr and from
 *                                vk_layerGetPhysicalDeviceProcAddr
 *
 * It wraps no handles: it only intercepts create/destroy, walks the loader's
 * chain info and remembers the next layer's proc-addr functions.  No Vulkan
 * headers are needed; the few types below follow vulkan_core.h / vk_layer.h.
 *
 * With VKFAULT_TRACE set in the environment, every intercepted call prints
 * "vkfault layer (<variant>): <call> ..." to stderr, so tests can tell a layer
 * the loader merely inserted from one that actually sits in the call chain.
 */

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FAULT_VARIANT_NAME
#define FAULT_VARIANT_NAME "unknown"
#endif
__attribute__((visibility("default"))) const char vkfault_layer_variant[] = FAULT_VARIANT_NAME;

#include "vkdoctor_vk.h" /* the Vulkan ABI slice, shared with vkdoctor's trace layer */

/* ---- Tracing and fault primitives ----------------------------------------- */

__attribute__((format(printf, 1, 2))) static void trace(const char *fmt, ...) {
    if (!getenv("VKFAULT_TRACE")) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vkfault layer (%s): ", FAULT_VARIANT_NAME);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
    va_end(ap);
}

/* Volatile so the store stays a real access (SIGSEGV), not a folded trap. */
static int *volatile vkfault_null;

__attribute__((unused, noinline)) static void vkfault_crash(const char *where) {
    fprintf(stderr, "vkfault layer (%s): crashing in %s\n", FAULT_VARIANT_NAME, where);
    fflush(stderr);
    *vkfault_null = 0xdead;
}

__attribute__((unused, noinline, noreturn)) static void vkfault_hang(const char *where) {
    fprintf(stderr, "vkfault layer (%s): hanging in %s\n", FAULT_VARIANT_NAME, where);
    fflush(stderr);
    for (;;) pause();
}

/* ---- Per-instance / per-device state ----------------------------------- */

/* Dispatchable handles begin with the loader's dispatch-table pointer; it is
 * the same for an instance and its physical devices, so it identifies the
 * instance a physical device belongs to (the usual layer idiom). */
typedef void *DispatchKey;
static DispatchKey key_of(const void *handle) { return *(DispatchKey const *)handle; }

/* A handful of live instances/devices is plenty for tests; fixed arrays keep
 * the layer free of allocation failures. */
#define MAX_OBJECTS 64

typedef struct {
    DispatchKey key;
    VkInstance instance;
    PFN_vkGetInstanceProcAddr next_gipa;
    PFN_vkDestroyInstance next_destroy;
} InstanceEntry;

typedef struct {
    DispatchKey key;
    PFN_vkGetDeviceProcAddr next_gdpa;
    PFN_vkDestroyDevice next_destroy;
} DeviceEntry;

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static InstanceEntry instances[MAX_OBJECTS];
static DeviceEntry devices[MAX_OBJECTS];

static int add_instance(InstanceEntry entry) {
    int ok = 0;
    pthread_mutex_lock(&table_lock);
    for (int i = 0; i < MAX_OBJECTS && !ok; i++)
        if (!instances[i].key) instances[i] = entry, ok = 1;
    pthread_mutex_unlock(&table_lock);
    return ok;
}

static int find_instance(DispatchKey key, InstanceEntry *out, int remove) {
    int found = 0;
    pthread_mutex_lock(&table_lock);
    for (int i = 0; i < MAX_OBJECTS && !found; i++) {
        if (instances[i].key == key) {
            *out = instances[i];
            if (remove) memset(&instances[i], 0, sizeof instances[i]);
            found = 1;
        }
    }
    pthread_mutex_unlock(&table_lock);
    return found;
}

static int add_device(DeviceEntry entry) {
    int ok = 0;
    pthread_mutex_lock(&table_lock);
    for (int i = 0; i < MAX_OBJECTS && !ok; i++)
        if (!devices[i].key) devices[i] = entry, ok = 1;
    pthread_mutex_unlock(&table_lock);
    return ok;
}

static int find_device(DispatchKey key, DeviceEntry *out, int remove) {
    int found = 0;
    pthread_mutex_lock(&table_lock);
    for (int i = 0; i < MAX_OBJECTS && !found; i++) {
        if (devices[i].key == key) {
            *out = devices[i];
            if (remove) memset(&devices[i], 0, sizeof devices[i]);
            found = 1;
        }
    }
    pthread_mutex_unlock(&table_lock);
    return found;
}

/* ---- Chain walking ------------------------------------------------------- */

/* The loader puts one VK_LAYER_LINK_INFO struct in pNext; its pLayerInfo is
 * this layer's link.  Casting away const to advance it is what vk_layer.h's
 * protocol requires: the next layer must find its own link there. */
static VkLayerInstanceCreateInfo *instance_link_info(const VkInstanceCreateInfo *info) {
    const VkBaseInStructure *s = info->pNext;
    for (; s; s = s->pNext) {
        const VkLayerInstanceCreateInfo *c = (const VkLayerInstanceCreateInfo *)s;
        if (s->sType == VK_STRUCTURE_TYPE_LOADER_INSTANCE_CREATE_INFO &&
            c->function == VK_LAYER_LINK_INFO)
            return (VkLayerInstanceCreateInfo *)c;
    }
    return NULL;
}

static VkLayerDeviceCreateInfo *device_link_info(const VkDeviceCreateInfo *info) {
    const VkBaseInStructure *s = info->pNext;
    for (; s; s = s->pNext) {
        const VkLayerDeviceCreateInfo *c = (const VkLayerDeviceCreateInfo *)s;
        if (s->sType == VK_STRUCTURE_TYPE_LOADER_DEVICE_CREATE_INFO &&
            c->function == VK_LAYER_LINK_INFO)
            return (VkLayerDeviceCreateInfo *)c;
    }
    return NULL;
}

/* ---- Intercepted commands ------------------------------------------------ */

static VkResult layer_CreateInstance(const VkInstanceCreateInfo *info,
                                     const VkAllocationCallbacks *alloc, VkInstance *instance) {
    trace("vkCreateInstance");
#if defined(FAULT_CREATE_INSTANCE_CRASH)
    vkfault_crash("vkCreateInstance");
#elif defined(FAULT_CREATE_INSTANCE_HANG)
    vkfault_hang("vkCreateInstance");
#endif
    VkLayerInstanceCreateInfo *chain = instance_link_info(info);
    if (!chain || !chain->u.pLayerInfo) return VK_ERROR_INITIALIZATION_FAILED;
    PFN_vkGetInstanceProcAddr next_gipa = chain->u.pLayerInfo->pfnNextGetInstanceProcAddr;
    PFN_vkCreateInstance next_create =
        (PFN_vkCreateInstance)next_gipa(NULL, "vkCreateInstance");
    if (!next_create) return VK_ERROR_INITIALIZATION_FAILED;

    chain->u.pLayerInfo = chain->u.pLayerInfo->pNext;
    VkResult result = next_create(info, alloc, instance);
    trace("vkCreateInstance -> %d", result);
    if (result != VK_SUCCESS) return result;

    InstanceEntry entry = {
        .key = key_of(*instance),
        .instance = *instance,
        .next_gipa = next_gipa,
        .next_destroy = (PFN_vkDestroyInstance)next_gipa(*instance, "vkDestroyInstance"),
    };
    if (!add_instance(entry)) {
        if (entry.next_destroy) entry.next_destroy(*instance, alloc);
        return VK_ERROR_OUT_OF_HOST_MEMORY;
    }
    return VK_SUCCESS;
}

static void layer_DestroyInstance(VkInstance instance, const VkAllocationCallbacks *alloc) {
    trace("vkDestroyInstance");
    InstanceEntry entry;
    if (!instance || !find_instance(key_of(instance), &entry, 1)) return;
    if (entry.next_destroy) entry.next_destroy(instance, alloc);
}

static VkResult layer_CreateDevice(VkPhysicalDevice gpu, const VkDeviceCreateInfo *info,
                                   const VkAllocationCallbacks *alloc, VkDevice *device) {
    trace("vkCreateDevice");
#if defined(FAULT_CREATE_DEVICE_CRASH)
    vkfault_crash("vkCreateDevice");
#endif
    VkLayerDeviceCreateInfo *chain = device_link_info(info);
    InstanceEntry owner;
    if (!chain || !chain->u.pLayerInfo || !find_instance(key_of(gpu), &owner, 0))
        return VK_ERROR_INITIALIZATION_FAILED;
    PFN_vkGetInstanceProcAddr next_gipa = chain->u.pLayerInfo->pfnNextGetInstanceProcAddr;
    PFN_vkGetDeviceProcAddr next_gdpa = chain->u.pLayerInfo->pfnNextGetDeviceProcAddr;
    PFN_vkCreateDevice next_create =
        (PFN_vkCreateDevice)next_gipa(owner.instance, "vkCreateDevice");
    if (!next_create) return VK_ERROR_INITIALIZATION_FAILED;

    chain->u.pLayerInfo = chain->u.pLayerInfo->pNext;
    VkResult result = next_create(gpu, info, alloc, device);
    trace("vkCreateDevice -> %d", result);
    if (result != VK_SUCCESS) return result;

    DeviceEntry entry = {
        .key = key_of(*device),
        .next_gdpa = next_gdpa,
        .next_destroy = (PFN_vkDestroyDevice)next_gdpa(*device, "vkDestroyDevice"),
    };
    if (!add_device(entry)) {
        if (entry.next_destroy) entry.next_destroy(*device, alloc);
        return VK_ERROR_OUT_OF_HOST_MEMORY;
    }
    return VK_SUCCESS;
}

static void layer_DestroyDevice(VkDevice device, const VkAllocationCallbacks *alloc) {
    trace("vkDestroyDevice");
    DeviceEntry entry;
    if (!device || !find_device(key_of(device), &entry, 1)) return;
    if (entry.next_destroy) entry.next_destroy(device, alloc);
}

/* ---- A command the instance should not have ------------------------------ */

#ifdef FAULT_GIPA_UNEXPECTED
/* VK_SEC_ubm_surface (registry 1.4.3xx) is newer than loader 1.3.239, so the
 * loader does not know the name and asks the layers (unknown_function_handling.c):
 * a pointer from this layer makes the loader return a trampoline for it. */
#define UNEXPECTED_COMMAND "vkGetPhysicalDeviceUbmPresentationSupportSEC"

static VkBool32 layer_GetPhysicalDeviceUbmPresentationSupportSEC(VkPhysicalDevice gpu,
                                                                  uint32_t queue_family,
                                                                  void *ubm_device) {
    (void)gpu, (void)queue_family, (void)ubm_device;
    trace(UNEXPECTED_COMMAND);
    return 0; /* VK_FALSE: this layer presents nothing */
}

static PFN_vkVoidFunction unexpected_command(const char *name) {
    if (strcmp(name, UNEXPECTED_COMMAND) == 0)
        return (PFN_vkVoidFunction)layer_GetPhysicalDeviceUbmPresentationSupportSEC;
    return NULL;
}

__attribute__((visibility("default"))) PFN_vkVoidFunction vk_layerGetPhysicalDeviceProcAddr(
    VkInstance instance, const char *name) {
    (void)instance;
    return unexpected_command(name);
}
#endif

/* ---- Proc-addr entry points and negotiation ----------------------------- */

#ifdef FAULT_NO_NEGOTIATE
#define EXPORT_GIPA
#define EXPORT_NEGOTIATE
#else
#define EXPORT_GIPA __attribute__((visibility("default")))
#define EXPORT_NEGOTIATE __attribute__((visibility("default")))
#endif
#define EXPORT_GDPA __attribute__((visibility("default")))

EXPORT_GDPA PFN_vkVoidFunction vkGetDeviceProcAddr(VkDevice device, const char *name);

EXPORT_GIPA PFN_vkVoidFunction vkGetInstanceProcAddr(VkInstance instance, const char *name) {
    if (strcmp(name, "vkGetInstanceProcAddr") == 0)
        return (PFN_vkVoidFunction)vkGetInstanceProcAddr;
    if (strcmp(name, "vkCreateInstance") == 0) return (PFN_vkVoidFunction)layer_CreateInstance;
    if (strcmp(name, "vkDestroyInstance") == 0) return (PFN_vkVoidFunction)layer_DestroyInstance;
    if (strcmp(name, "vkCreateDevice") == 0) return (PFN_vkVoidFunction)layer_CreateDevice;
    if (strcmp(name, "vkGetDeviceProcAddr") == 0) return (PFN_vkVoidFunction)vkGetDeviceProcAddr;
    if (strcmp(name, "vkDestroyDevice") == 0) return (PFN_vkVoidFunction)layer_DestroyDevice;

#ifdef FAULT_GIPA_UNEXPECTED
    if (instance && unexpected_command(name)) return unexpected_command(name);
#endif
    /* Global commands other than vkCreateInstance are the loader's business. */
    InstanceEntry entry;
    if (!instance || !find_instance(key_of(instance), &entry, 0)) return NULL;
    return entry.next_gipa(instance, name);
}

EXPORT_GDPA PFN_vkVoidFunction vkGetDeviceProcAddr(VkDevice device, const char *name) {
    if (strcmp(name, "vkGetDeviceProcAddr") == 0) return (PFN_vkVoidFunction)vkGetDeviceProcAddr;
    if (strcmp(name, "vkDestroyDevice") == 0) return (PFN_vkVoidFunction)layer_DestroyDevice;
    DeviceEntry entry;
    if (!device || !find_device(key_of(device), &entry, 0)) return NULL;
    return entry.next_gdpa(device, name);
}

EXPORT_NEGOTIATE VkResult vkNegotiateLoaderLayerInterfaceVersion(
    VkNegotiateLayerInterface *iface) {
    trace("vkNegotiateLoaderLayerInterfaceVersion offered %u",
          iface ? iface->loaderLayerInterfaceVersion : 0u);
#if defined(FAULT_NEGOTIATE_FAIL)
    trace("vkNegotiateLoaderLayerInterfaceVersion -> %d", VK_ERROR_INITIALIZATION_FAILED);
    return VK_ERROR_INITIALIZATION_FAILED;
#else
    if (!iface || iface->sType != LAYER_NEGOTIATE_INTERFACE_STRUCT)
        return VK_ERROR_INITIALIZATION_FAILED;
    if (iface->loaderLayerInterfaceVersion >= 2) {
        iface->loaderLayerInterfaceVersion = 2;
        iface->pfnGetInstanceProcAddr = vkGetInstanceProcAddr;
        iface->pfnGetDeviceProcAddr = vkGetDeviceProcAddr;
#ifdef FAULT_GIPA_UNEXPECTED
        iface->pfnGetPhysicalDeviceProcAddr = vk_layerGetPhysicalDeviceProcAddr;
#else
        /* No handle wrapping, so no physical-device extension interception. */
        iface->pfnGetPhysicalDeviceProcAddr = NULL;
#endif
    }
    trace("vkNegotiateLoaderLayerInterfaceVersion -> 0, version %u",
          iface->loaderLayerInterfaceVersion);
    return VK_SUCCESS;
#endif
}
