"""Re-importing a corrected file: parcels matched by NICAD, else source identifier, else geometry;
new versions for the changed ones only."""

from shapely.geometry import box
from sqlalchemy import text

from sifc.imports.parcels import ParcelImportOptions, import_parcels
from tests.integration.fixtures import bargny_origin, square, write


def _current(db):
    rows = db.execute(text("""
        SELECT parcel_id, version, nicad, nicad_status, source_id, land_use, batch_id, round(area_m2) AS area
        FROM parcel ORDER BY source_id NULLS LAST, area_m2""")).mappings().all()
    return [dict(r) for r in rows]


def _first_file(db, tmp_path):
    x, y = bargny_origin(db)
    rows = [
        {"NICAD": "0104040100011", "ID": "A", "USAGE": "habitation", "geometry": square(x, y)},
        {"NICAD": "0104040100012", "ID": "B", "USAGE": "habitation", "geometry": square(x + 30, y)},
        {"NICAD": None, "ID": None, "USAGE": "commerce", "geometry": square(x + 60, y)},
        {"NICAD": "0104040100014", "ID": "D", "USAGE": "habitation", "geometry": square(x + 90, y)},
    ]
    return x, y, write(tmp_path, rows, name="levé.gpkg")


def test_corrected_file_writes_new_versions_of_changed_parcels_only(db, tmp_path):
    x, y, first = _first_file(db, tmp_path)
    one = import_parcels(db, first, ParcelImportOptions(author="test"))
    assert one.changes == {"new": 4}
    before = {r["source_id"] or "#3": r for r in _current(db)}

    corrected = write(tmp_path, [
        # same NICAD, same shape, another use: new version, NICAD kept
        {"NICAD": "0104040100011", "ID": "A", "USAGE": "commerce", "geometry": square(x, y)},
        # no NICAD in the file, found by its identifier; its shape moved by 2 m: NICAD to be reassigned
        {"NICAD": None, "ID": "B", "USAGE": "habitation", "geometry": box(x + 30, y, x + 52, y + 20)},
        # no identifier at all: found by its geometry, nothing changed
        {"NICAD": None, "ID": None, "USAGE": "commerce", "geometry": square(x + 60, y)},
        # same NICAD but a new shape and the file gives a new NICAD: the new one is assigned
        {"NICAD": "0104040100024", "ID": "D", "USAGE": "habitation", "geometry": box(x + 90, y, x + 110, y + 25)},
        # a parcel the first file did not have
        {"NICAD": "0104040100015", "ID": "E", "USAGE": "habitation", "geometry": square(x + 120, y)},
    ], name="levé_corrigé.gpkg")
    two = import_parcels(db, corrected, ParcelImportOptions(author="test"))

    assert two.rejected == 0
    assert two.changes == {"new": 1, "changed": 3, "unchanged": 1}
    assert two.matched_by == {"geometry": 1, "nicad": 1, "source_id": 2}
    changed = {i["source_id"]: i for i in two.issues if i.get("change") == "changed"}
    assert changed["A"]["changed_fields"] == ["land_use"] and changed["A"]["matched_by"] == "nicad"
    assert changed["B"]["changed_fields"] == ["geometry"] and changed["B"]["matched_by"] == "source_id"
    assert sorted(changed["D"]["changed_fields"]) == ["geometry", "nicad"]

    after = {r["source_id"] or "#3": r for r in _current(db)}
    assert len(after) == 5
    for key in ("A", "B", "D"):
        assert after[key]["parcel_id"] == before[key]["parcel_id"] and after[key]["version"] == 2
        assert str(after[key]["batch_id"]) == two.batch_id
    assert after["#3"] == before["#3"]  # unchanged: same version, same batch
    assert (after["A"]["nicad"], after["A"]["nicad_status"], after["A"]["land_use"]) == (
        "0104040100011", "attribue", "commerce")
    assert (after["B"]["nicad"], after["B"]["nicad_status"], after["B"]["area"]) == (None, "a_reattribuer", 440)
    assert (after["D"]["nicad"], after["D"]["nicad_status"]) == ("0104040100024", "attribue")
    assert after["E"]["version"] == 1

    # The replaced versions are closed, with their content intact (the old NICAD stays on the old version).
    history = db.execute(text("""
        SELECT nicad, valid_to IS NOT NULL AS closed, close_reason FROM parcel_version
        WHERE parcel_id = :id ORDER BY version"""), {"id": before["B"]["parcel_id"]}).all()
    assert [(h.nicad, h.closed) for h in history] == [("0104040100012", True), (None, False)]
    assert "levé_corrigé.gpkg" in history[0].close_reason


def test_same_nicad_with_a_changed_shape_is_to_be_reassigned(db, tmp_path):
    x, y, first = _first_file(db, tmp_path)
    import_parcels(db, first, ParcelImportOptions(author="test"))
    moved = write(tmp_path, [{"NICAD": "0104040100011", "ID": "A", "USAGE": "habitation",
                              "geometry": box(x, y, x + 20, y + 21)}], name="moved.gpkg")
    report = import_parcels(db, moved, ParcelImportOptions(author="test"))
    assert report.changes == {"changed": 1}
    row = db.execute(text("SELECT nicad, nicad_status, version FROM parcel WHERE source_id = 'A'")).one()
    assert tuple(row) == (None, "a_reattribuer", 2)


def test_unchanged_file_under_another_name_changes_nothing(db, tmp_path):
    x, y, first = _first_file(db, tmp_path)
    import_parcels(db, first, ParcelImportOptions(author="test"))
    before = _current(db)
    copy = tmp_path / "copie.gpkg"
    # Same parcels written again: another file (another hash), the same content.
    (tmp_path / "again").mkdir()
    _, _, again = _first_file(db, tmp_path / "again")
    again.rename(copy)
    report = import_parcels(db, copy, ParcelImportOptions(author="test"))
    assert report.already_imported is None
    assert report.changes == {"unchanged": 4} and report.accepted == 4
    assert _current(db) == before
    assert report.communes == {}


def test_nicad_of_a_parcel_elsewhere_is_refused_and_overlaps_still_count(db, tmp_path):
    x, y, first = _first_file(db, tmp_path)
    import_parcels(db, first, ParcelImportOptions(author="test"))
    path = write(tmp_path, [
        {"NICAD": "0104040100011", "ID": "Z", "USAGE": "habitation", "geometry": square(x + 400, y)},
        {"NICAD": None, "ID": None, "USAGE": "habitation", "geometry": square(x + 70, y + 5)},
    ], name="other.gpkg")
    report = import_parcels(db, path, ParcelImportOptions(author="test", dry_run=True))
    assert report.rejected_by_reason == {"nicad_taken": 1, "overlap_existing": 1}
