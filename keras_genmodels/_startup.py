"""A quiet TensorFlow start-up for the `keras-genmodels` command.

TensorFlow's C++ start-up lines (absl's "All log messages before
absl::InitializeLog()", oneDNN, cpu_feature_guard, cuInit) reach file
descriptor 2 before `TF_CPP_MIN_LOG_LEVEL` can act in-process, and a command
imports this package (and so TensorFlow) before it parses its arguments. When
the running program is the command, `quiet_tensorflow_start` therefore sets
the log level and sends file descriptor 2 to a temporary file while
TensorFlow is imported and its devices are set up; what was caught is
replayed if the import fails. `--debug` on the command line (or
`KERAS_GENMODELS_DEBUG=1`) keeps everything. In any other program (a user's
script, a notebook, the tests) nothing is changed.
"""

import contextlib
import os
import sys
import tempfile

COMMAND_NAME = "keras-genmodels"


def running_the_command(argv=None):
    """Whether this process is the `keras-genmodels` command."""
    argv = sys.argv if argv is None else argv
    if not argv:
        return False
    program = os.path.basename(argv[0])
    # `python -m keras_genmodels.cli` imports the package while argv[0] is "-m".
    return program in (COMMAND_NAME, "-m") or argv[0].endswith(
        os.path.join("keras_genmodels", "cli.py")
    )


#: Subcommands that only read files: the command runs them without importing
#: TensorFlow or Keras (`light_command`).
LIGHT_SUBCOMMANDS = ("inspect",)


def light_command(argv=None):
    """Whether this process is the command running a `LIGHT_SUBCOMMANDS` one.

    `import keras_genmodels` then skips the backend check and the families
    (so neither Keras nor TensorFlow is imported) and `keras-genmodels
    inspect` starts in a fraction of a second on a machine that may not even
    have TensorFlow working.
    """
    argv = sys.argv if argv is None else argv
    if not running_the_command(argv):
        return False
    words = [word for word in argv[1:] if not word.startswith("-")]
    return bool(words) and words[0] in LIGHT_SUBCOMMANDS


def debugging(argv=None):
    """Whether the user asked to see everything (`--debug` or the variable)."""
    argv = sys.argv if argv is None else argv
    return "--debug" in argv[1:] or os.environ.get("KERAS_GENMODELS_DEBUG", "") not in ("", "0")


@contextlib.contextmanager
def stderr_silenced():
    """Sends file descriptor 2 to a temporary file for the duration.

    What was written is replayed on stderr if the block raises.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as caught:
        os.dup2(caught.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                caught.seek(0)
                sys.stderr.write(caught.read().decode(errors="replace"))
                sys.stderr.flush()


@contextlib.contextmanager
def quiet_tensorflow_start():
    """Silences TensorFlow's start-up noise when running as the command.

    Wraps the package's first import of TensorFlow; a no-op when TensorFlow
    is already imported, outside the command, or when debugging.
    """
    if "tensorflow" in sys.modules or not running_the_command() or debugging():
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with stderr_silenced():
        yield
        import tensorflow as tf

        tf.config.list_logical_devices()  # Device set-up prints the cuInit lines.


def quiet_native_logs():
    """Silences native libraries' info lines (e.g. LiteRT's "Created TensorFlow
    Lite XNNPACK delegate") while running as the command, unless debugging.

    Returns:
        A context manager.
    """
    if running_the_command() and not debugging():
        return stderr_silenced()
    return contextlib.nullcontext()
