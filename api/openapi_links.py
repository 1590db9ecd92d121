"""OpenAPI links and request examples, added to the generated document in one place.

Links (OpenAPI 3.1 §4.8.20) say where the identifiers and entity tags of one answer are used next: a
parcel created by ``POST /parcels`` is read, changed (its ``ETag`` in ``If-Match``), split, printed;
a party's id names a holder or an applicant; a procedure's id takes its steps; a field package
checked out is read, downloaded and returned, and its return's job followed. Clients that follow
links (Schemathesis' stateful runs, code generators, API explorers) then walk the API as an officer
would instead of guessing identifiers. Examples are realistic requests on the demonstration data: a
small polygon in a free area of Bargny (WGS 84), real commune codes.

The routers stay free of this: the table below is the one place to read and change.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

BARGNY = "SN0104-bargny"
TODAY = "2026-03-02"

# A 21 m square in a part of Bargny where the demonstration data has no parcel, and its two halves.
_W, _S, _E, _N = -17.2200, 14.7050, -17.2198, 14.7052
_MID = -17.2199


def _ring(west: float, south: float, east: float, north: float) -> list[list[list[float]]]:
    return [[[west, south], [east, south], [east, north], [west, north], [west, south]]]


SQUARE = {"type": "Polygon", "coordinates": _ring(_W, _S, _E, _N)}
FIELD_BBOX = [-17.2290, 14.6920, -17.2270, 14.6940]  # west, south, east, north: a corner of Bargny's town
HALVES = [{"type": "Feature", "properties": {"land_use": "habitation"},
           "geometry": {"type": "Polygon", "coordinates": _ring(west, _S, east, _N)}}
          for west, east in ((_W, _MID), (_MID, _E))]

BODY_EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/parcels"): {"type": "Feature", "geometry": SQUARE, "properties": {
        "commune_code": BARGNY, "section": "S09", "local_number": "12", "declared_area_m2": 450,
        "land_use": "habitation", "tenure_regime": "domaine national", "reason": "levé du géomètre"}},
    ("PATCH", "/parcels/{parcel_id}"): {"type": "Feature", "geometry": None, "properties": {
        "land_use": "commerce", "reason": "changement d'usage"}},
    ("POST", "/parcels/{parcel_id}/retire"): {"reason": "parcelle saisie en double"},
    ("POST", "/parcels/{parcel_id}/split"): {"occurred_on": TODAY, "source_ids": ["<id d'une source>"],
                                              "reason": "morcellement", "children": HALVES},
    ("POST", "/parcels/{parcel_id}/lotissement"): {"occurred_on": TODAY, "source_ids": ["<id d'une source>"],
                                                    "reason": "lotissement", "lots": HALVES},
    ("POST", "/parcels/{parcel_id}/boundary-correction"): {
        "occurred_on": TODAY, "source_ids": ["<id d'une source>"], "reason": "rectification de limite",
        "geometry": {"type": "Polygon", "coordinates": _ring(_W, _S, _E + 0.00001, _N)}},
    ("POST", "/parcels/merge"): {"occurred_on": TODAY, "source_ids": ["<id d'une source>"], "reason": "fusion",
                                 "parcel_ids": ["<id de la première>", "<id de la seconde>"]},
    ("POST", "/parcels/intersecting"): SQUARE,
    ("POST", "/parties"): {"kind": "natural_person", "name": "Ndiaye", "given_names": "Awa",
                           "id_number": "1234567890123", "commune_code": BARGNY, "reason": "demande d'affectation"},
    ("PATCH", "/parties/{party_id}"): {"contact": "BP 12, Bargny", "reason": "nouvelle adresse"},
    ("POST", "/sources"): {"kind": "deliberation", "document_date": TODAY, "commune_code": BARGNY,
                           "reference": "DEL-2026-014", "council_session": "session ordinaire de mars"},
    ("POST", "/parcels/{parcel_id}/rights"): {"type": "servitude", "start_date": TODAY,
                                              "source_ids": ["<id d'une source>"], "description": "passage"},
    ("PATCH", "/rights/{rrr_id}"): {"description": "passage de 3 m", "reason": "précision du plan"},
    ("POST", "/rights/{rrr_id}/end"): {"end_date": TODAY, "cause": "renonciation", "reason": "renonciation écrite"},
    ("POST", "/procedures"): {"parcel_id": "<id de la parcelle>", "registered_on": TODAY, "purpose": "habitation",
                              "applicants": [{"party_id": "<id de la partie>", "share": "1"}]},
    ("POST", "/procedures/{procedure_id}/steps"): {"step": "surveyed", "occurred_on": TODAY,
                                                   "source_ids": ["<id du procès-verbal>"],
                                                   "details": {"neighbours_consulted": True}},
    # a few parcels of Bargny's demonstration data (a package of the whole commune is 480 parcels)
    ("POST", "/field/packages"): {"commune": BARGNY, "bbox": FIELD_BBOX, "purpose": "levé des limites"},
    ("POST", "/field/packages/{package_id}/lost"): {"reason": "tablette volée sur le terrain"},
    ("POST", "/field/packages/{package_id}/reassign"): {"to": "<compte d'un agent de la commune>",
                                                        "reason": "changement d'équipe"},
}

# Path and query parameters: the same value wherever the name appears.
PARAMETER_EXAMPLES: dict[str, Any] = {
    "code": BARGNY, "commune": BARGNY, "level": "commune", "lon": -17.2283, "lat": 14.6933,
    "bbox": "-17.2290,14.6920,-17.2270,14.6940", "collection_id": "parcels", "collection": "parcels",
}

# (source method, source path, status) -> [(link name, target method, target path, parameters, body)]
Link = tuple[str, str, str, dict[str, str], Any]
_ID = "$response.body#/id"
_ETAG = "$response.header.ETag"


def _parcel_links(id_expression: str, etag: str | None) -> list[Link]:
    """What a parcel's id leads to; with its ETag, the writes on that version."""
    reads = [("GetParcel", "GET", "/parcels/{parcel_id}"), ("ParcelVersions", "GET", "/parcels/{parcel_id}/versions"),
             ("ParcelHistory", "GET", "/parcels/{parcel_id}/history"),
             ("ParcelRights", "GET", "/parcels/{parcel_id}/rights"),
             ("ParcelProcedures", "GET", "/parcels/{parcel_id}/procedures"),
             ("ParcelAudit", "GET", "/parcels/{parcel_id}/audit"),
             ("ParcelLineage", "GET", "/parcels/{parcel_id}/lineage"),
             ("ParcelNeighbours", "GET", "/parcels/{parcel_id}/neighbours"),
             ("ParcelSheet", "GET", "/parcels/{parcel_id}/fiche.pdf"),
             ("AddRight", "POST", "/parcels/{parcel_id}/rights")]
    links: list[Link] = [(name, method, path, {"path.parcel_id": id_expression}, None)
                         for name, method, path in reads]
    links.append(("ApplyForParcel", "POST", "/procedures", {}, {"parcel_id": id_expression}))
    if etag is not None:
        links += [(name, method, path, {"path.parcel_id": id_expression, "header.If-Match": etag}, None)
                  for name, method, path in (("UpdateParcel", "PATCH", "/parcels/{parcel_id}"),
                                             ("RetireParcel", "POST", "/parcels/{parcel_id}/retire"),
                                             ("SplitParcel", "POST", "/parcels/{parcel_id}/split"),
                                             ("SubdivideParcel", "POST", "/parcels/{parcel_id}/lotissement"),
                                             ("CorrectBoundary", "POST", "/parcels/{parcel_id}/boundary-correction"))]
    return links


