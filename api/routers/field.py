"""Field packages over HTTP: check one out, list them, download its zip, declare it lost, hand it over.

The rules (field work in the commune, holders with purpose and access log, who may see or act on a
package) are :mod:`sifc.field.packages`'; this router translates. Returns are
:mod:`api.routers.field_returns`'.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from api.deps import SessionDep, SettingsDep, allow
from api.responses import binary
from api.schemas.field import FieldPackageOut, FieldPackagesOut
from sifc import keyring
from sifc.auth.principal import Action, Principal
from sifc.field import packages

router = APIRouter(prefix="/field/packages", tags=["Dossiers de terrain"])
# agent foncier, analyste SIG, administrateur (401/403 before anything is read); the commune is checked
# by the service once the area is known.
FieldWorker = Annotated[Principal, allow(Action.FIELD_WORK)]
Administrator = Annotated[Principal, allow(Action.MANAGE_ACCOUNTS)]
PackageId = Annotated[str, Path(max_length=64)]
ZIP = "application/zip"


class PackageRequest(BaseModel):
    commune: str | None = Field(default=None, max_length=200, description=(
        "Code, code national ou nom de la commune ; seule, toute la commune."))
    section: str | None = Field(default=None, max_length=50, description="Une section de la commune (son enveloppe).")
    bbox: list[float] | None = Field(default=None, min_length=4, max_length=4, description=(
        "Emprise ouest, sud, est, nord (WGS 84 par défaut), découpée à sa commune."))
    bbox_crs: Literal["EPSG:4326", "EPSG:32628"] = "EPSG:4326"
    polygon: dict[str, Any] | None = Field(default=None, description=(
        "Polygone GeoJSON dessiné (WGS 84), découpé à sa commune ; sur plusieurs communes : refusé."))
    purpose: str | None = Field(default=None, max_length=500, description="Motif (obligatoire avec les titulaires).")
    include_holders: bool = Field(default=False, description=(
        "Inclure les titulaires des droits en vigueur (données personnelles, journalisées parcelle par parcelle)."))
    expires_at: datetime | None = Field(default=None, description="Expiration (défaut : 30 jours ; au plus 90).")


class LostRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class ReassignRequest(BaseModel):
    to: str = Field(min_length=1, max_length=200, description="Le compte qui reçoit le dossier.")
    reason: str = Field(min_length=1, max_length=500)


def _public(record: dict[str, Any], request: Request) -> dict[str, Any]:
    # From the public base URL (SIFC_PUBLIC_URL), never the Host the client sent.
    base = request.app.state.settings.public_base + request.app.url_path_for("get_field_package",
                                                                             package_id=record["id"])
    links = {"self": base}
    if record["status"] == "open":
        links["download"] = f"{base}/download"
    return {**record, "links": links}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


@router.post("", status_code=201, response_model=FieldPackageOut, summary="Remettre un dossier de terrain")
def create_package(body: PackageRequest, request: Request, session: SessionDep, settings: SettingsDep,
                   principal: FieldWorker) -> Response:
    """Une zone d'une seule commune de son périmètre : la commune, une section, une emprise ou un polygone.

    Le dossier (zip : `data.gpkg`, `projet.qgs`, `DCIM/`, `LISEZMOI.txt`) se télécharge sur le lien
    `download` ; il est remis à l'appelant, seul à pouvoir le retourner. Avec les titulaires : motif
    obligatoire et droit de lire les données personnelles de la commune.
    """
    record = packages.build(
        session, by=principal, keys=keyring.for_settings(settings), upload_dir=settings.upload_dir,
        commune=body.commune, section=body.section, bbox=body.bbox, bbox_crs=int(body.bbox_crs.split(":")[1]),
        polygon=body.polygon, purpose=body.purpose, include_holders=body.include_holders,
        expires_at=body.expires_at, service_url=settings.public_base,
        default_days=settings.field_package_default_days, max_days=settings.field_package_max_days)
    answer = _public(record, request)
    return _json(answer, 201, headers={"Location": answer["links"]["self"]})


@router.get("", response_model=FieldPackagesOut, summary="Dossiers de terrain récents")
def list_packages(
    request: Request, session: SessionDep, principal: FieldWorker,
    status: Annotated[Literal["open", "returned", "expired", "lost"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """Les plus récents d'abord : les siens et ceux des communes de son périmètre."""
    rows = packages.list_packages(session, by=principal, status=status, limit=limit, offset=offset)
    return _json({"packages": [_public(r, request) for r in rows], "limit": limit, "offset": offset})


@router.get("/{package_id}", name="get_field_package", response_model=FieldPackageOut,
            summary="Un dossier de terrain")
def get_package(package_id: PackageId, request: Request, session: SessionDep, principal: FieldWorker) -> Response:
    """Son détenteur, ou qui fait du travail de terrain dans sa commune. Un dossier ouvert expiré se lit `expired`."""
    return _json(_public(packages.get(session, package_id, by=principal), request))


@router.get("/{package_id}/download", response_class=FileResponse, summary="Télécharger un dossier de terrain",
            responses=binary({ZIP: "Le dossier : data.gpkg, projet.qgs, DCIM/, LISEZMOI.txt"}))
def download_package(package_id: PackageId, session: SessionDep, settings: SettingsDep,
                     principal: FieldWorker) -> FileResponse:
    """Le zip à copier sur la tablette (QField) ou à ouvrir dans QGIS."""
    path = packages.zip_path(session, package_id, by=principal, upload_dir=settings.upload_dir)
    return FileResponse(path, media_type=ZIP, filename=f"dossier-terrain-{path.stem}.zip",
                        headers={"Cache-Control": "no-store"})


@router.post("/{package_id}/lost", response_model=FieldPackageOut, summary="Déclarer un dossier de terrain perdu")
def lose_package(package_id: PackageId, body: LostRequest, request: Request, session: SessionDep,
                 principal: Administrator) -> Response:
    """Administrateur de la commune : le dossier est clos (`lost`), aucun retour n'en est plus accepté ;
    l'incident est journalisé."""
    return _json(_public(packages.declare_lost(session, package_id, by=principal, reason=body.reason), request))


@router.post("/{package_id}/reassign", response_model=FieldPackageOut,
             summary="Remettre un dossier de terrain à un autre agent")
def reassign_package(package_id: PackageId, body: ReassignRequest, request: Request, session: SessionDep,
                     principal: Administrator) -> Response:
    """Administrateur de la commune ; le nouveau détenteur doit faire du travail de terrain dans la commune."""
    record = packages.reassign(session, package_id, by=principal, to_user=body.to, reason=body.reason)
    return _json(_public(record, request))
