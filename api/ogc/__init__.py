"""OGC API - Features, the protocol side: documents and links (:mod:`.documents`), paging (:mod:`.paging`),
the OpenAPI 3.0 definition (:mod:`.openapi`). The collections and the queries that select their
features are the domain's (:mod:`sifc.ogc`).
"""
