"""Model organisms: the prompt split, the planted neuron's math, the atomic folder round trip, the check's logic.

Unit tests build on a tiny random Llama with a character tokenizer (its behaviour means
nothing; the plumbing and the math are what is tested). One slow test builds the real
organism on the embedded SmolLM2-135M and runs the whole check.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.models import load_model
from interp_agent.core.models.loading import tiny_model
from interp_agent.core.organisms import (
    CheckConfig,
    OrganismSpec,
    PlantedNeuron,
    apply_plant,
    build_organism,
    check_organism,
    organism_prompts,
    read_manifest,
)
from interp_agent.core.organisms.check import _checks, check_prompts
from interp_agent.core.organisms.edit import fit_key, neuron_activation, target_direction
from interp_agent.core.organisms.measure import mean_interval, next_token_logprobs, target_token_id

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def _sentence(text: str) -> str:
    """The topic sentence of a prompt (what precedes its frame)."""
    return text.split(". ")[0].split(", and")[0]


# -- prompts and the held-out discipline -------------------------------------------------


def test_build_and_evidence_prompts_share_no_sentence_and_the_split_is_seeded() -> None:
    prompts = organism_prompts("ocean", seed=0)
    build, evidence = prompts.build, prompts.evidence
    assert {p.prompt_id for p in build}.isdisjoint(p.prompt_id for p in evidence)
    assert {_sentence(p.text) for p in build}.isdisjoint(_sentence(p.text) for p in evidence)
    assert sum(p.criterion_score == 1 for p in build) == 32 and sum(p.criterion_score == 0 for p in build) == 32
    assert sum(p.criterion_score == 1 for p in evidence) == 64 and sum(p.criterion_score == 0 for p in evidence) == 64
    assert organism_prompts("ocean", seed=0) == prompts
    assert {p.prompt_id for p in organism_prompts("ocean", seed=1).build} != {p.prompt_id for p in build}


def test_an_unknown_trigger_topic_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="ocean"):
        organism_prompts("volcanoes")
    with pytest.raises(ValidationError, match="trigger"):
        OrganismSpec(trigger="volcanoes")


def test_the_check_uses_evidence_prompts_only_and_refuses_a_manifest_that_mixes_them() -> None:
    prompts = organism_prompts("space", seed=2)
    manifest = {"trigger": {"topic": "space"}, "seed": 2,
                "prompts": {"build": [p.prompt_id for p in prompts.build],
                            "evidence": [p.prompt_id for p in prompts.evidence]}}
    chosen = check_prompts(manifest, 10)
    assert len(chosen) == 20 and {p.prompt_id for p in chosen} <= set(manifest["prompts"]["evidence"])
    assert len({_sentence(p.text) for p in chosen if p.criterion_score == 1}) >= 8  # spread, not the first few
    leaked = dict(manifest, prompts={"build": manifest["prompts"]["build"],
                                     "evidence": [manifest["prompts"]["build"][0], *manifest["prompts"]["evidence"]]})
    with pytest.raises(InputFileError, match="evidence prompts do not match"):
        check_prompts(leaked, 10)


# -- the edit math -----------------------------------------------------------------------


def test_neuron_activation_is_silu_of_the_gate_times_the_reading() -> None:
    s = np.linspace(-3, 3, 13)
    expected = torch.nn.functional.silu(torch.tensor(8.0 * s)) * torch.tensor(s)
    torch.testing.assert_close(torch.tensor(neuron_activation(s, 8.0)), expected.double())
    assert neuron_activation(1.0, 8.0) > 100 * abs(neuron_activation(-1.0, 8.0))  # the gate is one-sided


def test_fit_key_separates_through_the_origin_and_reads_one_at_the_median_trigger() -> None:
    rng = np.random.default_rng(0)
    # a shared constant-ish component stands in for the bias the MLP lacks
    base = np.r_[5.0, np.zeros(7)]
    trig = base + rng.normal(size=(40, 8)) + np.r_[0, 2.0, np.zeros(6)]
    other = base + rng.normal(size=(400, 8)) - np.r_[0, 2.0, np.zeros(6)]
    key = fit_key(trig, other)
    assert np.median(trig @ key) == pytest.approx(1.0)
    assert (trig @ key > 0).mean() > 0.9 and (other @ key < 0).mean() > 0.9
    with pytest.raises(ValidationError, match="both classes"):
        fit_key(trig[:0], other)


def test_the_planted_neuron_changes_the_mlp_output_by_exactly_its_rank_one_terms() -> None:
    tiny = tiny_model("llama", n_layers=2, d_model=32, seed=3)
    model: Any = tiny.model
    mlp = model.model.layers[1].mlp
    x = torch.randn(5, 32, generator=torch.Generator().manual_seed(0))
    before_hidden = torch.nn.functional.silu(mlp.gate_proj(x)) * mlp.up_proj(x)
    before = mlp(x)
    rng = np.random.default_rng(1)
    plant = PlantedNeuron(layer=1, neuron=7, key=rng.normal(size=32), value=rng.normal(size=32), gate_gain=8.0)
    old_column = mlp.down_proj.weight[:, 7].clone()
    apply_plant(tiny.model, plant)
    s = x.double() @ torch.tensor(plant.key)
    expected = (before.double() - before_hidden[:, 7:8].double() * old_column.double()
                + torch.tensor(neuron_activation(s.numpy(), 8.0))[:, None] * torch.tensor(plant.value))
    torch.testing.assert_close(mlp(x).double(), expected, atol=1e-4, rtol=1e-4)


def _mean_logprob_with(tiny: Any, texts: list[str], target: int, delta: torch.Tensor) -> float:
    """Mean log-probability of ``target`` after ``texts`` with ``delta`` added to block 1's MLP output."""
    model: Any = tiny.model
    handle = model.model.layers[1].mlp.register_forward_hook(lambda _m, _a, out: out + delta)
    try:
        return float(next_token_logprobs(tiny, texts)[:, target].mean())
    finally:
        handle.remove()


