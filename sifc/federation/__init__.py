"""Federation of SIFC nodes: one node per pole, a national node, on PostgreSQL logical replication.

Design: docs/adr/0004-pole-federation.md. ``registry`` lists every table with its owner (pole,
national, node-local), its commune column and its personal columns; the node operations build
publications and subscriptions from it.
"""
