"""vkdoctor's Python-side Vulkan boundary for compute (the cffi ``vulkan`` binding); callers
import from ``vkdoctor.vulkan.compute``.  ARCHITECTURE.md lists the modules and their jobs."""
