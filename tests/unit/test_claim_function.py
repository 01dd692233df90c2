"""The ``dearmp_claim`` function (migration 0014) reads each service's erased list by name."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import services.mailer.models
import services.resolver.models
import services.updates.models
from shared.db import metadata

MIGRATION = Path(__file__).parents[2] / "migrations/versions/0014_claim_function.py"


def test_the_claim_function_reads_every_erased_list_there_is() -> None:
    spec = importlib.util.spec_from_file_location("claim_function", MIGRATION)
    assert spec and spec.loader
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert (services.mailer.models, services.resolver.models, services.updates.models)
    erased_lists = {
        name
        for name, table in metadata.tables.items()
        if set(table.c.keys()) == {"supporter_key", "erased_at"}
    }
    assert len(erased_lists) == 3
    for name in erased_lists:
        assert f"p_erased = '{name}'" in migration.CLAIM
        assert f"FROM {name}" in migration.CLAIM.replace("\n        WHERE", " WHERE")
