"""The commission domaniale at full scale (ADR 0005).

Council sessions, campaigns with public display and claims, and the disputes register, on the tenure model
(parties, rights, sources, procedures).
"""
