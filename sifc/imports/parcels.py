"""``sifc import parcels``: load a surveyor's file into the parcel registry.

The file is streamed in chunks into a temporary staging table with ``COPY`` (memory does
not grow with the file), then every check runs in PostGIS with spatial indexes, feature
by feature, each outcome under a stable reason code:

- rejected: null or empty geometry; invalid geometry with ``on_invalid="reject"`` (else
  repaired with ``ST_MakeValid`` and reported); outside Senegal; in no commune, or outside
  the given commune beyond the tolerance; one NICAD on two different geometries (both); a
  NICAD already held by a current parcel; interiors overlapping another parcel of the file
  or a current parcel beyond the tolerance (default 1 m² and 1 % of the smaller);
- imported once: an exact duplicate (same NICAD, same geometry);
- warnings: declared vs computed area, missing declared area, non-standard NICAD, NICAD
  prefix other than the commune's national code, parcel in a provisional commune, parcel
  straddling communes, repaired geometry.

The accepted parcels and the batch record are written in the caller's transaction: the
batch commits whole or not at all. A refusal of the whole file raises
:class:`ImportRejected` before anything is written.
"""

from __future__ import annotations

import getpass
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from pyogrio.raw import open_arrow
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from sifc.errors import ImportRejected
from sifc.imports import mapping as field_mapping
from sifc.imports.source import SourceInfo, open_source
from sifc.parcels import nicad as nicad_rules
from sifc.text import search_form

Progress = Callable[[str, int, int], None]
MAX_LISTED_ISSUES = 1000

REASONS = {
    "null_geometry": ("géométrie absente", "no geometry"),
    "empty_geometry": ("géométrie vide", "empty geometry"),
    "invalid_geometry": ("géométrie invalide", "invalid geometry"),
    "unrepairable_geometry": ("géométrie invalide, irréparable", "invalid geometry that cannot be repaired"),
    "reprojection_failed": ("coordonnées impossibles à reprojeter (SCR erroné ?)",
                            "coordinates cannot be reprojected (wrong CRS?)"),
    "outside_senegal": ("hors du Sénégal", "outside Senegal"),
    "no_commune": ("dans aucune commune connue", "in no known commune"),
    "outside_commune": ("hors de la commune indiquée au-delà de la tolérance",
                        "outside the given commune beyond the tolerance"),
    "nicad_conflict": ("même NICAD sur des géométries différentes", "one NICAD on different geometries"),
    "nicad_taken": ("NICAD déjà attribué à une parcelle en vigueur", "NICAD already held by a current parcel"),
    "duplicate": ("doublon exact (même NICAD, même géométrie) : importé une seule fois",
                  "exact duplicate (same NICAD, same geometry): imported once"),
    "overlap_in_file": ("chevauche une autre parcelle du fichier au-delà de la tolérance",
                        "overlaps another parcel of the file beyond the tolerance"),
    "overlap_existing": ("chevauche une parcelle en vigueur au-delà de la tolérance",
                         "overlaps a current parcel beyond the tolerance"),
    "ring_open": ("contour ouvert : numérotation des bornes interrompue",
                  "open outline: gap in the boundary markers' numbering"),
    "ring_too_few_vertices": ("moins de 3 sommets distincts", "fewer than 3 distinct vertices"),
    "ring_self_intersecting": ("contour qui se recoupe", "self-intersecting outline"),
}
WARNINGS = {
    "invalid_repaired": ("géométrie invalide réparée (ST_MakeValid)", "invalid geometry repaired (ST_MakeValid)"),
    "area_mismatch": ("superficie déclarée et calculée diffèrent au-delà de la tolérance",
                      "declared and computed areas differ beyond the tolerance"),
    "declared_area_missing": ("superficie déclarée absente", "no declared area"),
    "nicad_nonstandard": ("NICAD de longueur non standard (ni 13 ni 16 caractères)",
                          "non-standard NICAD length (neither 13 nor 16 characters)"),
    "nicad_prefix": ("le NICAD ne commence pas par le code national de la commune",
                     "the NICAD does not begin with the commune's national code"),
    "provisional_commune": ("commune aux limites provisoires", "commune with provisional boundaries"),
    "straddles_communes": ("parcelle à cheval sur plusieurs communes", "parcel straddling several communes"),
    "sliver": ("parcelle résiduelle : largeur moyenne (2 × surface / périmètre) inférieure à 0,5 m",
               "sliver: mean width (2 × area / perimeter) under 0.5 m"),
}
SLIVER_MEAN_WIDTH_M = 0.5
# Column of a converted file (DXF, bornes) carrying a feature-level refusal found while converting.
PRE_REJECT_FIELD = "sifc_reject"
FILE_NOTES = {
    "shx_rebuilt": ("index .shx absent : reconstruit", "missing .shx index: rebuilt"),
    "dbf_missing": (".dbf absent : parcelles sans attributs", "missing .dbf: parcels without attributes"),
    "cpg_unknown": (".cpg illisible ou d'encodage inconnu : ignoré", "unreadable .cpg or unknown encoding: ignored"),
    "encoding_fallback": ("encodage non déclaré : Latin-1 par défaut", "no declared encoding: Latin-1 assumed"),
    "z_dropped": ("coordonnées Z supprimées", "Z coordinates dropped"),
    "m_dropped": ("mesures M supprimées", "M measures dropped"),
    "crs_overridden": ("SCR du fichier remplacé par --crs", "file CRS replaced by --crs"),
    "dxf_ignored": ("entités DXF ignorées : polylignes ouvertes, lignes, cercles, blocs… (nombre et types au rapport)",
                    "DXF entities ignored: open polylines, lines, circles, blocks… (count and types in the report)"),
    "dxf_texts_outside": ("textes DXF hors de toute parcelle : ignorés", "DXF texts inside no parcel: ignored"),
}


