"""crm_lib: the helper library of the CRM analytics workbench.

Modules are named after what they compute:

- :mod:`crm_lib.context`: the run context (:func:`session`): data, summary and models
  computed once per run and shared by every report;
- :mod:`crm_lib.data`: load and validate a transaction log (the window travels with it);
- :mod:`crm_lib.summary`: per-customer frequency / recency / T / monetary value and the
  calibration-holdout split;
- :mod:`crm_lib.kpi`: counts, rates and cohort tables;
- :mod:`crm_lib.segments`, :mod:`crm_lib.export`: RFM segments, portfolio, action files;
- :mod:`crm_lib.paths`: the one rule for the project folder and the one for the private folder;
- :mod:`crm_lib.privacy`: pseudonymous customer ids for reports;
- :mod:`crm_lib.survival`, :mod:`crm_lib.retention`: time to churn, Kaplan-Meier, Cox, sBG cohorts;
- :mod:`crm_lib.models`: one maximum-likelihood base and one file per model family
  (BG/NBD, MBG/NBD, Pareto/NBD, BG/BB, Gamma-Gamma, sBG);
- :mod:`crm_lib.clv`, :mod:`crm_lib.simulate`: holdout validation, CLV, equity, P(alive);
- :mod:`crm_lib.format`, :mod:`crm_lib.columns`: numbers for people; the one column check;
- :mod:`crm_lib.loyalty`: loyalty-versus-profit hypotheses;
- :mod:`crm_lib.plots`: figures only, no model fitting;
- :mod:`crm_lib.report`: Papermill execution, nbconvert rendering, index and manifest;
- :mod:`crm_lib.datasets`: the data sets embedded in installed packages.
"""
from crm_lib.exceptions import (
    CRMWorkbenchError,
    DataValidationError,
    ModelFitError,
    ParamsError,
)

__version__ = "0.1.0"

__all__ = [
    "CRMWorkbenchError",
    "DataValidationError",
    "ModelFitError",
    "ParamsError",
    "__version__",
    "session",
]


def __getattr__(name: str):
    # crm_lib.session without importing pandas and the models at ``import crm_lib``.
    if name == "session":
        from crm_lib.context import session

        return session
    raise AttributeError(f"module 'crm_lib' has no attribute {name!r}")
