"""Field mapping: which source column feeds which parcel field.

Given as YAML (``parcel field: source column``) or guessed from common column names of
Senegalese survey files and of other cadastres (PROCASEF ``Num_parcel``, French
``contenance``, ``SUPERFICIE``, ``USAGE``, INSPIRE ``areaValue`` and ``localId`` …), and
from the columns of converted DXF drawings and tables of bornes (``numero``, ``nicad``,
``handle``), and from SIFC's own exports (``declared_area_m2``, ``source_id`` and the shapefile's
short names ``decl_area``, ``local_num``, ``tenure``; see :data:`sifc.exports.COLUMNS`).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from sifc.errors import ImportRejected

TARGETS = ("nicad", "section", "local_number", "declared_area", "land_use", "tenure_regime", "source_id")
# The presumed holder a systematic survey names for a parcel (ADR 0005 §5): read only for a campaign's
# import (``--campaign``), each becoming a party as an applicant is; never a parcel attribute.
HOLDER_TARGETS = ("holder_name", "holder_given_names", "holder_id_number", "holder_sex")
GUESSES: dict[str, tuple[str, ...]] = {
    "nicad": ("nicad", "num_nicad", "num_parcel", "num_parc", "numparcel", "num_parcelle", "nicad_parc"),
    "section": ("section", "sect", "num_section"),
    "local_number": ("numero", "num_lot", "lot", "num_local", "numero_lot", "local_number", "local_num",
                     "label"),
    # SIFC's own exports (declared_area_m2, shapefile decl_area) come before the computed area_m2 beside them.
    "declared_area": ("declared_area_m2", "decl_area", "superficie", "superf", "contenance", "surface", "sup_m2",
                      "area_m2", "declared_area", "surf_m2", "areavalue"),
    "land_use": ("usage", "land_use", "occupation", "vocation", "utilisation", "affectatio"),
    "tenure_regime": ("regime", "regime_fon", "regime_foncier", "statut_fon", "tenure", "tenure_regime"),
    "source_id": ("source_id", "src_id", "id", "identifiant", "objectid", "fid", "gid", "id_parcel",
                  "inspireid_localid", "localid", "handle"),
    # PROCASEF-like survey tables: the surveyed occupant's identity.
    "holder_name": ("nom", "nom_detenteur", "nom_occupant", "holder_name", "surname"),
    "holder_given_names": ("prenom", "prenoms", "prenom_detenteur", "holder_given_names", "given_names"),
    "holder_id_number": ("cni", "nin", "num_cni", "numero_cni", "holder_id_number", "id_number"),
    "holder_sex": ("sexe", "genre", "holder_sex", "sex"),
}


def read_mapping_file(path: Path) -> dict[str, str]:
    """Read a YAML mapping (parcel field → source column)."""
    if not path.is_file():
        raise ImportRejected("mapping.bad_file", path=str(path), reason="fichier introuvable")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ImportRejected("mapping.bad_file", path=str(path), reason=str(error).splitlines()[0]) from error
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ImportRejected("mapping.bad_file", path=str(path),
                             reason="attendu : un dictionnaire « champ: colonne »")
    unknown = sorted(set(data) - set(TARGETS) - set(HOLDER_TARGETS))
    if unknown:
        raise ImportRejected("mapping.unknown_target", fields=", ".join(unknown),
                             targets=", ".join((*TARGETS, *HOLDER_TARGETS)))
    return data


def resolve(columns: list[str], given: dict[str, str] | None, *, holders: bool = False) -> dict[str, str]:
    """Mapping for a file with ``columns``: the given one (checked), completed by guesses.

    ``holders``: a campaign's import, which also reads the presumed holder (:data:`HOLDER_TARGETS`);
    elsewhere naming a holder target is refused, so that no identity is read without a campaign.
    """
    given = given or {}
    named = sorted(set(given) & set(HOLDER_TARGETS))
    if named and not holders:
        raise ImportRejected("campaign.holder_targets", fields=", ".join(named))
    missing = sorted(v for v in given.values() if v not in columns)
    if missing:
        raise ImportRejected("mapping.missing_column", columns=", ".join(missing), fields=", ".join(columns))
    resolved = dict(given)
    lowered = {c.lower(): c for c in columns}
    used = set(resolved.values())
    for target in (*TARGETS, *(HOLDER_TARGETS if holders else ())):
        if target in resolved:
            continue
        for guess in GUESSES[target]:
            column = lowered.get(guess)
            if column and column not in used:
                resolved[target] = column
                used.add(column)
                break
    return resolved