def _one_of(kind: str, id_expression: str, etag: str | None, reads: list[tuple[str, str, str]],
            writes: list[tuple[str, str, str]]) -> list[Link]:
    links: list[Link] = [(name, method, path, {f"path.{kind}": id_expression}, None) for name, method, path in reads]
    if etag is not None:
        links += [(name, method, path, {f"path.{kind}": id_expression, "header.If-Match": etag}, None)
                  for name, method, path in writes]
    return links


def _party_links(id_expression: str, etag: str | None) -> list[Link]:
    return [*_one_of("party_id", id_expression, etag,
                     [("GetParty", "GET", "/parties/{party_id}"),
                      ("PartyVersions", "GET", "/parties/{party_id}/versions")],
                     [("UpdateParty", "PATCH", "/parties/{party_id}")]),
            ("ApplicantOfProcedure", "POST", "/procedures", {}, {"applicants": [{"party_id": id_expression,
                                                                                 "share": "1"}]})]


def _right_links(id_expression: str, etag: str | None) -> list[Link]:
    return _one_of("rrr_id", id_expression, etag,
                   [("GetRight", "GET", "/rights/{rrr_id}"), ("RightVersions", "GET", "/rights/{rrr_id}/versions")],
                   [("UpdateRight", "PATCH", "/rights/{rrr_id}"), ("EndRight", "POST", "/rights/{rrr_id}/end")])


