/* fork() with an instance and a device alive.  Default: the child uses Vulkan (asks for a
 * device command and calls it).  "exec": the child immediately execs /bin/true (harmless).
 * "inherited": the child only calls pointers fetched before the fork (an empty vkQueueSubmit),
 * so it never asks vkGet*ProcAddr, then leaves with _exit. */
#include <sys/wait.h>
#include <unistd.h>
#include "vkrepro.h"

int main(int argc, char **argv) {
    int exec_child = argc > 1 && strcmp(argv[1], "exec") == 0;
    int inherited = argc > 1 && strcmp(argv[1], "inherited") == 0;
    PFN_vkGetInstanceProcAddr gipa;
    void *lib = open_loader(NULL, &gipa);
    VkInstance inst = make_instance(gipa);
    VkDevice dev = make_device(gipa, inst, first_physical_device(gipa, inst));
    PFN_vkGetDeviceProcAddr gdpa = (PFN_vkGetDeviceProcAddr)gipa(inst, "vkGetDeviceProcAddr");
    PFN_vkDestroyDevice destroy_device = (PFN_vkDestroyDevice)gdpa(dev, "vkDestroyDevice");
    typedef VkResult (*PFN_submit)(VkQueue, uint32_t, const void *, uint64_t);
    PFN_submit submit = (PFN_submit)gdpa(dev, "vkQueueSubmit");
    PFN_vkGetDeviceQueue early_get_queue = (PFN_vkGetDeviceQueue)gdpa(dev, "vkGetDeviceQueue");
    VkQueue queue = NULL;
    early_get_queue(dev, 0, 0, &queue);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        if (exec_child) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        if (inherited) _exit(submit(queue, 0, NULL, 0) == VK_SUCCESS ? 0 : 1);
        PFN_vkGetDeviceQueue get_queue = (PFN_vkGetDeviceQueue)gdpa(dev, "vkGetDeviceQueue");
        VkQueue q = NULL;
        get_queue(dev, 0, 0, &q);
        _exit(q ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    destroy_device(dev, NULL);
    ((PFN_vkDestroyInstance)gipa(inst, "vkDestroyInstance"))(inst, NULL);
    dlclose(lib);
    printf("child status %d\n", status);
    return 0;
}
