"""Printable documents: fiche parcellaire, extrait de délibération, certificat d'affectation,
registre foncier communal, and the verification of their codes.

Each PDF carries its facts (embedded, canonical JSON) and a verification code (the seal key's
Ed25519 signature of those facts, or an HMAC-SHA256 for keys of before); anyone may verify a code or
a PDF, at any node of the federation for a PDF. Holders are printed only to signed-in roles
whose scope covers the commune, and each such document is written to the access audit: both
decided by the document services, given the caller as ``reader``.
"""

from __future__ import annotations

import html
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, File, Path, Request, UploadFile
from fastapi.responses import Response

from api.deps import PrincipalDep, SessionDep, SettingsDep
from api.limits import rate_limited
from api.problems import language
from api.responses import binary
from api.routers.exports import RateLimited
from api.schemas.records import VerificationOut
from sifc import keyring
from sifc.auth.principal import Principal
from sifc.documents import fiche, procedure_documents, registre, verification
from sifc.errors import TooLarge
from sifc.keyring import SigningKey
from sifc.settings import Settings

router = APIRouter(tags=["Documents"])
Id = Annotated[str, Path(max_length=64)]
PDF = "application/pdf"
PDF_RESPONSE = binary({PDF: "Document PDF scellé (code de vérification imprimé)"})
REGISTER_CSV_RESPONSE = binary({"text/csv": (
    f"CSV UTF-8 avec en-tête ; colonnes : {', '.join(registre.CSV_HEADER['fr'])} (en anglais avec "
    f"`Accept-Language: en` : {', '.join(registre.CSV_HEADER['en'])}) ; titulaires vides hors du périmètre")})
# The documents are built on demand (a map, a PDF): as heavy as an export, rate limited with them.
PDF_ROUTE: dict[str, Any] = {"dependencies": [RateLimited], "responses": PDF_RESPONSE, "response_class": Response}
VerifyRateLimited = rate_limited("verify", lambda settings: settings.import_rate_per_minute, "document.rate_limited")


def _seal_key(settings: Settings) -> SigningKey:
    return keyring.for_settings(settings).current("seal")


def _verify_url(request: Request) -> str:
    # The public base URL (SIFC_PUBLIC_URL), never the Host the client sent: it is printed on the document.
    settings: Settings = request.app.state.settings
    return settings.public_base + verification.VERIFY_PATH


