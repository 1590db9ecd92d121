"""Fees and receipts (ADR 0005 §7): schedules, a file's fees, payments, cancellations, receipts, bordereau.

Schedules are public (a délibération on fees is public) and written by land officers of the commune.
Payments are recorded by the régisseur (``regisseur``) or an administrator whose scope covers the
commune: the service checks the role, the scope and the commune's receipt mode in the writing
transaction. A file's fees are read by the régisseur and by readers of personal data in scope; only the
latter see who recorded a payment and why one was cancelled (the read audited).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.bounded import StepDate
from api.deps import PrincipalDep, SessionDep, SettingsDep, allow
from api.problems import language
from api.responses import binary
from api.routers.documents import _pdf, _seal_key, _verify_url
from sifc.auth.principal import Action, Principal
from sifc.fees import receipts, schedules, service

router = APIRouter(tags=["Redevances"])
Collector = Annotated[Principal, allow(Action.COLLECT_FEES)]
Officer = Annotated[Principal, allow(Action.WRITE_TENURE)]
Id = Annotated[str, Path(max_length=64)]
CommuneCode = Annotated[str, Path(max_length=100)]
Kind = Literal["affectation", "desaffectation", "reaffectation_heritiers", "regularisation"]
PDF_RESPONSE = binary({"application/pdf": "Document PDF scellé (code de vérification imprimé)"})


class ScheduleOut(BaseModel):
    """Un barème (public) ; `recorded_by` seulement dans la réponse à son auteur."""

    id: str
    commune_code: str
    procedure_kind: str
    valid_from: date
    valid_to: date | None
    rule: dict[str, Any]
    deliberation_source_id: str
    deliberation_reference: str | None
    deliberation_date: date | None
    recorded_at: str
    recorded_by: str | None = None


class PaymentOut(BaseModel):
    """Un paiement, ou l'annulation d'un paiement (montant négatif) ; auteur et motif aux lecteurs seulement."""

    id: str
    procedure_id: str
    commune_code: str
    amount: int
    method: str
    mobile_reference: str | None
    paid_on: date
    quittance_number: str | None
    receipt_year: int | None
    receipt_number: int | None
    receipt: str | None = Field(description="Le numéro imprimé : 2026-000012.")
    cancels_payment_id: str | None
    cancelled_by: str | None
    recorded_at: str
    recorded_by: str | None = None
    reason: str | None = None
    receipt_url: str | None = None


class FeeOut(BaseModel):
    """La redevance d'un dossier, calculée à l'enregistrement selon le barème alors en vigueur."""

    amount: int
    area_m2: float
    assessed_on: date
    schedule_id: str
    rule: dict[str, Any]
    deliberation_reference: str | None
    deliberation_date: date | None


class FileRefOut(BaseModel):
    """Le dossier : numéro, type, état, NICAD de la parcelle (rien de personnel)."""

    id: str
    reference: str | None
    kind: str
    commune_code: str
    state: str | None
    nicad: str | None
    registered_on: date | None


class FileFeesOut(BaseModel):
    """Redevance, paiements et reste à payer d'un dossier ; `required_before` : l'étape qui attend le paiement."""

    procedure: FileRefOut
    fee: FeeOut | None
    paid: int
    balance: int
    required_before: str | None
    payments: list[PaymentOut]


class FeeFileOut(BaseModel):
    """Un dossier de la commune avec sa redevance (recherche du régisseur)."""

    procedure_id: str
    reference: str | None
    kind: str
    nicad: str | None
    amount: int
    paid: int
    balance: int


class BordereauLineOut(BaseModel):
    """Une ligne du bordereau : un paiement ou une annulation de la période."""

    payment_id: str
    paid_on: date
    amount: int
    method: str
    file_number: str
    kind: str
    voucher: str | None
    cancellation: bool


class BordereauOut(BaseModel):
    """Le bordereau de versement d'une période : lignes et totaux par mode (annulations déduites)."""

    document: str
    number: str
    issued_at: str
    commune: dict[str, str]
    period: dict[str, date]
    lines: list[BordereauLineOut]
    totals: dict[str, int]
    total: int
    count: int
    cancellations: int
    currency: str


def _json(body: Any, *, status: int = 200, location: str | None = None) -> Response:
    headers = {"Location": location} if location else {}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


class ScheduleIn(BaseModel):
    """Un barème de redevances, tel que la délibération du conseil le fixe (montants en francs CFA entiers)."""

    commune_code: str = Field(max_length=100)
    procedure_kind: Kind
    valid_from: date
    valid_to: date | None = None
    rule: dict[str, Any] = Field(description=(
        'Règle : {"kind": "fixed", "amount": 25000} ; {"kind": "per_m2", "rate": 100, "minimum": 10000} ; '
        '{"kind": "per_ha_bands", "bands": [{"up_to_ha": 1, "amount": 50000}, {"up_to_ha": null, "per_ha": 40000}]}'))
    deliberation_source_id: str = Field(max_length=64, description="La délibération (source de type deliberation).")


class PaymentIn(BaseModel):
    """Un paiement enregistré par le régisseur."""

    procedure_id: str = Field(max_length=64)
    amount: int = Field(gt=0, le=10**12, description="Francs CFA entiers.")
    method: Literal["cash", "mobile_money"]
    paid_on: StepDate
    mobile_reference: str | None = Field(default=None, max_length=64,
                                         description="Référence de la transaction de l'opérateur (mobile money).")
    quittance_number: str | None = Field(default=None, max_length=64,
                                         description="Numéro de la quittance papier du Trésor (mode quittance_papier).")


