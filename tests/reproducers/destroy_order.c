/* Destroy order.  Default: vkDestroyInstance while the device is alive (the device is then
 * leaked too).  "uad": vkDestroyDevice, then vkGetDeviceProcAddr on the destroyed device.
 * "crash": vkDestroyInstance, then vkDestroyDevice (in teardown_device()) through the pointer
 * vkGetDeviceProcAddr gave: the driver it points into was unloaded with the instance. */
#include "vkrepro.h"

__attribute__((noinline)) static void teardown_device(PFN_vkDestroyDevice destroy, VkDevice dev) {
    destroy(dev, NULL); /* the crash: the driver went with the instance */
}

int main(int argc, char **argv) {
    int uad = argc > 1 && strcmp(argv[1], "uad") == 0;
    int crash = argc > 1 && strcmp(argv[1], "crash") == 0;
    PFN_vkGetInstanceProcAddr gipa;
    void *lib = open_loader(NULL, &gipa);
    VkInstance inst = make_instance(gipa);
    VkDevice dev = make_device(gipa, inst, first_physical_device(gipa, inst));
    PFN_vkGetDeviceProcAddr gdpa = (PFN_vkGetDeviceProcAddr)gipa(inst, "vkGetDeviceProcAddr");
    PFN_vkDestroyDevice destroy_device = (PFN_vkDestroyDevice)gdpa(dev, "vkDestroyDevice");
    PFN_vkDestroyInstance destroy_instance =
        (PFN_vkDestroyInstance)gipa(inst, "vkDestroyInstance");
    if (uad) {
        destroy_device(dev, NULL);
        /* the bug: the handle is still used (its result is not called: that would crash) */
        volatile PFN_vkVoidFunction stale = gdpa(dev, "vkDeviceWaitIdle");
        (void)stale;
        destroy_instance(inst, NULL);
    } else {
        destroy_instance(inst, NULL); /* the bug: the device is still alive */
        if (crash) teardown_device(destroy_device, dev);
    }
    dlclose(lib);
    printf("done\n");
    return 0;
}
