"""Describes exports with `keras_genmodels.inspect_export`, importing nothing else.

Run as a script (`python tests/inspect_runner.py PATH...`) by
`tests/test_inspect.py`, never imported. The package's `__init__` imports
Keras and every family, so the package is stood in by a bare module whose
path is the package folder: only the modules `inspect_export` imports itself
get loaded. Prints one JSON line:

    {"infos": {PATH: describe(PATH)}, "texts": {PATH: format_text(...)},
     "modules": [the keras, tensorflow and keras_genmodels modules imported]}
"""

import json
import os
import sys
import types

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_package = types.ModuleType("keras_genmodels")
_package.__path__ = [os.path.join(_ROOT, "keras_genmodels")]
sys.modules["keras_genmodels"] = _package

from keras_genmodels import inspect_export  # noqa: E402


def main(paths):
    infos = {path: inspect_export.describe(path) for path in paths}
    texts = {path: inspect_export.format_text(info) for path, info in infos.items()}
    modules = sorted(
        name for name in sys.modules
        if name.split(".")[0] in ("keras", "tensorflow", "tf_keras", "keras_genmodels")
    )
    print(json.dumps({"infos": infos, "texts": texts, "modules": modules}))


if __name__ == "__main__":
    main(sys.argv[1:])
