/* Two different libvulkan copies in one process: the system one and argv[1] (a copy at
 * another path, e.g. one bundled with a plugin).  Each creates its own instance. */
#include "vkrepro.h"

int main(int argc, char **argv) {
    if (argc < 2) DIE("usage: two_loaders /path/to/copy/of/libvulkan.so.1");
    PFN_vkGetInstanceProcAddr gipa_a, gipa_b;
    void *a = open_loader(NULL, &gipa_a);
    void *b = open_loader(argv[1], &gipa_b);
    VkInstance ia = make_instance(gipa_a);
    VkInstance ib = make_instance(gipa_b);
    ((PFN_vkDestroyInstance)gipa_b(ib, "vkDestroyInstance"))(ib, NULL);
    ((PFN_vkDestroyInstance)gipa_a(ia, "vkDestroyInstance"))(ia, NULL);
    dlclose(b);
    dlclose(a);
    printf("two loaders\n");
    return 0;
}
