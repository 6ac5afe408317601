/* Many small compute dispatches: the workload of benchmarks/bench_trace.py, and a second
 * correct program for the no-false-positive tests.
 *
 * usage: dispatch_loop [N]   (default 200)
 * Each iteration records one vkCmdDispatch(1,1,1) of an empty compute shader, submits it and
 * waits on a fence: per-call overhead, not shader work, dominates.
 */
#include "vkrepro.h"

typedef struct {
    int32_t sType;
    const void *pNext;
    VkFlags flags;
    size_t codeSize;
    const uint32_t *pCode;
} VkShaderModuleCreateInfo;

typedef struct {
    int32_t sType;
    const void *pNext;
    VkFlags flags;
    uint32_t stage;
    VkShaderModule module;
    const char *pName;
    const void *pSpecializationInfo;
} VkPipelineShaderStageCreateInfo;

typedef struct {
    int32_t sType;
    const void *pNext;
    VkFlags flags;
    VkPipelineShaderStageCreateInfo stage;
    VkPipelineLayout layout;
    VkPipeline basePipelineHandle;
    int32_t basePipelineIndex;
} VkComputePipelineCreateInfo;

typedef struct {
    int32_t sType;
    const void *pNext;
    VkFlags flags;
    uint32_t setLayoutCount;
    const VkDescriptorSetLayout *pSetLayouts;
    uint32_t pushConstantRangeCount;
    const void *pPushConstantRanges;
} VkPipelineLayoutCreateInfo;

typedef struct {
    int32_t sType;
    const void *pNext;
    VkFlags flags;
    uint32_t queueFamilyIndex;
} VkCommandPoolCreateInfo;

typedef struct {
    int32_t sType;
    const void *pNext;
    VkCommandPool commandPool;
    uint32_t level;
    uint32_t commandBufferCount;
} VkCommandBufferAllocateInfo;

typedef struct {
    int32_t sType;
    const void *pNext;
    VkFlags flags;
    const void *pInheritanceInfo;
} VkCommandBufferBeginInfo;

typedef struct {
    int32_t sType;
    const void *pNext;
    VkFlags flags;
} VkFenceCreateInfo;

typedef struct {
    int32_t sType;
    const void *pNext;
    uint32_t waitSemaphoreCount;
    const void *pWaitSemaphores;
    const void *pWaitDstStageMask;
    uint32_t commandBufferCount;
    const VkCommandBuffer *pCommandBuffers;
    uint32_t signalSemaphoreCount;
    const void *pSignalSemaphores;
} VkSubmitInfo;

/* #version 450 / layout(local_size_x = 1) in; / void main() {}  (glslangValidator -V) */
static const uint32_t noop_spirv[] = {
    0x07230203, 0x00010000, 0x0008000b, 0x0000000a, 0x00000000, 0x00020011, 0x00000001,
    0x0006000b, 0x00000001, 0x4c534c47, 0x6474732e, 0x3035342e, 0x00000000, 0x0003000e,
    0x00000000, 0x00000001, 0x0005000f, 0x00000005, 0x00000004, 0x6e69616d, 0x00000000,
    0x00060010, 0x00000004, 0x00000011, 0x00000001, 0x00000001, 0x00000001, 0x00030003,
    0x00000002, 0x000001c2, 0x00040005, 0x00000004, 0x6e69616d, 0x00000000, 0x00040047,
    0x00000009, 0x0000000b, 0x00000019, 0x00020013, 0x00000002, 0x00030021, 0x00000003,
    0x00000002, 0x00040015, 0x00000006, 0x00000020, 0x00000000, 0x00040017, 0x00000007,
    0x00000006, 0x00000003, 0x0004002b, 0x00000006, 0x00000008, 0x00000001, 0x0006002c,
    0x00000007, 0x00000009, 0x00000008, 0x00000008, 0x00000008, 0x00050036, 0x00000002,
    0x00000004, 0x00000000, 0x00000003, 0x000200f8, 0x00000005, 0x000100fd, 0x00010038,
};

#define LOAD(var, type, name)                        \
    type var = (type)gdpa(dev, name);                \
    if (!var) DIE("vkGetDeviceProcAddr(%s) is NULL", name)

typedef VkResult (*PFN_create)(VkDevice, const void *, const void *, void *);
typedef VkResult (*PFN_create_pipelines)(VkDevice, VkPipelineCache, uint32_t,
                                         const VkComputePipelineCreateInfo *, const void *,
                                         VkPipeline *);
typedef void (*PFN_destroy)(VkDevice, uint64_t, const void *);
typedef VkResult (*PFN_alloc_cmd)(VkDevice, const VkCommandBufferAllocateInfo *,
                                  VkCommandBuffer *);
