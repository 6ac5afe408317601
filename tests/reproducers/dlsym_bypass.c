/* Loader bypass: vkCreateInstance & co. taken with dlsym from libvulkan (instead of
 * vkGetInstanceProcAddr), and device commands taken straight from the driver library
 * (argv[1], e.g. libvulkan_lvp.so), called on the loader's device. */
#include "vkrepro.h"

int main(int argc, char **argv) {
    if (argc < 2) DIE("usage: dlsym_bypass DRIVER.so");
    void *lib = dlopen("libvulkan.so.1", RTLD_NOW);
    if (!lib) DIE("dlopen libvulkan: %s", dlerror());
    PFN_vkCreateInstance create_instance = (PFN_vkCreateInstance)dlsym(lib, "vkCreateInstance");
    PFN_vkEnumeratePhysicalDevices enumerate =
        (PFN_vkEnumeratePhysicalDevices)dlsym(lib, "vkEnumeratePhysicalDevices");
    PFN_vkCreateDevice create_device = (PFN_vkCreateDevice)dlsym(lib, "vkCreateDevice");
    PFN_vkDestroyDevice destroy_device = (PFN_vkDestroyDevice)dlsym(lib, "vkDestroyDevice");
    PFN_vkDestroyInstance destroy_instance =
        (PFN_vkDestroyInstance)dlsym(lib, "vkDestroyInstance");
    VkApplicationInfo app = {VK_STRUCTURE_TYPE_APPLICATION_INFO, NULL, "bypass", 1, NULL, 0,
                             VK_API_VERSION_1_1};
    VkInstanceCreateInfo ici = {VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, NULL, 0, &app, 0, NULL,
                                0, NULL};
    VkInstance inst = NULL;
    if (create_instance(&ici, NULL, &inst) != VK_SUCCESS) DIE("vkCreateInstance");
    uint32_t count = 1;
    VkPhysicalDevice pd = NULL;
    enumerate(inst, &count, &pd);
    float priority = 1.0f;
    VkDeviceQueueCreateInfo queue = {VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, NULL, 0, 0, 1,
                                     &priority};
    VkDeviceCreateInfo dci = {VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, NULL, 0, 1, &queue, 0, NULL,
                              0, NULL, NULL};
    VkDevice dev = NULL;
    if (create_device(pd, &dci, NULL, &dev) != VK_SUCCESS) DIE("vkCreateDevice");

    /* The bypass: the driver's own entry points, behind the loader's back. */
    void *drv = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!drv) DIE("dlopen driver: %s", dlerror());
    PFN_vkGetInstanceProcAddr drv_gipa =
        (PFN_vkGetInstanceProcAddr)dlsym(drv, "vk_icdGetInstanceProcAddr");
    if (!drv_gipa) DIE("driver has no vk_icdGetInstanceProcAddr");
    PFN_vkCreateInstance drv_create = (PFN_vkCreateInstance)drv_gipa(NULL, "vkCreateInstance");
    VkInstance drv_inst = NULL;
    if (drv_create(&ici, NULL, &drv_inst) != VK_SUCCESS) DIE("driver vkCreateInstance");
    PFN_vkGetDeviceProcAddr drv_gdpa =
        (PFN_vkGetDeviceProcAddr)drv_gipa(drv_inst, "vkGetDeviceProcAddr");
    PFN_vkDeviceWaitIdle wait_idle = (PFN_vkDeviceWaitIdle)drv_gdpa(dev, "vkDeviceWaitIdle");
    if (!wait_idle || wait_idle(dev) != VK_SUCCESS) DIE("driver vkDeviceWaitIdle");
    ((PFN_vkDestroyInstance)drv_gipa(drv_inst, "vkDestroyInstance"))(drv_inst, NULL);
    dlclose(drv);

    destroy_device(dev, NULL);
    destroy_instance(inst, NULL);
    dlclose(lib);
    printf("bypassed\n");
    return 0;
}