@dataclass
class ParcelImportOptions:
    """Options of one parcel import (see ``sifc import parcels --help``)."""

    commune: str | None = None
    crs: str | None = None
    layer: str | None = None
    mapping: dict[str, str] | None = None
    encoding: str | None = None
    dry_run: bool = False
    on_invalid: Literal["repair", "reject"] = "repair"
    overlap_tolerance_m2: float = 1.0
    overlap_tolerance_ratio: float = 0.01
    outside_tolerance_m2: float = 1.0
    outside_tolerance_ratio: float = 0.01
    area_tolerance_ratio: float = 0.10
    author: str = field(default_factory=lambda: _default_author())
    synthetic: bool = False
    chunk_size: int = 20_000


def _default_author() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "sifc"


@dataclass
class ParcelImportReport:
    """Everything an import found, for the analyst (JSON, CLI summary, GeoPackage of rejects)."""

    file: str
    sha256: str
    format: str = ""
    layer: str | None = None
    crs: str = ""
    crs_origin: str = ""
    encoding: str | None = None
    encoding_origin: str | None = None
    geometry_type: str = ""
    mapping: dict[str, str] = field(default_factory=dict)
    attributes: int = 0
    read: int = 0
    null_geometries: int = 0
    empty_geometries: int = 0
    invalid: int = 0
    repaired: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    warnings_by_code: dict[str, int] = field(default_factory=dict)
    file_notes: list[dict[str, object]] = field(default_factory=list)
    communes: dict[str, int] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    matched_by: dict[str, int] = field(default_factory=dict)
    issues: list[dict[str, object]] = field(default_factory=list)
    issues_truncated: bool = False
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("read", "stage", "validate", "commit"),
                                                                            0.0))
    dry_run: bool = False
    batch_id: str | None = None
    already_imported: dict[str, str] | None = None
    options: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


def file_sha256(path: Path) -> str:
    """sha256 of a file, or of a shapefile's parts (or a folder's files) in name order."""
    digest = hashlib.sha256()
    if path.is_dir():
        parts = sorted(p for p in path.rglob("*") if p.is_file())
    elif path.suffix.lower() == ".shp":
        parts = sorted(p for p in path.parent.iterdir() if p.stem == path.stem and p.is_file())
    else:
        parts = [path]
    for part in parts:
        digest.update(part.name.encode())
        with part.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


STAGE_DDL = """
CREATE TEMP TABLE stage_parcel (
    ord integer PRIMARY KEY,
    src geometry,
    nicad_raw text,
    nicad text,
    section text,
    local_number text,
    declared_raw text,
    land_use text,
    tenure_regime text,
    source_id text,
    attrs jsonb,
    pre_reject text,
    declared_area double precision,
    geom geometry,
    area double precision,
    commune_code text,
    match_id uuid,
    match_version integer,
    match_by text,
    change text,
    changed_fields text[],
    status text NOT NULL DEFAULT 'pending',
    reasons text[] NOT NULL DEFAULT '{}',
    warnings text[] NOT NULL DEFAULT '{}'
) ON COMMIT DROP
"""


def _text_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        if value != value:
            return None
        if value.is_integer():
            return str(int(value))
    result = str(value).strip()
    return result or None


