"""Figures and markdown reports from result files (never from a running solver)."""
