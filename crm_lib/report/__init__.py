"""From a params file to a folder of HTML reports.

- :mod:`~crm_lib.report.params`: read and check ``params/*.yaml``;
- :mod:`~crm_lib.report.execute`: run one notebook with Papermill and make it reproducible;
- :mod:`~crm_lib.report.render`: notebook to self-contained HTML with nbconvert, code hidden;
- :mod:`~crm_lib.report.index`: the run's ``index.html`` and ``manifest.json``;
- :mod:`~crm_lib.report.runner`: the whole run, published atomically;
- :mod:`~crm_lib.report.findings`: the Key findings box a report opens with and its headline data.
"""
from __future__ import annotations

import importlib
from typing import Any

# Names are imported on first use (PEP 562): a notebook kernel that only needs the knob registry or
# the findings box does not pay for the runner's imports (nbformat and jsonschema: about 2 s each time).
_EXPORTS = {
    "Finding": "crm_lib.report.findings",
    "show_key_findings": "crm_lib.report.findings",
    "RunParams": "crm_lib.report.params",
    "load_run_params": "crm_lib.report.params",
    "RunResult": "crm_lib.report.runner",
    "run_report": "crm_lib.report.runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
