"""Distances between measures (:mod:`.metrics`), rate fits (:mod:`.rates`) and the
theory-rate tables."""
