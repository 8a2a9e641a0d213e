"""Build time: photos/ + catalog.json → cleaned, described catalog → HNSW index and calibration (the assets)."""
