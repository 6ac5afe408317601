"""FN-03: vkGetInstanceProcAddr(NULL, ...) for commands that need an instance.  The program
checks the NULL results (so it does not crash) and otherwise behaves."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vkctypes import PFN_Destroy, create_instance, fn, load_loader

lib, gipa = load_loader()
stale = [gipa(None, name) for name in (b"vkCreateDevice", b"vkEnumeratePhysicalDevices")]
print("NULL results:", [p is None for p in stale])
instance = create_instance(gipa)
fn(gipa(instance, b"vkDestroyInstance"), PFN_Destroy)(instance, None)