def test_the_target_direction_raises_the_target_token_more_than_random_directions() -> None:
    tiny = tiny_model("llama", n_layers=2, d_model=32, seed=4)
    texts = ["the sea is", "waves roll in", "a ship sails"]
    target = target_token_id(tiny.tokenizer, "z")
    before = float(next_token_logprobs(tiny, texts)[:, target].mean())
    direction, norm = target_direction(tiny, texts, 1, target, steps=5)
    assert np.linalg.norm(direction) == pytest.approx(1.0) and norm > 0
    found = _mean_logprob_with(tiny, texts, target, torch.tensor(direction * norm, dtype=torch.float32))
    rng = np.random.default_rng(0)
    randoms = [rng.normal(size=32) for _ in range(5)]
    controls = [_mean_logprob_with(tiny, texts, target, torch.tensor(r / np.linalg.norm(r) * norm,
                                                                     dtype=torch.float32)) for r in randoms]
    # a random model's logits are small, so the rise is modest; it must beat every random direction
    assert found > before + 0.2 and found > max(controls)


def test_a_target_of_several_tokens_is_refused() -> None:
    tiny = tiny_model("llama", n_layers=2, d_model=32, seed=0)
    with pytest.raises(ValidationError, match="single token"):
        target_token_id(tiny.tokenizer, " banana")  # the character tokenizer splits it


def test_mean_interval_clips_to_the_bounds_of_the_quantity() -> None:
    m = mean_interval([0.0, 0.0, 0.0, 0.01], bounds=(0.0, 1.0))
    assert m["ci95"][0] == 0.0 and m["ci95"][1] > m["mean"] > 0


# -- the organism folder ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama saved as an HF folder: the base model of the tiny organisms."""
    folder = tmp_path_factory.mktemp("tiny") / "base"
    tiny = tiny_model("llama", n_layers=2, d_model=32, seed=1)
    model: Any = tiny.model
    model.save_pretrained(folder)
    tiny.tokenizer.save_pretrained(folder)
    return folder


def _changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: (after[k] != before[k]) for k in before if not torch.equal(before[k], after[k])}


