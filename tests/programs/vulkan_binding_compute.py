"""A small verified compute workload through the ``vulkan`` cffi binding from PyPI: vkdoctor's
own smoke shader (the dispatch probe's), run on device 0 and checked bit-exact with numpy."""

from __future__ import annotations

import sys

from vkdoctor.kernels.suite import smoke_device
from vkdoctor.vulkan.compute import Instance

with Instance() as instance:
    result = smoke_device(instance, 0, timeout_s=30.0)
    data = result.to_dict()
    ok = data["verified"] is True and data["status"] == "ok"
print("verified:", ok, "elements:", data["elements"], "device:", data["device"])
sys.exit(0 if ok else 1)
