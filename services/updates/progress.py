"""Following a fan-out from the command line: a progress bar fed by the job's counts.

The counts are written by the worker once per batch, so the bar moves in steps of a batch; it is
only read here, never written.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.engine import Engine

from services.updates.reports import Progress, job_progress


class NotStarted(Exception):
    """No fan-out job appeared in time: the relay or the updates service is not running."""


def follow(
    engine: Engine,
    campaign: str,
    number: int,
    *,
    start_timeout: float = 60.0,
    interval: float = 0.5,
    show: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> Progress:
    """Wait for the fan-out of update ``number`` to finish, with a tqdm bar; its final counts."""
    from tqdm import tqdm

    deadline = time.monotonic() + start_timeout
    while (progress := _read(engine, campaign, number)) is None:
        if time.monotonic() > deadline:
            raise NotStarted(
                f"the fan-out did not start within {start_timeout:g}s (are the relay and "
                "'dearmp serve updates' running?); the update is published and will be emailed "
                "when they run"
            )
        sleep(interval)
    with tqdm(total=progress.total, unit="email", disable=not show, dynamic_ncols=True) as bar:
        while True:
            if progress.total != bar.total:
                bar.total = progress.total
            bar.n = min(progress.handled, progress.total)
            postfix = {"sent": progress.sent, "skipped": progress.skipped}
            if progress.failed:
                postfix["failed"] = progress.failed
            bar.set_postfix(postfix, refresh=False)
            bar.set_description("paused: SMTP unavailable" if progress.status == "waiting" else "")
            bar.refresh()
            if progress.done:
                return progress
            sleep(interval)
            progress = _read(engine, campaign, number) or progress


def _read(engine: Engine, campaign: str, number: int) -> Progress | None:
    with engine.connect() as conn:
        return job_progress(conn, campaign, number)
