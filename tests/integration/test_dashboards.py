"""Dashboards per commune and per pole: the JSON figures against counts computed here
(SQL on the tables, shapely on the geometries), the PNG and the PDF, 404s and English labels."""

from __future__ import annotations

import io
from collections import Counter

import pytest
import shapely
from matplotlib import image
from pypdf import PdfReader
from sqlalchemy import text

from sifc import dashboard_charts, dashboards
from sifc.demo import PILOTS, load_demo

BARGNY = "SN0104-bargny"


@pytest.fixture
def demo(db):
    assert load_demo(db) is not None
    rows = db.execute(text("SELECT parcel_id::text, nicad, nicad_status, commune_code, land_use, tenure_regime, "
                           "ST_AsBinary(geom) FROM parcel")).all()
    return [{"id": r[0], "nicad": r[1], "status": r[2], "commune": r[3], "land_use": r[4], "tenure": r[5],
             "geom": shapely.from_wkb(bytes(r[6]))} for r in rows]


def _pole_of(db, commune: str) -> str:
    return db.execute(text("SELECT r.pole_code FROM commune c JOIN region r ON r.code = c.region_code "
                           "WHERE c.code = :c"), {"c": commune}).scalar_one()


@pytest.mark.parametrize("commune", sorted(PILOTS))
def test_commune_figures_equal_independent_counts(client, demo, commune):
    mine = [p for p in demo if p["commune"] == commune]
    body = client.get(f"/dashboards/commune/{commune}")
    assert body.status_code == 200, body.text
    figures = body.json()
    assert figures["level"] == "commune" and figures["code"] == commune and "communes" not in figures
    assert figures["parcels"]["count"] == len(mine) > 0
    assert figures["parcels"]["area_m2"] == pytest.approx(sum(p["geom"].area for p in mine), rel=1e-6)
    assert {r["value"]: r["parcels"] for r in figures["by_land_use"]} == Counter(p["land_use"] for p in mine)
    assert {r["value"]: r["parcels"] for r in figures["by_tenure_regime"]} == Counter(p["tenure"] for p in mine)
    for row in figures["by_land_use"]:
        expected = sum(p["geom"].area for p in mine if p["land_use"] == row["value"])
        assert row["area_m2"] == pytest.approx(expected, rel=1e-6)
    with_nicad = sum(p["nicad"] is not None for p in mine)
    nicad = figures["nicad"]
    assert (nicad["parcels"], nicad["with_nicad"]) == (len(mine), with_nicad)
    assert nicad["coverage"] == pytest.approx(with_nicad / len(mine), abs=1e-4)
    assert {r["value"]: r["parcels"] for r in nicad["by_status"]} == Counter(p["status"] for p in mine)


@pytest.mark.parametrize("commune", sorted(PILOTS))
def test_procedures_by_state_are_the_demos(client, demo, commune):
    # The demo holds, per commune, 4 notified procedures, 1 refused, 1 still at the deliberation.
    figures = client.get(f"/dashboards/commune/{commune}").json()["procedures"]
    by_state = {r["state"]: r["procedures"] for r in figures["by_state"]}
    assert by_state == {"registered": 0, "surveyed": 0, "deliberated": 1, "approved": 0, "notified": 4, "refused": 1}
    assert (figures["total"], figures["in_progress"]) == (6, 1)


def test_imports_per_month_count_the_batch_versions_in_the_commune(client, db, demo):
    mine = sum(p["commune"] == BARGNY for p in demo)
    [batch] = db.execute(text("SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM'), (counts->>'accepted')::int "
                              "FROM import_batch")).all()
    imports = client.get(f"/dashboards/commune/{BARGNY}").json()["imports"]
    assert imports == [{"month": batch[0], "batches": 1, "parcel_versions": mine, "accepted": batch[1]}]
    assert batch[1] == len(demo) > mine


