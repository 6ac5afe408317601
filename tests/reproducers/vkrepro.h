/* Shared scaffolding for the C reproducers of `vkdoctor trace`.
 *
 * The machines that run the tests have the Vulkan loader and lavapipe but not necessarily the
 * Vulkan headers, so the types come from vkdoctor's own vkdoctor_vk.h (plus the few more the
 * reproducers use here), with helpers that
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

#include "vkdoctor_vk.h" /* the Vulkan ABI slice, shared with vkdoctor's trace layer */

typedef uint64_t VkDeviceSize;
typedef struct VkQueue_T *VkQueue;
typedef struct VkCommandBuffer_T *VkCommandBuffer;
typedef uint64_t VkShaderModule, VkPipelineLayout, VkPipeline, VkCommandPool, VkFence,
    VkPipelineCache, VkDescriptorSetLayout;

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
