"""What each timed run must have produced, so that a fast wrong answer cannot win.

- a package: its zip holds ``data.gpkg`` (with every layer of the package, each with the rows the
  anchor's SQL counts on the same data, the parcels being exactly the expected ones), ``projet.qgs``
  and the ``DCIM/`` folder; the record has one item per parcel;
- the anchor's GeoPackage: the same layers and counts, the same parcels;
- a return: the job is done, ``applied`` equals the parcels edited, the registry holds exactly that
  many versions written by it (``action = 'field:return'``) and an applied ``field_return``;
- the anchor's import: its report accepts every new parcel and the registry holds them.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from bench.field_bench import anchor
from bench.import_bench.databases import Server

PACKAGE_MEMBERS = ("data.gpkg", "projet.qgs", "DCIM/")


def digest(values: list[str]) -> str:
    """sha256 of sorted ids, one per line: the same set gives the same digest."""
    return hashlib.sha256("\n".join(sorted(values)).encode()).hexdigest()


def expected_layers(server: Server, database: str, area_wkt: str) -> dict[str, Any]:
    """Row counts of every anchor layer and the digest of the parcels' ids, from the database itself."""
    counts: dict[str, int] = {}
    with server.admin(database) as conn:
        for name, _geometry, statement in anchor.layers(area_wkt):
            counts[name] = conn.execute(f"SELECT count(*) FROM ({statement}) q").fetchone()[0]
        statement = dict((n, s) for n, _g, s in anchor.layers(area_wkt))["parcels"]
        ids = [row[0] for row in conn.execute(f"SELECT parcel_id FROM ({statement}) q")]
    return {"counts": counts, "parcels_digest": digest(ids)}


def gpkg_contents(path: Path) -> dict[str, Any]:
    """Layers and their row counts, and the digest of ``parcels.parcel_id``."""
    import pyogrio

    counts = {str(name): int(pyogrio.read_info(path, layer=str(name))["features"])
              for name, _geometry in pyogrio.list_layers(path)}
    table = pyogrio.read_arrow(path, layer="parcels", columns=["parcel_id"], read_geometry=False)[1]
    return {"counts": counts, "parcels_digest": digest([str(v) for v in table.column("parcel_id").to_pylist()])}


def compare_layers(found: dict[str, Any], expected: dict[str, Any], *, extra: tuple[str, ...] = ()) -> list[str]:
    """Differences between a GeoPackage's contents and the expected ones (layers in ``extra`` may be added)."""
    problems = []
    for name, count in expected["counts"].items():
        got = found["counts"].get(name)
        if got != count:
            problems.append(f"layer {name}: {got} rows, {count} expected")
    unexpected = set(found["counts"]) - set(expected["counts"]) - set(extra)
    if unexpected:
        problems.append(f"unexpected layers {sorted(unexpected)}")
    if found["parcels_digest"] != expected["parcels_digest"]:
        problems.append("parcels: not the expected parcel ids")
    return problems


def check_package(server: Server, database: str, stdout: str, expected: dict[str, Any], scratch: Path,
                  parcels: int) -> tuple[list[str], dict[str, Any]]:
    """Problems with a built package (empty: right) and what was found."""
    try:
        record = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return ["no package record printed"], {}
    bundle = Path(record["zip"])
    if not bundle.exists():
        return [f"no zip at {bundle}"], record
    scratch.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(bundle) as opened:
        names = opened.namelist()
        problems = [f"zip lacks {m}" for m in PACKAGE_MEMBERS if m not in names]
        if "data.gpkg" in names:
            opened.extract("data.gpkg", scratch)
    found: dict[str, Any] = {"record": record, "zip_members": names}
    if (scratch / "data.gpkg").exists():
        found["gpkg"] = gpkg_contents(scratch / "data.gpkg")
        problems += compare_layers(found["gpkg"], expected, extra=("sifc_package",))
        (scratch / "data.gpkg").unlink()
    with server.admin(database) as conn:
        items = conn.execute("SELECT count(*), count(DISTINCT parcel_id) FROM field_package_item WHERE package_id = %s",
                             (record["id"],)).fetchone()
    found["items"] = items[0]
    if items[0] != parcels or items[1] != parcels or record.get("item_count") != parcels:
        problems.append(f"items: {items[0]} ({items[1]} parcels), record says {record.get('item_count')}; "
                        f"{parcels} expected")
    return problems, found


def check_anchor_gpkg(path: Path, expected: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    if not path.exists():
        return [f"no GeoPackage at {path}"], {}
    found = gpkg_contents(path)
    return compare_layers(found, expected), found


def check_return(server: Server, database: str, stdout: str, edits: int) -> tuple[list[str], dict[str, Any]]:
    try:
        outcome = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return ["no job outcome printed"], {}
    problems = []
    if outcome.get("status") != "done":
        problems.append(f"job {outcome.get('status')}: {outcome.get('error')}")
    applied = (outcome.get("counts") or {}).get("applied")
    if applied != edits:
        problems.append(f"report: {applied} applied, {edits} expected ({outcome.get('counts')})")
    with server.admin(database) as conn:
        versions = conn.execute("SELECT count(*) FROM parcel_version WHERE action = 'field:return'").fetchone()[0]
        kept = conn.execute("SELECT count(*) FROM field_return WHERE applied").fetchone()[0]
    if versions != edits:
        problems.append(f"registry: {versions} versions written by the return, {edits} expected")
    if kept != 1:
        problems.append(f"{kept} applied field_return rows, 1 expected")
    return problems, {"outcome": outcome, "versions": versions}


def check_import(server: Server, database: str, report: Path, new: int,
                 before: int) -> tuple[list[str], dict[str, Any]]:
    if not report.exists():
        return ["no import report"], {}
    data = json.loads(report.read_bytes())
    problems = []
    if data.get("accepted") != new or data.get("rejected"):
        problems.append(f"report: {data.get('accepted')} accepted, {data.get('rejected')} rejected; {new} expected")
    with server.admin(database) as conn:
        current = conn.execute("SELECT count(*) FROM parcel").fetchone()[0]
    if current != before + new:
        problems.append(f"registry: {current} current parcels, {before + new} expected")
    timings = data.get("timings")
    return problems, {"accepted": data.get("accepted"), "timings": timings}
