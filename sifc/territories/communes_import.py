"""``sifc territories import-communes``: official commune boundaries replace provisional ones.

Matching, in order: the national code (``--code-field``, e.g. ``COD_ENTITE``) against
codes already stored; the project code; then the name in its search form (accents,
case and hyphens ignored) against names and aliases, the department telling homonyms
apart (a department field, else the department holding most of the polygon).

An official polygon takes precedence: provisional neighbours are clipped where it
overlaps them (clipped areas reported); land the replaced provisional polygon covered
and no commune covers any more is left without a commune and reported. Every replaced
boundary is kept in ``boundary_version`` with its validity period. Features that match
nothing are reported and left out (``strict``: the whole file is refused). A file with
no CRS or with non-polygon geometries is refused before anything is written. The caller
owns the transaction: any refusal raised here leaves the database as it was.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyogrio
import shapely
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import journal
from sifc.crs import STORAGE_SRID
from sifc.errors import ImportRejected
from sifc.i18n import Lang, known, translate
from sifc.imports.source import resolve_srid
from sifc.territories import pieces
from sifc.territories.loader import NORMALIZE, assign_arrondissements
from sifc.text import search_form

NAME_FIELDS = ("CCRCA", "COMMUNE", "NOM_COMMUNE", "NOM_COM", "NOM", "NAME", "ADM4_FR", "name",
               "nom", "commune")
CODE_FIELDS = ("COD_ENTITE", "CODE_COMMUNE", "CODE_COM", "code_commune")
DEPARTMENT_FIELDS = ("DEPT", "DEPARTEMENT", "DEPARTMENT", "NOM_DEPT", "ADM2_FR", "departement")
POLYGONAL = {"Polygon", "MultiPolygon"}
MIN_REPORTED_M2 = 1.0


@dataclass
class ImportOptions:
    """Options of one import, as given on the command line."""

    crs: str | None = None
    name_field: str | None = None
    code_field: str | None = None
    department_field: str | None = None
    layer: str | None = None
    strict: bool = False
    aliases: list[tuple[str, str]] = field(default_factory=list)
    alias_source: str = "fichier d'alias"


@dataclass
class CommuneImportReport:
    """What an import did, feature by feature."""

    file: str
    features: int = 0
    matched: list[dict[str, object]] = field(default_factory=list)
    unchanged: list[dict[str, object]] = field(default_factory=list)
    unmatched: list[dict[str, object]] = field(default_factory=list)
    clipped: list[dict[str, object]] = field(default_factory=list)
    orphaned: list[dict[str, object]] = field(default_factory=list)
    repaired: list[dict[str, object]] = field(default_factory=list)
    warnings: list[dict[str, object]] = field(default_factory=list)
    parcels_outside: list[dict[str, object]] = field(default_factory=list)
    aliases_added: int = 0

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class _Feature:
    index: int
    name: str
    code: str | None
    department: str | None
    wkb: bytes


def read_alias_file(path: Path) -> list[tuple[str, str]]:
    """Read an alias CSV: ``alias,commune`` per line (commune by name or code), header optional."""
    if not path.is_file():
        raise ImportRejected("aliases.bad_file", path=str(path), reason="fichier introuvable")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except (UnicodeDecodeError, csv.Error) as error:
        raise ImportRejected("aliases.bad_file", path=str(path), reason=str(error)) from error
    if rows and [c.strip().lower() for c in rows[0][:2]] in (["alias", "commune"],
                                                              ["alias", "commune_code"]):
        rows = rows[1:]
    pairs = []
    for number, row in enumerate(rows, start=1):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise ImportRejected("aliases.bad_file", path=str(path),
                                 reason=f"ligne {number} : deux colonnes attendues (alias,commune)")
        pairs.append((row[0].strip(), row[1].strip()))
    return pairs


def _pick_field(columns: list[str], given: str | None, guesses: tuple[str, ...],
                required: bool) -> str | None:
    if given:
        if given not in columns:
            raise ImportRejected("import.field_missing", field=given, fields=", ".join(columns))
        return given
    lowered = {c.lower(): c for c in columns}
    for guess in guesses:
        if guess.lower() in lowered:
            return lowered[guess.lower()]
    if required:
        raise ImportRejected("import.name_field_unknown", fields=", ".join(columns))
    return None


def _text(value: object) -> str | None:
    if value is None:
        return None
    result = str(value).strip()
    return result or None


def _read(path: Path, options: ImportOptions) -> tuple[list[_Feature], int, list[dict[str, Any]]]:
    if not path.exists():
        raise ImportRejected("import.file_missing", path=str(path))
    try:
        info = pyogrio.read_info(path, layer=options.layer)
        frame = pyogrio.read_dataframe(path, layer=options.layer)
    except Exception as error:  # GDAL raises many types for unreadable files
        raise ImportRejected("import.unreadable", path=str(path),
                             reason=str(error).splitlines()[0]) from error
    srid, _origin = resolve_srid(info.get("crs"), options.crs, path, [])
    if len(frame) == 0:
        raise ImportRejected("import.empty")
    types = sorted({t for t in frame.geometry.geom_type.dropna().unique()})
    if any(t not in POLYGONAL for t in types):
        raise ImportRejected("import.not_polygons", found=", ".join(types))
    columns = [c for c in frame.columns if c != "geometry"]
    name_field = _pick_field(columns, options.name_field, NAME_FIELDS, required=True)
    code_field = _pick_field(columns, options.code_field, CODE_FIELDS, required=False)
    department_field = _pick_field(columns, options.department_field, DEPARTMENT_FIELDS,
                                   required=False)
    features, skipped = [], []
    for index, row in enumerate(frame.itertuples(index=False)):
        data = row._asdict()
        name = _text(data.get(name_field)) or ""
        geometry = data["geometry"]
        if geometry is None or geometry.is_empty:
            skipped.append({"feature": index, "name": name, "reason": "null_geometry"})
            continue
        features.append(_Feature(index, name, _text(data.get(code_field)) if code_field else None,
                                 _text(data.get(department_field)) if department_field else None,
                                 shapely.to_wkb(shapely.force_2d(geometry))))
    return features, srid, skipped


def _register_aliases(session: Session, options: ImportOptions, report: CommuneImportReport) -> None:
    for alias, reference in options.aliases:
        codes = session.execute(text("""
            SELECT code FROM commune WHERE code = :ref OR national_code = :ref
            UNION SELECT code FROM commune WHERE name_search = :search
            UNION SELECT commune_code FROM commune_alias WHERE alias_search = :search
        """), {"ref": reference, "search": search_form(reference)}).scalars().all()
        if not codes:
            raise ImportRejected("aliases.unknown_commune", alias=alias, commune=reference)
        if len(codes) > 1:
            raise ImportRejected("aliases.ambiguous_commune", alias=alias, commune=reference,
                                 codes=", ".join(sorted(codes)))
        inserted = session.execute(text("""
            INSERT INTO commune_alias (commune_code, alias, alias_search, source)
            VALUES (:code, :alias, :search, :source)
            ON CONFLICT (alias_search, commune_code) DO NOTHING RETURNING id
        """), {"code": codes[0], "alias": alias, "search": search_form(alias),
               "source": options.alias_source}).first()
        report.aliases_added += inserted is not None


def _stage(session: Session, features: list[_Feature], srid: int) -> None:
    session.execute(text("""
        CREATE TEMP TABLE stage_official (
            idx integer PRIMARY KEY, name text, code text, department text,
            src geometry, geom geometry, invalid_reason text
        ) ON COMMIT DROP
    """))
    session.execute(text("""
        INSERT INTO stage_official (idx, name, code, department, src)
        VALUES (:idx, :name, :code, :department, ST_GeomFromWKB(:wkb, :srid))
    """), [{"idx": f.index, "name": f.name, "code": f.code, "department": f.department,
            "wkb": f.wkb, "srid": srid} for f in features])
    session.execute(text(f"""
        UPDATE stage_official SET
            invalid_reason = CASE WHEN ST_IsValid(ST_Transform(src, {STORAGE_SRID})) THEN NULL
                                  ELSE ST_IsValidReason(ST_Transform(src, {STORAGE_SRID})) END,
            geom = {NORMALIZE.format(g="src")}
    """))


def _candidates_by_name(session: Session, feature: _Feature) -> list[dict[str, Any]]:
    return [dict(row) for row in session.execute(text("""
        SELECT c.code, c.name, c.department_code, d.name_search AS department_search,
               (c.name_search = :search) AS by_name
        FROM commune c JOIN department d ON d.code = c.department_code
        WHERE c.name_search = :search
           OR c.code IN (SELECT commune_code FROM commune_alias WHERE alias_search = :search)
        ORDER BY c.code
    """), {"search": search_form(feature.name)}).mappings()]


def _majority_department(session: Session, index: int) -> str | None:
    return session.execute(text("""
        SELECT d.code FROM stage_official s JOIN department d
          ON d.geom && s.geom AND ST_Intersects(d.geom, s.geom)
        WHERE s.idx = :idx
        ORDER BY ST_Area(ST_Intersection(d.geom, s.geom)) DESC LIMIT 1
    """), {"idx": index}).scalar()


def _match(session: Session, feature: _Feature) -> tuple[str | None, str]:
    """The commune code ``feature`` designates and how it was found, or (None, reason)."""
    if feature.code:
        code = session.execute(text(
            "SELECT code FROM commune WHERE national_code = :c OR code = :c"),
            {"c": feature.code}).scalar()
        if code:
            return code, "code"
    if not feature.name:
        return None, "no_name"
    candidates = _candidates_by_name(session, feature)
    if not candidates:
        return None, "no_commune_with_this_name"
    how = "name" if any(c["by_name"] for c in candidates) else "alias"
    if feature.department:
        wanted = search_form(feature.department)
        in_department = [c for c in candidates if c["department_search"] == wanted]
        if len(in_department) == 1:
            return in_department[0]["code"], f"{how}+department" if len(candidates) > 1 else how
        if not in_department:
            return None, "department_mismatch"
    if len(candidates) == 1:
        return candidates[0]["code"], how
    majority = _majority_department(session, feature.index)
    located = [c for c in candidates if c["department_code"] == majority]
    if len(located) == 1:
        return located[0]["code"], f"{how}+department(geometry)"
    return None, "ambiguous_name"


def _national_code_conflict(session: Session, commune: str, code: str | None) -> str | None:
    if not code:
        return None
    return session.execute(text(
        "SELECT code FROM commune WHERE national_code = :n AND code <> :c"),
        {"n": code, "c": commune}).scalar()


def import_communes(session: Session, path: Path, options: ImportOptions) -> CommuneImportReport:
    """Import official commune boundaries from ``path`` in the caller's transaction."""
    features, srid, skipped = _read(path, options)
    report = CommuneImportReport(file=path.name, features=len(features) + len(skipped))
    report.unmatched.extend(skipped)
    _register_aliases(session, options, report)
    _stage(session, features, srid)

    matches: dict[str, list[tuple[_Feature, str]]] = {}
    for feature in features:
        code, how = _match(session, feature)
        if code is None:
            report.unmatched.append({"feature": feature.index, "name": feature.name,
                                     "department": feature.department, "code": feature.code,
                                     "reason": how})
            continue
        conflict = _national_code_conflict(session, code, feature.code)
        if conflict:
            report.unmatched.append({"feature": feature.index, "name": feature.name,
                                     "code": feature.code, "reason": "national_code_taken",
                                     "by": conflict})
            continue
        matches.setdefault(code, []).append((feature, how))
    for code, claimed in list(matches.items()):
        if len(claimed) > 1:  # two features for one commune: neither wins silently
            for feature, _how in claimed:
                report.unmatched.append({"feature": feature.index, "name": feature.name,
                                         "reason": "several_features_for_one_commune",
                                         "commune": code})
            del matches[code]

    if options.strict and report.unmatched:
        names = ", ".join(str(u.get("name") or f"#{u['feature']}") for u in report.unmatched)
        raise ImportRejected("import.strict_unmatched", count=len(report.unmatched), names=names)

    session.execute(text("""
        CREATE TEMP TABLE import_match (idx integer PRIMARY KEY, commune_code text UNIQUE,
                                        how text) ON COMMIT DROP
    """))
    if matches:
        session.execute(text("INSERT INTO import_match VALUES (:idx, :code, :how)"),
                        [{"idx": f.index, "code": code, "how": how}
                         for code, claimed in matches.items() for f, how in claimed])
    _apply(session, report, path.name)
    journal.record(session, None, author="sifc territories import-communes", operation="territories.import_communes",
                   object_kind="commune_boundaries", object_id=path.name,
                   after={"file": path.name, "features": report.features, "matched": len(report.matched),
                          "unchanged": len(report.unchanged), "unmatched": len(report.unmatched),
                          "clipped": len(report.clipped)})
    session.execute(text("DROP TABLE import_match"))
    session.execute(text("DROP TABLE stage_official"))
    return report