def _procedure_links(id_expression: str, etag: str | None) -> list[Link]:
    return _one_of("procedure_id", id_expression, etag,
                   [("GetProcedure", "GET", "/procedures/{procedure_id}"),
                    ("DeliberationExtract", "GET", "/procedures/{procedure_id}/extrait.pdf"),
                    ("Certificate", "GET", "/procedures/{procedure_id}/certificat.pdf")],
                   [("NextStep", "POST", "/procedures/{procedure_id}/steps")])


def _source_links(id_expression: str) -> list[Link]:
    return [("GetSource", "GET", "/sources/{source_id}", {"path.source_id": id_expression}, None),
            ("AttachFile", "POST", "/sources/{source_id}/files", {"path.source_id": id_expression}, None),
            ("RightFromSource", "POST", "/parcels/{parcel_id}/rights", {}, {"source_ids": [id_expression]})]


def _job_links(id_expression: str) -> list[Link]:
    return [(name, method, path, {"path.job_id": id_expression}, None)
            for name, method, path in (("GetImport", "GET", "/imports/{job_id}"),
                                       ("ImportReport", "GET", "/imports/{job_id}/report"),
                                       ("ImportRejects", "GET", "/imports/{job_id}/rejects"),
                                       ("RetryImport", "POST", "/imports/{job_id}/retry"))]


def _borne_links(id_expression: str, etag: str | None) -> list[Link]:
    return _one_of("borne_id", id_expression, etag,
                   [("GetBorne", "GET", "/bornes/{borne_id}"), ("BorneVersions", "GET", "/bornes/{borne_id}/versions")],
                   [("UpdateBorne", "PATCH", "/bornes/{borne_id}"),
                    ("RetireBorne", "POST", "/bornes/{borne_id}/retire")])


def _package_links(id_expression: str) -> list[Link]:
    """A field package's reads, its return (by its holder) and the administrator's closing or handing over."""
    return [(name, method, path, {"path.package_id": id_expression}, None)
            for name, method, path in (("GetPackage", "GET", "/field/packages/{package_id}"),
                                       ("DownloadPackage", "GET", "/field/packages/{package_id}/download"),
                                       ("ReturnPackage", "POST", "/field/packages/{package_id}/return"),
                                       ("LosePackage", "POST", "/field/packages/{package_id}/lost"),
                                       ("ReassignPackage", "POST", "/field/packages/{package_id}/reassign"))]


def _return_links(id_expression: str) -> list[Link]:
    return [(name, method, path, {"path.job_id": id_expression}, None)
            for name, method, path in (("GetReturn", "GET", "/field/returns/{job_id}"),
                                       ("ReturnReport", "GET", "/field/returns/{job_id}/report"),
                                       ("ReturnRejects", "GET", "/field/returns/{job_id}/rejects"))]


