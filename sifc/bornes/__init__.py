"""Bornes: the boundary markers of the cadastre, as versioned points (migration 0013)."""