def _apply(session: Session, report: CommuneImportReport, file_name: str) -> None:
    source = f"Limites officielles importées — {file_name}"
    for row in session.execute(text("""
        SELECT s.idx, s.name, s.invalid_reason, round((ST_Area(s.geom) / 1e6)::numeric, 3) AS km2
        FROM stage_official s JOIN import_match m USING (idx) WHERE s.invalid_reason IS NOT NULL
    """)).mappings():
        report.repaired.append({"feature": row["idx"], "name": row["name"],
                                "reason": row["invalid_reason"], "area_km2": float(row["km2"])})

    unchanged = session.execute(text("""
        DELETE FROM import_match m USING stage_official s, commune c
        WHERE s.idx = m.idx AND c.code = m.commune_code AND c.boundary_status = 'official'
          AND c.geom = s.geom AND c.national_code IS NOT DISTINCT FROM coalesce(s.code, c.national_code)
        RETURNING m.idx, m.commune_code
    """)).mappings().all()
    report.unchanged.extend({"feature": r["idx"], "commune": r["commune_code"]} for r in unchanged)

    # Keep the replaced boundaries, then replace them.
    session.execute(text("""
        CREATE TEMP TABLE replaced ON COMMIT DROP AS
        SELECT c.code, c.geom AS old_geom FROM commune c JOIN import_match m ON m.commune_code = c.code
    """))
    session.execute(text("""
        INSERT INTO boundary_version (level, unit_code, name, geom, boundary_status, source,
                                      valid_from, valid_to, replaced_by)
        SELECT 'commune', c.code, c.name, c.geom, c.boundary_status, c.source, c.valid_from,
               greatest(now(), c.valid_from), :source
        FROM commune c JOIN import_match m ON m.commune_code = c.code
    """), {"source": source})
    rows = session.execute(text("""
        UPDATE commune c SET geom = s.geom, boundary_status = 'official', source = :source,
               valid_from = greatest(now(), c.valid_from),
               national_code = coalesce(s.code, c.national_code)
        FROM import_match m JOIN stage_official s USING (idx)
        WHERE c.code = m.commune_code
        RETURNING c.code, c.name, m.idx, m.how, s.name AS feature_name,
                  round((ST_Area(s.geom) / 1e6)::numeric, 3) AS area_km2
    """), {"source": source}).mappings().all()
    old_area: dict[str, Any] = dict(session.execute(text(
        "SELECT code, round((ST_Area(old_geom) / 1e6)::numeric, 3) FROM replaced")).all())
    for row in sorted(rows, key=lambda r: r["idx"]):
        report.matched.append({
            "feature": row["idx"], "feature_name": row["feature_name"], "commune": row["code"],
            "name": row["name"], "matched_by": row["how"], "area_km2": float(row["area_km2"]),
            "previous_area_km2": float(old_area[row["code"]]) if old_area.get(row["code"]) else None,
        })
    if rows:
        _clip_provisional_neighbours(session, report, source)
        _report_orphaned_land(session, report)
        _report_parcels_outside(session, report)
        _report_official_overlaps(session, report)
        assign_arrondissements(session)  # replaced and clipped communes alike
        pieces.refresh(session, "commune")
    session.execute(text("DROP TABLE replaced"))


