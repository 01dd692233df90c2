"""Importers: header-driven ONSPD (either constituency column name), atomic re-import, names, MPs."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from services.resolver import importers
from services.resolver.lookup import LocalBackend, resolve


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    lines = [",".join(f'"{h}"' for h in header)] + [",".join(f'"{v}"' for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _postcodes(engine: sa.Engine) -> dict[str, tuple[str | None, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT postcode, constituency_code, terminated FROM postcodes")
        )
        return {r.postcode: (r.constituency_code, r.terminated) for r in rows}


def test_newer_release_with_pcon24cd_replaces_the_old_data(engine, tmp_path: Path) -> None:
    header = ["pcd7", "pcd8", "pcds", "dointr", "doterm", "oscty", "pcon24cd", "lat", "long"]
    rows = [
        ["GU111AA", "GU11 1AA", "GU11 1AA", "198001", "", "E1", "E14001063", "51.2", "-0.7"],
        ["BR8 7RE", "BR8  7RE", "br8 7re", "198001", "", "E1", "E14001465", "51.3", "0.1"],
        ["SW1A9ZZ", "SW1A 9ZZ", "SW1A 9ZZ", "198001", "202301", "E1", "E14009903", "51", "0"],
    ]
    count = importers.import_onspd(engine, _write(tmp_path / "new.csv", header, rows), quiet=True)
    assert count == 3
    assert _postcodes(engine) == {
        "GU11 1AA": ("E14001063", None),
        "BR8 7RE": ("E14001465", None),
        "SW1A 9ZZ": ("E14009903", "202301"),  # terminated postcodes are kept, as terminated
    }
    assert resolve("SW1A 9ZZ", None, [LocalBackend(engine)]).reason == "terminated_postcode"
    assert resolve("GU11 1AA", None, [LocalBackend(engine)]).status == "resolved"


def test_old_pcon_header_and_a_bad_file_leaves_data_alone(engine, tmp_path: Path) -> None:
    before = _postcodes(engine)
    with pytest.raises(importers.ImportError_, match="no constituency column"):
        importers.import_onspd(
            engine, _write(tmp_path / "bad.csv", ["pcds", "other"], [["A1 1AA", "x"]])
        )
    with pytest.raises(importers.ImportError_, match="no pcds column"):
        importers.import_onspd(
            engine, _write(tmp_path / "bad2.csv", ["pcd", "pcon"], [["A1 1AA", "x"]])
        )
    with pytest.raises(importers.ImportError_, match="no postcodes found"):
        importers.import_onspd(engine, _write(tmp_path / "empty.csv", ["pcds", "pcon"], []))
    assert _postcodes(engine) == before


def test_constituencies_from_json_or_csv_and_mps_with_no_email(engine, tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("code,name\nE14001063,Aldershot\nE14001465,Sevenoaks\n")
    assert importers.import_constituencies(engine, tmp_path / "c.csv") == 2
    (tmp_path / "m.csv").write_text(
        "pcon_name,pcon_code,member_id,full_title,display_as,party_text,member_email,extra\n"
        "Aldershot,E14001063,1,A MP,A Person,P,No email found,x\n"
    )
    assert importers.import_mps(engine, tmp_path / "m.csv", quiet=True) == 1
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT name, email FROM mps")).one()
    assert row.name == "A Person" and row.email is None
    with pytest.raises(importers.ImportError_, match="JSON"):
        (tmp_path / "bad.json").write_text("{nope")
        importers.import_constituencies(engine, tmp_path / "bad.json")
