/* Device commands loaded with vkGetInstanceProcAddr(NULL, ...) before any instance exists:
 * loaders since 1.2.19x answer NULL for all of them.  The program then creates its instance
 * and device correctly and calls the first of the NULL pointers, vkGetDeviceQueue; the last
 * NULL it was given is vkQueueWaitIdle, which it never reaches. */
#include "vkrepro.h"

typedef VkResult (*PFN_vkQueueSubmit)(VkQueue, uint32_t, const void *, uint64_t);
typedef VkResult (*PFN_vkQueueWaitIdle)(VkQueue);

static PFN_vkGetDeviceQueue fn_get_device_queue;
static PFN_vkQueueSubmit fn_queue_submit;
static PFN_vkQueueWaitIdle fn_queue_wait_idle;

static void load_device_functions(PFN_vkGetInstanceProcAddr gipa) {
    fn_get_device_queue = (PFN_vkGetDeviceQueue)gipa(NULL, "vkGetDeviceQueue");
    fn_queue_submit = (PFN_vkQueueSubmit)gipa(NULL, "vkQueueSubmit");
    fn_queue_wait_idle = (PFN_vkQueueWaitIdle)gipa(NULL, "vkQueueWaitIdle");
}

__attribute__((noinline)) static VkQueue get_queue(VkDevice dev) {
    VkQueue queue = NULL;
    fn_get_device_queue(dev, 0, 0, &queue); /* the crash: NULL */
    return queue;
}

int main(void) {
    PFN_vkGetInstanceProcAddr gipa;
    open_loader(NULL, &gipa);
    load_device_functions(gipa);
    VkInstance inst = make_instance(gipa);
    VkDevice dev = make_device(gipa, inst, first_physical_device(gipa, inst));
    VkQueue queue = get_queue(dev);
    fn_queue_submit(queue, 0, NULL, 0);
    fn_queue_wait_idle(queue);
    printf("survived\n");
    return 0;
}
