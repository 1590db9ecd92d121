"""Parcel mutations: split, lotissement, merge, boundary correction; rights, lineage, audit.

Geometries are built in EPSG:32628 around a point of Bargny; named cases (a gap, an overlap, a
part outside the parent) stand for what a surveyor's plan gets wrong.
"""

from __future__ import annotations

import pytest
from shapely.geometry import box, mapping
from sqlalchemy import text

from tests.conftest import api_key
from tests.integration.fixtures import bargny_origin, day

BARGNY = "SN0104-bargny"
CRS = {"crs": "EPSG:32628"}


@pytest.fixture
def origin(db) -> tuple[float, float]:
    x, y = bargny_origin(db)
    return x + 600, y + 250


def _feature(geom, **properties):
    return {"type": "Feature", "geometry": mapping(geom), "properties": properties}


def _parcel(client, headers, geom, **properties) -> dict:
    created = client.post("/parcels", params=CRS, headers=headers,
                          json=_feature(geom, reason="levé", land_use="agriculture", **properties))
    assert created.status_code == 201, created.text
    return {**created.json(), "etag": created.headers["ETag"]}


def _source(client, headers, kind="plan") -> str:
    response = client.post("/sources", headers=headers, json={
        "kind": kind, "document_date": day(5), "commune_code": BARGNY, "reference": "plan 2026-31",
        **({"council_session": "session du 3e trimestre"} if kind == "deliberation" else {})})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _body(client, headers, **extra):
    return {"occurred_on": day(1), "source_ids": [_source(client, headers)], "reason": "morcellement demandé", **extra}


def _split(client, headers, parent, children, **extra):
    return client.post(f"/parcels/{parent['id']}/split", params=CRS, headers={**headers, "If-Match": parent["etag"]},
                       json=_body(client, headers, children=[_feature(g, **p) for g, p in children], **extra))


def _lease(client, headers, parcel_id) -> tuple[str, str]:
    party = client.post("/parties", headers=headers, json={
        "kind": "natural_person", "name": "Synthétique", "commune_code": BARGNY}).json()["id"]
    lease = client.post(f"/parcels/{parcel_id}/rights", headers=headers, json={
        "type": "bail", "start_date": day(30), "source_ids": [_source(client, headers, "acte")],
        "holders": [{"party_id": party}]})
    assert lease.status_code == 201, lease.text
    return lease.json()["id"], party


def test_a_split_carries_the_rights_as_asked_and_keeps_the_lineage(client, db, officer, origin):
    x, y = origin
    parent = _parcel(client, officer, box(x, y, x + 40, y + 20), nicad="0104040100901")
    lease, party = _lease(client, officer, parent["id"])
    servitude = client.post(f"/parcels/{parent['id']}/rights", headers=officer, json={
        "type": "servitude", "start_date": day(30), "source_ids": [_source(client, officer, "acte")]}).json()["id"]
    split = _split(client, officer, parent, [(box(x, y, x + 20, y + 20), {"nicad": "0104040100902"}),
                                             (box(x + 20, y, x + 40, y + 20), {})],
                   rights={lease: {"carry": [1]}, servitude: "close"})
    assert split.status_code == 201, split.text
    result = split.json()
    first, second = result["children"]
    # The parent is retired with its NICAD; the children have their own.
    assert client.get(f"/parcels/{parent['id']}").status_code == 410
    one, two = (client.get(f"/parcels/{c}").json()["properties"] for c in (first, second))
    assert (one["nicad"], one["nicad_status"]) == ("0104040100902", "attribue")
    assert (two["nicad"], two["nicad_status"]) == (None, "a_reattribuer")
    assert one["land_use"] == "agriculture"
    # The lease follows child 1, the servitude is closed; the parent's rights are ended, not deleted.
    carried = client.get(f"/parcels/{first}/rights", headers=officer).json()["rights"]
    assert [(r["type"], r["predecessor_id"], r["holders"][0]["party_id"]) for r in carried] == [("bail", lease, party)]
    assert client.get(f"/parcels/{second}/rights").json()["rights"] == []
    ended = {r["type"]: r for r in client.get(f"/parcels/{parent['id']}/history").json()["rights"] if r["valid_to"] is None}
    assert {t: (r["status"], r["end_cause"]) for t, r in ended.items()} == {
        "bail": ("ended", "morcellement"), "servitude": ("ended", "morcellement")}
    assert result["rights"][servitude] == "closed" and len(result["rights"][lease]) == 1
    # Lineage both ways.
    down = client.get(f"/parcels/{parent['id']}/lineage").json()
    assert [m["operation"] for m in down["descendants"]] == ["split"]
    assert sorted(c["id"] for c in down["descendants"][0]["children"]) == sorted([first, second])
    up = client.get(f"/parcels/{second}/lineage").json()
    assert [p["id"] for p in up["ancestors"][0]["parents"]] == [parent["id"]]
    assert up["ancestors"][0]["parents"][0]["nicad"] == "0104040100901"
    assert "author" not in up["ancestors"][0]
    assert client.get(f"/parcels/{second}/lineage", headers=officer).json()["ancestors"][0]["author"].endswith(
        "agent bargny")
    # A retired NICAD is never given again.
    assert _split(client, officer, {"id": first, "etag": client.get(f"/parcels/{first}").headers["ETag"]},
                  [(box(x, y, x + 10, y + 20), {"nicad": "0104040100901"}), (box(x + 10, y, x + 20, y + 20), {})],
                  rights={r["id"]: "close" for r in carried}).status_code == 409
    # The write audit has the mutation, the children's rights and the ended ones.
    operations = db.execute(text("SELECT operation FROM write_audit WHERE operation LIKE 'mutation.%' "
                                 "OR object_id = :lease ORDER BY id"), {"lease": lease}).scalars().all()
    assert "mutation.split" in operations and "rrr.end" in operations


