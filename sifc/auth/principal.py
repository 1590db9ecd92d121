"""Who is calling, what each role may do, and where.

Roles: ``public`` (anonymous), ``lecteur`` (reads, personal data included, in its
scope), ``agent_foncier`` (parcels, tenure and field packages in its scope), ``analyste_sig`` (imports and field
packages in its scope), ``administrateur`` (accounts, territories, everything in its scope), ``regisseur``
(the régisseur de recettes: records the fees paid on the files of its scope and prints receipts and the bordereau
de versement; reads the public facts only — no personal data, hence no ``READ_PERSONAL``). A scope is a set of
``(level, code)`` rows expanded to commune codes by the database (``scope_communes``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal

from sifc.errors import Forbidden, InvalidInput, Unauthorized
from sifc.models import ROLES, SCOPE_LEVELS

Role = Literal["public", "lecteur", "agent_foncier", "analyste_sig", "administrateur", "regisseur"]
ALL_ROLES: tuple[str, ...] = ("public", *ROLES)

# Level names accepted on the command line, French or English, with or without accents.
LEVEL_ALIASES = {
    "country": "country", "pays": "country", "national": "country",
    "pole": "pole", "pôle": "pole",
    "region": "region", "région": "region",
    "department": "department", "departement": "department", "département": "department",
    "commune": "commune",
}


class Action(StrEnum):
    """What a request does, as far as permissions go."""

    READ_PUBLIC = "read_public"  # territories, parcels without personal fields, OGC, tiles, statistics
    EXPORT_PUBLIC = "export_public"  # exports of public fields (rate limited)
    READ_PERSONAL = "read_personal"  # personal fields (loi 2008-12), in scope, audited
    WRITE_PARCELS = "write_parcels"  # create, update, retire parcels, in scope
    WRITE_TENURE = "write_tenure"  # rights, procedures, mutations (tenure issues), in scope
    RUN_IMPORTS = "run_imports"  # upload, follow and retry imports, in scope
    FIELD_WORK = "field_work"  # check out field packages and return them, in scope
    MANAGE_TERRITORIES = "manage_territories"
    MANAGE_ACCOUNTS = "manage_accounts"  # users, API keys, subject access requests, the audit log
    COLLECT_FEES = "collect_fees"  # fees of files, payments, cancellations, receipts, bordereau, in scope


SCOPED_ACTIONS = frozenset({Action.READ_PERSONAL, Action.WRITE_PARCELS, Action.WRITE_TENURE, Action.RUN_IMPORTS,
                            Action.FIELD_WORK, Action.COLLECT_FEES})

_PUBLIC = frozenset({Action.READ_PUBLIC, Action.EXPORT_PUBLIC})
_LECTEUR = _PUBLIC | {Action.READ_PERSONAL}
ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    "public": _PUBLIC,
    "lecteur": _LECTEUR,
    "agent_foncier": _LECTEUR | {Action.WRITE_PARCELS, Action.WRITE_TENURE, Action.FIELD_WORK},
    "analyste_sig": _LECTEUR | {Action.RUN_IMPORTS, Action.FIELD_WORK},
    "administrateur": frozenset(Action),
    # Receipts name the file, the parcel and the amount, never a person: no READ_PERSONAL (ADR 0005 §7).
    "regisseur": _PUBLIC | {Action.COLLECT_FEES},
}


@dataclass(frozen=True, order=True)
class ScopeEntry:
    """One row of a scope: a unit of the territorial hierarchy (``country:SN`` is the whole country)."""

    level: str
    code: str

    def __str__(self) -> str:
        return f"{self.level}:{self.code}"

    @classmethod
    def parse(cls, text: str) -> ScopeEntry:
        """Read ``level:code`` (``commune:SN0104-bargny``, ``département:SN0104``, ``pays:SN``)."""
        level, sep, code = text.strip().partition(":")
        canonical = LEVEL_ALIASES.get(level.strip().lower())
        if not sep or canonical is None or not code.strip():
            raise InvalidInput("auth.bad_scope", scope=text, levels=", ".join(SCOPE_LEVELS))
        code = code.strip()
        if canonical == "country":
            code = "SN"
        elif canonical in ("region", "department"):
            code = code.upper()
        elif canonical == "pole":
            code = code.upper()
        return cls(canonical, code)


def check_role(role: str, *, allow_public: bool = False) -> str:
    """``role`` if it is a role an account or key can hold."""
    known = ALL_ROLES if allow_public else ROLES
    if role not in known:
        raise InvalidInput("auth.bad_role", role=role, roles=", ".join(known))
    return role


@dataclass(frozen=True)
class Channel:
    """How a caller came in, as the access log names it.

    ``method`` is an HTTP method, ``CLI`` (a ``sifc`` command) or ``JOB`` (a worker); ``endpoint``
    is the route template (``/parcels/{parcel_id}``), the command (``sifc parcels lineage``) or the
    job's kind, never a concrete path, so that no identifier lands twice in the log.
    """

    method: str
    endpoint: str


@dataclass(frozen=True)
class Principal:
    """The caller of one request: anonymous, a signed-in user or a municipal app's API key.

    ``communes`` is the scope expanded to commune codes; ``everywhere`` stands for a national
    scope, so that it needs no set of every commune.
    """

    kind: Literal["anonymous", "user", "api_key", "cli"]  # cli: an operator on the server (sifc admin …)
    role: str
    id: int | None = None
    name: str = ""
    scope: tuple[ScopeEntry, ...] = ()
    communes: frozenset[str] = field(default_factory=frozenset)
    everywhere: bool = False
    token_id: str | None = None
    channel: Channel | None = None  # set once where the call enters: the API's dependency, the CLI, a job

    def via(self, method: str, endpoint: str) -> Principal:
        """The same principal, come in through ``method`` and ``endpoint`` (what the access log records)."""
        return replace(self, channel=Channel(method.upper(), endpoint))

    @property
    def authenticated(self) -> bool:
        """Whether credentials were presented and accepted."""
        return self.kind != "anonymous"

    def can(self, action: Action) -> bool:
        """Whether the role allows ``action`` (somewhere in the scope, for scoped actions)."""
        return action in ROLE_ACTIONS.get(self.role, frozenset())

    def covers(self, commune_code: str) -> bool:
        """Whether ``commune_code`` lies in the scope."""
        return self.everywhere or commune_code in self.communes

    def may(self, action: Action, commune_code: str | None = None) -> bool:
        """``can`` and, for a scoped action on a known commune, ``covers``: a check that never raises."""
        if not self.can(action):
            return False
        return commune_code is None or action not in SCOPED_ACTIONS or self.covers(commune_code)


ANONYMOUS = Principal(kind="anonymous", role="public")


def require(principal: Principal, action: Action, *, communes: Iterable[str | None] = ()) -> None:
    """Refuse the request unless ``principal`` may do ``action`` on every one of ``communes``.

    An anonymous caller is asked to authenticate (401); an authenticated one is refused (403),
    naming the role or the communes out of scope. A write touching several parcels passes every
    parcel's commune: one commune outside the scope refuses the whole request.
    """
    if not principal.can(action):
        if not principal.authenticated:
            raise Unauthorized("auth.required")
        raise Forbidden("auth.forbidden", role=principal.role, action=action.value)
    if action in SCOPED_ACTIONS:
        outside = sorted({code for code in communes if code is not None and not principal.covers(code)})
        if outside:
            raise Forbidden("auth.out_of_scope", communes=", ".join(outside))
