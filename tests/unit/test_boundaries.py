"""The codebase's boundaries, checked: who declares each table, and the import contracts.

- Every table is declared in exactly one module: a service's ``models.py`` (then that service's
  README lists it under "Owns") or one of shared's platform modules (then shared/README.md does),
  and migrations/env.py imports every module that declares one.
- ``make lint`` runs import-linter with the contracts in pyproject.toml. Each contract is shown to
  fail here on an import planted in a copy of the tree, so none of them passes whatever the code.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "resolver", "mailer", "updates")
SHARED_TABLE_MODULES = ("shared/outbox.py", "shared/inbox.py", "shared/reference.py")
TABLE_RE = re.compile(r'(?:sa\.Table|erased_supporters_table)\(\s*"([a-z_]+)"')


def declared_tables() -> dict[str, list[str]]:
    """{table: [files declaring it]}, read from the source of shared/ and services/."""
    found: dict[str, list[str]] = {}
    for path in sorted([*ROOT.glob("shared/**/*.py"), *ROOT.glob("services/**/*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        for name in TABLE_RE.findall(path.read_text()):
            found.setdefault(name, []).append(rel)
    return found


def owned_in_readme(readme: Path) -> set[str]:
    """The tables a README lists under its "## Owns" heading (bullets starting "- `name`")."""
    text = readme.read_text()
    section = text.split("## Owns", 1)[1].split("\n## ", 1)[0]
    return {
        name
        for names in re.findall(r"^- ((?:`[a-z_]+`(?:, )?)+)", section, re.M)
        for name in re.findall(r"`([a-z_]+)`", names)
    }


def test_every_table_is_declared_once_in_a_models_module_or_shared() -> None:
    tables = declared_tables()
    assert len(tables) >= 20  # the regex found the tables (there are 22 today)
    for name, files in tables.items():
        assert len(files) == 1, f"{name} is declared in {files}"
        where = files[0]
        in_a_service = re.fullmatch(r"services/(\w+)/(?:\w+/)?models\.py", where)
        assert in_a_service or where in SHARED_TABLE_MODULES, f"{name} is declared in {where}"


def test_each_readme_lists_exactly_the_tables_its_service_declares() -> None:
    tables = declared_tables()
    claimed: dict[str, str] = {}
    for owner in [*SERVICES, "shared"]:
        prefix = "shared/" if owner == "shared" else f"services/{owner}/"
        declared = {name for name, (where,) in tables.items() if where.startswith(prefix)}
        readme = ROOT / prefix / "README.md"
        listed = owned_in_readme(readme)
        assert listed == declared, f"{readme.relative_to(ROOT)} Owns: {sorted(listed ^ declared)}"
        for name in listed:
            assert name not in claimed, f"{name} is owned by {claimed[name]} and {owner}"
            claimed[name] = owner
    assert set(claimed) == set(tables)


def test_migrations_import_every_module_that_declares_tables() -> None:
    env = (ROOT / "migrations" / "env.py").read_text()
    imported = set(re.findall(r"^import ([\w.]+)$", env, re.M))
    declaring = {
        where.removesuffix(".py").replace("/", ".") for (where,) in declared_tables().values()
    }
    assert declaring <= imported, sorted(declaring - imported)


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the packages and the contracts, to plant imports in."""
    copy = tmp_path_factory.mktemp("tree")
    for package in ("shared", "services", "migrations"):
        shutil.copytree(
            ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def test_the_contracts_hold_on_the_code_as_it_is(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "5 kept, 0 broken" in result.stdout


PLANTED = [
    # (file to plant in, the import, the contract it breaks)
    ("shared/planted.py", "import services.mailer.models", "shared is the common library"),
    (
        "services/intake/planted.py",
        "import services.mailer.models",
        "Services are independent",
    ),
    (
        "services/updates/planted.py",
        "from services.mailer.delivery import deliver_once",
        "Services are independent",
    ),
    ("services/mailer/planted.py", "import services.ops.status", "No service imports the operator"),
    ("services/ops/planted.py", "import services.intake.models", "The operator commands reach"),
    ("services/resolver/planted.py", "import services.resolver.handlers", "No import cycles"),
]


@pytest.mark.parametrize(("where", "line", "contract"), PLANTED, ids=[p[0] for p in PLANTED])
def test_a_planted_import_breaks_its_contract(
    tree: Path, where: str, line: str, contract: str
) -> None:
    planted = tree / where
    if contract == "No import cycles":
        # handlers imports lookup; lookup importing handlers closes a cycle.
        planted = tree / "services/resolver/lookup.py"
        original = planted.read_text()
        planted.write_text(original + f"\n{line}  # planted\n")
    else:
        original = None
        planted.write_text(f"{line}  # planted\n")
    try:
        result = lint_imports(tree)
    finally:
        if original is None:
            planted.unlink()
        else:
            planted.write_text(original)
    assert result.returncode != 0, result.stdout[-2000:]
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout[-3000:]
    assert re.search(r"Contracts: \d kept, [1-5] broken", result.stdout)
