/* FN-02: vkGetDeviceProcAddr returns NULL for a command of an extension that was not enabled
 * (VK_KHR_push_descriptor), and the program calls it without checking: jump to address 0. */
#include "vkrepro.h"

typedef void (*PFN_vkCmdPushDescriptorSetKHR)(VkCommandBuffer, int, uint64_t, uint32_t, uint32_t,
                                              const void *);

int main(void) {
    PFN_vkGetInstanceProcAddr gipa;
    open_loader(NULL, &gipa);
    VkInstance inst = make_instance(gipa);
    VkDevice dev = make_device(gipa, inst, first_physical_device(gipa, inst));
    PFN_vkGetDeviceProcAddr gdpa = (PFN_vkGetDeviceProcAddr)gipa(inst, "vkGetDeviceProcAddr");
    PFN_vkCmdPushDescriptorSetKHR push =
        (PFN_vkCmdPushDescriptorSetKHR)gdpa(dev, "vkCmdPushDescriptorSetKHR");
    push(NULL, 1, 0, 0, 0, NULL); /* NULL: the extension is not enabled */
    printf("survived\n");
    return 0;
}
