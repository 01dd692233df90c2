"""Importers for reference data: ONSPD/NSPL postcodes, constituency names, the MP lookup CSV.

Each streams its file (bounded memory), loads it with COPY into a temporary table, then replaces
the live table's contents in one transaction: lookups see the old data until the commit.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from tqdm import tqdm

from services.resolver.models import held_signatures
from shared import postcodes


class ImportError_(ValueError):
    """A file that cannot be imported; the message is one line naming the problem."""


PCON_COLUMN = re.compile(r"^pcon(\d{2})?(cd)?$")


def _progress(path: Path, desc: str, quiet: bool) -> tqdm:
    return tqdm(
        total=path.stat().st_size,
        unit="B",
        unit_scale=True,
        desc=desc,
        disable=quiet,
        mininterval=0.5,
    )


def _rows(path: Path, bar: tqdm) -> Iterator[dict[str, str]]:
    with path.open("rb") as binary:
        reader = csv.DictReader(io.TextIOWrapper(binary, encoding="utf-8-sig", newline=""))
        last = 0
        for i, row in enumerate(reader):
            if i % 20000 == 0:
                pos = binary.tell()  # bytes read so far (read-ahead included): good for progress
                bar.update(max(0, pos - last))
                last = pos
            yield row
        bar.update(max(0, bar.total - bar.n))


def constituency_column(header: list[str]) -> str:
    """``pcon`` up to 2024, ``pcon24cd`` from November 2025; prefer the newest boundary year."""
    matches = [
        (m.group(1) or "00", name) for name in header if (m := PCON_COLUMN.match(name.lower()))
    ]
    if not matches:
        raise ImportError_("no constituency column (pcon, pconNNcd) in the header")
    return max(matches)[1]


def _copy_replace(engine: Engine, table: str, columns: list[str], rows: Iterator[tuple]) -> int:  # type: ignore[type-arg]
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        staging = f"import_{table}"
        cur.execute(f"CREATE TEMP TABLE {staging} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
        count = 0
        with cur.copy(f"COPY {staging} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        cur.execute(f"DELETE FROM {table}")
        cur.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT DISTINCT ON ({columns[0]}) "
            f"{', '.join(columns)} FROM {staging}"
        )
        raw.commit()
        return count
    finally:
        raw.close()


def _postcode_rows(path: Path, columns: tuple[int, int, int | None], bar: tqdm) -> Iterator[bytes]:
    """Tab-separated COPY lines, in chunks: csv.reader with column indexes is several times
    faster than DictReader on ONSPD's ~50 columns, and COPY text beats per-row formatting."""
    pcds, pcon, doterm = columns
    chunk: list[str] = []
    with path.open("rb") as binary:
        reader = csv.reader(io.TextIOWrapper(binary, encoding="utf-8-sig", newline=""))
        next(reader, None)  # header
        last = 0
        for row in reader:
            raw = row[pcds]
            # ONSPD already writes "AB1 2CD"; normalise only what is not in that form.
            code = (
                raw
                if (len(raw) > 5 and raw[-4] == " " and raw.isupper())
                else postcodes.normalise(raw)
            )
            if not code or len(code) > 8:
                continue
            constituency = row[pcon].strip() or "\\N"
            terminated = (row[doterm].strip() if doterm is not None else "") or "\\N"
            chunk.append(f"{code}\t{constituency}\t{terminated}\n")
            if len(chunk) >= 50_000:
                yield "".join(chunk).encode()
                chunk.clear()
                pos = binary.tell()
                bar.update(max(0, pos - last))
                last = pos
        if chunk:
            yield "".join(chunk).encode()
        bar.update(max(0, bar.total - bar.n))


