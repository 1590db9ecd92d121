"""Pure parts of the surveyors' formats: srsName spellings, bulges, tables of bornes."""

import math

import pytest
from shapely.geometry import Polygon

from sifc.errors import ImportRejected
from sifc.i18n import catalogue, known
from sifc.imports import mapping
from sifc.imports.formats import (
    RING_OPEN,
    RING_SELF_INTERSECTING,
    RING_TOO_FEW_VERTICES,
    _Borne,
    assemble_parcel,
    crs_unit_per_metre,
    decode_table,
    epsg_from_srs_name,
    flatten_bulges,
    match_bornes_headers,
    nicad_digits,
    parse_number,
    parse_order,
    pick_gml_layer,
    sniff_delimiter,
)
from sifc.imports.parcels import FILE_NOTES, REASONS


@pytest.mark.parametrize(("srs_name", "expected"), [
    ("http://www.opengis.net/def/crs/EPSG/0/25830", "EPSG:25830"),
    ("urn:ogc:def:crs:EPSG::25830", "EPSG:25830"),
    ("urn:ogc:def:crs:EPSG:6.6:32628", "EPSG:32628"),
    ("urn:x-ogc:def:crs:EPSG:4326", "EPSG:4326"),
    ("EPSG:25830", "EPSG:25830"),
    ("epsg:25830 ", "EPSG:25830"),
    ("http://www.opengis.net/gml/srs/epsg.xml#32628", "EPSG:32628"),
    ("urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC:1.3:CRS84"),
])
def test_srs_name_spellings(srs_name, expected):
    assert epsg_from_srs_name(srs_name) == expected


def test_gml_layer_choice():
    assert pick_gml_layer(["Parcelles"], _path("a.gml")) == "Parcelles"
    assert pick_gml_layer(["CadastralZoning", "CadastralParcel"], _path("a.gml")) == "CadastralParcel"
    with pytest.raises(ImportRejected) as refused:
        pick_gml_layer(["Building", "BuildingPart"], _path("a.gml"))
    assert refused.value.key == "import.choose_layer"
    assert "Building, BuildingPart" in refused.value.message("fr")


def _path(name):
    from pathlib import Path

    return Path(name)


def test_a_semicircle_bulge_becomes_chords_within_the_tolerance():
    # A 20 × 10 rectangle whose top side is replaced by a half circle of radius 10 (bulge 1 on
    # the segment from (20, 10) to (0, 10), counter-clockwise: the arc bulges upwards).
    vertices = [(0.0, 0.0, 0.0), (20.0, 0.0, 0.0), (20.0, 10.0, 1.0), (0.0, 10.0, 0.0)]
    points = flatten_bulges(vertices, closed=True, tolerance=0.01)
    exact = 20 * 10 + math.pi * 10**2 / 2
    area = Polygon(points).area
    assert area == pytest.approx(exact, rel=2e-3) and area < exact  # chords cut inside the arc
    top = max(y for _, y in points)
    assert top == pytest.approx(20.0, abs=0.01)
    for x, y in points:  # every arc point is on the circle centred on (10, 10)
        if y > 10:
            assert math.hypot(x - 10, y - 10) == pytest.approx(10.0, abs=1e-9)


