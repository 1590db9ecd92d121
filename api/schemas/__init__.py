"""The documented shapes of the service's answers, for the OpenAPI document only.

The routes keep answering the bytes PostGIS or ``orjson`` built (no answer is re-serialised through
these models); the models say what those bytes hold, so that clients can generate code and the
documentation shows what comes back. ``features`` holds the GeoJSON answers (geojson-pydantic's
Feature and FeatureCollection generics, their properties typed), ``records`` the JSON ones.
``figures`` (statistics, dashboards), ``tiles`` (layers, TileJSON) and ``ogc`` (landing page,
conformance, collections) document routes that return plain dicts: their return annotation
(``api.responses.documented_as``) points the document at the model and leaves the answer as it was.
"""
