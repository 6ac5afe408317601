/* The first bug vkdoctor exists for: vkGetBufferDeviceAddress taken from libvulkan with dlsym
 * and called on a device of an instance that asked for Vulkan 1.1 only.  The export is a loader
 * trampoline: it jumps through the device's dispatch slot for the command, which is empty
 * because the device does not have the command (vkGetDeviceProcAddr answers NULL), so the call
 * lands at address 0.  The program even asks vkGetDeviceProcAddr, and ignores the answer.
 * "v12": the instance asks for Vulkan 1.2, so the device has the command and the trampoline
 * reaches the driver, which crashes on the bogus buffer handle (a crash inside the driver). */
#include "vkrepro.h"

typedef struct {
    int sType;
    const void *pNext;
    uint64_t buffer;
} VkBufferDeviceAddressInfo;
typedef uint64_t (*PFN_vkGetBufferDeviceAddress)(VkDevice, const VkBufferDeviceAddressInfo *);

static PFN_vkGetBufferDeviceAddress get_buffer_address; /* taken with dlsym */

__attribute__((noinline)) static uint64_t upload_buffer(VkDevice dev) {
    VkBufferDeviceAddressInfo info = {1000244001, NULL, 1};
    return get_buffer_address(dev, &info); /* the crash: the trampoline jumps to 0 */
}

static VkInstance make_instance_12(PFN_vkGetInstanceProcAddr gipa) {
    PFN_vkCreateInstance create = (PFN_vkCreateInstance)gipa(NULL, "vkCreateInstance");
    VkApplicationInfo app = {VK_STRUCTURE_TYPE_APPLICATION_INFO, NULL, "vkrepro", 1, NULL, 0,
                             (1u << 22) | (2u << 12)};
    VkInstanceCreateInfo info = {VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, NULL, 0, &app, 0,
                                 NULL, 0, NULL};
    VkInstance instance = NULL;
    if (create(&info, NULL, &instance) != VK_SUCCESS) DIE("vkCreateInstance 1.2");
    return instance;
}

int main(int argc, char **argv) {
    int v12 = argc > 1 && strcmp(argv[1], "v12") == 0;
    PFN_vkGetInstanceProcAddr gipa;
    void *lib = open_loader(NULL, &gipa);
    get_buffer_address = (PFN_vkGetBufferDeviceAddress)dlsym(lib, "vkGetBufferDeviceAddress");
    if (!get_buffer_address) DIE("libvulkan exports no vkGetBufferDeviceAddress");
    VkInstance inst = v12 ? make_instance_12(gipa) : make_instance(gipa); /* 1.2 / 1.1 */
    VkDevice dev = make_device(gipa, inst, first_physical_device(gipa, inst));
    PFN_vkGetDeviceProcAddr gdpa = (PFN_vkGetDeviceProcAddr)gipa(inst, "vkGetDeviceProcAddr");
    printf("vkGetDeviceProcAddr says %s\n",
           gdpa(dev, "vkGetBufferDeviceAddress") ? "supported" : "unsupported");
    fflush(stdout);
    printf("address %llu\n", (unsigned long long)upload_buffer(dev));
    return 0;
}