class CancelIn(BaseModel):
    """L'annulation d'un paiement : un nouvel enregistrement, jamais une modification."""

    reason: str = Field(min_length=1, max_length=2000, description="Motif (donnée personnelle).")
    on: StepDate | None = None


@router.get("/fee-schedules", responses={200: {"model": list[ScheduleOut]}},
            summary="Barèmes des redevances d'une commune (publics)")
def list_schedules(session: SessionDep, commune_code: Annotated[str, Query(max_length=100)],
                   procedure_kind: Kind | None = None, on: date | None = None) -> Response:
    """Par type de procédure et par date ; `on` ne garde que les barèmes en vigueur ce jour-là."""
    return _json(schedules.list_(session, commune_code=commune_code, procedure_kind=procedure_kind, on=on))


@router.post("/fee-schedules", status_code=201, responses={201: {"model": ScheduleOut}},
             summary="Enregistrer un barème (délibération citée)")
def create_schedule(body: ScheduleIn, session: SessionDep, principal: Officer) -> Response:
    """Agent foncier ou administrateur de la commune ; ajout seulement (nouvelle délibération : nouveau barème)."""
    data = schedules.ScheduleInput(**body.model_dump())
    written = schedules.create(session, data=data, by=principal, author=principal.name)
    return _json(written, status=201, location=f"/fee-schedules?commune_code={body.commune_code}")


@router.get("/procedures/{procedure_id}/fees", responses={200: {"model": FileFeesOut}},
            summary="Redevance d'un dossier, paiements et reste à payer")
def procedure_fees(procedure_id: Id, session: SessionDep, principal: PrincipalDep) -> Response:
    """Régisseur ou lecteur de données personnelles de la commune ; auteurs et motifs aux seconds (journalisé)."""
    return _json(service.balance(session, procedure_id=procedure_id, reader=principal))


@router.get("/communes/{code}/fees", responses={200: {"model": list[FeeFileOut]}},
            summary="Dossiers d'une commune avec leur redevance (recherche du régisseur)")
def commune_fees(code: CommuneCode, session: SessionDep, principal: PrincipalDep,
                 number: Annotated[str | None, Query(max_length=100, description="Début du numéro du dossier")] = None,
                 unpaid: bool = False) -> Response:
    """Les dossiers les plus récents d'abord (50 au plus) ; `unpaid` ne garde que ceux qui doivent encore."""
    return _json(service.files(session, commune_code=code, number=number, unpaid=unpaid, reader=principal))


@router.post("/payments", status_code=201, responses={201: {"model": PaymentOut}},
             summary="Enregistrer un paiement (régisseur)")
def record_payment(body: PaymentIn, session: SessionDep, principal: Collector) -> Response:
    """Mode de reçu de la commune : quittance papier (numéro exigé) ou reçu SIFC numéroté sans trou."""
    data = service.PaymentInput(**body.model_dump())
    written = service.pay(session, data=data, by=principal, author=principal.name)
    if written["receipt_number"] is not None:
        written["receipt_url"] = f"/payments/{written['id']}/receipt.pdf"
    return _json(written, status=201, location=f"/procedures/{written['procedure_id']}/fees")


@router.post("/payments/{payment_id}/cancel", status_code=201, responses={201: {"model": PaymentOut}},
             summary="Annuler un paiement (nouvel enregistrement)")
def cancel_payment(payment_id: Id, body: CancelIn, session: SessionDep, principal: Collector) -> Response:
    """Le reçu garde son numéro ; l'annulation porte le montant opposé et son motif."""
    written = service.cancel(session, payment_id=payment_id, reason=body.reason, on=body.on, by=principal,
                             author=principal.name)
    return _json(written, status=201, location=f"/procedures/{written['procedure_id']}/fees")


@router.get("/payments/{payment_id}/receipt.pdf", response_class=Response, responses=PDF_RESPONSE,
            summary="Reçu d'un paiement (PDF scellé, vérifiable)")
def payment_receipt(payment_id: Id, request: Request, session: SessionDep, settings: SettingsDep,
                    principal: Collector) -> Response:
    """Chaque impression est gardée au registre des documents ; après la première, un duplicata."""
    pdf = receipts.receipt(session, payment_id=payment_id, reader=principal, lang=language(request),
                           seal_key=_seal_key(settings), verify_url=_verify_url(request), issued_by=principal.name)
    return _pdf(pdf, "recu.pdf")


@router.get("/communes/{code}/bordereau", response_class=Response,
            responses={200: {"model": BordereauOut, "description": "Les paiements de la période et les totaux par "
                             "mode ; avec format=pdf, le bordereau de versement (PDF scellé)",
                             "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}},
            summary="Bordereau de versement au receveur municipal")
def bordereau(code: CommuneCode, request: Request, session: SessionDep, settings: SettingsDep, principal: Collector,
              date_from: Annotated[date, Query(alias="from")], date_to: Annotated[date, Query(alias="to")],
              format: Literal["json", "pdf"] = "json") -> Response:  # noqa: A002
    """Paiements et annulations de la période (par date), totaux par mode ; `format=pdf` l'imprime, scellé."""
    if format == "pdf":
        pdf = receipts.bordereau_pdf(session, commune_code=code, date_from=date_from, date_to=date_to, by=principal,
                                     lang=language(request), seal_key=_seal_key(settings),
                                     verify_url=_verify_url(request), issued_by=principal.name)
        return _pdf(pdf, "bordereau-versement.pdf")
    return _json(receipts.bordereau_facts(session, commune_code=code, date_from=date_from, date_to=date_to,
                                          by=principal, lang=language(request)))
