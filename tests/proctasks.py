"""Child tasks for test_process_discipline.py (imported inside vkdoctor's child processes)."""

from __future__ import annotations

import os
import time
from typing import Any


def fork_and_hang(payload: dict[str, Any], emit: Any) -> None:
    """Like a driver that starts a helper process and then hangs."""
    pid = os.fork()
    if pid == 0:
        time.sleep(3600)
        os._exit(0)
    emit.crumb(f"grandchild {pid}")
    time.sleep(3600)
