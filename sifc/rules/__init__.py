"""Dated, sourced configuration per commune (ADR 0005 §1): the values of law and practice, never code."""