def test_a_negative_bulge_turns_clockwise_and_straight_segments_stay():
    vertices = [(0.0, 0.0, -1.0), (10.0, 0.0, 0.0), (10.0, 10.0, 0.0), (0.0, 10.0, 0.0)]
    points = flatten_bulges(vertices, closed=True, tolerance=0.01)
    # Clockwise from (0, 0) to (10, 0): the arc lies left of the travel, inside the square.
    assert min(y for _, y in points) == 0.0
    assert any(abs(x - 5) < 0.5 and abs(y - 5) < 0.01 for x, y in points)
    assert Polygon(points).area == pytest.approx(100 - math.pi * 25 / 2, rel=2e-3)
    assert flatten_bulges([(0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (1.0, 1.0, 0.0)], closed=False, tolerance=0.01) == [
        (0.0, 0.0), (1.0, 0.0), (1.0, 1.0)]


def test_tolerance_follows_the_crs_unit():
    assert crs_unit_per_metre(32628) == 1.0
    assert crs_unit_per_metre(4326) == pytest.approx(1 / 111_320)
    assert crs_unit_per_metre(2264) == pytest.approx(1 / 0.3048006096, rel=1e-6)  # US survey foot


@pytest.mark.parametrize(("raw", "expected"), [
    ("271234.56", 271234.56), ("271234,56", 271234.56), ("271 234,56", 271234.56), ("1.234,5", 1234.5),
    ("1,234.5", 1234.5), ("-17,25", -17.25), ("12", 12.0), ("", None), ("abc", None), ("nan", None), ("1e", None),
])
def test_numbers_as_surveyors_write_them(raw, expected):
    assert parse_number(raw) == expected


def test_order_numbers_are_whole():
    assert parse_order("3") == 3 and parse_order("3,0") == 3
    assert parse_order("3.5") is None and parse_order("B3") is None


@pytest.mark.parametrize(("header", "delimiter"), [
    ("parcelle;ordre;x;y", ";"), ("parcelle\tordre\tx\ty", "\t"), ("parcelle,ordre,x,y", ","), ("parcelle", ","),
])
def test_delimiter_from_the_header(header, delimiter):
    assert sniff_delimiter(header) == delimiter


@pytest.mark.parametrize(("headers", "expected"), [
    (["parcelle", "ordre", "x", "y"], {"parcel": 0, "order": 1, "x": 2, "y": 3}),
    (["Numéro", "N° Borne", "EST", "Nord"], {"parcel": 0, "order": 1, "x": 2, "y": 3}),
    (["Y", "X", "Sommet", "NUM_PARCELLE"], {"parcel": 3, "order": 2, "x": 1, "y": 0}),
    (["nicad", "vertex", "easting", "northing", "remarque"], {"parcel": 0, "order": 1, "x": 2, "y": 3}),
    (["Parcel", "Order", "Lon", "Lat"], {"parcel": 0, "order": 1, "x": 2, "y": 3}),
    (["numero", "num_borne", "E", "N"], {"parcel": 0, "order": 1, "x": 2, "y": 3}),
])
def test_headers_are_recognised_whatever_their_case_and_accents(headers, expected):
    assert match_bornes_headers(headers) == expected


def test_unrecognised_headers_list_the_expected_and_found_names():
    with pytest.raises(ImportRejected) as refused:
        match_bornes_headers(["id", "rang", "coord_x", "coord_y"])
    assert refused.value.key == "import.bornes_headers"
    message = refused.value.message("fr")
    assert "parcel : parcelle, num_parcelle" in message and "id, rang, coord_x, coord_y" in message
    assert "order" not in message  # only what is missing is listed


def test_table_encodings():
    assert decode_table("parcelle;x\n".encode("utf-8-sig"), None) == ("parcelle;x\n", "utf-8-sig", "bom")
    assert decode_table("numéro".encode(), None) == ("numéro", "utf-8", "utf-8")
    assert decode_table("numéro".encode("latin-1"), None) == ("numéro", "latin-1", "fallback")
    assert decode_table("numéro".encode("cp1252"), "cp1252")[0] == "numéro"
    with pytest.raises(ImportRejected) as refused:
        decode_table(b"x", "klingon")
    assert refused.value.key == "import.bad_encoding"


def test_nicad_shaped_numbers():
    assert nicad_digits("0104040100001") == "0104040100001"
    assert nicad_digits("0104 0401 00001") == "0104040100001"
    assert nicad_digits("1234567890123456") == "1234567890123456"
    assert nicad_digits("12") is None and nicad_digits("A104040100001") is None and nicad_digits(None) is None


def _bornes(*rows):
    return [_Borne(order, x, y) for order, x, y in rows]


SQUARE = ((1, 0, 0), (2, 10, 0), (3, 10, 10), (4, 0, 10))


@pytest.mark.parametrize(("rows", "defect", "count"), [
    (SQUARE, None, 4),
    (tuple(reversed(SQUARE)), None, 4),  # any line order: sorted by order number
    ((*SQUARE, (5, 0, 0)), None, 4),  # the first borne repeated under the next number
    ((*SQUARE, (1, 0, 0)), None, 4),  # … or under its own number
    (((1, 0, 0), (2, 10, 0), (4, 10, 10), (5, 0, 10)), RING_OPEN, 4),  # borne 3 missing
    (((1, 0, 0), (2, 10, 0), (2, 10, 10), (3, 0, 10)), RING_OPEN, 4),  # two bornes numbered 2
    (((1, 0, 0), (2, 10, 0)), RING_TOO_FEW_VERTICES, 2),
    (((1, 0, 0), (2, 10, 0), (3, 10, 0), (4, 0, 0)), RING_TOO_FEW_VERTICES, 3),
    (((1, 0, 0), (2, 10, 10), (3, 10, 0), (4, 0, 10)), RING_SELF_INTERSECTING, 4),  # bow-tie
    (((1, 0, 0), (2, 10, 0), (3, 5, 0), (4, 5, 10)), RING_SELF_INTERSECTING, 4),  # goes back on itself
])
def test_parcel_outlines(rows, defect, count):
    polygon, found, bornes = assemble_parcel(_bornes(*rows))
    assert (found, bornes) == (defect, count)
    if defect is None:
        assert polygon is not None and polygon.is_valid and polygon.area == 100
    if defect == RING_TOO_FEW_VERTICES:
        assert polygon is None


def test_new_messages_speak_both_languages():
    for key in ("import.dxf_needs_crs", "import.dxf_no_parcels", "import.bornes_needs_crs",
                "import.bornes_headers", "import.bornes_bad_value"):
        assert catalogue("fr")[key] and catalogue("en")[key], key
        assert catalogue("fr")[key] != catalogue("en")[key]
    for code in ("dxf_ignored", "dxf_texts_outside"):
        assert code in FILE_NOTES and known(f"import.note.{code}"), code
    for code in (RING_OPEN, RING_TOO_FEW_VERTICES, RING_SELF_INTERSECTING):
        assert code in REASONS and known(f"import.reason.{code}"), code


def test_inspire_and_converted_columns_are_guessed():
    assert mapping.resolve(["gml_id", "areaValue", "inspireId_localId", "label"], None) == {
        "local_number": "label", "declared_area": "areaValue", "source_id": "inspireId_localId"}
    assert mapping.resolve(["gml_id", "areaValue", "localId", "namespace"], None) == {
        "declared_area": "areaValue", "source_id": "localId"}
    assert mapping.resolve(["numero", "nicad", "calque", "handle", "sifc_reject"], None) == {
        "nicad": "nicad", "local_number": "numero", "source_id": "handle"}


@pytest.mark.parametrize(("raw", "expected"), [
    ("GNSS RTK", "gnss_rtk"), ("gnss-rtk", "gnss_rtk"), ("GPS", "gnss"), ("Station totale", "station_totale"),
    ("ruban", "ruban"), ("Numérisation", "numerisation"), ("inconnu", "inconnu"), ("boussole", None),
])
def test_survey_methods_as_surveyors_write_them(raw, expected):
    from sifc.imports.formats import parse_survey_method
    from sifc.models import SURVEY_METHODS

    assert parse_survey_method(raw) == expected
    assert expected is None or expected in SURVEY_METHODS


def test_survey_dates_and_optional_columns_of_a_table_of_bornes():
    from datetime import date

    from sifc.imports.formats import match_bornes_headers, match_optional_bornes_headers, parse_date

    assert parse_date("2024-03-18") == parse_date("18/03/2024") == date(2024, 3, 18)
    assert parse_date("31/02/2024") is None and parse_date("hier") is None
    headers = ["Parcelle", "N° borne", "X", "Y", "Précision", "Méthode", "Date levé"]
    roles = match_bornes_headers(headers)
    assert match_optional_bornes_headers(headers, roles.values()) == {"precision": 4, "method": 5, "date": 6}
    assert match_optional_bornes_headers(["parcelle", "ordre", "x", "y"], range(4)) == {}