_FIRST_FEATURE = "$response.body#/features/0/id"
_TERRITORIES = ("poles", "regions", "departments", "arrondissements", "communes")

LINKS: dict[tuple[str, str, str], list[Link]] = {
    # parcels: created, read, changed, found by place or commune
    ("POST", "/parcels", "201"): _parcel_links(_ID, _ETAG),
    ("GET", "/parcels/{parcel_id}", "200"): _parcel_links(_ID, _ETAG),
    ("PATCH", "/parcels/{parcel_id}", "200"): _parcel_links(_ID, _ETAG),
    ("GET", "/parcels/at", "200"): _parcel_links(_FIRST_FEATURE, None),
    ("GET", "/parcels/near", "200"): _parcel_links(_FIRST_FEATURE, None),
    ("GET", "/communes/{code}/parcels", "200"): [
        *_parcel_links(_FIRST_FEATURE, None),
        ("ByNicad", "GET", "/parcels/by-nicad/{nicad}",
         {"path.nicad": "$response.body#/features/0/properties/nicad"}, None)],
    ("POST", "/parcels/{parcel_id}/split", "201"): [
        *_parcel_links("$response.body#/children/0", None),
        ("MergeChildren", "POST", "/parcels/merge", {},
         {"parcel_ids": ["$response.body#/children/0", "$response.body#/children/1"]})],
    ("POST", "/parcels/{parcel_id}/lotissement", "201"): _parcel_links("$response.body#/children/0", None),
    ("POST", "/parcels/merge", "201"): _parcel_links("$response.body#/children/0", None),
    ("POST", "/parcels/{parcel_id}/boundary-correction", "200"): _parcel_links("$response.body#/children/0", _ETAG),
    # tenure: parties, sources, rights, procedures
    ("POST", "/parties", "201"): _party_links(_ID, _ETAG),
    ("GET", "/parties/{party_id}", "200"): _party_links(_ID, _ETAG),
    ("PATCH", "/parties/{party_id}", "200"): _party_links(_ID, _ETAG),
    ("POST", "/sources", "201"): _source_links(_ID),
    ("GET", "/sources/{source_id}", "200"): [
        *_source_links(_ID), ("DownloadFile", "GET", "/sources/{source_id}/files/{file_id}",
                              {"path.source_id": _ID, "path.file_id": "$response.body#/files/0/id"}, None)],
    ("POST", "/sources/{source_id}/files", "201"): [
        ("DownloadFile", "GET", "/sources/{source_id}/files/{file_id}",
         {"path.source_id": "$request.path.source_id", "path.file_id": _ID}, None)],
    ("POST", "/parcels/{parcel_id}/rights", "201"): _right_links(_ID, _ETAG),
    ("GET", "/rights/{rrr_id}", "200"): _right_links(_ID, _ETAG),
    ("PATCH", "/rights/{rrr_id}", "200"): _right_links(_ID, _ETAG),
    ("GET", "/parcels/{parcel_id}/rights", "200"): [
        *_right_links("$response.body#/rights/0/id", None),
        ("Holder", "GET", "/parties/{party_id}",
         {"path.party_id": "$response.body#/rights/0/holders/0/party_id"}, None),
        ("RightSource", "GET", "/sources/{source_id}",
         {"path.source_id": "$response.body#/rights/0/source_ids/0"}, None)],
    ("POST", "/procedures", "201"): _procedure_links(_ID, _ETAG),
    ("GET", "/procedures/{procedure_id}", "200"): [
        *_procedure_links(_ID, _ETAG),
        ("Applicant", "GET", "/parties/{party_id}",
         {"path.party_id": "$response.body#/applicants/0/party_id"}, None)],
    ("POST", "/procedures/{procedure_id}/steps", "200"): _procedure_links(_ID, _ETAG),
    ("GET", "/parcels/{parcel_id}/procedures", "200"): _procedure_links("$response.body#/0/id", None),
    # bornes
    ("POST", "/bornes", "201"): _borne_links(_ID, _ETAG),
    ("GET", "/bornes/{borne_id}", "200"): _borne_links(_ID, _ETAG),
    ("PATCH", "/bornes/{borne_id}", "200"): _borne_links(_ID, _ETAG),
    ("GET", "/communes/{code}/bornes", "200"): _borne_links(_FIRST_FEATURE, None),
    # field packages and their returns
    ("POST", "/field/packages", "201"): _package_links(_ID),
    ("GET", "/field/packages", "200"): _package_links("$response.body#/packages/0/id"),
    ("POST", "/field/packages/{package_id}/return", "202"): _return_links(_ID),
    # imports, sign-in, territories
    ("POST", "/imports", "202"): _job_links(_ID),
    ("GET", "/imports", "200"): _job_links("$response.body#/jobs/0/id"),
    ("POST", "/auth/token", "200"): [
        (name, "POST", path, {}, {"refresh_token": "$response.body#/refresh_token"})
        for name, path in (("Refresh", "/auth/refresh"), ("SignOut", "/auth/logout"))],
    ("POST", "/auth/refresh", "200"): [
        (name, "POST", path, {}, {"refresh_token": "$response.body#/refresh_token"})
        for name, path in (("RefreshAgain", "/auth/refresh"), ("SignOut", "/auth/logout"))],
    **{("GET", f"/{kind}", "200"): [
        (name, "GET", path, {"path.code": "$response.body#/features/0/properties/code"}, None)
        for name, path in (("Unit", f"/{kind}/{{code}}"), ("Children", f"/{kind}/{{code}}/children"))]
        for kind in _TERRITORIES if kind != "communes"},
    ("GET", "/communes", "200"): [("Commune", "GET", "/communes/{code}",
                                   {"path.code": "$response.body#/features/0/properties/code"}, None)],
}