def test_conflicts_count_the_overlaps_the_overlaps_route_finds(client, db, demo):
    assert client.get(f"/dashboards/commune/{BARGNY}").json()["conflicts"]["pairs"] == 0
    # The service refuses overlaps (409); a legacy version written straight into the registry has one
    # over two neighbouring demo parcels of Bargny: two pairs, their shared areas as shapely says.
    mine = sorted((p for p in demo if p["commune"] == BARGNY), key=lambda p: p["geom"].bounds)
    first = mine[0]["geom"]
    second = next(p["geom"] for p in mine if abs(p["geom"].bounds[0] - first.bounds[2]) < 1e-6
                  and abs(p["geom"].bounds[1] - first.bounds[1]) < 1e-6)  # its neighbour on the right
    minx, miny, maxx, maxy = first.union(second).bounds
    patch = shapely.box(minx + 5, miny + 5, maxx - 5, miny + 15)
    db.execute(text("""
        INSERT INTO parcel_version (parcel_id, version, nicad_status, commune_code, geom, action, author)
        VALUES (gen_random_uuid(), 1, 'absent', :c, ST_Multi(ST_GeomFromText(:wkt, 32628)), 'create', 'tests')"""),
               {"c": BARGNY, "wkt": patch.wkt})
    overlaps = client.get(f"/communes/{BARGNY}/overlaps").json()["features"]
    conflicts = client.get(f"/dashboards/commune/{BARGNY}").json()["conflicts"]
    expected = [g.intersection(patch).area for g in (first, second)]
    assert conflicts["pairs"] == len(overlaps) == len(expected) == 2
    assert conflicts["area_m2"] == pytest.approx(sum(expected), rel=1e-6)
    assert conflicts["computed"] and not conflicts["truncated"]
    assert client.get("/dashboards/pole/DKR").json()["communes"][0]["conflicts"] == 2


def test_a_pole_aggregates_its_communes_with_parcels(client, db, demo):
    pole = _pole_of(db, "SN1301-sandiara")
    members = {code for code in PILOTS if _pole_of(db, code) == pole}
    figures = client.get(f"/dashboards/pole/{pole}").json()
    mine = [p for p in demo if p["commune"] in members]
    assert figures["parcels"]["count"] == len(mine)
    assert {r["value"]: r["parcels"] for r in figures["by_land_use"]} == Counter(p["land_use"] for p in mine)
    assert [c["code"] for c in figures["communes"]] == sorted(members)
    for row in figures["communes"]:
        theirs = [p for p in mine if p["commune"] == row["code"]]
        assert row["parcels"] == len(theirs) and row["procedures"] == 6 and row["conflicts"] == 0
        assert row["with_nicad"] == sum(p["nicad"] is not None for p in theirs)
    assert figures["procedures"]["total"] == 6 * len(members)
    dakar = client.get("/dashboards/pole/DKR").json()
    assert [c["code"] for c in dakar["communes"]] == [BARGNY]
    assert dakar["parcels"]["count"] == sum(p["commune"] == BARGNY for p in demo)


def test_an_empty_commune_has_zero_figures(client, db):
    other = db.execute(text("SELECT code FROM commune WHERE code <> ALL(:p) ORDER BY code LIMIT 1"),
                       {"p": list(PILOTS)}).scalar_one()
    figures = client.get(f"/dashboards/commune/{other}").json()
    assert figures["parcels"] == {"count": 0, "area_m2": 0.0}
    assert figures["by_land_use"] == [] and figures["imports"] == [] and figures["nicad"]["coverage"] is None
    assert client.get(f"/dashboards/commune/{other}.png").status_code == 200


def test_png_is_a_real_image(client, demo):
    response = client.get(f"/dashboards/commune/{BARGNY}.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n") and len(response.content) > 20_000
    pixels = image.imread(io.BytesIO(response.content), format="png")
    assert pixels.shape[0] >= 800 and pixels.shape[1] >= 800
    assert pixels.std() > 0.05  # not a blank page
    assert response.headers["content-language"] == "fr"


