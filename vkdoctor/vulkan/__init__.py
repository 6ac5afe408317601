"""vkdoctor's Python-side Vulkan boundary (the cffi binding) for compute."""