typedef VkResult (*PFN_begin)(VkCommandBuffer, const VkCommandBufferBeginInfo *);
typedef VkResult (*PFN_end)(VkCommandBuffer);
typedef void (*PFN_bind)(VkCommandBuffer, uint32_t, VkPipeline);
typedef void (*PFN_dispatch)(VkCommandBuffer, uint32_t, uint32_t, uint32_t);
typedef VkResult (*PFN_submit)(VkQueue, uint32_t, const VkSubmitInfo *, VkFence);
typedef VkResult (*PFN_wait)(VkDevice, uint32_t, const VkFence *, VkBool32, uint64_t);
typedef VkResult (*PFN_reset_fences)(VkDevice, uint32_t, const VkFence *);
typedef VkResult (*PFN_reset_cmd)(VkCommandBuffer, VkFlags);

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 200;
    PFN_vkGetInstanceProcAddr gipa;
    void *lib = open_loader(NULL, &gipa);
    VkInstance inst = make_instance(gipa);
    VkDevice dev = make_device(gipa, inst, first_physical_device(gipa, inst));
    PFN_vkGetDeviceProcAddr gdpa = (PFN_vkGetDeviceProcAddr)gipa(inst, "vkGetDeviceProcAddr");

    LOAD(get_queue, PFN_vkGetDeviceQueue, "vkGetDeviceQueue");
    LOAD(create_shader, PFN_create, "vkCreateShaderModule");
    LOAD(create_layout, PFN_create, "vkCreatePipelineLayout");
    LOAD(create_pipelines, PFN_create_pipelines, "vkCreateComputePipelines");
    LOAD(create_pool, PFN_create, "vkCreateCommandPool");
    LOAD(create_fence, PFN_create, "vkCreateFence");
    LOAD(alloc_cmd, PFN_alloc_cmd, "vkAllocateCommandBuffers");
    LOAD(begin, PFN_begin, "vkBeginCommandBuffer");
    LOAD(end, PFN_end, "vkEndCommandBuffer");
    LOAD(reset_cmd, PFN_reset_cmd, "vkResetCommandBuffer");
    LOAD(bind, PFN_bind, "vkCmdBindPipeline");
    LOAD(dispatch, PFN_dispatch, "vkCmdDispatch");
    LOAD(submit, PFN_submit, "vkQueueSubmit");
    LOAD(wait, PFN_wait, "vkWaitForFences");
    LOAD(reset_fences, PFN_reset_fences, "vkResetFences");
    LOAD(destroy_shader, PFN_destroy, "vkDestroyShaderModule");
    LOAD(destroy_layout, PFN_destroy, "vkDestroyPipelineLayout");
    LOAD(destroy_pipeline, PFN_destroy, "vkDestroyPipeline");
    LOAD(destroy_pool, PFN_destroy, "vkDestroyCommandPool");
    LOAD(destroy_fence, PFN_destroy, "vkDestroyFence");
    LOAD(destroy_device, PFN_vkDestroyDevice, "vkDestroyDevice");

    VkQueue queue = NULL;
    get_queue(dev, 0, 0, &queue);
    VkShaderModuleCreateInfo smci = {VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, NULL, 0,
                                     sizeof noop_spirv, noop_spirv};
    VkShaderModule shader = 0;
    if (create_shader(dev, &smci, NULL, &shader)) DIE("vkCreateShaderModule");
    VkPipelineLayoutCreateInfo plci = {VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, NULL, 0, 0,
                                       NULL, 0, NULL};
    VkPipelineLayout layout = 0;
    if (create_layout(dev, &plci, NULL, &layout)) DIE("vkCreatePipelineLayout");
    VkComputePipelineCreateInfo cpci = {
        VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO, NULL, 0,
        {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, NULL, 0,
         VK_SHADER_STAGE_COMPUTE_BIT, shader, "main", NULL},
        layout, 0, -1};
    VkPipeline pipeline = 0;
    if (create_pipelines(dev, 0, 1, &cpci, NULL, &pipeline)) DIE("vkCreateComputePipelines");
    VkCommandPoolCreateInfo cpool = {VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, NULL,
                                     VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, 0};
    VkCommandPool pool = 0;
    if (create_pool(dev, &cpool, NULL, &pool)) DIE("vkCreateCommandPool");
    VkCommandBufferAllocateInfo cbai = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, NULL,
                                        pool, VK_COMMAND_BUFFER_LEVEL_PRIMARY, 1};
    VkCommandBuffer cmd = NULL;
    if (alloc_cmd(dev, &cbai, &cmd)) DIE("vkAllocateCommandBuffers");
    VkFenceCreateInfo fci = {VK_STRUCTURE_TYPE_FENCE_CREATE_INFO, NULL, 0};
    VkFence fence = 0;
    if (create_fence(dev, &fci, NULL, &fence)) DIE("vkCreateFence");

    VkCommandBufferBeginInfo cbbi = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, NULL,
                                     VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT, NULL};
    VkSubmitInfo si = {VK_STRUCTURE_TYPE_SUBMIT_INFO, NULL, 0, NULL, NULL, 1, &cmd, 0, NULL};
    for (long i = 0; i < n; ++i) {
        reset_cmd(cmd, 0);
        begin(cmd, &cbbi);
        bind(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
        dispatch(cmd, 1, 1, 1);
        end(cmd);
        if (submit(queue, 1, &si, fence)) DIE("vkQueueSubmit");
        if (wait(dev, 1, &fence, 1, UINT64_MAX)) DIE("vkWaitForFences");
        reset_fences(dev, 1, &fence);
    }

    destroy_fence(dev, fence, NULL);
    destroy_pool(dev, pool, NULL);
    destroy_pipeline(dev, pipeline, NULL);
    destroy_layout(dev, layout, NULL);
    destroy_shader(dev, shader, NULL);
    destroy_device(dev, NULL);
    ((PFN_vkDestroyInstance)gipa(inst, "vkDestroyInstance"))(inst, NULL);
    dlclose(lib);
    printf("%ld dispatches\n", n);
    return 0;
}