def _json_default(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _stage(session: Session, info: SourceInfo, columns: dict[str, str], options: ParcelImportOptions,
           progress: Progress | None, timings: dict[str, float]) -> int:
    """Stream the features into ``stage_parcel`` with COPY; return how many were read."""
    session.execute(text("DROP TABLE IF EXISTS stage_parcel"))
    session.execute(text(STAGE_DDL))
    raw = session.connection().connection.driver_connection
    assert raw is not None  # a live psycopg connection: the session holds it for the transaction
    ord_ = 0
    encoding = info.encoding if info.fmt == "ESRI Shapefile" else None
    clock = time.perf_counter
    try:
        with open_arrow(info.path, layer=info.layer, encoding=encoding, use_pyarrow=True,
                        batch_size=options.chunk_size) as (meta, reader):
            geometry_column = meta.get("geometry_name") or "wkb_geometry"
            fields = [str(f) for f in meta.get("fields", [])]
            pre_reject = PRE_REJECT_FIELD in fields
            attr_fields = [f for f in fields if f != PRE_REJECT_FIELD]
            with raw.cursor() as cursor, cursor.copy(
                "COPY stage_parcel (ord, src, nicad_raw, nicad, section, local_number, declared_raw, declared_area, "
                "land_use, tenure_regime, source_id, attrs, pre_reject) FROM STDIN"
            ) as copy:
                batches = iter(reader)
                while True:
                    started = clock()
                    batch = next(batches, None)
                    if batch is None:
                        break
                    data = {name: batch.column(name).to_pylist() for name in batch.schema.names}
                    geometries = data.get(geometry_column) or [None] * batch.num_rows
                    rejects = data.get(PRE_REJECT_FIELD) if pre_reject else None
                    read_done = clock()
                    timings["read"] += read_done - started
                    for i in range(batch.num_rows):
                        attrs = {f: data[f][i] for f in attr_fields if f in data}
                        mapped = {t: _text_value(attrs.get(c)) for t, c in columns.items()}
                        wkb = geometries[i]
                        copy.write_row((
                            ord_, wkb.hex() if wkb else None, mapped.get("nicad"),
                            nicad_rules.clean(mapped.get("nicad")), mapped.get("section"),
                            mapped.get("local_number"), mapped.get("declared_area"),
                            _area(mapped.get("declared_area")), mapped.get("land_use"),
                            mapped.get("tenure_regime"), mapped.get("source_id"),
                            orjson.dumps(attrs, default=_json_default,
                                         option=orjson.OPT_NON_STR_KEYS).decode(),
                            rejects[i] if rejects else None,
                        ))
                        ord_ += 1
                    timings["stage"] += clock() - read_done
                    if progress:
                        progress("staging", ord_, info.features)
                started = clock()
            timings["stage"] += clock() - started  # the end of COPY: the server's last rows
    except ImportRejected:
        raise
    except Exception as error:  # GDAL and Arrow raise several types for broken files
        if "stage_parcel" in str(error):
            raise
        raise ImportRejected("import.unreadable", path=info.path.name,
                             reason=str(error).splitlines()[0][:200]) from error
    if pre_reject:
        known = ", ".join(f"'{code}'" for code in REASONS)
        _sql(session, f"UPDATE stage_parcel SET status = 'rejected', reasons = ARRAY[pre_reject] "
                      f"WHERE pre_reject IN ({known})")
    return ord_


def _sql(session: Session, statement: str, **params: Any) -> Any:
    return session.execute(text(statement), params)


def _reject(session: Session, reason: str, where: str, **params: Any) -> None:
    _sql(session, f"UPDATE stage_parcel s SET status = 'rejected', reasons = array_append(reasons, '{reason}') "
                  f"WHERE s.status = 'pending' AND ({where})", **params)


def _warn(session: Session, code: str, where: str, **params: Any) -> None:
    _sql(session, f"UPDATE stage_parcel s SET warnings = array_append(warnings, '{code}') "
                  f"WHERE s.status IN ('pending', 'accepted') AND ({where})", **params)


def _check_geometry(session: Session, info: SourceInfo, options: ParcelImportOptions,
                    report: ParcelImportReport) -> None:
    _sql(session, "UPDATE stage_parcel SET src = ST_SetSRID(ST_Force2D(src), :srid) WHERE src IS NOT NULL",
         srid=info.srid)
    found = _sql(session, """
        SELECT DISTINCT GeometryType(src) FROM stage_parcel
        WHERE src IS NOT NULL AND GeometryType(src) NOT IN ('POLYGON', 'MULTIPOLYGON')
    """).scalars().all()
    if found:
        raise ImportRejected("import.not_polygons", found=", ".join(sorted(found)))
    _reject(session, "null_geometry", "s.src IS NULL")
    _reject(session, "empty_geometry", "ST_IsEmpty(s.src)")
    report.null_geometries = _count(session, "'null_geometry' = ANY(reasons)")
    report.empty_geometries = _count(session, "'empty_geometry' = ANY(reasons)")
    # Validity is judged on the file's own coordinates, as any GIS reading the file would.
    _sql(session, "UPDATE stage_parcel SET warnings = array_append(warnings, 'invalid_repaired') "
                  "WHERE status = 'pending' AND NOT ST_IsValid(src)")
    report.invalid = _count(session, "'invalid_repaired' = ANY(warnings)")
    if options.on_invalid == "reject":
        _reject(session, "invalid_geometry", "'invalid_repaired' = ANY(s.warnings)")
        _sql(session, "UPDATE stage_parcel SET warnings = array_remove(warnings, 'invalid_repaired')")
    else:
        _sql(session, "UPDATE stage_parcel SET src = ST_MakeValid(src) "
                      "WHERE status = 'pending' AND 'invalid_repaired' = ANY(warnings)")
    _transform(session)
    # Reprojection can make a valid ring invalid (rarely): repair in the storage CRS too.
    _sql(session, """
        UPDATE stage_parcel SET geom = ST_MakeValid(geom),
               warnings = CASE WHEN 'invalid_repaired' = ANY(warnings) THEN warnings
                               ELSE array_append(warnings, 'invalid_repaired') END
        WHERE status = 'pending' AND NOT ST_IsValid(geom)
    """)
    _sql(session, "UPDATE stage_parcel SET geom = ST_CollectionExtract(geom, 3) "
                  "WHERE status = 'pending' AND GeometryType(geom) = 'GEOMETRYCOLLECTION'")
    _reject(session, "unrepairable_geometry", "ST_IsEmpty(s.geom) OR GeometryType(s.geom) NOT IN "
                                              "('POLYGON', 'MULTIPOLYGON')")
    _sql(session, "UPDATE stage_parcel SET geom = ST_Multi(geom), area = ST_Area(geom) WHERE status = 'pending'")
    _sql(session, "CREATE INDEX ON stage_parcel USING gist (geom)")
    _sql(session, "ANALYZE stage_parcel")


def _transform(session: Session) -> None:
    """Reproject to EPSG:32628; rows whose coordinates cannot be reprojected are rejected."""
    try:
        with session.begin_nested():
            _sql(session, "UPDATE stage_parcel SET geom = ST_Transform(src, 32628) WHERE status = 'pending'")
    except DBAPIError:  # one row out of the CRS's range fails the whole statement: go row by row
        rows = _sql(session, "SELECT ord FROM stage_parcel WHERE status = 'pending'").scalars().all()
        for ord_ in rows:
            try:
                with session.begin_nested():
                    _sql(session, "UPDATE stage_parcel SET geom = ST_Transform(src, 32628) WHERE ord = :o", o=ord_)
            except DBAPIError:
                _reject(session, "reprojection_failed", "s.ord = :o", o=ord_)


def _count(session: Session, where: str) -> int:
    return int(_sql(session, f"SELECT count(*) FROM stage_parcel WHERE {where}").scalar())


def _resolve_commune(session: Session, reference: str) -> str:
    codes = _sql(session, """
        SELECT code FROM commune WHERE code = :ref OR national_code = :ref
        UNION SELECT code FROM commune WHERE name_search = :search
    """, ref=reference, search=search_form(reference)).scalars().all()
    if len(codes) != 1:
        raise ImportRejected("import.unknown_commune" if not codes else "import.ambiguous_commune",
                             commune=reference, codes=", ".join(sorted(codes)))
    return str(codes[0])


def _check_location(session: Session, options: ParcelImportOptions, commune: str | None) -> None:
    """Outside Senegal, commune derived (or checked), straddling, provisional — on territory pieces.

    Each piece is tested against the parcels under it (pieces outside, parcels inside the loop),
    so PostGIS prepares each piece once; the verdicts are then written in one pass.
    """
    tolerance = {"m2": options.outside_tolerance_m2, "ratio": options.outside_tolerance_ratio}
    _sql(session, """
        CREATE TEMP TABLE stage_in ON COMMIT DROP AS
        SELECT x.ord, p.level, p.code,
               sum(CASE WHEN x.covered THEN x.area ELSE overlap_area(p.geom, x.geom) END) AS shared
        FROM territory_piece p
        CROSS JOIN LATERAL (
            SELECT s.ord, s.area, s.geom, ST_Covers(p.geom, s.geom) AS covered
            FROM stage_parcel s
            WHERE s.status = 'pending' AND s.geom && p.geom AND ST_Intersects(p.geom, s.geom)
        ) x
        WHERE p.geom && (SELECT ST_SetSRID(ST_Extent(geom)::geometry, 32628) FROM stage_parcel
                         WHERE status = 'pending')
        GROUP BY x.ord, p.level, p.code
    """)
    _sql(session, "ANALYZE stage_in")
    # An official commune reached beyond the tolerance wins over provisional ones (official
    # boundaries take precedence; provisional ones are placeholders), then the largest share.
    pick = "i.code = :commune" if commune else "TRUE"
    _sql(session, f"""
        CREATE TEMP TABLE stage_loc ON COMMIT DROP AS
        WITH shares AS (
            SELECT i.ord, i.code, i.shared, c.boundary_status,
                   i.shared > greatest(:m2, :ratio * s.area) AS beyond
            FROM stage_in i JOIN commune c ON c.code = i.code JOIN stage_parcel s ON s.ord = i.ord
            WHERE i.level = 'commune'
        ), best AS (
            SELECT DISTINCT ON (ord) ord, code, shared, boundary_status FROM shares i WHERE {pick}
            ORDER BY ord, (boundary_status = 'official' AND beyond) DESC, shared DESC, code
        )
        , regions AS (
            SELECT ord, sum(shared) AS shared FROM stage_in WHERE level = 'region' GROUP BY ord
        ), reached AS (
            SELECT ord, count(*) AS n FROM shares WHERE beyond GROUP BY ord
        )
        SELECT s.ord,
               s.area - coalesce(r.shared, 0) > greatest(:m2, :ratio * s.area) AS outside_senegal,
               b.code, b.boundary_status,
               s.area - coalesce(b.shared, 0) > greatest(:m2, :ratio * s.area) AS outside_best,
               coalesce(n.n, 0) AS communes_reached
        FROM stage_parcel s
        LEFT JOIN best b ON b.ord = s.ord
        LEFT JOIN regions r ON r.ord = s.ord
        LEFT JOIN reached n ON n.ord = s.ord
        WHERE s.status = 'pending'
    """, commune=commune, **tolerance)
    _sql(session, "CREATE UNIQUE INDEX ON stage_loc (ord)")
    _sql(session, "ANALYZE stage_loc")
    given = commune is not None
    _sql(session, f"""
        UPDATE stage_parcel s SET
            commune_code = CASE WHEN {given} THEN :commune ELSE l.code END,
            status = CASE WHEN l.outside_senegal OR l.code IS NULL OR ({given} AND l.outside_best)
                          THEN 'rejected' ELSE s.status END,
            reasons = s.reasons || CASE
                WHEN l.outside_senegal THEN ARRAY['outside_senegal']
                WHEN {given} AND (l.code IS NULL OR l.outside_best) THEN ARRAY['outside_commune']
                WHEN l.code IS NULL THEN ARRAY['no_commune']
                ELSE ARRAY[]::text[] END,
            warnings = s.warnings
                || CASE WHEN NOT {given} AND (l.communes_reached > 1 OR l.outside_best)
                        THEN ARRAY['straddles_communes'] ELSE ARRAY[]::text[] END
                || CASE WHEN l.boundary_status = 'provisional' THEN ARRAY['provisional_commune']
                        ELSE ARRAY[]::text[] END
        FROM stage_loc l WHERE l.ord = s.ord
    """, commune=commune)
    # Rejected parcels carry no warning about a commune they do not get.
    _sql(session, "UPDATE stage_parcel SET warnings = '{}' WHERE status = 'rejected' AND cardinality(warnings) > 0 "
                  "AND reasons && ARRAY['outside_senegal', 'outside_commune', 'no_commune']")
    _sql(session, "DROP TABLE stage_in")
    _sql(session, "DROP TABLE stage_loc")


def _area(raw: str | None) -> float | None:
    """A declared area as surveyors write it ("1 234,5"); None when unreadable."""
    if raw is None:
        return None
    try:
        return float(raw.replace(" ", "").replace("\u202f", "").replace(",", "."))
    except ValueError:
        return None


def _check_nicad(session: Session) -> None:
    # Only NICADs read more than once need the pairwise checks.
    _sql(session, """
        CREATE TEMP TABLE stage_repeated ON COMMIT DROP AS
        SELECT nicad FROM stage_parcel WHERE nicad IS NOT NULL AND geom IS NOT NULL
        GROUP BY nicad HAVING count(*) > 1
    """)
    # Exact duplicates (same NICAD, same geometry): the first is imported, the others reported.
    _sql(session, """
        UPDATE stage_parcel s SET status = 'duplicate', reasons = array_append(s.reasons, 'duplicate')
        WHERE s.status = 'pending' AND s.nicad IN (SELECT nicad FROM stage_repeated)
          AND EXISTS (SELECT 1 FROM stage_parcel first WHERE first.nicad = s.nicad AND first.ord < s.ord
                      AND first.status = 'pending' AND ST_Equals(first.geom, s.geom))
    """)
    _reject(session, "nicad_conflict", """
        s.nicad IN (SELECT nicad FROM stage_repeated) AND EXISTS (
            SELECT 1 FROM stage_parcel o WHERE o.nicad = s.nicad AND o.ord <> s.ord
              AND o.status IN ('pending', 'rejected') AND o.geom IS NOT NULL AND NOT ST_Equals(o.geom, s.geom))
    """)
    _sql(session, "DROP TABLE stage_repeated")
    lengths = ", ".join(str(n) for n in nicad_rules.STANDARD_LENGTHS)
    _warn(session, "nicad_nonstandard", f"s.nicad IS NOT NULL AND length(s.nicad) NOT IN ({lengths})")
    _warn(session, "nicad_prefix", f"""
        s.nicad IS NOT NULL AND EXISTS (SELECT 1 FROM commune c WHERE c.code = s.commune_code
            AND c.national_code IS NOT NULL
            AND left(s.nicad, {nicad_rules.COMMUNE_PREFIX_LENGTH}) <> c.national_code)
    """)


def _check_overlaps(session: Session, options: ParcelImportOptions) -> None:
    tolerance = {"m2": options.overlap_tolerance_m2, "ratio": options.overlap_tolerance_ratio}
    _sql(session, """
        CREATE TEMP TABLE stage_overlap ON COMMIT DROP AS
        SELECT a.ord AS a, b.ord AS b FROM stage_parcel a JOIN stage_parcel b
          ON b.ord + 0 > a.ord + 0 AND a.geom && b.geom  -- "+ 0": the GiST index, not the key, drives the join
        WHERE a.status = 'pending' AND b.status = 'pending'
          AND overlap_area(a.geom, b.geom) > greatest(:m2, :ratio * least(a.area, b.area))
    """, **tolerance)
    _reject(session, "overlap_in_file", "s.ord IN (SELECT a FROM stage_overlap UNION SELECT b FROM stage_overlap)")
    _sql(session, "DROP TABLE stage_overlap")
    # Current parcels the file gives a new state of are checked as part of the file, not against it.
    _reject(session, "overlap_existing", """
        EXISTS (SELECT 1 FROM parcel p WHERE p.geom && s.geom
                AND NOT EXISTS (SELECT 1 FROM stage_parcel m WHERE m.match_id = p.parcel_id
                                AND m.status = 'pending')
                AND overlap_area(p.geom, s.geom) > greatest(:m2, :ratio * least(p.area_m2, s.area)))
    """, **tolerance)


def _match(session: Session) -> None:
    """Match the file's parcels with current ones: by NICAD, else source identifier, else geometry.

    A matched parcel gets a new version only if something changed; a NICAD found on a
    parcel elsewhere (the shapes do not even touch) is refused as taken.
    """
    _sql(session, """
        UPDATE stage_parcel s SET match_id = p.parcel_id, match_version = p.version, match_by = 'nicad'
        FROM parcel p
        WHERE s.status = 'pending' AND s.nicad IS NOT NULL AND p.nicad = s.nicad AND ST_Intersects(p.geom, s.geom)
    """)
    _reject(session, "nicad_taken", """
        s.match_id IS NULL AND s.nicad IS NOT NULL AND EXISTS (SELECT 1 FROM parcel p WHERE p.nicad = s.nicad)
    """)
    # A source identifier is only an identifier within its commune, and only when unique on both sides.
    _sql(session, """
        WITH staged AS (
            SELECT source_id, commune_code FROM stage_parcel
            WHERE status = 'pending' AND source_id IS NOT NULL
            GROUP BY source_id, commune_code HAVING count(*) = 1
        ), current AS (
            SELECT p.source_id, p.commune_code, min(p.parcel_id::text)::uuid AS parcel_id, min(p.version) AS version
            FROM parcel p JOIN staged USING (source_id, commune_code)
            GROUP BY p.source_id, p.commune_code HAVING count(*) = 1
        )
        UPDATE stage_parcel s SET match_id = c.parcel_id, match_version = c.version, match_by = 'source_id'
        FROM current c
        WHERE s.status = 'pending' AND s.match_id IS NULL AND s.source_id = c.source_id
          AND s.commune_code = c.commune_code AND ST_Intersects((SELECT geom FROM parcel WHERE parcel_id = c.parcel_id),
                                                                s.geom)
          AND NOT EXISTS (SELECT 1 FROM stage_parcel o WHERE o.match_id = c.parcel_id)
    """)
    # The same land: each covers at least 90 % of the other, and nothing else does.
    _sql(session, """
        WITH pairs AS (
            SELECT s.ord, p.parcel_id, p.version
            FROM stage_parcel s JOIN parcel p ON p.geom && s.geom
            WHERE s.status = 'pending' AND s.match_id IS NULL
              AND NOT EXISTS (SELECT 1 FROM stage_parcel o WHERE o.match_id = p.parcel_id)
              AND overlap_area(p.geom, s.geom) >= 0.9 * greatest(p.area_m2, s.area)
        ), unique_pairs AS (
            SELECT ord, min(parcel_id::text)::uuid AS parcel_id, min(version) AS version
            FROM pairs GROUP BY ord HAVING count(*) = 1
        ), claimed AS (
            SELECT parcel_id FROM unique_pairs GROUP BY parcel_id HAVING count(*) = 1
        )
        UPDATE stage_parcel s SET match_id = u.parcel_id, match_version = u.version, match_by = 'geometry'
        FROM unique_pairs u JOIN claimed USING (parcel_id)
        WHERE s.ord = u.ord
    """)
    # What changed. Geometry: more than 1 cm anywhere (reprojection noise is far below).
    _sql(session, """
        UPDATE stage_parcel s SET
            changed_fields = array_remove(ARRAY[
                CASE WHEN ST_HausdorffDistance(p.geom, s.geom) > 0.01 THEN 'geometry' END,
                CASE WHEN s.nicad IS NOT NULL AND s.nicad IS DISTINCT FROM p.nicad THEN 'nicad' END,
                CASE WHEN s.commune_code IS DISTINCT FROM p.commune_code THEN 'commune_code' END,
                CASE WHEN s.section IS DISTINCT FROM p.section THEN 'section' END,
                CASE WHEN s.local_number IS DISTINCT FROM p.local_number THEN 'local_number' END,
                CASE WHEN s.source_id IS DISTINCT FROM p.source_id THEN 'source_id' END,
                CASE WHEN s.declared_area IS DISTINCT FROM p.declared_area_m2 THEN 'declared_area' END,
                CASE WHEN s.land_use IS DISTINCT FROM p.land_use THEN 'land_use' END,
                CASE WHEN s.tenure_regime IS DISTINCT FROM p.tenure_regime THEN 'tenure_regime' END
            ], NULL)
        FROM parcel p
        WHERE s.match_id = p.parcel_id AND s.status = 'pending'
    """)
    _sql(session, "CREATE INDEX ON stage_parcel (match_id) WHERE match_id IS NOT NULL")
    _sql(session, """
        UPDATE stage_parcel SET change = CASE
            WHEN match_id IS NULL THEN 'new'
            WHEN cardinality(changed_fields) = 0 THEN 'unchanged'
            ELSE 'changed' END
        WHERE status = 'pending'
    """)


def _check_areas(session: Session, options: ParcelImportOptions, mapped: bool) -> None:
    _warn(session, "sliver", f"s.area * 2 < {SLIVER_MEAN_WIDTH_M} * ST_Perimeter(s.geom)")
    if not mapped:
        return
    _warn(session, "declared_area_missing", "s.declared_area IS NULL OR s.declared_area <= 0")
    _warn(session, "area_mismatch", "s.declared_area > 0 AND abs(s.area - s.declared_area) / s.declared_area > :tol",
          tol=options.area_tolerance_ratio)


ISSUES_QUERY = """
    SELECT ord, status, reasons, warnings, nicad, source_id, change, match_id, match_by, changed_fields
    FROM stage_parcel
    WHERE (status <> 'accepted' OR cardinality(warnings) > 0 OR change = 'changed') AND ord > :after
    ORDER BY ord LIMIT :n
"""


def _issue(row: Any) -> dict[str, object]:
    issue: dict[str, object] = {"feature": row["ord"], "status": row["status"], "reasons": list(row["reasons"]),
                                "warnings": list(row["warnings"]), "nicad": row["nicad"],
                                "source_id": row["source_id"]}
    if row["change"] == "changed":
        issue.update(change="changed", parcel_id=str(row["match_id"]), matched_by=row["match_by"],
                     changed_fields=list(row["changed_fields"]))
    return issue


def _summarize(session: Session, report: ParcelImportReport) -> None:
    report.accepted = _count(session, "status = 'accepted'")
    report.rejected = _count(session, "status = 'rejected'")
    report.duplicates = _count(session, "status = 'duplicate'")
    report.repaired = _count(session, "'invalid_repaired' = ANY(warnings)")
    report.changes = dict(_sql(session, """
        SELECT change, count(*) FROM stage_parcel WHERE status = 'accepted' GROUP BY change ORDER BY change
    """).all())
    report.matched_by = dict(_sql(session, """
        SELECT match_by, count(*) FROM stage_parcel WHERE status = 'accepted' AND match_by IS NOT NULL
        GROUP BY match_by ORDER BY match_by
    """).all())
    report.rejected_by_reason = dict(_sql(session, """
        SELECT r, count(*) FROM stage_parcel, unnest(reasons) r WHERE status IN ('rejected', 'duplicate')
        GROUP BY r ORDER BY r""").all())
    report.warnings_by_code = dict(_sql(session, """
        SELECT w, count(*) FROM stage_parcel, unnest(warnings) w WHERE status = 'accepted'
        GROUP BY w ORDER BY w""").all())
    report.communes = dict(_sql(session, """
        SELECT commune_code, count(*) FROM stage_parcel WHERE status = 'accepted' AND change <> 'unchanged'
        GROUP BY commune_code ORDER BY commune_code""").all())
    rows = _sql(session, ISSUES_QUERY, after=-1, n=MAX_LISTED_ISSUES + 1).mappings().all()
    report.issues_truncated = len(rows) > MAX_LISTED_ISSUES
    report.issues = [_issue(r) for r in rows[:MAX_LISTED_ISSUES]]


def _insert(session: Session, report: ParcelImportReport, options: ParcelImportOptions) -> None:
    batch_id = uuid.uuid4()
    report.batch_id = str(batch_id)
    counts = {"read": report.read, "accepted": report.accepted, "rejected": report.rejected,
              "duplicates": report.duplicates, "warnings": report.warnings_by_code, "changes": report.changes}
    _sql(session, """
        INSERT INTO import_batch (id, kind, file_name, sha256, options, counts, report, created_by, synthetic)
        VALUES (:id, 'parcels', :file, :sha, CAST(:options AS jsonb), CAST(:counts AS jsonb),
                CAST(:report AS jsonb), :author, :synthetic)
    """, id=batch_id, file=report.file, sha=report.sha256, options=orjson.dumps(report.options).decode(),
         counts=orjson.dumps(counts).decode(), report=orjson.dumps(report.as_dict()).decode(),
         author=options.author, synthetic=options.synthetic)
    reason = f"import {report.file}"
    if report.changes.get("changed"):
        # Close the versions the file replaces (locking them: a concurrent change waits or fails).
        closed = _sql(session, """
            UPDATE parcel_version v SET valid_to = now(), closed_by = :author, close_reason = :why
            FROM stage_parcel s
            WHERE s.status = 'accepted' AND s.change = 'changed'
              AND v.parcel_id = s.match_id AND v.version = s.match_version AND v.valid_to IS NULL
        """, author=options.author, why=f"remplacée par l'import {report.file} (lot {batch_id})").rowcount
        if closed != report.changes["changed"]:
            raise ImportRejected("import.concurrent_change")
        _sql(session, """
            INSERT INTO parcel_version (parcel_id, version, nicad, nicad_status, commune_code, section, local_number,
                                        source_id, geom, declared_area_m2, land_use, tenure_regime, batch_id,
                                        action, author, reason)
            SELECT s.match_id, s.match_version + 1,
                   CASE WHEN 'nicad' = ANY(s.changed_fields) THEN s.nicad
                        WHEN 'geometry' = ANY(s.changed_fields) THEN NULL ELSE p.nicad END,
                   CASE WHEN 'nicad' = ANY(s.changed_fields) THEN 'attribue'
                        WHEN 'geometry' = ANY(s.changed_fields)
                             THEN CASE WHEN p.nicad_status = 'absent' THEN 'absent' ELSE 'a_reattribuer' END
                        ELSE p.nicad_status END,
                   s.commune_code, s.section, s.local_number, s.source_id, s.geom, s.declared_area, s.land_use,
                   s.tenure_regime, :batch, 'import', :author, :reason
            FROM stage_parcel s JOIN parcel_version p ON p.parcel_id = s.match_id AND p.version = s.match_version
            WHERE s.status = 'accepted' AND s.change = 'changed' ORDER BY s.ord
        """, batch=batch_id, author=options.author, reason=reason)
    _sql(session, """
        INSERT INTO parcel_version (parcel_id, version, nicad, nicad_status, commune_code, section, local_number,
                                    source_id, geom, declared_area_m2, land_use, tenure_regime, batch_id,
                                    action, author, reason)
        SELECT gen_random_uuid(), 1, nicad, CASE WHEN nicad IS NULL THEN 'absent' ELSE 'attribue' END,
               commune_code, section, local_number, source_id, geom, declared_area, land_use, tenure_regime,
               :batch, 'import', :author, :reason
        FROM stage_parcel WHERE status = 'accepted' AND change = 'new' ORDER BY ord
    """, batch=batch_id, author=options.author, reason=reason)


def import_parcels(session: Session, path: Path, options: ParcelImportOptions, *,
                   progress: Progress | None = None) -> ParcelImportReport:
    """Import the parcels of ``path`` in the caller's transaction; return the report.

    ``progress(stage, done, total)`` hears of the stages ``reading`` (hash, format, CRS),
    ``staging`` (features copied), ``validating`` and ``inserting``. With
    ``options.dry_run`` every check runs and nothing is written (the staging tables are
    temporary and dropped at the end of the transaction).
    """
    clock = time.perf_counter
    started = clock()
    notify = progress or (lambda stage, done, total: None)
    if not path.exists():
        raise ImportRejected("import.file_missing", path=str(path))
    notify("reading", 0, 0)
    report = ParcelImportReport(file=path.name, sha256=file_sha256(path), dry_run=options.dry_run)
    report.options = {k: v for k, v in asdict(options).items() if k not in ("author", "chunk_size")}
    previous = session.execute(text("""
        SELECT id, file_name, created_at FROM import_batch WHERE kind = 'parcels' AND sha256 = :sha
        ORDER BY created_at LIMIT 1"""), {"sha": report.sha256}).mappings().first()
    if previous is not None:
        # The very same content was imported before: nothing to do, and nothing is done.
        report.already_imported = {"batch_id": str(previous["id"]), "file": previous["file_name"],
                                   "date": previous["created_at"].isoformat()}
        return report
    commune = _resolve_commune(session, options.commune) if options.commune else None
    session.execute(text("SET LOCAL jit = off"))  # JIT compiles longer than these queries run
    timings = report.timings
    with open_source(path, layer=options.layer, crs=options.crs, encoding=options.encoding) as info:
        columns = field_mapping.resolve(info.fields, options.mapping)
        report.format, report.layer, report.geometry_type = info.fmt, info.layer, info.geometry_type
        report.crs, report.crs_origin = f"EPSG:{info.srid}", info.crs_origin
        report.encoding, report.encoding_origin = info.encoding, info.encoding_origin
        report.mapping, report.attributes, report.file_notes = columns, len(info.fields), list(info.notes)
        timings["read"] += clock() - started
        notify("staging", 0, info.features)
        report.read = _stage(session, info, columns, options, progress, timings)
    mark = clock()
    notify("validating", 0, report.read)
    _check_geometry(session, info, options, report)
    _check_location(session, options, commune)
    _check_nicad(session)
    _match(session)
    _check_overlaps(session, options)
    _sql(session, "UPDATE stage_parcel SET status = 'accepted' WHERE status = 'pending'")
    _check_areas(session, options, "declared_area" in columns)
    _summarize(session, report)
    timings["validate"] += clock() - mark
    if not options.dry_run:
        mark = clock()
        notify("inserting", 0, report.accepted)
        _insert(session, report, options)
        timings["commit"] += clock() - mark
    notify("checked", report.read, report.read)
    return report


def spool_issues(session: Session, target: Path, *, chunk: int = 20_000) -> None:
    """Write every issue of the import (not only the first ones) to ``target``, one JSON object per line.

    Must run in the import's transaction, before it ends (the staging table is temporary).
    """
    with target.open("wb") as out:
        after = -1
        while True:
            rows = _sql(session, ISSUES_QUERY, after=after, n=chunk).mappings().all()
            if not rows:
                return
            out.write(b"".join(orjson.dumps(_issue(row)) + b"\n" for row in rows))
            after = rows[-1]["ord"]


def write_report(report: ParcelImportReport, path: Path, issues: Path | None = None) -> None:
    """Write the JSON report to ``path``, with every issue from the ``issues`` spool when given."""
    head = report.as_dict()
    if issues is None:
        path.write_bytes(orjson.dumps(head, option=orjson.OPT_INDENT_2))
        return
    head.pop("issues")
    head["issues_truncated"] = False
    with path.open("wb") as out, issues.open("rb") as spooled:
        out.write(orjson.dumps(head, option=orjson.OPT_INDENT_2)[:-2])
        out.write(b',\n  "issues": [')
        for number, line in enumerate(spooled):
            out.write((b"\n    " if number == 0 else b",\n    ") + line.rstrip(b"\n"))
        out.write(b"\n  ]\n}\n")


def write_rejects(session: Session, path: Path, lang: Literal["fr", "en"] = "fr", *, chunk: int = 5000) -> int:
    """Write the rejected and duplicate features (with their reasons) to a GeoPackage, in chunks.

    Geometries are written as read, in the file's CRS, so the analyst can fix them in QGIS and
    load the file again. Must run in the import's transaction (the staging table is temporary).
    """
    import geopandas as gpd
    import shapely

    pick = 0 if lang == "fr" else 1
    written, last = 0, -1
    srid = _sql(session, "SELECT max(ST_SRID(src)) FROM stage_parcel").scalar()
    path.unlink(missing_ok=True)
    while True:
        rows = _sql(session, """
            SELECT ord, status, reasons, attrs, ST_AsBinary(src) AS wkb FROM stage_parcel
            WHERE status <> 'accepted' AND ord > :last ORDER BY ord LIMIT :chunk
        """, last=last, chunk=chunk).mappings().all()
        if not rows:
            return written
        records = []
        for row in rows:
            record = {f"src_{k}"[:60]: (v if isinstance(v, (int, float, str)) or v is None else str(v))
                      for k, v in (row["attrs"] or {}).items()}
            record["sifc_feature"] = row["ord"]
            record["sifc_status"] = row["status"]
            record["sifc_reasons"] = ",".join(row["reasons"])
            record["sifc_message"] = "; ".join(REASONS.get(r, (r, r))[pick] for r in row["reasons"])
            record["geometry"] = shapely.from_wkb(bytes(row["wkb"])) if row["wkb"] else None
            records.append(record)
        frame = gpd.GeoDataFrame(records, geometry="geometry", crs=f"EPSG:{srid}" if srid else None)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_file(path, layer="rejets", driver="GPKG", mode="a" if written else "w")
        written += len(records)
        last = rows[-1]["ord"]