@pytest.mark.parametrize(("case", "children", "key"), [
    ("gap", [(0, 0, 19, 20), (20, 0, 40, 20)], "mutation.children_do_not_cover"),
    ("overlap", [(0, 0, 21, 20), (20, 0, 40, 20)], "mutation.children_overlap"),
    ("outside", [(0, 0, 20, 20), (20, 0, 41, 20)], "mutation.child_outside"),
    ("one_child", [(0, 0, 40, 20)], "http.validation"),
])
def test_a_split_that_does_not_fit_the_parent_is_refused(client, db, officer, origin, case, children, key):
    x, y = origin
    parent = _parcel(client, officer, box(x, y, x + 40, y + 20))
    before = db.execute(text("SELECT count(*), max(version) FROM parcel_version")).one()
    response = _split(client, officer, parent, [(box(x + a, y + b, x + c, y + d), {}) for a, b, c, d in children])
    assert response.status_code == 422, response.text
    assert response.json()["type"] == f"urn:sifc:problem:{key}"
    assert db.execute(text("SELECT count(*), max(version) FROM parcel_version")).one() == before
    assert client.get(f"/parcels/{parent['id']}").status_code == 200


def test_every_current_right_must_be_decided(client, officer, origin):
    x, y = origin
    parent = _parcel(client, officer, box(x, y, x + 40, y + 20))
    lease, _ = _lease(client, officer, parent["id"])
    halves = [(box(x, y, x + 20, y + 20), {}), (box(x + 20, y, x + 40, y + 20), {})]
    undecided = _split(client, officer, parent, halves)
    assert undecided.status_code == 422 and lease in undecided.json()["detail"]
    wrong = _split(client, officer, parent, halves, rights={lease: {"carry": [3]}})
    assert wrong.status_code == 422


def test_a_lotissement_of_lots_and_roads_is_accepted(client, db, officer, origin):
    x, y = origin
    parent = _parcel(client, officer, box(x, y, x + 50, y + 30), tenure_regime="domaine national")
    lots = [_feature(box(x + 10 * i, y, x + 10 * (i + 1), y + 22), land_use="habitation") for i in range(5)]
    road = _feature(box(x, y + 22, x + 50, y + 30), land_use="voirie")
    body = _body(client, officer, lots=lots, public_land=[road])
    response = client.post(f"/parcels/{parent['id']}/lotissement", params=CRS,
                           headers={**officer, "If-Match": parent["etag"]}, json=body)
    assert response.status_code == 201, response.text
    children = response.json()["children"]
    assert len(children) == 6
    street = client.get(f"/parcels/{children[-1]}").json()["properties"]
    assert (street["land_use"], street["tenure_regime"]) == ("voirie", "domaine public")
    assert client.get(f"/parcels/{children[0]}").json()["properties"]["tenure_regime"] == "domaine national"
    lineage = client.get(f"/parcels/{parent['id']}/lineage").json()["descendants"][0]
    assert lineage["operation"] == "lotissement" and lineage["details"] == {"children": 6, "public_land": [6]}


