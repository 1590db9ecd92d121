"""Reading the reference files shipped in ``data/`` into plain records.

Each reader returns :class:`UnitRecord` objects with the geometry as WKB in the
file's own CRS; reprojection and repair happen in PostGIS so that the database's
own GEOS decides validity (see ``loader``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyogrio
import shapely
from pyproj import CRS

from sifc.errors import ImportRejected
from sifc.text import search_form, slug

OCHA_SOURCE = "OCHA COD-AB Sénégal (ANAT), édition 2024-05-20"
FILES = {
    "poles": "senegal/poles.csv",
    "region": "senegal/ocha_cod_ab_2024/sen_admbnda_adm1_anat_20240520.shp",
    "department": "senegal/ocha_cod_ab_2024/sen_admbnda_adm2_anat_20240520.shp",
    "arrondissement": "senegal/ocha_cod_ab_2024/adm3_arrondissements_derived.gpkg",
    "commune": "senegal/communes_provisional.gpkg",
    "name_fixes": "senegal/commune_name_fixes.csv",
    "aliases": "senegal/commune_aliases.csv",
}
MISSING_NAMES = {"", "N/A", "NA", "NULL", "NONE", "-"}


@dataclass(slots=True)
class UnitRecord:
    """One territorial unit as read from a reference file."""

    level: str
    code: str
    name: str | None
    parent_code: str | None
    wkb: bytes | None
    srid: int
    source: str
    valid_from: datetime | None = None
    official_area_km2: float | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def name_search(self) -> str:
        """Search form of the name; the code's when the source has no name."""
        return search_form(self.name) if self.name else self.code.lower()


@dataclass(slots=True)
class PoleRecord:
    """One territorial pole and the regions it groups."""

    code: str
    name: str
    region_codes: list[str]
    order: int


def data_path(data_dir: Path, key: str) -> Path:
    """Path of reference file ``key`` in ``data_dir``, refused when missing."""
    path = data_dir / FILES[key]
    if not path.exists():
        raise ImportRejected("load.file_missing", path=str(path))
    return path


def read_poles(data_dir: Path) -> list[PoleRecord]:
    """The 8 poles of ``poles.csv``."""
    with data_path(data_dir, "poles").open(encoding="utf-8", newline="") as handle:
        return [
            PoleRecord(row["pole_code"].strip(), row["pole_name"].strip(),
                       [c.strip() for c in row["region_pcodes"].split(";") if c.strip()], i)
            for i, row in enumerate(csv.DictReader(handle))
        ]


def _srid(crs: str | None, path: Path) -> int:
    if not crs:
        raise ImportRejected("import.no_crs", path=str(path))
    epsg = CRS.from_user_input(crs).to_epsg()
    if epsg is None:
        raise ImportRejected("import.bad_crs", crs=crs)
    return epsg


def _valid_from(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value[:10])
    return None


def _read(path: Path) -> tuple[Any, int]:
    meta = pyogrio.read_info(path)
    frame = pyogrio.read_dataframe(path)
    return frame, _srid(meta.get("crs"), path)


def _clean_name(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return None if text.upper() in MISSING_NAMES else text


def read_units(data_dir: Path, level: str) -> list[UnitRecord]:
    """Regions, departments or arrondissements from the OCHA files."""
    path = data_path(data_dir, level)
    frame, srid = _read(path)
    prefix = {"region": "ADM1", "department": "ADM2", "arrondissement": "ADM3"}[level]
    parent = {"region": None, "department": "ADM1_PCODE", "arrondissement": "ADM2_PCODE"}[level]
    area = "AREA_SQKM" if "AREA_SQKM" in frame.columns else f"{'AREA_SQKM_derived'}"
    source = f"{OCHA_SOURCE} — {path.name}"
    if level == "arrondissement":
        source = f"{OCHA_SOURCE}, polygones reconstruits à partir des limites officielles — {path.name}"
    records = []
    for row in frame.itertuples(index=False):
        data = row._asdict()
        geometry = data["geometry"]
        records.append(UnitRecord(
            level=level,
            code=str(data[f"{prefix}_PCODE"]).strip(),
            name=_clean_name(data[f"{prefix}_FR"]),
            parent_code=str(data[parent]).strip() if parent else None,
            wkb=None if geometry is None else shapely.to_wkb(geometry),
            srid=srid,
            source=source,
            valid_from=_valid_from(data.get("validOn")),
            official_area_km2=float(data[area]) if data.get(area) is not None else None,
        ))
    return records


def read_communes(data_dir: Path) -> list[UnitRecord]:
    """The 549 provisional commune polygons, with stable codes and name fixes applied."""
    path = data_path(data_dir, "commune")
    frame, srid = _read(path)
    fixes = _read_csv(data_dir, "name_fixes")
    frame = frame.sort_values("gazetteer_id", kind="stable")
    records: list[UnitRecord] = []
    taken: set[str] = set()
    for row in frame.itertuples(index=False):
        data = row._asdict()
        name = str(data["name"]).strip()
        base = f"{data['adm2_pcode']}-{slug(name)}"
        code, n = base, 2
        while code in taken:  # homonyms inside one department (none today): stable suffix
            code, n = f"{base}-{n}", n + 1
        taken.add(code)
        fix = fixes.get(code)
        records.append(UnitRecord(
            level="commune",
            code=code,
            name=fix["name"] if fix else name,
            parent_code=str(data["adm2_pcode"]),
            wkb=None if data["geometry"] is None else shapely.to_wkb(data["geometry"]),
            srid=srid,
            source=("Limites provisoires SIFC : cellules de Voronoï des chefs-lieux découpées "
                    f"par département (OSM ODbL, gazetteer) — {path.name}"),
            extra={"gazetteer_id": int(data["gazetteer_id"]), "seat_source": data["seat_source"],
                   "source_name": name},
        ))
    return records


def _read_csv(data_dir: Path, key: str) -> dict[str, dict[str, str]]:
    with data_path(data_dir, key).open(encoding="utf-8", newline="") as handle:
        return {row["commune_code"].strip(): row for row in csv.DictReader(handle)}


def read_alias_rows(data_dir: Path) -> list[tuple[str, str, str]]:
    """Shipped aliases as (commune_code, alias, source)."""
    path = data_path(data_dir, "aliases")
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row["commune_code"].strip(), row["alias"].strip(), f"{path.name}: {row['note']}")
                for row in csv.DictReader(handle)]
