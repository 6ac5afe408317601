/* An RAII loader object (libloaderwrap.so, in the style of vk::DynamicLoader) destroyed before
 * the instance: renderer_shutdown() releases the loader first, then calls vkDestroyInstance
 * through the pointer it cached, into the unmapped libvulkan. */
#include "vkrepro.h"

struct loader;
struct loader *loader_create(void);
PFN_vkGetInstanceProcAddr loader_gipa(struct loader *);
void loader_destroy(struct loader *);

struct renderer {
    struct loader *loader;
    VkInstance instance;
    PFN_vkDestroyInstance destroy_instance;
};

__attribute__((noinline)) static void renderer_shutdown(struct renderer *r) {
    loader_destroy(r->loader);            /* the bug: the loader object goes first */
    r->destroy_instance(r->instance, NULL); /* the crash */
}

int main(void) {
    struct renderer r;
    r.loader = loader_create();
    PFN_vkGetInstanceProcAddr gipa = loader_gipa(r.loader);
    r.instance = make_instance(gipa);
    r.destroy_instance = (PFN_vkDestroyInstance)gipa(r.instance, "vkDestroyInstance");
    renderer_shutdown(&r);
    printf("survived\n");
    return 0;
}
