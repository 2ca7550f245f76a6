"""examples/fsrace-ntfs3, a separate package that `make test` installs, reaches fsrace
through its entry points alone: `fsrace list` and `fsrace matrix` show its protocols, and
the matrix finds what its own tests assert."""

import json
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution

import pytest

try:
    distribution("fsrace-ntfs3")
except PackageNotFoundError:
    pytest.skip("examples/fsrace-ntfs3 is not installed (make test installs it)",
                allow_module_level=True)


def _fsrace(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "fsrace", *args], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_installed_protocols_are_listed_and_left_out_on_request():
    assert "ntfs3-mkwrite-lock" in _fsrace("list")
    assert "ntfs3" not in _fsrace("--no-plugins", "list")


def test_matrix_of_the_installed_protocols():
    m = json.loads(_fsrace("matrix", "-p", "ntfs3", "-p", "ntfs3-mkwrite-lock",
                           "-s", "collapse-write-fault", "-s", "zero-range-write-fault",
                           "--json"))
    cells = {(c["scenario"], c["protocol"]): c for c in m["cells"]}
    assert cells[("collapse-write-fault", "ntfs3")]["verdict"] == "race"
    fixed = cells[("collapse-write-fault", "ntfs3-mkwrite-lock")]
    assert fixed["verdict"] == "safe" and fixed["complete"]
    refused = cells[("zero-range-write-fault", "ntfs3")]
    assert refused["verdict"] == "n/a" and "refuses zero range" in refused["why"]
