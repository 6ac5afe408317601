/* Premature unload: the loader wrapper is destroyed (dlclose of libvulkan from
 * libloaderwrap.so) while the instance lives, then a cached function pointer is called:
 * SIGSEGV inside the former mapping of libvulkan.so.1. */
#include "vkrepro.h"

struct loader;
struct loader *loader_create(void);
PFN_vkGetInstanceProcAddr loader_gipa(struct loader *);
void loader_destroy(struct loader *);

int main(void) {
    struct loader *l = loader_create();
    PFN_vkGetInstanceProcAddr gipa = loader_gipa(l);
    VkInstance inst = make_instance(gipa);
    PFN_vkEnumeratePhysicalDevices enumerate =
        (PFN_vkEnumeratePhysicalDevices)gipa(inst, "vkEnumeratePhysicalDevices");
    loader_destroy(l); /* the bug: the wrapper goes away first */
    uint32_t count = 0;
    enumerate(inst, &count, NULL); /* jumps into unmapped memory */
    printf("survived (libvulkan was not unmapped?)\n");
    return 0;
}