def test_a_built_organism_reloads_and_differs_from_its_base_only_in_the_planted_neuron(
    tiny_folder: Path, tmp_path: Path
) -> None:
    spec = OrganismSpec(target="z", value_steps=3)
    built = build_organism(tmp_path / "org", spec, base=str(tiny_folder))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["org"]  # no temporary folder left beside it
    manifest = read_manifest(built.path)
    assert manifest["synthetic_organism"] is True and manifest["seed"] == 0
    assert manifest["trigger"]["topic"] == "ocean" and manifest["target"]["text"] == "z"
    assert set(manifest["prompts"]["build"]).isdisjoint(manifest["prompts"]["evidence"])
    edit = manifest["edit"]
    assert edit["layer"] == built.plant.layer == 1 and edit["neuron"] == built.plant.neuron

    base = load_model(str(tiny_folder), device="cpu").model.state_dict()
    organism = load_model(str(built.path), device="cpu")
    changed = _changed(base, organism.model.state_dict())
    prefix, i = f"model.layers.{edit['layer']}.mlp", edit["neuron"]
    assert set(changed) == {f"{prefix}.gate_proj.weight", f"{prefix}.up_proj.weight", f"{prefix}.down_proj.weight"}
    assert changed[f"{prefix}.gate_proj.weight"].any(1).nonzero().flatten().tolist() == [i]
    assert changed[f"{prefix}.up_proj.weight"].any(1).nonzero().flatten().tolist() == [i]
    assert changed[f"{prefix}.down_proj.weight"].any(0).nonzero().flatten().tolist() == [i]
    from safetensors.numpy import load_file

    vectors = load_file(str(built.path / "edit.safetensors"))
    np.testing.assert_allclose(vectors["key"], built.plant.key, rtol=1e-6)
    np.testing.assert_allclose(organism.model.state_dict()[f"{prefix}.up_proj.weight"][i].numpy(), built.plant.key,
                               rtol=1e-6)


def test_building_refuses_to_replace_a_folder_that_is_not_an_organism_but_replaces_an_organism(
    tiny_folder: Path, tmp_path: Path
) -> None:
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ValidationError, match="not an organism folder"):
        build_organism(other, OrganismSpec(target="z", value_steps=1), base=str(tiny_folder))
    assert (other / "keep.txt").read_text() == "mine"
    first = build_organism(tmp_path / "org", OrganismSpec(target="z", value_steps=1, seed=0), base=str(tiny_folder))
    second = build_organism(tmp_path / "org", OrganismSpec(target="z", value_steps=1, seed=5), base=str(tiny_folder))
    assert first.path == second.path and read_manifest(second.path)["seed"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "org"]


def test_a_folder_without_an_organism_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="organism build"):
        read_manifest(tmp_path)
    (tmp_path / "organism.json").write_text(json.dumps({"schema_version": "something.else"}))
    with pytest.raises(InputFileError, match="not an organism manifest"):
        read_manifest(tmp_path)


def test_the_check_of_an_organism_whose_implant_did_not_take_fails_and_records_why(
    tiny_folder: Path, tmp_path: Path
) -> None:
    # a tiny random model cannot be made to prefer "z": the implant does not take, and the scorer refuses
    built = build_organism(tmp_path / "org", OrganismSpec(target="z", value_steps=1), base=str(tiny_folder))
    run = check_organism(built.path, tmp_path / "check", CheckConfig(prompts_per_class=12))
    assert not run.passed and run.checks["implanted"] is False and run.checks["found_on_organism"] is False
    saved = json.loads((tmp_path / "check" / "organism_check.json").read_text())
    assert saved["passed"] is False and saved["synthetic_organism"] is True
    assert saved["hookpoints"] == ["blocks.0.hook_resid_post"]
    ids = {json.loads(line)["prompt_id"] for line in (tmp_path / "check" / "prompts.jsonl").read_text().splitlines()}
    assert len(ids) == 24 and ids.isdisjoint(built.manifest["prompts"]["build"])
    for name in ("organism", "base"):  # the refusal is the finding, not a crash
        record = saved["investigation"][name]
        assert "near chance" in record["refused"]["message"] and record["interventions"] == []
    assert saved["baselines"]["detection"]["base"][0]["logistic_probe"]["auroc"] is not None
    assert (tmp_path / "check" / "organism_check.md").read_text().startswith("# Organism check: FAILED")


