"""Printable documents, each with a verification code (:mod:`sifc.documents.verification`).

Fiche parcellaire, extrait de délibération, certificat d'affectation, registre foncier communal.
"""