def test_a_right_never_goes_to_public_land(client, officer, origin):
    x, y = origin
    parent = _parcel(client, officer, box(x, y, x + 20, y + 30))
    lease, _ = _lease(client, officer, parent["id"])
    response = client.post(f"/parcels/{parent['id']}/lotissement", params=CRS,
                           headers={**officer, "If-Match": parent["etag"]}, json=_body(
        client, officer, lots=[_feature(box(x, y, x + 20, y + 22))],
        public_land=[_feature(box(x, y + 22, x + 20, y + 30), land_use="voirie")], rights={lease: {"carry": [2]}}))
    assert response.status_code == 422
    assert response.json()["type"] == "urn:sifc:problem:mutation.public_land_inalienable"


def test_a_merge_of_adjacent_parcels_with_the_same_rights(client, db, officer, origin):
    x, y = origin
    a = _parcel(client, officer, box(x, y, x + 20, y + 20), nicad="0104040100911", tenure_regime="bail")
    b = _parcel(client, officer, box(x + 20, y, x + 40, y + 20), nicad="0104040100912", tenure_regime="bail")
    far = _parcel(client, officer, box(x + 100, y, x + 120, y + 20), tenure_regime="bail")
    lease, party = _lease(client, officer, a["id"])
    act = _source(client, officer, "acte")
    other = client.post(f"/parcels/{b['id']}/rights", headers=officer, json={
        "type": "bail", "start_date": day(30), "source_ids": [act], "holders": [{"party_id": party}]}).json()["id"]

    def merge(ids, tags, **extra):
        return client.post("/parcels/merge", headers={**officer, "If-Match": ", ".join(tags)},
                           json=_body(client, officer, parcel_ids=ids, **extra))

    assert merge([a["id"], far["id"]], [a["etag"], far["etag"]]).json()["type"] == "urn:sifc:problem:mutation.not_adjacent"
    assert merge([a["id"], b["id"]], [a["etag"]]).status_code == 428
    merged = merge([a["id"], b["id"]], [a["etag"], b["etag"]], properties={"nicad": "0104040100913"})
    assert merged.status_code == 201, merged.text
    child = merged.json()["children"][0]
    feature = client.get(f"/parcels/{child}").json()
    assert feature["properties"]["nicad"] == "0104040100913"
    assert round(feature["properties"]["area_m2"]) == 800
    # The two identical leases become one on the merged parcel.
    rights = client.get(f"/parcels/{child}/rights", headers=officer).json()["rights"]
    assert [(r["type"], r["holders"][0]["party_id"]) for r in rights] == [("bail", party)]
    assert merged.json()["rights"][lease] == merged.json()["rights"][other]
    for retired in (a, b):
        assert client.get(f"/parcels/{retired['id']}").status_code == 410
    lineage = client.get(f"/parcels/{child}/lineage").json()["ancestors"][0]
    assert sorted(p["nicad"] for p in lineage["parents"]) == ["0104040100911", "0104040100912"]


def test_a_merge_of_parcels_with_different_holders_says_which_rights_end(client, officer, origin):
    x, y = origin
    a = _parcel(client, officer, box(x, y, x + 20, y + 20))
    b = _parcel(client, officer, box(x + 20, y, x + 40, y + 20))
    lease, _ = _lease(client, officer, a["id"])
    tags = {"If-Match": f"{a['etag']}, {b['etag']}"}
    refused = client.post("/parcels/merge", headers={**officer, **tags},
                          json=_body(client, officer, parcel_ids=[a["id"], b["id"]]))
    assert refused.status_code == 409 and lease in refused.json()["detail"]
    accepted = client.post("/parcels/merge", headers={**officer, **tags},
                           json=_body(client, officer, parcel_ids=[a["id"], b["id"]], end_rights=[lease]))
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["rights"] == {lease: "closed"}


