"""Crash-safe file writes: a file is either its old self or complete.

Every file the command writes (the model, run records, sample pictures,
training backups) goes through `replaced_atomically`: the content is written
to a temporary name in the same directory and `os.replace`d over the target,
so a process killed at any moment never leaves a truncated file behind.
"""

import contextlib
import json
import os
import tempfile

#: Prefix of the temporary files; `remove_stale_partials` cleans them up.
PARTIAL_PREFIX = ".partial-"


@contextlib.contextmanager
def replaced_atomically(path):
    """Yields a temporary path that replaces `path` when the block succeeds.

    The temporary file sits in `path`'s directory (so the rename is atomic on
    POSIX file systems) and keeps `path`'s suffix (so writers that pick the
    format from the suffix, such as `keras.Model.save`, still work). If the
    block raises, the temporary file is removed and `path` is untouched.

    Args:
        path: The file to write.

    Yields:
        The temporary path to write to.

    Example:

    ```python
    with replaced_atomically("run/model.keras") as partial:
        model.save(partial)
    ```
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.basename(path)
    handle, partial = tempfile.mkstemp(
        prefix=PARTIAL_PREFIX, suffix="-" + suffix, dir=directory
    )
    os.close(handle)
    os.remove(partial)  # Writers such as h5py refuse an existing empty file.
    try:
        yield partial
        if not os.path.exists(partial):
            raise FileNotFoundError(f"Nothing was written to {partial!r} for {path!r}.")
        # mkstemp's 0600 would make the file unreadable to other users.
        os.chmod(partial, 0o666 & ~current_umask())
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def write_json(path, value):
    """Writes `value` as indented JSON, atomically.

    Args:
        path: The target file.
        value: A JSON-serialisable value (NaN and infinities are refused:
            they are not JSON).
    """
    text = json.dumps(value, indent=2, allow_nan=False)
    with replaced_atomically(path) as partial:
        with open(partial, "w", encoding="utf-8") as f:
            f.write(text + "\n")


def remove_stale_partials(directory):
    """Removes temporary files that a killed writer left in `directory`.

    Args:
        directory: A directory written through `replaced_atomically`.

    Returns:
        The names removed.
    """
    if not os.path.isdir(directory):
        return []
    removed = []
    for name in os.listdir(directory):
        if name.startswith(PARTIAL_PREFIX):
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                os.remove(path)
                removed.append(name)
    return removed


def current_umask():
    """Returns the process's umask without changing it where procfs tells it.

    Without procfs the umask is read by setting it and back, which is not
    thread-safe.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask
