"""Analysis of trained models and results (used by tools/analysis)."""
