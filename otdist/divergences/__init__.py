"""Divergences between histograms (discrete.py) and estimators of them from samples."""
