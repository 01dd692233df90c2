"""The ``dearmp_claim`` function (migration 0014) reads each service's erased list by name."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from shared.db import metadata

# Importing a service's models declares its tables in ``metadata``.
SERVICES_WITH_ERASED_LISTS = ("mailer", "resolver", "updates")

MIGRATION = Path(__file__).parents[2] / "migrations/versions/0014_claim_function.py"


def test_the_claim_function_reads_every_erased_list_there_is() -> None:
    spec = importlib.util.spec_from_file_location("claim_function", MIGRATION)
    assert spec and spec.loader
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    for service in SERVICES_WITH_ERASED_LISTS:
        importlib.import_module(f"services.{service}.models")
    erased_lists = {
        name
        for name, table in metadata.tables.items()
        if set(table.c.keys()) == {"supporter_key", "erased_at"}
    }
    assert len(erased_lists) == 3
    for name in erased_lists:
        assert f"p_erased = '{name}'" in migration.CLAIM
        assert f"FROM {name}" in migration.CLAIM.replace("\n        WHERE", " WHERE")
