"""A slow program for the /proc polling fallback and --pid: it holds libvulkan long enough to
be seen between polls, then unloads it.

    py_slow_unload.py           correct: destroy the instance, then dlclose
    py_slow_unload.py bug       dlclose while the instance is alive (never called afterwards)
Prints "ready" once libvulkan is loaded and the instance exists.
"""

import _ctypes
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vkctypes import PFN_Destroy, create_instance, fn, load_loader

PAUSE = float(sys.argv[2]) if len(sys.argv) > 2 else 0.3
bug = len(sys.argv) > 1 and sys.argv[1] == "bug"
lib, gipa = load_loader()
instance = create_instance(gipa)
destroy_instance = fn(gipa(instance, b"vkDestroyInstance"), PFN_Destroy)
print("ready", flush=True)
time.sleep(PAUSE)
if not bug:
    destroy_instance(instance, None)
_ctypes.dlclose(lib._handle)
time.sleep(PAUSE)
print("done", flush=True)
