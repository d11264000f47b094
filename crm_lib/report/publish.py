"""Publishing a run without ever losing or half-writing the last good one.

- Every run builds in ``.<name>.staging-<pid>-<token>/`` next to its target; staging
  folders of processes that are gone (SIGKILL, power loss) are removed at the next start.
- A run name is a symlink to a versioned folder (``.<name>.v-<ns>-<pid>``). Publishing
  renames the staging folder to a new version and swaps the link with one ``os.replace``
  (rename(2) is atomic on POSIX): a reader sees the old report or the new one, never a
  mix or nothing. Old versions are pruned afterwards, under the run lock.
- One lock per run name (``fcntl.flock`` on ``.<name>.lock``): a second run of the same
  name exits with a message naming the running process, or waits for it.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Iterator

from crm_lib.exceptions import CRMWorkbenchError

logger = logging.getLogger(__name__)

STAGING_MARK = ".staging-"
VERSION_MARK = ".v-"
#: Errors that are the machine's, not the params' or the data's (exit status 3).
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOMEM}


class RunEnvironmentError(CRMWorkbenchError):
    """The machine stopped the run: disk full, no permission, out of memory, run busy (exit 3)."""


def environment_error(error: OSError, doing: str) -> RunEnvironmentError:
    """A one-line message for an ``OSError`` met while ``doing`` something."""
    where = f" ({error.filename})" if error.filename else ""
    hint = {
        errno.ENOSPC: "free disk space or pass --output-dir on another disk",
        errno.EDQUOT: "free disk space (quota exceeded)",
        errno.EROFS: "the file system is read-only; pass --output-dir to a writable folder",
        errno.EACCES: "make the folder writable for this user or pass --output-dir",
        errno.EPERM: "make the folder writable for this user or pass --output-dir",
    }.get(error.errno, "check the folder and retry")
    return RunEnvironmentError(f"cannot {doing}: {error.strerror}{where}; {hint}.")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_staging(parent: Path, name: str, *, private: bool = False) -> Path:
    """A fresh staging folder for run ``name`` in ``parent`` (owner-only when ``private``)."""
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f".{name}{STAGING_MARK}{os.getpid()}-{secrets.token_hex(3)}"
    staging.mkdir(mode=0o700 if private else 0o777)
    return staging


def remove_stale_staging(parent: Path, name: str) -> list[Path]:
    """Remove staging folders of run ``name`` whose process is gone; return them."""
    removed = []
    if not parent.is_dir():
        return removed
    for folder in parent.glob(f".{name}{STAGING_MARK}*"):
        pid_text = folder.name.rsplit(STAGING_MARK, 1)[1].split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not pid_alive(int(pid_text)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
            logger.info("removed the staging folder %s of a run that was killed", folder)
    return removed


def swap_link(version: Path, target: Path) -> None:
    """Point the symlink ``target`` at ``version`` (a sibling folder) in one atomic step."""
    link = target.with_name(f".{target.name}.link-{os.getpid()}-{secrets.token_hex(4)}")
    os.symlink(version.name, link)
    try:
        if target.is_dir() and not target.is_symlink():
            # A report folder from before versioned publishing: becomes a version once.
            target.rename(target.with_name(f".{target.name}{VERSION_MARK}0-legacy-{secrets.token_hex(3)}"))
        os.replace(link, target)
    except BaseException:
        with contextlib.suppress(OSError):
            link.unlink()
        raise


def publish(staging: Path, target: Path, *, keep: int = 2) -> Path:
    """Make ``staging`` the content of ``target`` atomically; keep ``keep`` versions.

    Call under :func:`run_lock`: pruning assumes no other publisher of the same name.
    """
    version = target.with_name(f".{target.name}{VERSION_MARK}{time.time_ns()}-{os.getpid()}")
    staging.rename(version)
    swap_link(version, target)
    versions = sorted(target.parent.glob(f".{target.name}{VERSION_MARK}*"), key=lambda p: p.stat().st_mtime_ns)
    current = (target.parent / os.readlink(target)).resolve()
    old = [v for v in versions if v.resolve() != current]
    for stale in old[: max(0, len(old) - (keep - 1))]:
        shutil.rmtree(stale, ignore_errors=True)
    return target


def remove_published(target: Path) -> None:
    """Remove a published name (link and its versions), e.g. a stale ``<run>.failed``."""
    if target.is_symlink() or target.exists():
        if target.is_symlink():
            target.unlink()
        else:
            shutil.rmtree(target)
    for version in target.parent.glob(f".{target.name}{VERSION_MARK}*"):
        shutil.rmtree(version, ignore_errors=True)


@contextlib.contextmanager
def run_lock(folder: Path, name: str, *, wait: bool = False, say=logger.info) -> Iterator[Path]:
    """Hold the lock of run ``name`` (``folder/.<name>.lock``) for the body.

    Raises
    ------
    RunEnvironmentError
        Another process holds it and ``wait`` is False.
    """
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".{name}.lock"
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            if not wait:
                raise RunEnvironmentError(
                    f"another run of '{name}' is in progress (pid {holder}, lock {path}); wait for it to finish, "
                    "or pass --wait to start when it is done."
                ) from None
            say(f"waiting for the run of '{name}' in progress (pid {holder}) ...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield path
    finally:
        handle.close()


# ------------------------------------------------------------------ run history (issue 13)
#
# With history on, a run name is a folder of dated reports, each published like a flat
# report above (a link swapped atomically onto a version folder), plus ``latest``:
#
#     reports/<run>/1998-05-31 -> .1998-05-31.v-<ns>-<pid>/
#     reports/<run>/1998-06-30 -> .1998-06-30.v-<ns>-<pid>/
#     reports/<run>/latest     -> 1998-06-30            (the newest observation end kept)

LATEST_LINK = "latest"


def history_entries(run_dir: Path) -> list[str]:
    """The dated reports kept in ``run_dir`` (names ``YYYY-MM-DD``), oldest first."""
    if not run_dir.is_dir() or run_dir.is_symlink():
        return []
    return sorted(p.name for p in run_dir.iterdir() if p.is_symlink() and p.name != LATEST_LINK
                  and not p.name.startswith("."))


def check_history_folder(run_dir: Path) -> None:
    """Refuse to keep a history in ``run_dir`` when it holds a report published without one.

    Raises
    ------
    RunEnvironmentError
        ``run_dir`` is a symlink or a folder with an ``index.html`` (left alone).
    """
    if run_dir.is_symlink() or (run_dir / "index.html").exists():
        raise RunEnvironmentError(
            f"{run_dir} holds a report published without history; move it away (e.g. to {run_dir.name}.flat) "
            "before the first run with --keep-runs, or pass another --output-dir."
        )


def publish_dated(staging: Path, run_dir: Path, label: str, *, keep_runs: int) -> Path:
    """Publish ``staging`` as ``run_dir/<label>``, point ``run_dir/latest`` at the newest, keep ``keep_runs``.

    Call under :func:`run_lock`. ``label`` is the observation end (``YYYY-MM-DD``), so
    names sort by date; a second run of the same end replaces that entry atomically.
    Retention removes the oldest entries other than the one just published until
    ``keep_runs`` remain; ``latest`` names the newest end kept (a backfill does not move it).

    Raises
    ------
    RunEnvironmentError
        ``run_dir`` is a flat report of a run without history (a symlink or a folder
        with an ``index.html``): it is left alone.
    """
    check_history_folder(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    target = publish(staging, run_dir / label)
    kept = history_entries(run_dir)
    others = [name for name in kept if name != label]  # the run just published always stays
    for old in others[: max(0, len(kept) - keep_runs)]:
        remove_published(run_dir / old)
        logger.info("history: removed %s (keeping the last %d runs)", run_dir / old, keep_runs)
    swap_link(run_dir / history_entries(run_dir)[-1], run_dir / LATEST_LINK)
    return target