def _clip_provisional_neighbours(session: Session, report: CommuneImportReport, source: str) -> None:
    """Official polygons take precedence: clip the provisional communes they overlap."""
    session.execute(text("""
        CREATE TEMP TABLE clipped ON COMMIT DROP AS
        SELECT p.code, p.geom AS old_geom, ST_Union(o.geom) AS official
        FROM commune p JOIN commune o
          ON o.code IN (SELECT commune_code FROM import_match) AND o.geom && p.geom
         AND ST_Relate(o.geom, p.geom, '2********')
        WHERE p.boundary_status = 'provisional'
        GROUP BY p.code, p.geom
    """))
    session.execute(text("""
        INSERT INTO boundary_version (level, unit_code, name, geom, boundary_status, source,
                                      valid_from, valid_to, replaced_by)
        SELECT 'commune', c.code, c.name, c.geom, c.boundary_status, c.source, c.valid_from,
               greatest(now(), c.valid_from), :source
        FROM commune c JOIN clipped k USING (code)
    """), {"source": f"découpe par : {source}"})
    rows = session.execute(text(f"""
        WITH cut AS (
            SELECT k.code, nullif({NORMALIZE.format(g="ST_Difference(k.old_geom, k.official)")},
                                  'SRID={STORAGE_SRID};MULTIPOLYGON EMPTY'::geometry) AS geom
            FROM clipped k
        )
        UPDATE commune c SET geom = CASE WHEN ST_IsEmpty(cut.geom) THEN NULL ELSE cut.geom END,
               valid_from = greatest(now(), c.valid_from)
        FROM cut WHERE cut.code = c.code
        RETURNING c.code, c.name, c.geom IS NULL AS emptied
    """)).mappings().all()
    areas: dict[str, float] = dict(session.execute(text("""
        SELECT k.code, ST_Area(k.old_geom) - coalesce(ST_Area(c.geom), 0)
        FROM clipped k JOIN commune c USING (code)
    """)).all())
    for row in sorted(rows, key=lambda r: r["code"]):
        report.clipped.append({"commune": row["code"], "name": row["name"],
                               "clipped_km2": round(areas[row["code"]] / 1e6, 4),
                               "emptied": row["emptied"]})
    session.execute(text("DROP TABLE clipped"))


