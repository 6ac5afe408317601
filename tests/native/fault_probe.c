/*
 * A tiny Vulkan client for tests/test_faultlib.py: walks the loader through
 * the stages the fault variants target and prints one line per fact, so a
 * test can see how far it got before a crash or hang.  Every line is flushed
 * at once because the process may die on the next call.
 *
 *   phase <name>                 about to enter that stage
 *   result <name> <VkResult>     a stage's return code
 *   devices <n> / device <i> <deviceName>
 *   groups <n>
 *   queue-family <i> flags=0x<hex> count=<n>     vkGetPhysicalDeviceQueueFamilyProperties
 *   queue-family2 <i> flags=0x<hex> count=<n>    ...2 (or ...2KHR with --khr)
 *   proc <command> null|ok       vkGetDeviceProcAddr(device, command)
 *   done
 *
 *   (with --driver)  dlerror <message> / negotiate absent / interface <n> /
 *                    gipa absent
 *
 * Options: --api-minor N (instance apiVersion 1.N, default 1);
 *          --khr (enable VK_KHR_get_physical_device_properties2 and call
 *          ...Properties2KHR, so the loader reaches the driver's KHR entry point
 *          when --api-minor is 0);
 *          --driver LIB (bypass the loader: dlopen the driver as the loader
 *          would, negotiate, then use its vk_icdGetInstanceProcAddr directly;
 *          shows what the driver itself answers, e.g. the negotiated version);
 *          --device-extension EXT (print "device-extension EXT spec <n>|absent" from
 *          vkEnumerateDeviceExtensionProperties, enable EXT in vkCreateDevice and
 *          also print "proc" lines for the --proc commands);
 *          --proc CMD (one more command for the "proc" lines; repeatable, up to 8).
 * Exit: 0 after "done", 1 when a stage fails, 2 when libvulkan cannot be used.
 *
 * Talks to libvulkan.so.1 through dlopen and declares the ABI it needs, so it
 * builds without Vulkan development headers.
 */

#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkdoctor_vk.h" /* the Vulkan ABI slice, shared with vkdoctor's trace layer */

/* Only the leading fields are read; the tail (limits, sparse properties) is
 * padding generously larger than the real 824-byte struct. */
typedef struct {
    uint32_t apiVersion, driverVersion, vendorID, deviceID, deviceType;
    char deviceName[256];
    unsigned char tail[4096];
} VkPhysicalDevicePropertiesHead;

typedef void (*PFN_vkGetPhysicalDeviceProperties)(VkPhysicalDevice,
                                                  VkPhysicalDevicePropertiesHead *);

#define MAX_ITEMS 64

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static int check(const char *stage, VkResult r) {
    say("result %s %d", stage, r);
    return r == 0;
}

int main(int argc, char **argv) {
    unsigned api_minor = 1;
    int use_khr = 0;
    const char *driver = NULL;
    const char *device_ext = NULL;
    const char *extra_procs[8];
    size_t n_extra = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--api-minor") == 0 && i + 1 < argc)
            api_minor = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--khr") == 0)
            use_khr = 1;
        else if (strcmp(argv[i], "--driver") == 0 && i + 1 < argc)
            driver = argv[++i];
        else if (strcmp(argv[i], "--device-extension") == 0 && i + 1 < argc)
            device_ext = argv[++i];
        else if (strcmp(argv[i], "--proc") == 0 && i + 1 < argc && n_extra < 8)
            extra_procs[n_extra++] = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--api-minor N] [--khr] [--driver LIB]\n", argv[0]);
            return 2;
        }
    }

    PFN_vkGetInstanceProcAddr gipa;
    if (driver) {
        say("phase load-driver");
        /* The loader's own flags, so dlopen fails (or not) exactly as it would there. */
        void *lib = dlopen(driver, RTLD_LAZY | RTLD_LOCAL);
        if (!lib) {
            say("dlerror %s", dlerror());
            return 1;
        }
        say("phase negotiate");
        PFN_vkNegotiateLoaderICDInterfaceVersion negotiate =
            (PFN_vkNegotiateLoaderICDInterfaceVersion)dlsym(
                lib, "vk_icdNegotiateLoaderICDInterfaceVersion");
        if (!negotiate) {
            say("negotiate absent");
        } else {
            uint32_t version = 7; /* what loader 1.3.239 offers */
            if (!check("negotiate", negotiate(&version))) return 1;
            say("interface %u", version);
        }
        gipa = (PFN_vkGetInstanceProcAddr)dlsym(lib, "vk_icdGetInstanceProcAddr");
        if (!gipa) {
            say("gipa absent");
            return 1;
        }
    } else {
        say("phase load-loader");
        void *lib = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            fprintf(stderr, "cannot load libvulkan.so.1: %s\n", dlerror());
            return 2;
        }
        gipa = (PFN_vkGetInstanceProcAddr)dlsym(lib, "vkGetInstanceProcAddr");
        if (!gipa) return 2;
    }
#define GLOBAL(name) PFN_##name name = (PFN_##name)gipa(NULL, #name)
    GLOBAL(vkEnumerateInstanceExtensionProperties);
    GLOBAL(vkCreateInstance);
