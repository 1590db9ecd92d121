"""Deadlines and public tracking of a file (ADR 0005 §8).

- :mod:`sifc.tracking.codes`: the tracking code printed on the récépissé (80 random bits, only its hash
  kept), issued at registration and reissued by a reprint, and the public answer to a file number and
  its code: steps and dates only.
- :mod:`sifc.tracking.recepisse`: the récépissé (PDF, sealed, in the register of issued documents).
- :mod:`sifc.tracking.deadlines`: due dates and overdue files, computed from the commune's
  ``target_days`` (and ``claim_days``) in force, never stored.
"""
