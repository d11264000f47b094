"""Figures only: every function takes computed results (and an optional ``ax``), draws,
labels the axes with units and returns the ``Axes``. Nothing here fits a model.

One module per analysis (``overview``, ...); the one theme lives in :mod:`crm_lib.plots.theme`.
"""
from crm_lib.plots.theme import set_theme

__all__ = ["set_theme"]