#undef GLOBAL

    /* The loader scans driver manifests here first, so negotiation faults
     * surface in this stage rather than in vkCreateInstance. */
    say("phase instance-extensions");
    uint32_t n_ext = 0;
    if (!check("instance-extensions", vkEnumerateInstanceExtensionProperties(NULL, &n_ext, NULL)))
        return 1;

    say("phase create-instance");
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "vkfault-probe",
        .apiVersion = VK_MAKE_API_VERSION(0, 1, api_minor, 0),
    };
    const char *khr_ext[] = {"VK_KHR_get_physical_device_properties2"};
    VkInstanceCreateInfo ici = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pApplicationInfo = &app,
        .enabledExtensionCount = use_khr ? 1 : 0,
        .ppEnabledExtensionNames = use_khr ? khr_ext : NULL,
    };
    VkInstance instance = NULL;
    if (!check("create-instance", vkCreateInstance(&ici, NULL, &instance))) return 1;

#define INST(name) PFN_##name name = (PFN_##name)gipa(instance, #name)
    INST(vkDestroyInstance);
    INST(vkEnumeratePhysicalDevices);
    INST(vkEnumeratePhysicalDeviceGroups);
    INST(vkGetPhysicalDeviceProperties);
    INST(vkGetPhysicalDeviceQueueFamilyProperties);
    INST(vkCreateDevice);
    INST(vkGetDeviceProcAddr);
#undef INST
    PFN_vkGetPhysicalDeviceQueueFamilyProperties2 qfp2 =
        (PFN_vkGetPhysicalDeviceQueueFamilyProperties2)gipa(
            instance, use_khr ? "vkGetPhysicalDeviceQueueFamilyProperties2KHR"
                              : "vkGetPhysicalDeviceQueueFamilyProperties2");

    say("phase enumerate-devices");
    uint32_t n_dev = MAX_ITEMS;
    VkPhysicalDevice gpus[MAX_ITEMS];
    if (!check("enumerate-devices", vkEnumeratePhysicalDevices(instance, &n_dev, gpus))) return 1;
    say("devices %u", n_dev);
    for (uint32_t i = 0; i < n_dev; i++) {
        VkPhysicalDevicePropertiesHead props;
        memset(&props, 0, sizeof props);
        vkGetPhysicalDeviceProperties(gpus[i], &props);
        say("device %u %s", i, props.deviceName);
    }

    if (api_minor >= 1 && vkEnumeratePhysicalDeviceGroups) {
        say("phase enumerate-groups");
        uint32_t n_groups = 0;
        if (!check("enumerate-groups", vkEnumeratePhysicalDeviceGroups(instance, &n_groups, NULL)))
            return 1;
        say("groups %u", n_groups);
    }
    if (n_dev == 0) {
        vkDestroyInstance(instance, NULL);
        say("done");
        return 0;
    }

    say("phase queue-families");
    uint32_t n_qf = MAX_ITEMS;
    VkQueueFamilyProperties qf[MAX_ITEMS];
    vkGetPhysicalDeviceQueueFamilyProperties(gpus[0], &n_qf, qf);
    for (uint32_t i = 0; i < n_qf; i++)
        say("queue-family %u flags=0x%x count=%u", i, qf[i].queueFlags, qf[i].queueCount);
    if (qfp2) {
        uint32_t n_qf2 = MAX_ITEMS;
        VkQueueFamilyProperties2 qf2[MAX_ITEMS];
        for (uint32_t i = 0; i < MAX_ITEMS; i++)
            qf2[i] = (VkQueueFamilyProperties2){.sType = VK_STRUCTURE_TYPE_QUEUE_FAMILY_PROPERTIES_2};
        qfp2(gpus[0], &n_qf2, qf2);
        for (uint32_t i = 0; i < n_qf2; i++)
            say("queue-family2 %u flags=0x%x count=%u", i, qf2[i].queueFamilyProperties.queueFlags,
                qf2[i].queueFamilyProperties.queueCount);
    }

    if (device_ext) {
        typedef VkResult (*PFN_enum)(VkPhysicalDevice, const char *, uint32_t *,
                                     VkExtensionProperties *);
        PFN_enum enum_ext = (PFN_enum)gipa(instance, "vkEnumerateDeviceExtensionProperties");
        static VkExtensionProperties exts[512];
        uint32_t n_exts = 512;
        if (!check("device-extensions", enum_ext(gpus[0], NULL, &n_exts, exts))) return 1;
        int found = 0;
        for (uint32_t i = 0; i < n_exts; i++)
            if (strcmp(exts[i].extensionName, device_ext) == 0) {
                say("device-extension %s spec %u", device_ext, exts[i].specVersion);
                found = 1;
            }
        if (!found) say("device-extension %s absent", device_ext);
    }

    say("phase create-device");
    float priority = 1.0f;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = 0,
        .queueCount = 1,
        .pQueuePriorities = &priority,
    };
    VkDeviceCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
        .enabledExtensionCount = device_ext ? 1 : 0,
        .ppEnabledExtensionNames = device_ext ? &device_ext : NULL,
    };
    VkDevice device = NULL;
    if (!check("create-device", vkCreateDevice(gpus[0], &dci, NULL, &device))) return 1;

    say("phase device-proc-addr");
    static const char *const commands[] = {"vkCreateBuffer", "vkGetDeviceQueue",
                                           "vkCreateComputePipelines"};
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        say("proc %s %s", commands[i], vkGetDeviceProcAddr(device, commands[i]) ? "ok" : "null");
    for (size_t i = 0; i < n_extra; i++)
        say("proc %s %s", extra_procs[i],
            vkGetDeviceProcAddr(device, extra_procs[i]) ? "ok" : "null");

    say("phase destroy");
    PFN_vkDestroyDevice vkDestroyDevice =
        (PFN_vkDestroyDevice)vkGetDeviceProcAddr(device, "vkDestroyDevice");
    vkDestroyDevice(device, NULL);
    vkDestroyInstance(instance, NULL);
    say("done");
    return 0;
}
