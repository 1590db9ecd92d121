"""The registry of personal fields: no public representation carries one, every public parameter refuses them."""

import pytest

from sifc import exports, ogc, personal, tiles
from sifc.errors import InvalidInput
from sifc.parcels import selection

REFUSED = ["owner", "Propriétaire", "NOM", "cni", "nin", "holder", "created_by", "author", "closed-by", "+author"]


def test_no_public_field_queryable_sortable_or_tile_attribute_is_personal():
    for collection in ogc.COLLECTIONS.values():
        for name in (*collection.fields, *collection.queryables, *collection.sortables):
            assert not personal.is_personal(name), (collection.id, name)
    for layer in tiles.LAYERS.values():
        assert not [name for name in layer.fields if personal.is_personal(name)], layer.id
    assert not [name for name in (*selection.FIELDS, *selection.QUERYABLES) if personal.is_personal(name)]
    assert not [column.name for column in exports.COLUMNS if personal.is_personal(column.name)]


@pytest.mark.parametrize("name", REFUSED)
def test_personal_names_are_refused_by_every_parameter(name):
    for call in (lambda: ogc.select_properties("parcels", name), lambda: ogc.parse_sortby("parcels", name),
                 lambda: ogc.property_filters("parcels", {name: "x"}), lambda: tiles.properties("parcels", name)):
        with pytest.raises(InvalidInput) as refused:
            call()
        assert refused.value.key == "personal.refused"


def test_public_names_are_not_personal():
    assert personal.public(["nicad", "name", "land_use", "author"]) == ["nicad", "name", "land_use"]
