"""The registry of personal fields (loi 2008-12 sur la protection des données à caractère personnel).

Public representations (OGC collections, queryables, sortables, tiles, exports) carry public
fields only; the parameters that name fields (a CQL2 filter, ``sortby``, ``properties``, tile
attributes, export filters) refuse a personal field with a 400 whose message is the same
whatever the data holds, so that a filter cannot be used as an oracle on a hidden value.

Parcels hold no personal field among their public properties; the names below are refused:
the holders, identity numbers and contacts of the tenure records (parties, rights'
holders, procedures' applicants), and the provenance user names (who wrote a version, who
submitted an import), which only signed-in roles see in their scope, audited
(``data/policy.yaml``, ``personal``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sifc.auth.principal import Action, Principal, require
from sifc.errors import InvalidInput, NotFound
from sifc.text import search_form

# Served personal fields, per collection: names a representation may only carry for a principal
# allowed to read personal data in the commune (today: the provenance user names of parcels).
PERSONAL_FIELDS: dict[str, frozenset[str]] = {
    "parcels": frozenset({"author", "closed_by", "imported_by"}),
    # Tenure: a party is personal through and through; a right's holders, a request's
    # applicants and the authors of versions and steps are served in scope only.
    "parties": frozenset({"name", "given_names", "id_number", "contact", "members", "sex", "author", "closed_by"}),
    "rights": frozenset({"holders", "author", "closed_by"}),  # and free text, which no public parameter names
    "procedures": frozenset({"applicants", "author", "created_by"}),
    "bornes": frozenset({"author", "closed_by"}),  # borne_version: never served in step with the public points
    "localites": frozenset({"author", "closed_by"}),  # localite_version: the public points carry neither
    # council sessions: who planned them, who put an item on the agenda, the attendees (names, parties)
    "sessions": frozenset({"created_by", "added_by", "name", "party_id"}),
}

# Officers' free text, per collection: the motives, descriptions and observations land officers write
# ("demande de Awa Diop, CNI …, tél …"). Whatever it says, it is served like the personal fields, to a
# principal allowed to read personal data in the commune only, never in a public answer, tile or export.
# Every free-text column of the register is here (a test crawls the public routes against this list):
FREE_TEXT_FIELDS: dict[str, frozenset[str]] = {
    "parcels": frozenset({"reason", "close_reason"}),  # parcel_version
    "parties": frozenset({"reason", "close_reason"}),  # party_version
    "rights": frozenset({"description", "reason", "close_reason"}),  # rrr_version
    "procedures": frozenset({"purpose"}),  # tenure_procedure
    "procedure_steps": frozenset({"reason", "details"}),  # procedure_step (details: observations)
    "sources": frozenset({"description"}),  # source_document
    "source_files": frozenset({"file_name"}),  # source_file: a scan's name may be its holder's ("CNI Awa Diop.pdf")
    "mutations": frozenset({"reason"}),  # parcel_mutation (its lineage)
    "bornes": frozenset({"reason", "close_reason", "source"}),  # borne_version (source: a plan's or file's name)
    "localites": frozenset({"reason", "close_reason"}),  # localite_version
    "payments": frozenset({"reason"}),  # payment (why it was cancelled)
    "disputes": frozenset({"description"}),  # dispute (the grounds)
    "dispute_steps": frozenset({"note", "outcome"}),  # dispute_step
    "session_items": frozenset({"reason"}),  # session_item (the motive of a refusal or a deferral)
}

# Names refused in every public parameter, whatever the collection (compared case-, accent- and
# separator-insensitively): parties and their identifiers, contacts, and provenance user names.
PROTECTED_NAMES = frozenset(search_form(name) for name in (
    "owner", "owners", "holder", "holders", "proprietaire", "proprietaires", "titulaire", "titulaires",
    "nom", "prenom", "prenoms", "surname", "given_name", "first_name", "last_name", "full_name",
    "cni", "nin", "id_number", "numero_cni", "passport", "passeport",
    "telephone", "phone", "email", "courriel", "adresse", "address", "contact",
    "sex", "sexe", "gender", "genre",  # a person's sex (party_version.sex): aggregated indicators only
    "party", "parties", "partie", "beneficiaire", "given_names", "members", "membres", "applicants", "demandeur",
    "demandeurs", "ayants_droit", "heritiers", "party_id",
    "created_by", "author", "closed_by", "imported_by", "submitted_by", "user", "username", "auteur",
    # The served personal fields of the collections public parameters can name (OGC, tiles, exports);
    # a party's "name" is not refused there: territories have public names.
    *PERSONAL_FIELDS["parcels"], *FREE_TEXT_FIELDS["parcels"],
))


class PersonalFieldRefused(InvalidInput):
    """A parameter named a personal field: 400 everywhere (a bad request, whatever the data)."""

    status = 400
    key = "personal.refused"


def is_personal(name: str) -> bool:
    """Whether ``name`` (a property named by a client) designates personal data."""
    folded = search_form(name.strip().lstrip("+-"))
    return folded in PROTECTED_NAMES or folded.replace(" ", "_") in PROTECTED_NAMES


def refuse(names: Iterable[str]) -> None:
    """Refuse (400) a request naming a personal field; the message names the parameter, never data."""
    for name in names:
        if isinstance(name, str) and is_personal(name):
            raise PersonalFieldRefused("personal.refused", name=name.strip()[:64])


def public(fields: Iterable[str]) -> list[str]:
    """``fields`` without the personal ones (for queryables, sortables and default properties)."""
    return [name for name in fields if not is_personal(name)]


# --- who may see personal data --------------------------------------------------------------------
# The services that return personal data decide with these and write the access log themselves
# (sifc.auth.audit), so that every caller (the API, the CLI, a worker, a sync job) is checked and
# logged alike.

def may_reveal(principal: Principal, communes: Collection[str]) -> bool:
    """Whether ``principal`` sees the personal fields of a record of ``communes`` (all of them in scope).

    A record of no known commune (an unknown parcel) reveals nothing.
    """
    return (principal.authenticated and bool(communes)
            and all(principal.may(Action.READ_PERSONAL, code) for code in communes))


def require_reader(principal: Principal, commune: str | None, missing: NotFound) -> str:
    """``commune``, once ``principal`` may read personal data there; for records that are personal through and through.

    Refused in the order a client can tell apart: no right to read personal data (401, 403), no
    such record (``missing``, 404), a commune out of scope (403).
    """
    require(principal, Action.READ_PERSONAL)
    if commune is None:
        raise missing
    require(principal, Action.READ_PERSONAL, communes=[commune])
    return commune