def _report_orphaned_land(session: Session, report: CommuneImportReport) -> None:
    """Land a replaced provisional polygon covered and no commune covers now."""
    rows = session.execute(text(f"""
        SELECT r.code, ST_Area(ST_Difference(r.old_geom, coalesce(
                   (SELECT ST_Union(c.geom) FROM commune c
                    WHERE c.geom && r.old_geom AND ST_Intersects(c.geom, r.old_geom)),
                   'SRID={STORAGE_SRID};POLYGON EMPTY'::geometry))) AS m2
        FROM replaced r WHERE r.old_geom IS NOT NULL
        ORDER BY r.code
    """)).all()
    for code, m2 in rows:
        if m2 >= MIN_REPORTED_M2:
            report.orphaned.append({"commune": code, "area_km2": round(m2 / 1e6, 4)})


def _report_parcels_outside(session: Session, report: CommuneImportReport) -> None:
    """Parcels that the new boundaries leave (beyond 1 m² and 1 %) outside the commune they belong to.

    Nothing is moved silently: the parcels keep their commune and are reported, for a land
    officer to decide (a commune boundary change must never orphan parcels unnoticed).
    """
    changed = [row["commune"] for row in report.matched] + [row["commune"] for row in report.clipped]
    if not changed:
        return
    rows = session.execute(text("""
        SELECT p.commune_code, count(*) FROM parcel p JOIN commune c ON c.code = p.commune_code
        WHERE p.commune_code = ANY(:codes)
          AND (c.geom IS NULL OR (NOT ST_Covers(c.geom, p.geom)
               AND p.area_m2 - overlap_area(c.geom, p.geom) > greatest(1.0, 0.01 * p.area_m2)))
        GROUP BY p.commune_code ORDER BY p.commune_code
    """), {"codes": changed}).all()
    report.parcels_outside.extend({"commune": code, "parcels": count} for code, count in rows)


