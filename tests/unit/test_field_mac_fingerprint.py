"""The package MAC (sifc.field.mac) and the parcel fingerprint (sifc.field.fingerprint), without a database.

A MAC made with the current seal key verifies, and still does after ``sifc keys rotate --kind seal``;
any changed claim, an unknown key id or a forged MAC does not. A fingerprint ignores what QGIS or a
re-save changes without meaning to (ring start and orientation, polygon vs multipolygon, sub-millimetre
noise, trimmed text, an area's last decimals) and sees what an officer changes (a 1 cm move, a land use).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon

from sifc.field import fingerprint, mac
from sifc.keyring import Keyring

ISSUED = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
CLAIMS = mac.claims(package_id="3f1c2d4e-0000-4000-8000-000000000001", commune_code="SN0104-bargny",
                    issued_to="agent.bargny", issued_at=ISSUED, expires_at=ISSUED + timedelta(days=30),
                    package_format=1)
SQUARE = Polygon([(300000, 1620000), (300020, 1620000), (300020, 1620025), (300000, 1620025)])
VALUES = {"land_use": "habitation", "tenure_regime": "domaine national", "declared_area_m2": 500.0}


@pytest.fixture
def keys(tmp_path) -> Keyring:
    ring = Keyring(tmp_path / "signing-keys.json")
    ring.ensure()
    return ring


def test_a_mac_verifies_and_a_changed_claim_does_not(keys):
    signed, kid = mac.sign(keys, CLAIMS)
    assert len(signed) == 64 and int(signed, 16) >= 0 and kid == keys.current("seal").kid
    assert mac.verify(keys, dict(CLAIMS), kid=kid, mac=signed)
    for name, value in (("id", "3f1c2d4e-0000-4000-8000-000000000002"), ("commune", "SN1301-sandiara"),
                        ("issued_to", "agent.autre"), ("expires_at", ISSUED + timedelta(days=90)), ("format", 2)):
        assert not mac.verify(keys, {**CLAIMS, name: value}, kid=kid, mac=signed), name
    assert not mac.verify(keys, CLAIMS, kid=kid, mac="0" * 64)
    assert not mac.verify(keys, CLAIMS, kid="seal-unknown", mac=signed)


def test_a_rotated_seal_key_still_verifies_old_packages(keys, tmp_path):
    signed, kid = mac.sign(keys, CLAIMS)
    keys.rotate("seal")
    assert keys.current("seal").kid != kid
    assert mac.verify(keys, CLAIMS, kid=kid, mac=signed)
    again = Keyring(tmp_path / "signing-keys.json")  # another process reading the same file
    assert mac.verify(again, CLAIMS, kid=kid, mac=signed)
    newer, newer_kid = mac.sign(keys, CLAIMS)
    assert newer_kid != kid and newer != signed and mac.verify(keys, CLAIMS, kid=newer_kid, mac=newer)


def test_another_keyring_does_not_verify(keys, tmp_path):
    signed, kid = mac.sign(keys, CLAIMS)
    other = Keyring(tmp_path / "other.json")
    other.ensure()
    assert not mac.verify(other, CLAIMS, kid=other.current("seal").kid, mac=signed)


def _reordered(polygon: Polygon) -> Polygon:
    ring = list(polygon.exterior.coords)[:-1]
    ring = ring[2:] + ring[:2]
    return Polygon(ring[::-1])


@pytest.mark.parametrize("same", [
    pytest.param(lambda p: _reordered(p), id="ring-start-and-orientation"),
    pytest.param(lambda p: MultiPolygon([p]), id="polygon-vs-multipolygon"),
    pytest.param(lambda p: shapely.affinity.translate(p, 0.0002, -0.0003), id="sub-millimetre-noise"),
    pytest.param(lambda p: shapely.to_wkb(p), id="wkb"),
])
def test_a_fingerprint_ignores_what_a_re_save_changes(same):
    assert fingerprint.of(same(SQUARE), VALUES) == fingerprint.of(SQUARE, VALUES)


def test_a_fingerprint_ignores_trimmed_text_and_area_decimals():
    noisy = {"land_use": " habitation ", "tenure_regime": "domaine national", "declared_area_m2": "500.0001",
             "remark": "vu", "photo": "DCIM/a.jpg"}
    assert fingerprint.of(SQUARE, noisy) == fingerprint.of(SQUARE, VALUES)
    assert fingerprint.of(SQUARE, {**VALUES, "land_use": ""}) == fingerprint.of(SQUARE, {**VALUES, "land_use": None})


@pytest.mark.parametrize("changed", [
    pytest.param(lambda p, v: (shapely.affinity.translate(p, 0.01, 0), v), id="moved-1-cm"),
    pytest.param(lambda p, v: (p, {**v, "land_use": "commerce"}), id="land-use"),
    pytest.param(lambda p, v: (p, {**v, "tenure_regime": "bail"}), id="tenure-regime"),
    pytest.param(lambda p, v: (p, {**v, "declared_area_m2": 501.0}), id="declared-area"),
    pytest.param(lambda p, v: (None, v), id="no-geometry"),
])
def test_a_fingerprint_sees_what_an_officer_changes(changed):
    geometry, values = changed(SQUARE, VALUES)
    assert fingerprint.of(geometry, values) != fingerprint.of(SQUARE, VALUES)


def test_a_shape_fingerprint_tells_a_move_from_an_attribute_change():
    assert fingerprint.geometry_of(MultiPolygon([_reordered(SQUARE)])) == fingerprint.geometry_of(SQUARE)
    assert fingerprint.geometry_of(shapely.affinity.translate(SQUARE, 0.01, 0)) != fingerprint.geometry_of(SQUARE)


def test_many_fingerprints_at_once_are_each_parcels_own():
    """A package fingerprints a batch at once, a return one row at a time: both must agree, in order."""
    moved = shapely.affinity.translate(SQUARE, 0.01, 0)
    geometries = [shapely.to_wkb(SQUARE), None, MultiPolygon([_reordered(SQUARE)]), moved, shapely.to_wkb(moved)]
    values = [VALUES, VALUES, {**VALUES, "land_use": " habitation "}, VALUES, {**VALUES, "land_use": "commerce"}]
    prints = fingerprint.of_many(geometries, values)
    assert prints == [fingerprint.of(g, v) for g, v in zip(geometries, values, strict=True)]
    assert prints[0] == prints[2] and len(set(prints)) == 4
    assert fingerprint.of_many([], []) == []
    with pytest.raises(ValueError):
        fingerprint.of_many([SQUARE], [])


@pytest.mark.parametrize("odd", [
    pytest.param(Polygon([(0, 0), (10, 10), (10, 0), (0, 10)]), id="bow-tie"),
    pytest.param(Polygon([(0, 0), (0.0004, 0), (0.0004, 0.0004), (0, 0.0004)]), id="under-a-millimetre"),
    pytest.param(Polygon(), id="empty"),
])
def test_an_invalid_or_degenerate_shape_still_has_a_stable_fingerprint(odd):
    """Only snapped, never repaired: what a return cannot accept it must still be able to compare."""
    assert fingerprint.of(odd, VALUES) == fingerprint.of(shapely.to_wkb(odd), VALUES)
    assert fingerprint.of(odd, VALUES) != fingerprint.of(SQUARE, VALUES)


def test_the_mac_reads_the_same_instant_in_any_time_zone(tmp_path):
    from datetime import UTC, datetime, timedelta, timezone

    from sifc.field import mac
    from sifc.keyring import Keyring

    keys = Keyring(tmp_path / "keys.json")
    keys.ensure()
    issued = datetime(2026, 12, 5, 10, 0, 0, tzinfo=UTC)
    signed, kid = mac.sign(keys, mac.claims(package_id="p", commune_code="c", issued_to="u", issued_at=issued,
                                            expires_at=issued + timedelta(days=30), package_format=1))
    dakar_is_utc_but_paris_is_not = timezone(timedelta(hours=1))
    seen = mac.claims(package_id="p", commune_code="c", issued_to="u",
                      issued_at=issued.astimezone(dakar_is_utc_but_paris_is_not).replace(microsecond=0),
                      expires_at=issued + timedelta(days=30, microseconds=250), package_format=1)
    assert mac.verify(keys, seen, kid=kid, mac=signed)
