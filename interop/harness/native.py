"""Finds and imports the `signum_harness` pybind11 module built from our C++ (interop/native/)."""

import importlib
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_module = None


def build_dir() -> Path:
    build = Path(os.environ.get("SIGNUM_BUILD_DIR", REPO / "build"))
    return build if build.is_absolute() else REPO / build


def module():
    global _module
    if _module is None:
        path = build_dir() / "interop"
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
        try:
            _module = importlib.import_module("signum_harness")
        except ImportError as error:
            raise RuntimeError(
                f"the signum_harness module is not built in {path} ({error}); run "
                f"`cmake --build {build_dir()} --target signum_harness` or ci/matrix") from error
    return _module
