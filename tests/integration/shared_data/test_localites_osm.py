"""The OpenStreetMap localités of ``../shared/data`` (ADR 0005 §3): the pilots load as the repository's extract does."""

from sifc.localites import service
from tests.conftest import shared_path

BARGNY = "SN0104-bargny"


def test_the_national_extract_loads_the_pilots_as_the_repository_copy_does(db):
    path = shared_path("senegal", "localites_osm.gpkg")
    report = service.load_osm(db, path=path, communes=[BARGNY, "SN1301-sandiara", "SN1303-mont-rolland"],
                              by=None, author="tests")
    assert report["created"] == 14
    assert report["disagreements"] == []
