"""Fault-injection points for the fault tests.

``point("after_commit")`` does nothing unless ``DEARMP_FAULT_KILL_AT`` names that point: then the
process SIGKILLs itself there, once (``DEARMP_FAULT_MARKER`` names a file that records that it did,
so the restarted process runs normally). Real processes die for real; nothing is mocked.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def point(name: str) -> None:
    if os.environ.get("DEARMP_FAULT_KILL_AT") != name:
        return
    marker = os.environ.get("DEARMP_FAULT_MARKER")
    if marker:
        path = Path(marker)
        if path.exists():
            return
        path.write_text(name)
    os.kill(os.getpid(), signal.SIGKILL)
