"""From a params file to a folder of HTML reports.

- :mod:`~crm_lib.report.params`: read and check ``params/*.yaml``;
- :mod:`~crm_lib.report.execute`: run one notebook with Papermill and make it reproducible;
- :mod:`~crm_lib.report.render`: notebook to self-contained HTML with nbconvert, code hidden;
- :mod:`~crm_lib.report.index`: the run's ``index.html`` and ``manifest.json``;
- :mod:`~crm_lib.report.runner`: the whole run, published atomically;
- :mod:`~crm_lib.report.findings`: the Key findings box a report opens with and its headline data.
"""
from crm_lib.report.findings import Finding, show_key_findings
from crm_lib.report.params import RunParams, load_run_params
from crm_lib.report.runner import RunResult, run_report

__all__ = ["Finding", "RunParams", "RunResult", "load_run_params", "run_report", "show_key_findings"]
