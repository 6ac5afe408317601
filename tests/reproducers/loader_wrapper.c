/* libloaderwrap.so: a "loader object" in the style of vk::DynamicLoader.  Its destructor
 * dlcloses libvulkan, whatever pointers the program still holds. */
#include "vkrepro.h"

struct loader {
    void *lib;
    PFN_vkGetInstanceProcAddr gipa;
};

struct loader *loader_create(void) {
    struct loader *l = calloc(1, sizeof *l);
    l->lib = open_loader(NULL, &l->gipa);
    return l;
}

PFN_vkGetInstanceProcAddr loader_gipa(struct loader *l) { return l->gipa; }

void loader_destroy(struct loader *l) {
    dlclose(l->lib);
    free(l);
}