def import_onspd(engine: Engine, path: Path, *, quiet: bool = False) -> int:
    """Load an ONSPD/NSPL release into a new table, then swap it in: lookups keep using the old
    data until the swap, which takes a moment under a lock. Terminated postcodes are kept."""
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f), [])
    lower = [h.lower() for h in header]
    if "pcds" not in lower:
        raise ImportError_(f"{path}: no pcds column in the header")
    columns = (
        lower.index("pcds"),
        lower.index(constituency_column(header).lower()),
        lower.index("doterm") if "doterm" in lower else None,
    )
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(
            "CREATE TEMP TABLE import_postcodes "
            "(postcode varchar(8), constituency_code varchar(9), terminated varchar(6))"
        )
        with (
            _progress(path, "postcodes", quiet) as bar,
            cur.copy(
                "COPY import_postcodes (postcode, constituency_code, terminated) FROM STDIN"
            ) as copy,
        ):
            for block in _postcode_rows(path, columns, bar):
                copy.write(block)
        cur.execute("DROP TABLE IF EXISTS postcodes_next")
        cur.execute(
            "CREATE TABLE postcodes_next AS SELECT DISTINCT ON (postcode) postcode, "
            "constituency_code, terminated FROM import_postcodes "
            "ORDER BY postcode, terminated NULLS FIRST"
        )
        cur.execute(
            "ALTER TABLE postcodes_next ADD CONSTRAINT pk_postcodes_next PRIMARY KEY (postcode)"
        )
        cur.execute("SELECT count(*) FROM postcodes_next")
        count = int(cur.fetchone()[0])  # type: ignore[index]
        if count == 0:
            raise ImportError_(f"{path}: no postcodes found; the current data is unchanged")
        cur.execute("DROP TABLE import_postcodes")
        raw.commit()
        # The swap: a short transaction; readers wait a moment, never see an empty table.
        cur.execute("SET lock_timeout = '30s'")
        cur.execute("ALTER TABLE postcodes RENAME CONSTRAINT pk_postcodes TO pk_postcodes_old")
        cur.execute("ALTER TABLE postcodes RENAME TO postcodes_old")
        cur.execute("ALTER TABLE postcodes_next RENAME TO postcodes")
        cur.execute("ALTER TABLE postcodes RENAME CONSTRAINT pk_postcodes_next TO pk_postcodes")
        cur.execute("DROP TABLE postcodes_old")
        raw.commit()
        cur.execute("ANALYZE postcodes")
        raw.commit()
        release_held(engine)  # new boundaries: held signatures are looked up again
        return count
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()


def import_constituencies(engine: Engine, path: Path, *, quiet: bool = False) -> int:
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ImportError_(f"{path}: not valid JSON (line {exc.lineno})") from None
        if not isinstance(data, dict):
            raise ImportError_(f'{path}: expected a JSON object {{"code": "name"}}')
        items: Iterator[tuple[str, str]] = iter((str(k), str(v)) for k, v in data.items())
    else:

        def csv_items() -> Iterator[tuple[str, str]]:
            with path.open(encoding="utf-8-sig", newline="") as f:
                for row in csv.reader(f):
                    if len(row) >= 2 and row[0].strip().lower() != "code":
                        yield row[0].strip(), row[1].strip()

        items = csv_items()
    return _copy_replace(engine, "constituencies", ["code", "name"], items)


def import_mps(engine: Engine, path: Path, *, quiet: bool = False) -> int:
    now = datetime.now(UTC)

    def rows() -> Iterator[tuple[object, ...]]:
        with _progress(path, "MPs", quiet) as bar:
            for row in _rows(path, bar):
                if "pcon_code" not in row:
                    raise ImportError_(f"{path}: no pcon_code column in the header")
                email = (row.get("member_email") or "").strip()
                if email.lower() == "no email found":
                    email = ""
                member = (row.get("member_id") or "").strip()
                yield (
                    row["pcon_code"].strip(),
                    int(member) if member.isdigit() else None,
                    (row.get("display_as") or "").strip() or None,
                    (row.get("full_title") or "").strip() or None,
                    (row.get("party_text") or "").strip() or None,
                    email or None,
                    now,
                )

    count = _copy_replace(
        engine,
        "mps",
        ["constituency_code", "member_id", "name", "full_title", "party", "email", "updated_at"],
        rows(),
    )
    release_held(engine)
    return count


def release_held(engine: Engine) -> int:
    """New MP or boundary data: every held signature (a vacant seat, a dissolved Parliament) is
    due now, so the resolver's next sweep re-resolves it against the new data (within
    DEARMP_HELD_SWEEP_SECONDS) instead of at its next daily try. Returns how many."""
    with engine.begin() as conn:
        return conn.execute(
            held_signatures.update().values(next_attempt_at=datetime.now(UTC))
        ).rowcount
