"""Where a project's files are: the one project-folder rule and the one private-folder rule.

Every part of the workbench that needs the project folder (the console script, the run
context in a notebook or in JupyterLab, the real-id exports) asks :func:`project_root`,
and every part that needs the git-ignored private folder asks :func:`private_root`, so a
scheduled run and a JupyterLab session agree on both.

- **Project folder**: the first of the starting folder (the working directory, or the
  params file's folder for the console script) and its parents that holds ``notebooks/``;
  else the checkout crm_lib is installed from, when it is a project; else the working
  directory.
- **Private folder**: ``$CRM_PRIVATE_ROOT``, else ``<project>/.crm_private``. The runner
  sets ``CRM_PRIVATE_ROOT`` for its notebooks, and ``CRM_PRIVATE_DIR`` to the run's own
  subfolder ``runs/<run>/`` for the files one run writes (see :mod:`crm_lib.export`);
  things shared by every run and by JupyterLab, such as the run-context cache
  (:func:`cache_root`), live in the private folder itself.
"""
from __future__ import annotations

import os
from pathlib import Path

#: The folder of a project whose presence marks the project folder.
PROJECT_MARKER = "notebooks"
#: Name of the private folder in the project (git-ignored, owner-only).
PRIVATE_FOLDER = ".crm_private"
#: Environment variable that moves the private folder (the runner sets it for its notebooks).
PRIVATE_ROOT_ENV = "CRM_PRIVATE_ROOT"
#: Environment variable naming the folder of one run's real-id files (set by the runner).
PRIVATE_DIR_ENV = "CRM_PRIVATE_DIR"


def project_root(start: str | Path | None = None) -> Path:
    """The project folder: the first of ``start`` and its parents holding ``notebooks/``.

    Parameters
    ----------
    start : str or Path, optional
        Where to start looking: the working directory by default; the console script
        starts at the params file's folder. A notebook run by the runner works in
        ``<project>/.crm_private/runs/<run>/`` and one opened in JupyterLab in
        ``<project>/notebooks/``, so both find the same project.

    Returns
    -------
    Path
        The first folder found (absolute); when none holds ``notebooks/``, the checkout
        crm_lib is installed from if it is a project (``pyproject.toml`` and
        ``notebooks/`` above the package), else the working directory.

    Examples
    --------
    >>> project_root("notebooks") == project_root()  # doctest: +SKIP
    True
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_MARKER).is_dir():
            return folder
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / PROJECT_MARKER).is_dir():
        return checkout
    return Path.cwd().resolve()


def private_root(project: str | Path | None = None) -> Path:
    """The private folder: ``$CRM_PRIVATE_ROOT``, else ``<project>/.crm_private`` (not created).

    ``project`` defaults to :func:`project_root`; the runner passes the folder above the
    notebooks it runs.
    """
    value = os.environ.get(PRIVATE_ROOT_ENV)
    if value:
        return Path(value).resolve()
    return (Path(project).resolve() if project else project_root()) / PRIVATE_FOLDER


def cache_root() -> Path:
    """``<private folder>/cache``: the run-context cache shared by scheduled runs and JupyterLab."""
    return private_root() / "cache"
