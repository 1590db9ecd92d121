"""``sifc territories load``: load the shipped territorial reference, idempotently.

The files are staged in a temporary table, reprojected to EPSG:32628 and repaired
in PostGIS (``ST_MakeValid``: the official Thiès polygons self-intersect), then
upserted level by level. A unit whose content is unchanged is not touched, so a
second load leaves the database exactly as the first did; a unit whose boundary
changed keeps its previous boundary in ``boundary_version``. Communes whose
boundary is official (see ``communes_import``) are never overwritten by the
provisional polygons, and provisional polygons are clipped where official ones
overlap them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import journal
from sifc.crs import STORAGE_SRID
from sifc.rules import defaults as setting_defaults
from sifc.territories import pieces, sources
from sifc.text import search_form

NORMALIZE = f"ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_Force2D(ST_Transform({{g}}, {STORAGE_SRID}))), 3))"


@dataclass
class LevelCounts:
    """What a load did to one level."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class LoadReport:
    """What ``load_reference`` did: counts per level, repairs and source defects."""

    levels: dict[str, LevelCounts] = field(default_factory=dict)
    repairs: list[dict[str, object]] = field(default_factory=list)
    defects: list[dict[str, object]] = field(default_factory=list)
    aliases_added: int = 0
    setting_defaults_changed: int = 0  # national defaults of the commune settings (sifc.rules)

    @property
    def changed(self) -> bool:
        """Whether the load changed anything."""
        return self.aliases_added > 0 or self.setting_defaults_changed > 0 or any(
            c.inserted or c.updated for c in self.levels.values())

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self) | {"changed": self.changed}


STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS stage_unit (
    level text NOT NULL,
    code text NOT NULL,
    name text,
    name_search text NOT NULL,
    parent_code text,
    src geometry,
    geom geometry,
    invalid_reason text,
    source text NOT NULL,
    valid_from timestamptz,
    official_area_km2 double precision,
    gazetteer_id integer,
    seat_source text
) ON COMMIT DROP
"""


def _stage(session: Session, records: list[sources.UnitRecord], parents: dict[str, str]) -> None:
    session.execute(text("DELETE FROM stage_unit"))
    rows = [{
        "level": r.level, "code": r.code, "name": r.name, "name_search": r.name_search,
        "parent_code": parents.get(r.code, r.parent_code), "wkb": r.wkb, "srid": r.srid,
        "source": r.source, "valid_from": r.valid_from, "area": r.official_area_km2,
        "gazetteer_id": r.extra.get("gazetteer_id"), "seat_source": r.extra.get("seat_source"),
    } for r in records]
    session.execute(text("""
        INSERT INTO stage_unit (level, code, name, name_search, parent_code, src, source,
                                valid_from, official_area_km2, gazetteer_id, seat_source)
        VALUES (:level, :code, :name, :name_search, :parent_code,
                ST_GeomFromWKB(:wkb, :srid), :source, :valid_from, :area, :gazetteer_id,
                :seat_source)
    """), rows)
    # Validity is judged in the storage CRS by the database's own GEOS.
    session.execute(text(f"""
        UPDATE stage_unit SET
            invalid_reason = CASE WHEN ST_IsValid(ST_Transform(src, {STORAGE_SRID})) THEN NULL
                                  ELSE ST_IsValidReason(ST_Transform(src, {STORAGE_SRID})) END,
            geom = {NORMALIZE.format(g="src")}
    """))


def _record_repairs(session: Session, level: str, report: LoadReport) -> None:
    rows = session.execute(text(f"""
        SELECT code, name, invalid_reason,
               round((ST_Area(ST_Transform(src, {STORAGE_SRID})) / 1e6)::numeric, 3) AS area_before_km2,
               round((ST_Area(geom) / 1e6)::numeric, 3) AS area_after_km2
        FROM stage_unit WHERE invalid_reason IS NOT NULL ORDER BY code
    """)).mappings()
    for row in rows:
        report.repairs.append({"level": level, **{k: _plain(v) for k, v in row.items()},
                               "action": "ST_MakeValid"})


def _json(rows: Sequence[Mapping[str, object]]) -> str:
    return orjson.dumps(rows).decode()


def _plain(value: object) -> object:
    """Decimals from SQL as floats, for JSON."""
    return float(value) if isinstance(value, Decimal) else value


def _archive_changed(session: Session, level: str) -> None:
    """Keep the boundary a load is about to replace, with its validity period."""
    official_guard = "AND t.boundary_status = 'provisional'" if level == "commune" else ""
    session.execute(text(f"""
        INSERT INTO boundary_version (level, unit_code, name, geom, boundary_status, source,
                                      valid_from, valid_to, replaced_by)
        SELECT :level, t.code, t.name, t.geom, t.boundary_status, t.source, t.valid_from,
               greatest(now(), t.valid_from), s.source
        FROM {level} t JOIN stage_unit s ON s.code = t.code
        WHERE {geom_changed("t.geom", "s.geom")} {official_guard}
    """), {"level": level})


def _count(result: Any, counts: LevelCounts) -> None:
    flags = [row.inserted for row in result]
    counts.inserted = sum(1 for f in flags if f)
    counts.updated = sum(1 for f in flags if not f)
    counts.unchanged = counts.read - counts.inserted - counts.updated


def geom_changed(old: str, new: str) -> str:
    """SQL: whether boundary ``new`` differs from ``old`` by more than noding noise (0.01 m²).

    Clipping and reprojection can rewrite vertices without moving the boundary; such a
    rewrite is not a new boundary and must not open a new version.
    """
    return (f"({old} IS DISTINCT FROM {new} AND ({old} IS NULL OR {new} IS NULL "
            f"OR ST_Area(ST_SymDifference({old}, {new})) > 0.01))")


# Per level: the columns a load writes (besides code and geom) and how the staged row
# provides them. Official communes belong to `import-communes`: the provisional file never
# overwrites them.
_SOURCES = {
    "region": ({"pole_code": "s.parent_code", "name": "s.name", "name_search": "s.name_search",
                "official_area_km2": "s.official_area_km2", "source": "s.source"}, ""),
    "department": ({"region_code": "s.parent_code", "name": "s.name",
                    "name_search": "s.name_search", "official_area_km2": "s.official_area_km2",
                    "source": "s.source"}, ""),
    "arrondissement": ({"department_code": "s.parent_code", "region_code": "d.region_code",
                        "name": "s.name", "name_search": "s.name_search",
                        "official_area_km2": "s.official_area_km2", "source": "s.source"},
                       "JOIN department d ON d.code = s.parent_code"),
    "commune": ({"name": "s.name", "name_search": "s.name_search",
                 "department_code": "s.parent_code", "region_code": "d.region_code",
                 "gazetteer_id": "s.gazetteer_id", "seat_source": "s.seat_source",
                 "source": "s.source"},
                "JOIN department d ON d.code = s.parent_code"),
}


def _upsert_sql(level: str) -> str:
    columns, join = _SOURCES[level]
    status = "provisional" if level == "commune" else "official"
    names = ", ".join(columns)
    values = ", ".join(columns.values())
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
    old = ", ".join(f"t.{c}" for c in columns)
    new = ", ".join(f"excluded.{c}" for c in columns)
    guard = "t.boundary_status = 'provisional' AND " if level == "commune" else ""
    changed = geom_changed("t.geom", "excluded.geom")
    return f"""
        INSERT INTO {level} AS t (code, {names}, geom, boundary_status, valid_from)
        SELECT s.code, {values}, s.geom, '{status}', coalesce(s.valid_from, now())
        FROM stage_unit s {join}
        ON CONFLICT (code) DO UPDATE SET {updates},
            geom = CASE WHEN {changed} THEN excluded.geom ELSE t.geom END,
            valid_from = CASE WHEN {changed} THEN greatest(now(), t.valid_from)
                              ELSE t.valid_from END
        WHERE {guard}(({old}) IS DISTINCT FROM ({new}) OR {changed})
        RETURNING (xmax = 0) AS inserted
    """


def _load_level(session: Session, level: str, records: list[sources.UnitRecord],
                report: LoadReport, parents: dict[str, str] | None = None) -> None:
    counts = LevelCounts(read=len(records))
    report.levels[level] = counts
    _stage(session, records, parents or {})
    _record_repairs(session, level, report)
    if level == "commune":
        _clip_staged_by_official(session)
    _archive_changed(session, level)
    _count(session.execute(text(_upsert_sql(level))), counts)


def _clip_staged_by_official(session: Session) -> None:
    """Official boundaries take precedence over provisional ones (issue: official import)."""
    session.execute(text(f"""
        UPDATE stage_unit s SET geom = nullif(
            {NORMALIZE.format(g="ST_Difference(s.geom, o.geom)")},
            'SRID={STORAGE_SRID};MULTIPOLYGON EMPTY'::geometry)
        FROM (SELECT s2.code, ST_Union(c.geom) AS geom
              FROM stage_unit s2 JOIN commune c
                ON c.boundary_status = 'official' AND c.geom && s2.geom
               AND ST_Relate(c.geom, s2.geom, '2********') AND c.code <> s2.code
              GROUP BY s2.code) o
        WHERE o.code = s.code
    """))
    session.execute(text("UPDATE stage_unit SET geom = NULL WHERE ST_IsEmpty(geom)"))


def _load_poles(session: Session, poles: list[sources.PoleRecord], report: LoadReport) -> None:
    counts = LevelCounts(read=len(poles))
    report.levels["pole"] = counts
    result = session.execute(text("""
        INSERT INTO pole AS t (code, name, name_search, region_order, boundary_status, source)
        SELECT code, name, name_search, "order", 'official', source
        FROM jsonb_to_recordset(CAST(:rows AS jsonb))
             AS r(code text, name text, name_search text, "order" int, source text)
        ON CONFLICT (code) DO UPDATE SET name = excluded.name, name_search = excluded.name_search,
            region_order = excluded.region_order, source = excluded.source
        WHERE (t.name, t.name_search, t.region_order, t.source)
              IS DISTINCT FROM (excluded.name, excluded.name_search, excluded.region_order,
                                excluded.source)
        RETURNING (xmax = 0) AS inserted
    """), {"rows": _json([{
        "code": p.code, "name": p.name, "name_search": search_form(p.name), "order": p.order,
        "source": "Union des régions du pôle (composition : poles.csv, Le Soleil, PressAfrik)",
    } for p in poles])})
    _count(result, counts)


def _compute_pole_geometry(session: Session, report: LoadReport) -> None:
    """A pole's polygon is the union of its regions' polygons: computed, never drawn."""
    session.execute(text(f"""
        CREATE TEMP TABLE pole_union ON COMMIT DROP AS
        SELECT r.pole_code AS code, {NORMALIZE.format(g="ST_Union(r.geom)")} AS geom
        FROM region r GROUP BY r.pole_code
    """))
    session.execute(text(f"""
        INSERT INTO boundary_version (level, unit_code, name, geom, boundary_status, source,
                                      valid_from, valid_to, replaced_by)
        SELECT 'pole', p.code, p.name, p.geom, p.boundary_status, p.source, p.valid_from,
               greatest(now(), p.valid_from), 'union des régions recalculée'
        FROM pole p JOIN pole_union u USING (code)
        WHERE p.geom IS NOT NULL AND {geom_changed("p.geom", "u.geom")}
    """))
    result = session.execute(text(f"""
        UPDATE pole p SET geom = u.geom,
               valid_from = CASE WHEN p.geom IS NULL THEN p.valid_from
                                 ELSE greatest(now(), p.valid_from) END
        FROM pole_union u WHERE u.code = p.code AND {geom_changed("p.geom", "u.geom")}
        RETURNING p.code
    """)).all()
    counts = report.levels["pole"]
    if counts.inserted == 0:
        counts.updated = len({row.code for row in result})
        counts.unchanged = counts.read - counts.updated
    session.execute(text("DROP TABLE pole_union"))


def assign_arrondissements(session: Session) -> None:
    """A commune belongs to the arrondissement of its department holding most of its area."""
    session.execute(text("""
        UPDATE commune c SET arrondissement_code = best.arrondissement_code
        FROM (
            SELECT DISTINCT ON (c2.code) c2.code, a.code AS arrondissement_code
            FROM commune c2 JOIN arrondissement a
              ON a.department_code = c2.department_code AND a.geom && c2.geom
             AND ST_Intersects(a.geom, c2.geom)
            ORDER BY c2.code, ST_Area(ST_Intersection(a.geom, c2.geom)) DESC, a.code
        ) best
        WHERE best.code = c.code AND c.arrondissement_code IS DISTINCT FROM best.arrondissement_code
    """))


def _load_aliases(session: Session, data_dir: Path, communes: list[sources.UnitRecord],
                  report: LoadReport) -> None:
    rows = [{"code": code, "alias": alias, "search": search_form(alias), "source": source}
            for code, alias, source in sources.read_alias_rows(data_dir)]
    for record in communes:
        source_name = str(record.extra.get("source_name") or "")
        if source_name and record.name and search_form(source_name) != search_form(record.name):
            rows.append({"code": record.code, "alias": source_name,
                         "search": search_form(source_name),
                         "source": "nom du fichier source avant correction"})
    if not rows:
        return
    result = session.execute(text("""
        INSERT INTO commune_alias (commune_code, alias, alias_search, source)
        SELECT r.code, r.alias, r.search, r.source
        FROM jsonb_to_recordset(CAST(:rows AS jsonb))
             AS r(code text, alias text, search text, source text)
        WHERE EXISTS (SELECT 1 FROM commune c WHERE c.code = r.code)
        ON CONFLICT (alias_search, commune_code) DO NOTHING
        RETURNING id
    """), {"rows": _json(rows)})
    report.aliases_added = len(result.all())


def load_reference(session: Session, data_dir: Path) -> LoadReport:
    """Load poles, regions, departments, arrondissements and communes from ``data_dir``.

    Runs in the caller's transaction: the caller commits (the CLI) or rolls back (tests).
    """
    report = LoadReport()
    poles = sources.read_poles(data_dir)
    regions = sources.read_units(data_dir, "region")
    departments = sources.read_units(data_dir, "department")
    arrondissements = sources.read_units(data_dir, "arrondissement")
    communes = sources.read_communes(data_dir)
    for record in arrondissements:
        if record.name is None:
            report.defects.append({"level": "arrondissement", "code": record.code,
                                   "defect": "nom absent de la source (N/A) ; conservé sans nom"})
    region_pole = {code: p.code for p in poles for code in p.region_codes}
    session.execute(text(STAGE_DDL))
    _load_poles(session, poles, report)
    _load_level(session, "region", regions, report, parents=region_pole)
    _load_level(session, "department", departments, report)
    _load_level(session, "arrondissement", arrondissements, report)
    _load_level(session, "commune", communes, report)
    _compute_pole_geometry(session, report)
    assign_arrondissements(session)
    _load_aliases(session, data_dir, communes, report)
    report.setting_defaults_changed = setting_defaults.load(session, data_dir)
    for level in ("region", "commune"):
        counts = report.levels[level]
        if counts.inserted or counts.updated or pieces.missing(session, level):
            pieces.refresh(session, level)
    session.execute(text("DROP TABLE stage_unit"))
    if report.changed:
        journal.record(session, None, author="sifc territories load", operation="territories.load",
                       object_kind="territorial_reference", object_id=data_dir.name,
                       after={"levels": {k: asdict(v) for k, v in report.levels.items()},
                              "aliases_added": report.aliases_added, "repairs": len(report.repairs)})
    return report
