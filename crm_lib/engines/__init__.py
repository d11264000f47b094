"""Engines that compute the workbench's tables outside pandas.

- :mod:`crm_lib.engines.duckdb`: an embedded, out-of-core engine for logs larger than
  memory (CSV or Parquet files, or the warehouse extract), on one machine.
- :mod:`crm_lib.engines.spark`: the same summary and scoring as PySpark functions, for a
  base that lives in a lake or warehouse and is reduced on a cluster.

Both give the same numbers as the pandas path (:mod:`crm_lib.summary`, :mod:`crm_lib.kpi`);
tests compare them at 1e-12. Model fits stay in numpy on the collapsed
(frequency, recency, T) rows with their counts, which are few even for a large base.
"""
