"""Child-side native work.  Imported only inside ``python -m vkdoctor.engine.child_main``: ctypes and the
``vulkan`` binding live here, never in the parent."""
