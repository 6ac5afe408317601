"""The names parent and child agree on (``engine.child`` and ``engine.child_main``).

A module of its own so a child's start-up imports only these constants: importing
``engine.child`` (subprocess, selectors, threading, dataclasses) cost every child 35-95 ms here.
"""

from __future__ import annotations

ITEM_MARKER = "\x1evkdoctor-item "  # written to the child's stderr so noise can be split per item
PROTO_FD_VAR = "VKDOCTOR_CHILD_FD"
PARENT_PID_VAR = "VKDOCTOR_PARENT_PID"  # the child exits at once if its parent is already gone
LIFELINE_FD_VAR = "VKDOCTOR_LIFELINE_FD"  # EOF on it: vkdoctor died, the child kills its group
# `check --loader PATH`: the loader the vulkan binding must use in the child (vulkan/loader_choice).
LOADER_VAR = "VKDOCTOR_LOADER"
# A kept child (engine/child.py, ChildPool) writes this to its stderr, then a "done" message on the
# protocol pipe, after each task; the parent splits the loader's log there and hands the child on.
DONE_MARKER = "\x1evkdoctor-done\n"
