"""``dearmp serve resolver``: the resolver's consumers and the sweep that retries letters held
for a vacant seat."""

from __future__ import annotations

from services.resolver.handlers import bootstrap, make_deps, retry_held
from shared.config import Settings
from shared.db import make_engine
from shared.worker import run_worker


def serve(settings: Settings, threads: int = 1) -> None:
    engine = make_engine(settings.database_url, pool_size=max(5, threads * 2))
    sweeper = make_deps(settings, engine)
    run_worker(
        "resolver",
        settings,
        engine,
        lambda: bootstrap(settings, engine),
        threads,
        periodic=[(settings.held_sweep_seconds, lambda: retry_held(sweeper))],
    )