def _report_official_overlaps(session: Session, report: CommuneImportReport) -> None:
    rows = session.execute(text("""
        SELECT a.code AS a, b.code AS b, ST_Area(ST_Intersection(a.geom, b.geom)) AS m2
        FROM commune a JOIN commune b
          ON a.code < b.code AND a.geom && b.geom AND ST_Relate(a.geom, b.geom, '2********')
        WHERE a.boundary_status = 'official' AND b.boundary_status = 'official'
          AND (a.code IN (SELECT commune_code FROM import_match)
               OR b.code IN (SELECT commune_code FROM import_match))
    """)).mappings().all()
    for row in rows:
        if row["m2"] >= MIN_REPORTED_M2:
            report.warnings.append({"warning": "official_boundaries_overlap", "communes":
                                    [row["a"], row["b"]], "area_km2": round(row["m2"] / 1e6, 4)})


def print_report(console: Console, report: CommuneImportReport, lang: Lang, *,
                 dry_run: bool) -> None:
    """Readable summary of an import for the command line (msgids ``commune_import.*``)."""
    def say(key: str, /, **params: object) -> str:
        return translate(f"commune_import.{key}", lang, **params)

    table = Table(title=say("title", file=report.file))
    for column in ("feature", "commune", "matched_by", "area", "previous_area"):
        table.add_column(say(f"column.{column}"))
    for row in report.matched:
        table.add_row(str(row["feature_name"]), f"{row['name']} ({row['commune']})",
                      str(row["matched_by"]), str(row["area_km2"]), str(row["previous_area_km2"]))
    console.print(table)
    for row in report.unmatched:
        code = str(row["reason"])
        key = f"commune_import.reason.{code}"  # why a feature matched no commune
        reason = translate(key, lang) if known(key) else code
        console.print(say("unmatched", name=row.get("name"), reason=reason))
    for row in report.clipped:
        console.print(say("clipped_emptied" if row["emptied"] else "clipped", name=row["name"],
                          commune=row["commune"], km2=row["clipped_km2"]))
    for row in report.orphaned:
        console.print(say("orphaned", km2=row["area_km2"], commune=row["commune"]))
    for row in report.warnings:
        console.print(say("warning", warning=orjson.dumps(row).decode()))
    for row in report.parcels_outside:
        console.print(say("parcels_outside", commune=row["commune"], parcels=row["parcels"]))
    summary = say("summary", matched=len(report.matched), unchanged=len(report.unchanged),
                  unmatched=len(report.unmatched), features=report.features)
    if dry_run:
        summary += say("dry_run")
    console.print(summary)