def _pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_pdf_names_the_commune_and_its_figures(client, demo):
    response = client.get(f"/dashboards/commune/{BARGNY}.pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert response.headers["content-disposition"].startswith('inline; filename="tableau_de_bord_SN0104-bargny_')
    assert 1 <= len(PdfReader(io.BytesIO(response.content)).pages) <= 3
    content = _pdf_text(response.content)
    assert "Bargny" in content and "Parcelles par usage du sol" in content and "notifiée" in content
    assert str(sum(p["commune"] == BARGNY for p in demo)) in content


def test_english_labels_on_request(client, demo):
    headers = {"Accept-Language": "en"}
    response = client.get(f"/dashboards/commune/{BARGNY}.pdf", headers=headers)
    content = _pdf_text(response.content)
    assert "Parcels by land use" in content and "notified" in content and "Usage du sol" not in content
    assert response.headers["content-language"] == "en"
    png = client.get("/dashboards/pole/DKR.png", headers=headers)
    assert png.status_code == 200 and png.headers["content-language"] == "en"


def test_chart_panels_are_labelled_in_the_language_asked(db, demo):
    figures = dashboards.get(db, level="commune", code=BARGNY)
    for lang, expected in (("fr", "Parcelles par usage du sol"), ("en", "Parcels by land use")):
        titles = [ax.get_title() for ax in dashboard_charts.figure(figures, lang).axes]
        assert expected in titles, titles
    english = dashboard_charts.figure(figures, "en").axes[3]
    assert "notified" in [tick.get_text() for tick in english.get_yticklabels()]


@pytest.mark.parametrize("url", ["/dashboards/commune/SN0104-nulle-part", "/dashboards/pole/XYZ",
                                 "/dashboards/region/SN01", "/dashboards/commune/SN0104-nulle-part.png",
                                 "/dashboards/pole/XYZ.pdf", "/dashboards/department/SN0104.png"])
def test_unknown_level_or_code_is_a_404_problem(client, url):
    response = client.get(url, headers={"Accept-Language": "en"})
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith("No ")


def test_routes_are_documented_apart(client):
    paths = client.app.openapi()["paths"]
    for suffix in ("", ".png", ".pdf"):
        assert "get" in paths[f"/dashboards/{{level}}/{{code}}{suffix}"]


def test_many_values_are_summed_into_one_others_bar():
    values = [{"value": f"usage {i:02d}", "parcels": 100 - i, "area_m2": 1.0} for i in range(30)]
    figures = {"level": "commune", "code": "SN0000-x", "name": "X", "parcels": {"count": 2565, "area_m2": 30.0},
               "by_land_use": values, "by_tenure_regime": [],
               "nicad": {"parcels": 2565, "with_nicad": 0, "coverage": 0.0, "by_status": []},
               "procedures": {"total": 0, "in_progress": 0, "by_state": []}, "imports": [],
               "conflicts": {"tolerance_m2": 0.01, "computed": False, "pairs": 0, "area_m2": 0.0,
                             "truncated": False}}
    land_use = dashboard_charts.figure(figures, "fr").axes[0]
    names = [tick.get_text() for tick in land_use.get_yticklabels()]
    assert len(names) == dashboard_charts.MAX_BARS and names[-1] == f"autres ({30 - dashboard_charts.MAX_BARS + 1})"
    assert dashboard_charts.pdf(figures, "en").startswith(b"%PDF")


def test_conflicts_are_counted_under_a_parallel_plan(db, demo):
    """``overlap_area`` opens a subtransaction (its EXCEPTION block): no parallel plan may call it (migration
    0028). At 10,000,000 parcels a commune's conflicts were planned in parallel and failed with « cannot start
    subtransactions during a parallel operation »; here every plan is forced parallel where it can be."""
    for setting in ("parallel_setup_cost = 0", "parallel_tuple_cost = 0", "min_parallel_table_scan_size = 0",
                    "force_parallel_mode = on"):
        db.execute(text(f"SET LOCAL {setting}"))
    area = db.execute(text("""
        SELECT sum(overlap_area(ST_Buffer(ST_MakePoint(i, 0), 1), ST_Buffer(ST_MakePoint(i + 1, 0), 1)))
        FROM generate_series(1, 50) i""")).scalar_one()
    assert area == pytest.approx(50 * 1.228, rel=0.02)  # two unit discs one radius apart share 1.228 m²
    assert dashboards.get(db, level="commune", code=BARGNY)["conflicts"]["pairs"] == 0
