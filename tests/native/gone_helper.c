/*
 * The dependency of fault_driver.c's "missing-dependency" variant.  It is built
 * as libvkdoctor_gone.so.1, linked into the driver, then deleted, so the
 * driver's DT_NEEDED names a library that no longer exists (DRV-01).
 */
__attribute__((visibility("default"))) int vkfault_gone_helper(void) { return 0; }
