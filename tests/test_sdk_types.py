"""The public SDK's type hints are checked: mypy on sdk/ with the pyproject's [tool.mypy] settings (run in this
process through mypy's API, so it is part of the README's test command and of the fast subset)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_finds_no_errors_in_the_sdk(monkeypatch):
    api = pytest.importorskip("mypy.api", reason="mypy comes with the test extra (pip install -e .[test])")
    monkeypatch.chdir(ROOT)
    out, err, status = api.run(["--config-file", str(ROOT / "pyproject.toml"), "--no-error-summary"])
    assert status == 0, out + err
