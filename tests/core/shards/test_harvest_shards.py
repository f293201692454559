"""Sharded harvesting on the embedded model: the manifest, resume, refusal of foreign folders, and the readers."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.shards import HarvestInputs, harvest_shards, open_manifest, read_manifest

HOOK = "blocks.2.hook_resid_post"
PACK = "measurement_unit"


@pytest.fixture(scope="module")
def loaded(one_torch_thread):
    from interp_agent.core.models import load_model

    return load_model("smollm2-135m", device="cpu")


@pytest.fixture(scope="module")
def harvest(loaded, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("harvest") / "h"
    harvest_shards(loaded, HOOK, HarvestInputs("pack", PACK), out, shard_size=24)
    return out


def test_manifest_lists_every_shard_with_hashes_tokens_and_seconds(harvest: Path) -> None:
    from safetensors.numpy import load_file

    manifest = open_manifest(harvest)
    body = json.loads((harvest / "manifest.json").read_text())
    assert body["schema_version"] == "interp-agent.harvest_manifest.v1" and body["complete"]
    assert (body["model"], body["hookpoint"], body["d_in"], body["dtype"]) == ("smollm2-135m", HOOK, 576, "float32")
    assert body["source"]["kind"] == "pack" and body["source"]["n_units"] == 88 and len(body["source"]["sha256"]) == 64
    assert [s.name for s in manifest.shards] == [f"shard-0000{i}" for i in range(4)]
    assert [(s.start, s.stop) for s in manifest.shards] == [(0, 24), (24, 48), (48, 72), (72, 88)]
    for shard in manifest.shards:
        assert shard.seconds > 0 and set(shard.files) >= {"activations.safetensors", "records/rows.parquet"}
        t = load_file(str(harvest / "shards" / shard.name / "activations.safetensors"))
        assert t["activations"].shape == (shard.n_rows, 576) and t["activations"].dtype == np.float32
        assert t["token_index"].min() >= 1  # the first position of every prompt is left out
        assert shard.n_rows == shard.n_tokens - (shard.stop - shard.start)
        assert set(np.unique(t["prompt_index"])) == set(range(shard.start, shard.stop))
    assert body["totals"]["n_tokens"] == sum(s.n_tokens for s in manifest.shards)


def test_records_are_the_hf_backends_basis_features_pooled_on_the_last_token(harvest: Path, loaded) -> None:
    from interp_agent.core.criteria import load_pack
    from interp_agent.core.formats.parquet import iter_parquet_records
    from interp_agent.core.live import harvest_tokens

    prompts = load_pack(PACK).prompts
    manifest = open_manifest(harvest)
    rows = [r for s in manifest.shards for r in iter_parquet_records(manifest.shard_dir(s) / "records")]
    assert [r.prompt_id for r in rows] == [p.prompt_id for p in prompts]
    assert [r.criterion_score for r in rows] == [p.criterion_score for p in prompts]
    assert rows[0].feature_ids[:2] == ("L2:D0", "L2:D1") and len(rows[0].feature_ids) == 576
    expected = harvest_tokens(loaded, [p.text for p in prompts], [HOOK], pooling="last").pooled(HOOK, "last")
    got = np.array([r.activations for r in rows])
    torch.testing.assert_close(torch.as_tensor(got), torch.as_tensor(expected, dtype=torch.float64), atol=1e-4,
                               rtol=1e-4)


def test_a_deleted_or_corrupt_shard_is_named_and_a_rerun_redoes_only_it(harvest: Path, loaded, tmp_path: Path) -> None:
    out = tmp_path / "h"
    shutil.copytree(harvest, out)
    before = {s.name: s for s in read_manifest(out).shards}
    acts = out / "shards" / "shard-00001" / "activations.safetensors"
    acts.write_bytes(acts.read_bytes()[:-8] + b"\0" * 8)  # corrupt: same size, different bytes
    with pytest.raises(InputFileError, match=r"shard-00001/activations.safetensors.*corrupt.*re-run"):
        open_manifest(out)
    shutil.rmtree(out / "shards" / "shard-00002")
    with pytest.raises(InputFileError, match=r"shard-00001"):
        open_manifest(out)
    kept = out / "shards" / "shard-00000" / "activations.safetensors"
    mtime = kept.stat().st_mtime_ns
    seen: list[tuple[str, int, int | None]] = []
    harvest_shards(loaded, HOOK, HarvestInputs("pack", PACK), out, shard_size=24,
                   progress=lambda phase, done, total: seen.append((phase, done, total)))
    assert seen == [("shards", 3, 4), ("shards", 4, 4)]  # two shards redone, two kept
    after = {s.name: s for s in open_manifest(out).shards}
    assert kept.stat().st_mtime_ns == mtime and after["shard-00000"] == before["shard-00000"]
    assert after["shard-00003"] == before["shard-00003"]
    for name in ("shard-00001", "shard-00002"):  # redone, byte for byte the same files
        assert after[name].files == before[name].files


def test_a_folder_harvested_from_other_inputs_is_refused(harvest: Path, loaded, tmp_path: Path) -> None:
    out = tmp_path / "h"
    shutil.copytree(harvest, out)
    with pytest.raises(ValidationError, match=r"other inputs or settings.*max_length"):
        harvest_shards(loaded, HOOK, HarvestInputs("pack", PACK, max_length=16), out, shard_size=24)
    with pytest.raises(ValidationError, match=r"hookpoint"):
        harvest_shards(loaded, "blocks.1.hook_resid_post", HarvestInputs("pack", PACK), out, shard_size=24)
    with pytest.raises(ValidationError, match=r"source"):
        harvest_shards(loaded, HOOK, HarvestInputs("pack", "french"), out, shard_size=24)


def test_train_sae_reads_a_harvest_split_by_prompt(harvest: Path, tmp_path: Path, capsys) -> None:
    from interp_agent.cli import main
    from interp_agent.core.ranking.splits import HELD_OUT, assign_splits, salted
    from interp_agent.core.sae.data import from_activations
    from interp_agent.core.shards import iter_shard_activations

    cache = from_activations([harvest], tmp_path / "cache", held_out_fraction=0.3)
    fnv = np.concatenate([t["prompt_fnv"] for t in iter_shard_activations(open_manifest(harvest))])
    pidx = np.concatenate([t["prompt_index"] for t in iter_shard_activations(open_manifest(harvest))])
    held = assign_splits(salted(fnv, "interp-agent"), 0.3) == HELD_OUT
    assert cache.n_held_out == int(held.sum()) and cache.n_train == int((~held).sum()) and cache.hookpoint == HOOK
    assert not set(pidx[held]) & set(pidx[~held])  # no prompt straddles the split
    code = main(["train-sae", "--activations", str(harvest), "--latent-dim", "64", "--k", "4", "--steps", "20",
                 "--out", str(tmp_path / "sae"), "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and payload["metrics"]["sae"]["d_sae"] == 64


def test_inspect_ranks_a_harvest_as_its_records_in_one_dataset(harvest: Path, tmp_path: Path, capsys) -> None:
    from interp_agent.cli import main
    from interp_agent.core.formats.parquet import iter_parquet_records, write_parquet_dataset

    manifest = open_manifest(harvest)
    one = write_parquet_dataset(tmp_path / "one", (r for s in manifest.shards
                                                   for r in iter_parquet_records(manifest.shard_dir(s) / "records")))
    reports = []
    for name, records in (("harvest", harvest), ("one", one)):
        code = main(["inspect", "--model", "smollm2-135m", "--criterion", "a unit of measurement comes next",
                     "--backend", "records", "--records", str(records), "--top-k", "10", "--out",
                     str(tmp_path / f"r-{name}"), "--json"])
        capsys.readouterr()
        assert code == 0
        reports.append(json.loads((tmp_path / f"r-{name}" / "report.json").read_text()))
    ids = [[f["feature_id"] for f in r["features"]] for r in reports]
    assert ids[0] == ids[1] and len(ids[0]) == 10 and ids[0][0].startswith("L2:D")
    for a, b in zip(*(r["features"] for r in reports), strict=True):  # equal up to the order of float sums
        assert a["importance"] == pytest.approx(b["importance"], rel=1e-9)
        for split in ("train", "held_out"):
            x, y = a["association"][split], b["association"][split]
            assert set(x) == set(y)
            for key in x:
                assert np.allclose(np.asarray(x[key], float), np.asarray(y[key], float), rtol=1e-9, atol=1e-12), key


def test_inspect_names_the_corrupt_shard_of_a_harvest(harvest: Path, tmp_path: Path) -> None:
    from interp_agent.core.ranking import RecordsSource

    out = tmp_path / "h"
    shutil.copytree(harvest, out)
    (out / "shards" / "shard-00003" / "records" / "rows.parquet").unlink()
    with pytest.raises(InputFileError, match=r"shard-00003/records/rows.parquet.*missing.*re-run"):
        RecordsSource(out)


def test_a_corpus_harvests_contexts_without_records(loaded, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"The river {i} runs past the old mill and the garden of seven trees." for i in
                                range(30)))
    manifest = harvest_shards(loaded, HOOK, HarvestInputs("corpus", str(corpus), context_length=16, max_contexts=10),
                              tmp_path / "c", shard_size=4)
    assert manifest.identity["mode"] == "contexts" and not manifest.has_records and manifest.n_shards == 3
    assert [s.n_rows for s in manifest.shards] == [4 * 15, 4 * 15, 2 * 15]
    from interp_agent.core.shards import record_folders

    with pytest.raises(ValidationError, match="no per-prompt records"):
        record_folders(tmp_path / "c")


def test_harvest_cli_prints_the_manifest_summary(harvest: Path, tmp_path: Path, capsys) -> None:
    from interp_agent.cli.harvest import add_harvest_parser

    parser = argparse.ArgumentParser()
    add_harvest_parser(parser.add_subparsers())
    out = tmp_path / "h"
    shutil.copytree(harvest, out)  # complete: the CLI resumes it without loading shards again
    args = parser.parse_args(["harvest", "--hookpoint", HOOK, "--pack", PACK, "--out", str(out), "--shard-size", "24",
                              "--json"])
    assert args.func(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["complete"] and payload["totals"]["n_shards_done"] == 4 and payload["records"]
    from interp_agent.cli import main

    code = main(["harvest", "--hookpoint", HOOK, "--pack", PACK, "--corpus", "builtin", "--out", str(out)])
    assert code == 2 and "exactly one of --dataset, --pack or --corpus" in capsys.readouterr().err


def _same_evidence(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for fid, w in want.items():
        g = got[fid]
        assert (g.n_active_contexts, g.kind) == (w.n_active_contexts, w.kind), fid
        assert g.density == pytest.approx(w.density) and g.max_activation == pytest.approx(w.max_activation, rel=1e-4)
        assert g.active_threshold == pytest.approx(w.active_threshold, rel=1e-4, abs=1e-5)
        assert [(e.context, e.role, e.split) for e in g.examples] == [(e.context, e.role, e.split) for e in w.examples]
        for a, b in zip(g.examples, w.examples, strict=True):
            assert (a.acts is None) == (b.acts is None)
            if a.acts is not None and b.acts is not None:
                np.testing.assert_allclose(a.acts, b.acts, rtol=1e-4, atol=1e-4)


def test_explain_evidence_from_a_corpus_harvest_equals_the_model_pass(loaded, tmp_path: Path) -> None:
    from interp_agent.core.explain.corpus import load_corpus, tokenize_corpus
    from interp_agent.core.explain.harvest import harvest_evidence
    from interp_agent.core.explain.select import Selection
    from interp_agent.core.explain.sources import basis_source, sae_source
    from interp_agent.core.models.hookpoints import resolve_hookpoint
    from interp_agent.core.sae.lens import SaeWeights
    from interp_agent.core.shards import stored_contexts

    rng = np.random.default_rng(0)
    words = "rain snow storm bread cheese soup river music seven forty train garden".split()
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(words, 9)) for _ in range(120)))
    harvest_shards(loaded, HOOK, HarvestInputs("corpus", str(corpus), context_length=16, max_contexts=48),
                   tmp_path / "c", shard_size=10)
    contexts, info, stored = stored_contexts(tmp_path / "c", model=loaded.name, hookpoint=HOOK,
                                             tokenizer=loaded.tokenizer, context_length=16, max_contexts=48,
                                             held_out_fraction=0.5, seed=3)
    live = tokenize_corpus(loaded.tokenizer, load_corpus(corpus), context_length=16, max_contexts=48,
                           held_out_fraction=0.5, seed=3)
    np.testing.assert_array_equal(contexts.token_ids, live.token_ids)
    np.testing.assert_array_equal(contexts.held_out, live.held_out)
    assert contexts.tokens == live.tokens and info["sha256"] == load_corpus(corpus).sha256
    point = resolve_hookpoint(loaded.model, HOOK)
    W = (rng.normal(size=(576, 48)) / 24).astype(np.float32)  # a random TopK SAE (synthetic)
    sae = SaeWeights(HOOK, W, np.zeros(48, np.float32), W.T.copy(), np.zeros(576, np.float32), None, "topk", 4)
    sel = Selection(n_top=4, n_bins=2, per_bin=2, n_random=4)
    for source in (sae_source(sae, point), basis_source(loaded, point, feature_ids=[f"L2:D{i}" for i in range(8)])):
        want, _ = harvest_evidence(loaded, live, point, source, selection=sel, batch_size=8, seed=3)
        got, _ = harvest_evidence(loaded, contexts, point, source, selection=sel, batch_size=8, seed=3, stored=stored)
        _same_evidence(got, want)
        assert sum(f.n_active_contexts > 4 for f in got.values()) >= 4
    with pytest.raises(ValidationError, match="context_length 16, this explain 32"):
        stored_contexts(tmp_path / "c", model=loaded.name, hookpoint=HOOK, tokenizer=loaded.tokenizer,
                        context_length=32, max_contexts=None, held_out_fraction=0.5, seed=3)


def test_explain_cli_takes_a_corpus_harvest_as_its_corpus(loaded, tmp_path: Path, capsys) -> None:
    from interp_agent.cli import main

    rng = np.random.default_rng(1)
    words = "rain snow storm bread cheese soup river music seven forty train garden".split()
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(words, 9)) for _ in range(200)))
    harvest_shards(loaded, HOOK, HarvestInputs("corpus", str(corpus), context_length=16, max_contexts=80),
                   tmp_path / "c", shard_size=40)
    code = main(["explain", "--hookpoint", HOOK, "--feature", "L2:D0", "--corpus", str(tmp_path / "c"),
                 "--context-length", "16", "--max-contexts", "80", "--device", "cpu", "--out", str(tmp_path / "x"),
                 "--json"])
    capsys.readouterr()
    summary = json.loads((tmp_path / "x" / "explain.json").read_text())
    assert code == 0 and summary["corpus"]["harvest"] == str(tmp_path / "c") and summary["n_contexts"] == 80
    assert summary["corpus"]["sha256"] == json.loads((tmp_path / "c" / "manifest.json").read_text())[
        "source"]["corpus"]["sha256"]
