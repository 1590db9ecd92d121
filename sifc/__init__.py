"""SIFC — Système d'Information Foncière Communale (E-Territoire, Sénégal)."""

__version__ = "0.7.1"
