"""The door of a field return: what an upload must be before a job is queued (no database)."""

from __future__ import annotations

import sqlite3
import zipfile
from contextlib import closing

import pytest

from sifc.errors import ImportRejected, TooLarge, UnsupportedFormat
from sifc.field.returns_file import gpkg_wkb, intake

LIMITS = {"max_bytes": 10 * 1024**2, "max_photos": 2, "max_photo_bytes": 1024}


@pytest.fixture
def gpkg(tmp_path):
    path = tmp_path / "data.gpkg"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (id integer)")
        conn.commit()
    return path


def _zip(tmp_path, members: dict[str, bytes]):
    target = tmp_path / "retour.zip"
    with zipfile.ZipFile(target, "w") as bundle:
        for name, content in members.items():
            bundle.writestr(name, content)
    return target


def _intake(path):
    return intake(path, size=path.stat().st_size, **LIMITS)


def test_a_bare_geopackage_and_a_package_folder_are_accepted(gpkg, tmp_path):
    assert _intake(gpkg).gpkg_member is None
    found = _intake(_zip(tmp_path, {"dossier/data.gpkg": gpkg.read_bytes(), "dossier/data.gpkg-wal": b"",
                                    "dossier/projet.qgs": b"<qgis/>", "dossier/DCIM/a.jpg": b"\xff\xd8\xff",
                                    "dossier/DCIM/sous/b.PNG": b"\x89PNG"}))
    assert found.gpkg_member == "dossier/data.gpkg" and found.sidecars == ["dossier/data.gpkg-wal"]
    assert sorted(found.photos) == ["DCIM/a.jpg", "DCIM/sous/b.PNG"]


@pytest.mark.parametrize("members, key", [
    ({"a.gpkg": b"x", "b.gpkg": b"y"}, "field.one_geopackage"),
    ({"notes.txt": b"x"}, "field.one_geopackage"),
    ({"data.gpkg": b"x", "DCIM/script.sh": b"#!"}, "field.unexpected_member"),
    ({"data.gpkg": b"x", "photo.jpg": b"\xff\xd8\xff"}, "field.unexpected_member"),
    ({"data.gpkg": b"x", "../../etc/cron.d/x": b"x"}, "import.zip_unsafe"),
    ({"data.gpkg": b"x", **{f"DCIM/{n}.jpg": b"\xff\xd8\xff" for n in range(3)}}, "field.too_many_photos"),
])
def test_zips_that_are_not_a_returned_package(tmp_path, members, key):
    with pytest.raises(ImportRejected) as refused:
        _intake(_zip(tmp_path, members))
    assert refused.value.key == key


def test_sizes_and_formats(gpkg, tmp_path):
    with pytest.raises(TooLarge) as big:
        intake(gpkg, size=LIMITS["max_bytes"] + 1, **{k: v for k, v in LIMITS.items() if k != "max_bytes"},
               max_bytes=LIMITS["max_bytes"])
    assert big.value.key == "field.return_too_large"
    with pytest.raises(TooLarge) as photo:
        _intake(_zip(tmp_path, {"data.gpkg": b"x", "DCIM/big.jpg": b"\xff" * 2048}))
    assert photo.value.key == "field.photo_too_large"
    fake = tmp_path / "faux.gpkg"
    fake.write_bytes(b"PK\x03\x04 not sqlite")
    with pytest.raises(ImportRejected) as not_sqlite:
        _intake(fake)
    assert not_sqlite.value.key == "field.not_geopackage"
    other = tmp_path / "levé.shp"
    other.write_bytes(b"x")
    with pytest.raises(UnsupportedFormat):
        _intake(other)


def test_geopackage_blobs():
    import struct

    import shapely

    point = shapely.Point(1, 2)
    plain = b"GP\x00\x01" + struct.pack("<i", 32628) + shapely.to_wkb(point)
    enveloped = b"GP\x00\x03" + struct.pack("<i", 32628) + struct.pack("<4d", 1, 1, 2, 2) + shapely.to_wkb(point)
    assert shapely.from_wkb(gpkg_wkb(plain)).equals(point)
    assert shapely.from_wkb(gpkg_wkb(enveloped)).equals(point)
    assert gpkg_wkb(b"GP\x00\x11" + struct.pack("<i", 32628) + shapely.to_wkb(point)) is None  # the empty flag
    assert gpkg_wkb(None) is None and gpkg_wkb(b"xx") is None