def test_a_boundary_correction_checks_the_neighbours(client, db, officer, origin):
    x, y = origin
    parcel = _parcel(client, officer, box(x, y, x + 20, y + 20), nicad="0104040100921")
    neighbour = _parcel(client, officer, box(x + 20, y, x + 40, y + 20))

    def correct(geom, tag):
        return client.post(f"/parcels/{parcel['id']}/boundary-correction", params=CRS,
                           headers={**officer, "If-Match": tag},
                           json=_body(client, officer, geometry=mapping(geom), reason="bornage contradictoire"))

    overlap = correct(box(x, y, x + 25, y + 20), parcel["etag"])
    assert overlap.status_code == 409 and neighbour["id"] in overlap.json()["detail"]
    done = correct(box(x, y, x + 19, y + 20.5), parcel["etag"])
    assert done.status_code == 200, done.text
    properties = client.get(f"/parcels/{parcel['id']}").json()["properties"]
    assert (properties["version"], properties["nicad"], properties["nicad_status"]) == (2, None, "a_reattribuer")
    assert correct(box(x, y, x + 18, y + 20), parcel["etag"]).status_code == 412
    corrections = client.get(f"/parcels/{parcel['id']}/lineage").json()["corrections"]
    assert [(m["operation"], m["parents"][0]["version"], m["children"][0]["version"]) for m in corrections] == [
        ("boundary_correction", 1, 2)]


def test_no_mutation_under_litige_or_with_a_procedure_in_progress(client, db, officer, origin):
    x, y = origin
    frozen = _parcel(client, officer, box(x, y, x + 40, y + 20))
    busy = _parcel(client, officer, box(x, y + 40, x + 40, y + 60))
    decision = _source(client, officer, "decision_justice")
    assert client.post(f"/parcels/{frozen['id']}/rights", headers=officer, json={
        "type": "litige", "start_date": day(3), "source_ids": [decision]}).status_code == 201
    party = client.post("/parties", headers=officer, json={
        "kind": "natural_person", "name": "Synthétique", "commune_code": BARGNY}).json()["id"]
    assert client.post("/procedures", headers=officer, json={
        "parcel_id": busy["id"], "registered_on": day(3), "applicants": [{"party_id": party}]}).status_code == 201
    for parcel, key in ((frozen, "tenure.under_litige"), (busy, "mutation.procedure_in_progress")):
        x0 = x if parcel is frozen else x
        y0 = y if parcel is frozen else y + 40
        response = _split(client, officer, parcel, [(box(x0, y0, x0 + 20, y0 + 20), {}),
                                                    (box(x0 + 20, y0, x0 + 40, y0 + 20), {})])
        assert response.status_code == 409 and response.json()["type"] == f"urn:sifc:problem:{key}"


def test_an_agent_of_another_commune_cannot_split(client, db, origin, admin_headers):
    x, y = origin
    parent = _parcel(client, admin_headers, box(x, y, x + 40, y + 20))
    sandiara = {"X-API-Key": api_key(db, role="agent_foncier", scope=("commune:SN1301-sandiara",), name="agent s")}
    response = client.post(f"/parcels/{parent['id']}/split", params=CRS,
                           headers={**sandiara, "If-Match": parent["etag"]},
                           json={"occurred_on": day(1), "source_ids": ["00000000-0000-4000-8000-000000000000"],
                                 "reason": "x", "children": [_feature(box(x, y, x + 20, y + 20)),
                                                              _feature(box(x + 20, y, x + 40, y + 20))]})
    assert response.status_code == 403


def test_a_boundary_sent_back_as_served_in_wgs84_is_no_change(client, officer, origin):
    x, y = origin
    parcel = _parcel(client, officer, box(x, y, x + 20, y + 20), nicad="0104040100931")
    served = client.get(f"/parcels/{parcel['id']}").json()["geometry"]
    same = client.post(f"/parcels/{parcel['id']}/boundary-correction", headers={**officer, "If-Match": parcel["etag"]},
                       json=_body(client, officer, geometry=served))
    assert same.status_code == 422 and same.json()["type"] == "urn:sifc:problem:parcel.no_change"
    assert client.get(f"/parcels/{parcel['id']}").json()["properties"]["nicad"] == "0104040100931"
