"""The links of OGC API - Features items: a page's envelope (``self``, ``next``, ``prev``) and a feature's.

PostGIS writes the features; these functions wrap them, untouched, in the envelope the standard
asks for (Part 1, /req/core/fc-links, /req/core/f-links). The ``next`` link exists when a further
feature does: the page's query reads one more row than it shows (:func:`sifc.ogc.items_page`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson

from sifc.ogc import ItemsPage


def collection_url(base: str, collection_id: str) -> str:
    """The URL of a collection."""
    return f"{base}/ogc/collections/{collection_id}"


def page_body(page: ItemsPage, row: tuple[Any, ...], matched: int | None, *, base: str,
              query: dict[str, str]) -> bytes:
    """The FeatureCollection: the envelope (links, counts) around the features PostGIS wrote, untouched.

    ``row`` is the page's features row (rows fetched, the features' JSON array as text); ``query``
    the request's query parameters, kept in the paging links (``limit`` and ``offset`` replaced).
    """
    fetched, features = int(row[0]), str(row[1])
    url = f"{collection_url(base, page.collection_id)}/items"
    envelope: dict[str, Any] = {"type": "FeatureCollection", "numberReturned": min(fetched, page.limit)}
    if matched is not None:
        envelope["numberMatched"] = matched
    links = [{"href": _href(url, query, page.limit, page.offset), "rel": "self", "type": "application/geo+json"}]
    if fetched > page.limit:
        links.append({"href": _href(url, query, page.limit, page.offset + page.limit), "rel": "next",
                      "type": "application/geo+json"})
    if page.offset > 0:
        links.append({"href": _href(url, query, page.limit, max(0, page.offset - page.limit)),
                      "rel": "prev", "type": "application/geo+json"})
    envelope["links"] = links
    return b"".join((orjson.dumps(envelope)[:-1], b',"features":', features.encode(), b"}"))


def _href(url: str, query: dict[str, str], limit: int, offset: int) -> str:
    kept = {k: v for k, v in query.items() if k not in ("limit", "offset")}
    return f"{url}?{urlencode({**kept, 'limit': limit, 'offset': offset})}"


def feature_body(feature: str, *, base: str, collection_id: str, feature_id: str) -> bytes:
    """One feature (GeoJSON text from PostGIS) with its ``self`` and ``collection`` links."""
    url = collection_url(base, collection_id)
    links = [{"href": f"{url}/items/{feature_id}", "rel": "self", "type": "application/geo+json"},
             {"href": url, "rel": "collection", "type": "application/json"}]
    return feature[:-1].encode() + b',"links":' + orjson.dumps(links) + b"}"