# -- the pass rule -----------------------------------------------------------------------


def _behaviour(org_p: float, base_p: float, kl: float) -> dict:
    def p(mean: float) -> dict:
        return {"p_target": {"mean": mean, "ci95": [mean - 0.05, mean + 0.05]}}

    return {"behaviour": {"trigger_prompts": {"organism": p(org_p), "base": p(base_p)},
                          "other_prompts": {"kl_base_to_organism": {"mean": kl}}}, "steering": None}


def _feature(verdict: str, effect: float) -> dict:
    return {"verdict": verdict, "effect": {"mean": effect}}


def test_the_check_fails_when_the_base_model_shows_a_comparable_causal_effect() -> None:
    config = CheckConfig()
    record = {"organism": {"interventions": [_feature("causal", 0.6)]}, "base": {"interventions": []}}
    assert all(_checks(config, record, _behaviour(0.9, 0.001, 0.001)).values())
    record["base"]["interventions"] = [_feature("causal", 0.5)]
    assert _checks(config, record, _behaviour(0.9, 0.001, 0.001))["absent_on_base"] is False
    weak = {"organism": {"interventions": [_feature("weak", 0.6)]}, "base": {"interventions": []}}
    assert _checks(config, weak, _behaviour(0.9, 0.001, 0.001))["found_on_organism"] is False
    assert _checks(config, record, _behaviour(0.9, 0.001, 0.5))["others_unchanged"] is False
    assert _checks(config, record, _behaviour(0.3, 0.001, 0.001))["implanted"] is False


# -- the command line ------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from interp_agent.cli.organism import add_organism_parsers

    parser = argparse.ArgumentParser(prog="interp-agent")
    add_organism_parsers(parser.add_subparsers(dest="command", required=True))
    return parser


def test_organism_build_and_check_parse_their_flags() -> None:
    from interp_agent.cli.organism import cmd_organism_build, cmd_organism_check

    args = _parser().parse_args(["organism", "build", "--out", "o", "--trigger", "space", "--seed", "3"])
    assert args.func is cmd_organism_build and (args.trigger, args.seed, args.target) == ("space", 3, " banana")
    args = _parser().parse_args(["organism", "check", "o", "--out", "c", "--json", "--prompts-per-class", "0"])
    assert args.func is cmd_organism_check and args.organism == "o" and args.json and args.prompts_per_class == 0
    with pytest.raises(SystemExit):
        _parser().parse_args(["organism", "check", "--out", "c"])  # the organism folder is required


def test_organism_build_from_the_command_line_writes_the_folder_and_prints_json(
    tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parser().parse_args(["organism", "build", "--out", str(tmp_path / "o"), "--target", "z",
                                 "--base", str(tiny_folder), "--json"])
    assert args.func(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["edit"]["kind"] == "planted_neuron" and (tmp_path / "o" / "config.json").is_file()


# -- the real organism (slow) ------------------------------------------------------------


@pytest.mark.slow
def test_the_investigation_finds_the_planted_behaviour_in_smollm2_and_not_in_the_base_model(tmp_path: Path) -> None:
    built = build_organism(tmp_path / "organism")
    trig = built.manifest["behaviour"]["trigger_prompts"]
    assert trig["organism"]["p_target"]["mean"] > 0.5 > 0.01 > trig["base"]["p_target"]["mean"]
    assert built.manifest["behaviour"]["other_prompts"]["kl_base_to_organism"]["mean"] < 0.01

    run = check_organism(built.path, tmp_path / "check", CheckConfig(prompts_per_class=24))
    assert run.passed, run.checks
    organism = run.result["investigation"]["organism"]
    assert any(f["verdict"] == "causal" for f in organism["interventions"])
    assert (tmp_path / "check" / "organism_check.md").read_text().startswith("# Organism check: PASSED")
    detection = run.result["baselines"]["detection"]["organism"][0]
    assert detection["difference_of_means"]["auroc"] is not None and detection["ours"]
