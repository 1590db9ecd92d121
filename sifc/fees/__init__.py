"""Fees and receipts (ADR 0005 §7), and the two calls the procedures make.

Schedules per commune, the amount due at registration, payments by the régisseur, gap-free receipts,
cancellations, the bordereau de versement, and the step unpaid fees block.

``assess`` and ``require_paid`` are what the procedures call; the rest is in :mod:`sifc.fees.service`,
:mod:`sifc.fees.schedules` and :mod:`sifc.fees.receipts`.
"""

from sifc.fees.service import assess, require_paid

__all__ = ["assess", "require_paid"]
