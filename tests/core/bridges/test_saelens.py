"""SAE Lens pretrained SAEs: registry look-ups, naming helpers, offline errors, the cache, and inspect --backend
saelens.

Nothing here reaches the network: HF_HUB_OFFLINE is set, the Hugging Face cache points at
a temporary folder, and the one "pretrained" SAE that loads is planted in that folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import yaml

from interp_agent.core.bridges import saelens
from interp_agent.core.bridges.saelens import (
    gemma_scope_2_id,
    gemma_scope_id,
    load_pretrained_sae,
    pretrained_sae_folder,
    qwen_scope_id,
    resolve_pretrained,
)
from interp_agent.core.errors import MissingDependencyError, ModelUnavailableError, ValidationError
from interp_agent.core.sae.lens import SaeWeights, load_sae_lens, save_sae_lens


@pytest.fixture(scope="module")
def registry() -> dict:
    """SAE Lens's pretrained_saes.yaml, read straight from the installed package."""
    spec = importlib.util.find_spec("sae_lens")
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained_saes.yaml"
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _in_registry(registry: dict, release: str, sae_id: str) -> bool:
    return release in registry and any(str(s["id"]) == sae_id for s in registry[release]["saes"])


@pytest.fixture
def offline_hub(monkeypatch, tmp_path: Path) -> Path:
    """An empty Hugging Face cache, offline mode, and a private interp-agent cache."""
    from huggingface_hub import constants

    hub = tmp_path / "hf-hub"
    hub.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("INTERP_AGENT_CACHE", str(tmp_path / "ia-cache"))
    return hub


def _random_sae(
    hookpoint: str = "blocks.3.hook_resid_post", d_in: int = 576, d_sae: int = 256, seed: int = 0
) -> SaeWeights:
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d_in, d_sae)) / np.sqrt(d_in)
    return SaeWeights(hookpoint, W, np.zeros(d_sae), W.T.copy(), np.zeros(d_in), None, "standard", None)


# --- naming helpers against the installed registry -------------------------------------------


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: gemma_scope_id(12), ("gemma-scope-2b-pt-res-canonical", "layer_12/width_16k/canonical")),
        (lambda: gemma_scope_id(12, l0=82), ("gemma-scope-2b-pt-res", "layer_12/width_16k/average_l0_82")),
        (lambda: gemma_scope_id(5, width=65536, kind="mlp"), ("gemma-scope-2b-pt-mlp-canonical",
                                                              "layer_5/width_65k/canonical")),
        (lambda: gemma_scope_id(20, model="9b-it"), ("gemma-scope-9b-it-res-canonical",
                                                     "layer_20/width_16k/canonical")),
        (lambda: gemma_scope_id(10, width="131k", model="gemma-2-27b"),
         ("gemma-scope-27b-pt-res-canonical", "layer_10/width_131k/canonical")),
        (lambda: gemma_scope_2_id(12), ("gemma-scope-2-270m-pt-res", "layer_12_width_16k_l0_medium")),
        (lambda: gemma_scope_2_id(3, width="262k", l0="big", model="1b", instruct=True, all_layers=True),
         ("gemma-scope-2-1b-it-res-all", "layer_3_width_262k_l0_big")),
        (lambda: qwen_scope_id(12), ("qwen-scope-3-1.7b-base-w32k-l50", "layer12")),
        (
            lambda: qwen_scope_id(5, model="Qwen/Qwen3-30B-A3B-Base", l0=100),
            ("qwen-scope-3-30b-a3b-base-w128k-l100", "layer5"),
        ),
        (lambda: qwen_scope_id(3, model="Qwen3.5-27B", width=80 * 1024), ("qwen-scope-3.5-27b-w80k-l50", "layer3")),
    ],
)
def test_naming_helpers_spell_entries_that_exist_in_the_installed_registry(registry, call, expected) -> None:
    got = call()
    assert got == expected
    assert _in_registry(registry, *got)


def test_naming_helpers_refuse_pairs_the_registry_does_not_have() -> None:
    with pytest.raises(ValidationError, match="average_l0_83"):
        gemma_scope_id(12, l0=83)
    with pytest.raises(ValidationError, match="kind"):
        gemma_scope_id(12, kind="resid")
    with pytest.raises(ValidationError, match="Qwen-Scope releases"):
        qwen_scope_id(3, model="Qwen3-999B")
    # check=False gives the spelling alone, for registries newer than the installed one
    assert gemma_scope_id(12, l0=83, check=False) == ("gemma-scope-2b-pt-res", "layer_12/width_16k/average_l0_83")


def test_resolve_pretrained_reads_repo_and_path_from_the_registry(registry) -> None:
    release, sae_id = gemma_scope_id(12)
    info = resolve_pretrained(release, sae_id)
    entry = registry[release]
    assert info.repo_id == entry["repo_id"] == "google/gemma-scope-2b-pt-res"
    assert info.path == next(s["path"] for s in entry["saes"] if s["id"] == sae_id)
    assert info.loader == "gemma_2" and info.files == (f"{info.path}/params.npz",)
    with pytest.raises(ValidationError) as bad_release:
        resolve_pretrained("gemma-scope-2b-pt-rez-canonical", sae_id)
    assert "gemma-scope-2b-pt-res-canonical" in str(bad_release.value)  # a close name is suggested
    with pytest.raises(ValidationError) as bad_id:
        resolve_pretrained(release, "layer_12/width_16k/canonicall")
    assert "layer_12/width_16k/canonical" in str(bad_id.value)


