/* A correct Vulkan program: must come out of `vkdoctor trace` with no finding at all.
 * dlopen libvulkan, dlsym only vkGetInstanceProcAddr, instance functions through it, device
 * functions through vkGetDeviceProcAddr, destroy device then instance, dlclose last.
 * With "leak": returns without destroying anything (vulkan-objects-leaked, harmless at exit).
 * With "accumulate N": first creates N more instances and devices in a loop, never destroyed
 * (vulkan-objects-accumulated). */
#include "vkrepro.h"

int main(int argc, char **argv) {
    int leak = argc > 1 && strcmp(argv[1], "leak") == 0;
    int extra = argc > 2 && strcmp(argv[1], "accumulate") == 0 ? atoi(argv[2]) : 0;
    PFN_vkGetInstanceProcAddr gipa;
    void *lib = open_loader(NULL, &gipa);
    for (int i = 0; i < extra; ++i) {
        VkInstance again = make_instance(gipa);
        make_device(gipa, again, first_physical_device(gipa, again));
    }
    leak |= extra > 0;
    VkInstance inst = make_instance(gipa);
    VkPhysicalDevice pd = first_physical_device(gipa, inst);
    VkDevice dev = make_device(gipa, inst, pd);
    PFN_vkGetDeviceProcAddr gdpa = (PFN_vkGetDeviceProcAddr)gipa(inst, "vkGetDeviceProcAddr");
    PFN_vkGetDeviceQueue get_queue = (PFN_vkGetDeviceQueue)gdpa(dev, "vkGetDeviceQueue");
    PFN_vkDeviceWaitIdle wait_idle = (PFN_vkDeviceWaitIdle)gdpa(dev, "vkDeviceWaitIdle");
    PFN_vkDestroyDevice destroy_device = (PFN_vkDestroyDevice)gdpa(dev, "vkDestroyDevice");
    PFN_vkDestroyInstance destroy_instance =
        (PFN_vkDestroyInstance)gipa(inst, "vkDestroyInstance");
    VkQueue queue = NULL;
    get_queue(dev, 0, 0, &queue);
    if (!queue || wait_idle(dev) != VK_SUCCESS) DIE("device unusable");
    if (leak) {
        printf("leaving without cleanup\n");
        return 0;
    }
    destroy_device(dev, NULL);
    destroy_instance(inst, NULL);
    dlclose(lib);
    printf("ok\n");
    return 0;
}
