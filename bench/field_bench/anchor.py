"""The anchor of the package build: ``ogr2ogr -f GPKG`` of the same layers from PostGIS, a layer per invocation.

What a GIS analyst would run to hand a field officer the same GeoPackage: one ``ogr2ogr -sql``
per layer into one file (the first creates it, GeoPackage 1.2 as the package; the others add a
layer with ``-update``), the same columns and the same rows as :mod:`sifc.field.packages` writes:

- ``parcels``: the current parcels of the commune meeting the drawn area, the package's columns
  (the officer's ones empty);
- ``neighbours``: current parcels within 0.5 m of one of those, not among them;
- ``commune`` and ``units`` (the communes within 1 m of it: meeting it widened by 1 m, which GEOS
  answers in 0.3 s where ``ST_DWithin`` between two communes of 2,000–20,000 vertices takes 20 s);
- ``bornes`` within 5 m of the area;
- ``new_parcels`` and ``new_bornes``, empty, typed.

Not done by the anchor (the package does them in the same time): the items and their
fingerprints, the package's record and MAC, the ``sifc_package`` table, the QGIS project and the zip.
"""

from __future__ import annotations

from pathlib import Path

from bench.field_bench.data import COMMUNE


def layers(area_wkt: str, commune: str = COMMUNE) -> list[tuple[str, str, str]]:
    """(layer, geometry type, SQL) for each layer, in the order they are written."""
    area = f"ST_GeomFromText('{area_wkt}', 32628)"
    in_area = f"p.commune_code = '{commune}' AND ST_Intersects(p.geom, {area})"
    return [
        ("parcels", "MULTIPOLYGON",
         "SELECT p.parcel_id::text AS parcel_id, p.version, p.nicad, p.section, p.local_number, p.land_use, "
         "p.tenure_regime, p.declared_area_m2, NULL::text AS remark, NULL::text AS photo, "
         "NULL::boolean AS survey_done, NULL::text AS pv_photo, p.geom "
         f"FROM parcel p WHERE {in_area}"),
        ("neighbours", "MULTIPOLYGON",
         "SELECT n.parcel_id::text AS parcel_id, n.version, n.nicad, n.section, n.local_number, n.land_use, n.geom "
         f"FROM parcel n WHERE NOT (n.commune_code = '{commune}' AND ST_Intersects(n.geom, {area})) "
         f"AND EXISTS (SELECT 1 FROM parcel p WHERE {in_area} AND ST_DWithin(n.geom, p.geom, 0.5))"),
        ("commune", "MULTIPOLYGON",
         f"SELECT 'commune' AS level, code, name, ST_Multi(geom) AS geom FROM commune WHERE code = '{commune}'"),
        ("units", "MULTIPOLYGON",
         "SELECT 'commune' AS level, c.code, c.name, ST_Multi(c.geom) AS geom FROM commune c, "
         f"(SELECT code, ST_Buffer(geom, 1.0) AS g FROM commune WHERE code = '{commune}') me "
         "WHERE c.code <> me.code AND c.geom && me.g AND ST_Intersects(c.geom, me.g)"),
        ("bornes", "POINT",
         "SELECT b.borne_id::text AS borne_id, b.version, b.label, b.precision_m, b.survey_method, b.surveyed_on, "
         f"b.geom FROM borne b WHERE ST_DWithin(b.geom, {area}, 5.0)"),
        ("new_parcels", "MULTIPOLYGON",
         "SELECT NULL::text AS section, NULL::text AS local_number, NULL::text AS land_use, "
         "NULL::text AS tenure_regime, NULL::float8 AS declared_area_m2, NULL::text AS remark, NULL::text AS photo, "
         "NULL::geometry(MultiPolygon, 32628) AS geom WHERE false"),
        ("new_bornes", "POINT",
         "SELECT NULL::text AS label, NULL::float8 AS precision_m, NULL::text AS survey_method, "
         "NULL::date AS surveyed_on, NULL::text AS remark, NULL::geometry(Point, 32628) AS geom WHERE false"),
    ]


def commands(ogr2ogr: str, connection: str, target: Path, area_wkt: str) -> list[tuple[str, list[str]]]:
    """One ``ogr2ogr`` command line per layer, the first creating ``target``."""
    found = []
    for n, (name, geometry, statement) in enumerate(layers(area_wkt)):
        command = [ogr2ogr, "-f", "GPKG", str(target), connection, "-sql", statement, "-nln", name,
                   "-nlt", geometry, "-a_srs", "EPSG:32628"]
        command += ["-dsco", "VERSION=1.2"] if n == 0 else ["-update"]
        found.append((name, command))
    return found