def test_without_sae_lens_the_error_names_the_saelens_extra(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        saelens.importlib.util, "find_spec", lambda name, *a: None if name == "sae_lens" else real(name, *a)
    )
    saelens._registry.cache_clear()
    try:
        with pytest.raises(MissingDependencyError) as exc:
            resolve_pretrained("gemma-scope-2b-pt-res-canonical", "layer_12/width_16k/canonical")
    finally:
        saelens._registry.cache_clear()
    assert exc.value.extra == "saelens" and "interp-agent[saelens]" in str(exc.value)


# --- loading: offline errors and the local caches ----------------------------------------------


def test_offline_and_uncached_the_error_says_exactly_what_is_missing_and_how_to_get_it(offline_hub) -> None:
    release, sae_id = gemma_scope_id(12)
    with pytest.raises(ModelUnavailableError) as exc:
        pretrained_sae_folder(release, sae_id)
    text = str(exc.value)
    for needed in (release, sae_id, "google/gemma-scope-2b-pt-res", "layer_12/width_16k/average_l0_82/params.npz",
                   "HF_HUB_OFFLINE", "hf download", "~/.cache/huggingface", "--sae DIR", "save_model"):
        assert needed in text, needed


def test_a_pretrained_sae_in_the_hub_cache_loads_offline_and_is_kept_as_an_sae_lens_folder(offline_hub) -> None:
    info = resolve_pretrained("gpt2-small-res-jb", "blocks.3.hook_resid_pre")  # an SAE Lens-format repo
    commit = "0" * 40
    repo = offline_hub / ("models--" + info.repo_id.replace("/", "--"))
    planted = _random_sae("blocks.3.hook_resid_post", d_in=576, d_sae=64)
    save_sae_lens(repo / "snapshots" / commit / info.path, planted)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)

    folder = pretrained_sae_folder(info.release, info.sae_id)
    got = load_sae_lens(folder)
    np.testing.assert_allclose(got.W_enc, planted.W_enc, atol=1e-6)
    assert got.hookpoint == "blocks.3.hook_resid_post"
    assert got.metadata["pretrained"]["repo_id"] == info.repo_id
    import shutil

    shutil.rmtree(offline_hub / repo.name)  # later runs read our own cache: no hub cache, no sae-lens loader
    again = load_pretrained_sae(info.release, info.sae_id)
    np.testing.assert_allclose(again.W_enc, planted.W_enc, atol=1e-6)


# --- inspect --backend saelens --------------------------------------------------------------------


@pytest.mark.slow
def test_saelens_backend_ranks_real_latent_activations_with_held_out_stats(tmp_path: Path) -> None:
    from interp_agent.core.inspection import inspect
    from interp_agent.core.ranking import RankingConfig

    sae = save_sae_lens(tmp_path / "sae", _random_sae(), model_name="smollm2-135m")
    result = inspect("smollm2-135m", "", backend="saelens", pack="measurement_unit", sae=sae, out=tmp_path / "out",
                     config=RankingConfig(top_k=200, bootstrap=10))
    report = result.report
    assert report["backend"] == "saelens" and report["synthetic"] is False
    assert report["live"]["hookpoints"] == ["blocks.3.hook_resid_post"]  # the SAE's hookpoint only
    latents = [f for f in report["features"] if f["feature_id"].startswith("SAE:L3:F")]
    assert latents
    for f in latents:
        held = f["association"]["held_out"]
        assert held["n"] > 0 and held["pearson_r"] is not None
        assert f["provenance"]["association"] == "correlational"


def test_saelens_backend_arguments_are_checked_before_any_work(tmp_path: Path) -> None:
    from interp_agent.core.inspection import inspect

    with pytest.raises(ValidationError, match="needs an SAE"):
        inspect("smollm2-135m", "", backend="saelens", pack="measurement_unit", out=tmp_path)
    with pytest.raises(ValidationError, match="not both"):
        inspect("smollm2-135m", "", backend="saelens", pack="measurement_unit", out=tmp_path, sae=tmp_path,
                saelens_release="gemma-scope-2b-pt-res-canonical", saelens_id="layer_12/width_16k/canonical")
    with pytest.raises(ValidationError, match="read by the saelens backend"):
        inspect("smollm2-135m", "", backend="hf", pack="measurement_unit", out=tmp_path,
                saelens_release="gemma-scope-2b-pt-res-canonical", saelens_id="layer_12/width_16k/canonical")


@pytest.mark.slow
def test_an_sae_of_another_width_is_refused_with_both_widths(tmp_path: Path) -> None:
    from interp_agent.core.inspection import inspect

    sae = save_sae_lens(tmp_path / "sae", _random_sae(d_in=2304, d_sae=8))
    with pytest.raises(ValidationError, match="2304 dims.*576"):
        inspect("smollm2-135m", "", backend="saelens", pack="measurement_unit", sae=sae, out=tmp_path / "out")