def _operation_ids(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(method.upper(), path): operation["operationId"]
            for path, item in document["paths"].items() for method, operation in item.items()
            if isinstance(operation, dict) and "operationId" in operation}


def add_links(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the links of ``LINKS`` on its responses; a link to an absent operation is an error."""
    ids = _operation_ids(document)
    for (method, path, status), links in LINKS.items():
        response = document["paths"][path][method.lower()]["responses"].setdefault(
            status, {"description": "Successful Response"})
        target = response.setdefault("links", {})
        for name, target_method, target_path, parameters, body in links:
            link: dict[str, Any] = {"operationId": ids[(target_method, target_path)]}
            if parameters:
                link["parameters"] = parameters
            if body is not None:
                link["requestBody"] = body
            target[name] = link
    return document


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    reference = schema.get("$ref")
    if reference is None:
        return schema
    target: dict[str, Any] = document["components"]["schemas"][reference.rsplit("/", 1)[1]]
    return target


def add_examples(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the request examples of ``BODY_EXAMPLES`` and ``PARAMETER_EXAMPLES``."""
    for (method, path), example in BODY_EXAMPLES.items():
        operation = document["paths"][path][method.lower()]
        for media in operation.get("requestBody", {}).get("content", {}).values():
            media["example"] = copy.deepcopy(example)
    for item in document["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if parameter["name"] in PARAMETER_EXAMPLES and parameter["in"] in ("path", "query") \
                        and "example" not in parameter and "examples" not in parameter:
                    parameter["example"] = PARAMETER_EXAMPLES[parameter["name"]]
    return document


def install(app: FastAPI) -> None:
    """Serve ``app``'s document with its links and examples (built once, like FastAPI's own)."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    built: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not built:
            built.append(add_examples(add_links(generate())))
            app.openapi_schema = built[0]
        return built[0]

    app.openapi = openapi  # type: ignore[method-assign]
