"""Localités (villages, quartiers) of the communes, and the gender indicators of tenure (ADR 0005 §3)."""
