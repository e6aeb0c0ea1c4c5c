"""The TF Serving directory layout of exports: names, versions, staging.

TensorFlow Serving serves every all-digit directory under `BASE/NAME/`. An
export is written into a staging directory beside the versions (`.tmp-...`,
not all digits, so the server ignores it) and renamed into place only when
complete (and, for `export_and_verify`, verified), so a server never sees a
half-written or failed version. Staging directories left by a killed export
are removed by the next export into the same model directory.

A version directory gets the mode the process's umask gives new directories
(`0o777 & ~umask`; usually `0o755`), not the `0o700` of a temporary
directory, so a TF Serving process running as another user can read it.
"""

import os
import re
import shutil
import socket
import tempfile
import time

from keras_genmodels import files

#: Staging entries whose owner cannot be checked (written on another host)
#: are removed once untouched for this many seconds.
STALE_AFTER_SECONDS = 24 * 3600

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_STAGING_PREFIX = ".tmp-"
# `.tmp-VERSION-PID-HOST-RANDOM[.QUANTIZATION][.tflite]`: what `stage` names
# its entries (and `export_and_verify` its float and quantised TF Lite files).
_STAGING = re.compile(
    r"\.tmp-\d+-(\d+)-([A-Za-z0-9-]+)-[a-z0-9_]+((?:\.[a-z0-9_]+)?\.tflite)?"
)


def check_name(name):
    """Validates a model name (the directory under the base directory).

    Args:
        name: Letters, digits, `_`, `.` and `-`, not starting with `.` or
            `-` (so never `.`, `..`, a hidden staging name or an option).

    Returns:
        `name`.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            "`name` may contain only letters, digits, '_', '.' and '-', and must "
            f"start with a letter, a digit or '_'. Received: name={name!r}"
        )
    return name


def next_version(model_dir):
    """Returns the next integer version under a TF Serving model directory.

    Args:
        model_dir: `BASE/NAME`; it may not exist yet.

    Returns:
        1 plus the largest all-digit entry of `model_dir`, or 1 if none.
    """
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(e) for e in os.listdir(model_dir) if e.isdigit()]
    return max(versions, default=0) + 1


def directory_mode():
    """The mode new directories get under the process's umask (`0o777 & ~umask`)."""
    return 0o777 & ~files.current_umask()


def _host():
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Alive, another user's.
        return True
    return True


def _is_stale(path, entry, now):
    match = _STAGING.fullmatch(entry)
    if match and match.group(2) == _host() and not _process_alive(int(match.group(1))):
        return True  # Written on this host by a process that is gone.
    try:
        return now - os.path.getmtime(path) > STALE_AFTER_SECONDS
    except OSError:
        return False


def remove_stale_staging(model_dir):
    """Removes staging entries (`.tmp-*`) that no running export owns.

    An entry written on this host is stale when the process that wrote it
    (its id is in the name) has exited: it was killed before it could clean
    up. Any entry is stale once untouched for `STALE_AFTER_SECONDS`: one
    written on another host (a shared file system) or by an older version of
    this package, or whose process id was reused.

    Args:
        model_dir: `BASE/NAME`.

    Returns:
        The removed paths.
    """
    if not os.path.isdir(model_dir):
        return []
    removed, now = [], time.time()
    for entry in sorted(os.listdir(model_dir)):
        path = os.path.join(model_dir, entry)
        if entry.startswith(_STAGING_PREFIX) and _is_stale(path, entry, now):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.remove(path)
                except OSError:
                    continue
            removed.append(path)
    return removed


def stage(model_dir, version):
    """Creates the staging directory of a new version.

    Stale staging entries are removed first (`remove_stale_staging`). The
    directory gets `directory_mode()`.

    Args:
        model_dir: `BASE/NAME`; created if missing.
        version: The version it will become.

    Returns:
        The staging directory's path.
    """
    os.makedirs(model_dir, exist_ok=True)
    remove_stale_staging(model_dir)
    prefix = f"{_STAGING_PREFIX}{version}-{os.getpid()}-{_host()}-"
    path = tempfile.mkdtemp(prefix=prefix, dir=model_dir)
    os.chmod(path, directory_mode())
    return path


def publish(staging, target):
    """Renames a complete staging directory (or file) to its final path.

    Args:
        staging: What `stage` returned, now written.
        target: `BASE/NAME/VERSION` (or the `.tflite` path).
    """
    if os.path.exists(target):
        raise FileExistsError(
            f"{target} appeared while the export was written; exports never "
            "overwrite a version. Export again to take the next version."
        )
    os.rename(staging, target)


def discard(path):
    """Removes a staging directory or file, if it exists."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)
