"""vkdoctor: a doctor tool and debug layer for Vulkan loader problems on Linux."""

__version__ = "0.1.0"
