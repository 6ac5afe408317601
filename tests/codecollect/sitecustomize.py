"""Records every finding code vkdoctor builds, in test runs only (tests/codes_seen.py).

conftest.py puts this folder first on PYTHONPATH and names a log in VKDOCTOR_TEST_CODE_LOG, so
every Python process the tests start (``vkdoctor check`` subprocesses and their children) loads
this before anything else and wraps ``vkdoctor.report.codes.make_finding``, the one constructor
of product findings.  A code counts as produced only when vkdoctor itself built it.
"""

from __future__ import annotations

import contextlib
import os

if os.environ.get("VKDOCTOR_TEST_CODE_LOG"):
    # A test helper must never break the program under test.
    with contextlib.suppress(Exception):
        import codes_seen_hook  # noqa: F401  (tests/codecollect/codes_seen_hook.py)
