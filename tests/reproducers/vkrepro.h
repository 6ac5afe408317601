/* Shared scaffolding for the C reproducers of `vkdoctor trace`.
 *
 * The machines that run the tests have the Vulkan loader and lavapipe but not necessarily the
 * Vulkan headers, so this declares the handful of types the reproducers use, and helpers that
 * create an instance and a device the correct way (dlsym only vkGetInstanceProcAddr, everything
 * else through vkGetInstanceProcAddr / vkGetDeviceProcAddr).  Each reproducer then breaks
 * exactly one rule.
 */
#ifndef VKREPRO_H
#define VKREPRO_H

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int32_t VkResult;
typedef uint32_t VkFlags;
typedef uint32_t VkBool32;
typedef uint64_t VkDeviceSize;
typedef struct VkInstance_T *VkInstance;
typedef struct VkPhysicalDevice_T *VkPhysicalDevice;
typedef struct VkDevice_T *VkDevice;
typedef struct VkQueue_T *VkQueue;
typedef struct VkCommandBuffer_T *VkCommandBuffer;
typedef uint64_t VkShaderModule, VkPipelineLayout, VkPipeline, VkCommandPool, VkFence,
    VkPipelineCache, VkDescriptorSetLayout;

typedef void (*PFN_vkVoidFunction)(void);
typedef PFN_vkVoidFunction (*PFN_vkGetInstanceProcAddr)(VkInstance, const char *);
typedef PFN_vkVoidFunction (*PFN_vkGetDeviceProcAddr)(VkDevice, const char *);

#define VK_SUCCESS 0
#define VK_STRUCTURE_TYPE_APPLICATION_INFO 0
#define VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO 1
#define VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO 2
#define VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO 3
#define VK_STRUCTURE_TYPE_SUBMIT_INFO 4
#define VK_STRUCTURE_TYPE_FENCE_CREATE_INFO 8
#define VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO 16
#define VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO 18
#define VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO 29
#define VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO 30
#define VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO 39
#define VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO 40
#define VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO 42
#define VK_API_VERSION_1_1 ((1u << 22) | (1u << 12))
#define VK_SHADER_STAGE_COMPUTE_BIT 0x20
#define VK_PIPELINE_BIND_POINT_COMPUTE 1
#define VK_COMMAND_BUFFER_LEVEL_PRIMARY 0
#define VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT 1
#define VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT 2

typedef struct {
    int32_t sType;
    const void *pNext;
    const char *pApplicationName;
    uint32_t applicationVersion;
    const char *pEngineName;
    uint32_t engineVersion;
    uint32_t apiVersion;
} VkApplicationInfo;

typedef struct {
    int32_t sType;
    const void *pNext;
    VkFlags flags;
    const VkApplicationInfo *pApplicationInfo;
    uint32_t enabledLayerCount;
    const char *const *ppEnabledLayerNames;
    uint32_t enabledExtensionCount;
    const char *const *ppEnabledExtensionNames;
} VkInstanceCreateInfo;

typedef struct {
    int32_t sType;
    const void *pNext;
    VkFlags flags;
    uint32_t queueFamilyIndex;
    uint32_t queueCount;
    const float *pQueuePriorities;
} VkDeviceQueueCreateInfo;

typedef struct {
    int32_t sType;
    const void *pNext;
    VkFlags flags;
    uint32_t queueCreateInfoCount;
    const VkDeviceQueueCreateInfo *pQueueCreateInfos;
    uint32_t enabledLayerCount;
    const char *const *ppEnabledLayerNames;
    uint32_t enabledExtensionCount;
    const char *const *ppEnabledExtensionNames;
    const void *pEnabledFeatures;
} VkDeviceCreateInfo;

typedef VkResult (*PFN_vkCreateInstance)(const VkInstanceCreateInfo *, const void *, VkInstance *);
typedef void (*PFN_vkDestroyInstance)(VkInstance, const void *);
typedef VkResult (*PFN_vkEnumeratePhysicalDevices)(VkInstance, uint32_t *, VkPhysicalDevice *);
typedef VkResult (*PFN_vkCreateDevice)(VkPhysicalDevice, const VkDeviceCreateInfo *, const void *,
                                       VkDevice *);
typedef void (*PFN_vkDestroyDevice)(VkDevice, const void *);
typedef VkResult (*PFN_vkDeviceWaitIdle)(VkDevice);
typedef void (*PFN_vkGetDeviceQueue)(VkDevice, uint32_t, uint32_t, VkQueue *);

#define DIE(...)                                  \
    do {                                          \
        fprintf(stderr, "reproducer: " __VA_ARGS__); \
        fprintf(stderr, "\n");                    \
        exit(90);                                 \
    } while (0)

/* The loader the correct way: dlopen, then dlsym of vkGetInstanceProcAddr only. */
static __attribute__((unused)) void *open_loader(const char *path, PFN_vkGetInstanceProcAddr *gipa) {
    void *lib = dlopen(path ? path : "libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) DIE("dlopen: %s", dlerror());
    *gipa = (PFN_vkGetInstanceProcAddr)dlsym(lib, "vkGetInstanceProcAddr");
    if (!*gipa) DIE("no vkGetInstanceProcAddr");
    return lib;
}

static __attribute__((unused)) VkInstance make_instance(PFN_vkGetInstanceProcAddr gipa) {
    PFN_vkCreateInstance create = (PFN_vkCreateInstance)gipa(NULL, "vkCreateInstance");
    VkApplicationInfo app = {VK_STRUCTURE_TYPE_APPLICATION_INFO, NULL, "vkrepro", 1, NULL, 0,
                             VK_API_VERSION_1_1};
    VkInstanceCreateInfo info = {VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, NULL, 0, &app, 0,
                                 NULL, 0, NULL};
    VkInstance instance = NULL;
    VkResult res = create(&info, NULL, &instance);
    if (res != VK_SUCCESS) DIE("vkCreateInstance: %d", res);
    return instance;
}

static __attribute__((unused)) VkPhysicalDevice first_physical_device(PFN_vkGetInstanceProcAddr gipa, VkInstance inst) {
    PFN_vkEnumeratePhysicalDevices enumerate =
        (PFN_vkEnumeratePhysicalDevices)gipa(inst, "vkEnumeratePhysicalDevices");
    uint32_t count = 1;
    VkPhysicalDevice pd = NULL;
    VkResult res = enumerate(inst, &count, &pd);
    if ((res != VK_SUCCESS && res != 5) || !pd) DIE("no physical device (%d)", res);
    return pd;
}

static __attribute__((unused)) VkDevice make_device(PFN_vkGetInstanceProcAddr gipa, VkInstance inst,
                            VkPhysicalDevice pd) {
    PFN_vkCreateDevice create = (PFN_vkCreateDevice)gipa(inst, "vkCreateDevice");
    float priority = 1.0f;
    VkDeviceQueueCreateInfo queue = {VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, NULL, 0, 0, 1,
                                     &priority};
    VkDeviceCreateInfo info = {VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, NULL, 0, 1, &queue, 0, NULL,
                               0, NULL, NULL};
    VkDevice device = NULL;
    VkResult res = create(pd, &info, NULL, &device);
    if (res != VK_SUCCESS) DIE("vkCreateDevice: %d", res);
    return device;
}

#endif
