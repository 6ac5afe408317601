/* The first bug vkdoctor exists for: vkGetBufferDeviceAddress taken from libvulkan with dlsym
 * and called on a device of an instance that asked for Vulkan 1.1 only.  The export is a loader
 * trampoline: it jumps through the device's dispatch slot for the command, which is empty
 * because the device does not have the command (vkGetDeviceProcAddr answers NULL), so the call
 * lands at address 0.  The program even asks vkGetDeviceProcAddr, and ignores the answer. */
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

int main(void) {
    PFN_vkGetInstanceProcAddr gipa;
    void *lib = open_loader(NULL, &gipa);
    get_buffer_address = (PFN_vkGetBufferDeviceAddress)dlsym(lib, "vkGetBufferDeviceAddress");
    if (!get_buffer_address) DIE("libvulkan exports no vkGetBufferDeviceAddress");
    VkInstance inst = make_instance(gipa); /* apiVersion 1.1 */
    VkDevice dev = make_device(gipa, inst, first_physical_device(gipa, inst));
    PFN_vkGetDeviceProcAddr gdpa = (PFN_vkGetDeviceProcAddr)gipa(inst, "vkGetDeviceProcAddr");
    printf("vkGetDeviceProcAddr says %s\n",
           gdpa(dev, "vkGetBufferDeviceAddress") ? "supported" : "unsupported");
    fflush(stdout);
    printf("address %llu\n", (unsigned long long)upload_buffer(dev));
    return 0;
}
