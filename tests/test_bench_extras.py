"""The benchmarks' own messages: what they tell a user to install works."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_quality_benchmark_without_dlib_names_the_eval_extra(monkeypatch):
    # It said "pip install dlib-bin face-recognition-models": done so, face_recognition_models still failed to import
    # (it needs pkg_resources, gone from setuptools 81+, which torch pulls in) and the same line came back.
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    monkeypatch.delitem(sys.modules, "quality_metrics", raising=False)
    for name in ("dlib", "face_recognition_models"):  # their imports fail as where they are not installed
        monkeypatch.setitem(sys.modules, name, None)
    import quality_metrics

    with pytest.raises(SystemExit) as stopped:
        quality_metrics.Scorer()
    message = str(stopped.value)
    assert "pip install -e '.[eval]'" in message and "dlib" in message
    assert "eval = [" in (ROOT / "pyproject.toml").read_text()