def _pdf(content: bytes, name: str) -> Response:
    return Response(content, media_type=PDF, headers={"Content-Disposition": f'inline; filename="{name}"',
                                                      "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


# --- fiche parcellaire ----------------------------------------------------------------------------

@router.get("/parcels/{parcel_id}/fiche.pdf", **PDF_ROUTE,
            summary="Fiche parcellaire (PDF) : plan, sommets, superficies, droits, code de vérification")
def parcel_sheet(parcel_id: Id, request: Request, session: SessionDep, settings: SettingsDep,
                 principal: PrincipalDep) -> Response:
    """Titulaires seulement aux rôles connectés dont le périmètre couvre la parcelle (lecture journalisée)."""
    pdf = fiche.build(session, parcel_id=parcel_id, reader=principal, lang=language(request),
                      seal_key=_seal_key(settings), verify_url=_verify_url(request),
                      issued_by=principal.name or "public")
    return _pdf(pdf, "fiche-parcellaire.pdf")


# --- documents of a completed procedure -----------------------------------------------------------

def _procedure_document(kind: str, procedure_id: str, request: Request, session: SessionDep, settings: Settings,
                        principal: Principal) -> Response:
    pdf = procedure_documents.build(session, kind=kind, procedure_id=procedure_id, reader=principal,
                                    lang=language(request), seal_key=_seal_key(settings),
                                    verify_url=_verify_url(request), issued_by=principal.name)
    return _pdf(pdf, f"{kind.replace('_', '-')}.pdf")


@router.get("/procedures/{procedure_id}/extrait.pdf", **PDF_ROUTE,
            summary="Extrait de délibération (PDF) d'une procédure d'affectation achevée")
def deliberation_extract(procedure_id: Id, request: Request, session: SessionDep, settings: SettingsDep,
                         principal: PrincipalDep) -> Response:
    """Rôles connectés de la commune ; 409 tant que la procédure n'est pas notifiée."""
    return _procedure_document("extrait_deliberation", procedure_id, request, session, settings, principal)


@router.get("/procedures/{procedure_id}/certificat.pdf", **PDF_ROUTE,
            summary="Certificat d'affectation (PDF) d'une procédure achevée")
def allocation_certificate(procedure_id: Id, request: Request, session: SessionDep, settings: SettingsDep,
                           principal: PrincipalDep) -> Response:
    """Rôles connectés de la commune ; 409 tant que la procédure n'est pas notifiée."""
    return _procedure_document("certificat_affectation", procedure_id, request, session, settings, principal)


# --- registre foncier communal --------------------------------------------------------------------

CommuneCode = Annotated[str, Path(max_length=100)]


@router.get("/communes/{code}/registre.csv", dependencies=[RateLimited], responses=REGISTER_CSV_RESPONSE,
            response_class=Response, summary="Registre foncier communal (CSV) : parcelles en vigueur et droits")
def register_csv(code: CommuneCode, request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    """Titulaires et quotes-parts seulement aux rôles connectés dont le périmètre couvre la commune (journalisé)."""
    found = registre.gather(session, commune_code=code, reader=principal)
    return Response(registre.csv_bytes(found, lang=language(request)), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="registre-{found.safe_code}.csv"'})


@router.get("/communes/{code}/registre.pdf", **PDF_ROUTE,
            summary="Registre foncier communal (PDF paginé, code de vérification)")
def register_pdf(code: CommuneCode, request: Request, session: SessionDep, settings: SettingsDep,
                 principal: PrincipalDep) -> Response:
    """Titulaires et quotes-parts seulement aux rôles connectés dont le périmètre couvre la commune (journalisé)."""
    found = registre.gather(session, commune_code=code, reader=principal)
    pdf = registre.build(session, found, lang=language(request), seal_key=_seal_key(settings),
                         verify_url=_verify_url(request), issued_by=principal.name or "public")
    return _pdf(pdf, f"registre-{found.safe_code}.pdf")


# --- verification ---------------------------------------------------------------------------------

@router.post("/documents/verify", dependencies=[VerifyRateLimited], response_model=VerificationOut,
             summary="Vérifier un document PDF délivré par SIFC (authentique ou non)")
def verify_pdf(session: SessionDep, settings: SettingsDep, request: Request,
               file: Annotated[UploadFile, File(description="Le PDF à vérifier.")]) -> Response:
    """Recalcule le code des faits que le PDF porte et compare le fichier à celui qui a été délivré."""
    content = file.file.read(settings.max_document_bytes + 1)
    if len(content) > settings.max_document_bytes:
        raise TooLarge("document.too_large", limit_mib=round(settings.max_document_bytes / 1024**2, 1))
    return _json(verification.verify(session, keys=keyring.for_settings(settings), pdf=content,
                                     lang=language(request)))


@router.get("/documents/verify/{code}", response_model=VerificationOut,
            responses={200: {"content": {"text/html": {"schema": {"type": "string", "description": "Page lisible"}}}}},
            summary="Un code de vérification a-t-il été délivré, et que certifie-t-il ?")
def verify_code(code: Annotated[str, Path(max_length=200)], request: Request, session: SessionDep,
                settings: SettingsDep) -> Response:
    """`Accept: text/html` : une page lisible ; sinon JSON. Rien de personnel n'y figure."""
    found = verification.lookup(session, code=code)
    body: dict[str, Any] = {"code": verification.normalise(code)[:verification.CODE_MAX], "issued": found is not None,
                            "authentic": found is not None,
                            "status": "authentique" if found is not None else "non authentique"}
    if found is not None:
        body.update({k: found[k] for k in ("kind", "issued_at", "commune_code", "names_holders", "certifies")})
        body["sealed_by_node"] = verification.sealed_by(session, keys=keyring.for_settings(settings),
                                                        key_id=found["key_id"])
    if "text/html" in request.headers.get("accept", "").split(",")[0]:
        return Response(_html(body), media_type="text/html; charset=utf-8")
    return _json(body)


def _html(body: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in (body.get("certifies") or {}).items())
    return ("<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>SIFC — vérification</title></head>"
            f"<body><h1>Document {html.escape(body['status'])}</h1><p>Code : <code>{html.escape(body['code'])}</code>"
            f"</p><table>{rows}</table></body></html>")
