"""Tenure records on the LADM model (ISO 19152) in Senegalese terms.

Parties (``parties``), rights, restrictions and responsibilities with their holders (``rights``),
the sources they rest on (``sources``), the commission domaniale's procedure (``procedures``) and
the parcel's whole history (``history``). Every object is versioned or append-only; every write
is authorised (agent foncier or administrateur, in scope), checked against a version the client
read (``If-Match``) and written to the write audit (:mod:`sifc.journal`).
"""
