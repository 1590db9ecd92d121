"""JSON answers about field packages: the record :mod:`sifc.field.packages` keeps of each package.

The holder's name, the purpose and the reasons are shown to those doing field work in the
package's commune (the services check it); the holders' names themselves are only in the file.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.schemas.records import Open


class FieldPackageLinks(BaseModel):
    self: str
    download: str | None = Field(default=None, description="Le zip du dossier (application/zip), tant qu'il existe.")


class FieldPackageOut(Open):
    """A field package: where, to whom, until when, in what state, and its file."""

    id: str
    commune_code: str
    selection: dict[str, Any] = Field(description="La zone demandée : commune, section, bbox ou polygone.")
    bbox: list[float] = Field(description="L'emprise de la zone, en WGS 84 (ouest, sud, est, nord).")
    issued_to: str = Field(description="Le compte qui détient le dossier (seul il peut le retourner).")
    issued_by: str
    issued_at: str
    expires_at: str
    purpose: str | None = Field(default=None, description="Motif, obligatoire avec les titulaires.")
    includes_holders: bool
    status: str = Field(description="open, returned, expired ou lost.")
    format: int
    item_count: int = Field(description="Parcelles remises.")
    zip_bytes: int | None = None
    zip_sha256: str | None = None
    returned_at: str | None = None
    closed_at: str | None = None
    closed_by: str | None = None
    close_reason: str | None = None
    links: FieldPackageLinks


class FieldPackagesOut(BaseModel):
    packages: list[FieldPackageOut]
    limit: int
    offset: int
