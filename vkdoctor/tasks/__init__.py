"""Child-side native work.  Imported only inside ``python -m vkdoctor._child``: ctypes and the
``vulkan`` binding live here, never in the parent."""
