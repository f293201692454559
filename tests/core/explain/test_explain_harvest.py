"""The streamed corpus harvest against the in-memory reference, corpora, sources and the Parquet folder."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.explain.corpus import load_corpus, tokenize_corpus
from interp_agent.core.explain.evidence import EvidenceManifest, EvidenceSet, read_evidence, write_evidence
from interp_agent.core.explain.harvest import CALIBRATION_CONTEXTS, FeatureSource, harvest_evidence, split_batches
from interp_agent.core.explain.select import Selection, evidence_from_dense
from interp_agent.core.explain.sources import basis_source, direction_source, logit_effects, sae_source
from interp_agent.core.models.harvest import hook_reader
from interp_agent.core.models.hookpoints import resolve_hookpoint
from interp_agent.core.models.loading import tiny_model
from interp_agent.core.sae.lens import SaeWeights

WORDS = "rain snow bread cheese river music seven forty train garden letter storm".split()


@pytest.fixture(scope="module")
def tiny(one_torch_thread):
    """A tiny random Llama; torch runs on one thread for this module and gets its thread count back after."""
    return tiny_model("llama", n_layers=2, d_model=32, seed=3)


def _corpus_file(tmp_path: Path, n: int = 300) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(json.dumps({"text": " ".join(rng.choice(WORDS, 6))}) for _ in range(n)))
    return path


def _random_sae(d_in: int, d_sae: int, k: int | None, seed: int = 0) -> SaeWeights:
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d_in, d_sae)).astype(np.float32) / np.sqrt(d_in)
    return SaeWeights("blocks.1.hook_resid_post", W, rng.normal(size=d_sae).astype(np.float32) * 0.02,
                      W.T.copy(), np.zeros(d_in, np.float32), None, "topk" if k else "standard", k)


def _dense_acts(tiny, contexts, point, source: FeatureSource, batch_size: int) -> np.ndarray:
    """All activations in memory, from the same batches the harvest runs (GEMM results depend on batch shape)."""
    read = hook_reader(tiny.model, [point])
    out = np.zeros((len(source.ids), len(contexts), contexts.length), np.float32)
    for rows, _ in split_batches(contexts, batch_size):
        ids = torch.as_tensor(contexts.token_ids[rows], dtype=torch.long)
        with torch.no_grad():
            acts = read(ids, torch.ones_like(ids))[point.name].float()
            feats = source.transform(acts) if source.transform else acts
        if source.columns is not None:
            feats = feats[..., torch.as_tensor(source.columns)]
        out[:, rows] = feats.permute(2, 0, 1).numpy()
    return out


@pytest.mark.parametrize("k", [4, None])
def test_streamed_harvest_equals_the_in_memory_reference(tiny, tmp_path, k):
    corpus = load_corpus(_corpus_file(tmp_path))
    contexts = tokenize_corpus(tiny.tokenizer, corpus, context_length=16, held_out_fraction=0.5, seed=1)
    assert len(contexts) > CALIBRATION_CONTEXTS  # calibration batches are buffered, then replayed
    point = resolve_hookpoint(tiny.model, "blocks.1.hook_resid_post")
    source = sae_source(_random_sae(32, 48, k), point)
    sel = Selection(n_top=4, n_bins=3, per_bin=2, n_random=5)
    streamed, timings = harvest_evidence(tiny, contexts, point, source, selection=sel, batch_size=7, seed=5)
    reference = evidence_from_dense(contexts, _dense_acts(tiny, contexts, point, source, 7), source.ids,
                                    ["sae_latent"] * len(source.ids), selection=sel, seed=5)
    assert timings["harvest_s"] > 0
    assert list(streamed) == list(reference)
    live = [f for f in streamed.values() if f.n_active_contexts > 10]
    assert len(live) > 5
    for fid, want in reference.items():
        got = streamed[fid]
        assert got.n_active_contexts == want.n_active_contexts
        assert got.density == pytest.approx(want.density)
        assert got.mean_activation == pytest.approx(want.mean_activation, rel=1e-4)
        assert [(e.context, e.role, e.split, e.quantile) for e in got.examples] == \
            [(e.context, e.role, e.split, e.quantile) for e in want.examples]
        for a, b in zip(got.examples, want.examples, strict=True):
            assert (a.acts is None) == (b.acts is None)
            if a.acts is not None:
                np.testing.assert_allclose(a.acts, b.acts, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(got.hist_counts, want.hist_counts)


def test_examples_keep_to_their_split_and_roles(tiny, tmp_path):
    contexts = tokenize_corpus(tiny.tokenizer, load_corpus(_corpus_file(tmp_path)), context_length=16, seed=2)
    point = resolve_hookpoint(tiny.model, "blocks.1.hook_resid_post")
    evidence, _ = harvest_evidence(tiny, contexts, point, sae_source(_random_sae(32, 16, None), point))
    for f in evidence.values():
        for e in f.examples:
            assert e.split == contexts.split_of(e.context)
            if e.role == "random":
                assert e.max_activation <= f.active_threshold and e.acts is None
            else:
                assert e.max_activation > f.active_threshold
                assert e.acts is not None and float(e.acts[1:].max()) == pytest.approx(e.max_activation, rel=1e-5)
        tops = [e.max_activation for e in f.select("top", "explain")]
        assert tops == sorted(tops, reverse=True)


def test_dense_sources_fire_above_a_calibrated_percentile(tiny, tmp_path):
    contexts = tokenize_corpus(tiny.tokenizer, load_corpus(_corpus_file(tmp_path)), context_length=16, seed=2)
    point = resolve_hookpoint(tiny.model, "blocks.0.hook_resid_post")
    dims = basis_source(tiny, point, feature_ids=["L0:D3", "L0:D7"])
    evidence, _ = harvest_evidence(tiny, contexts, point, dims)
    assert list(evidence) == ["L0:D3", "L0:D7"]
    for f in evidence.values():
        assert f.kind == "residual_dim" and f.active_threshold != 0
        assert 0.002 < f.density < 0.05  # about 1% of tokens sit above a 99th percentile
    rng = np.random.default_rng(0)
    direction = direction_source({"direction:test": rng.normal(size=32)}, point)
    got, _ = harvest_evidence(tiny, contexts, point, direction)
    assert got["direction:test"].kind == "direction"
    neurons = basis_source(tiny, resolve_hookpoint(tiny.model, "blocks.1.mlp.hook_post"), feature_ids=["L1:N5"])
    assert neurons.kind == "neuron" and neurons.output_directions is not None
    assert neurons.output_directions.shape == (1, 32)


def test_logit_effects_read_directions_through_the_unembedding(tiny):
    W_U = tiny.model.get_output_embeddings().weight.detach().numpy()
    gain = tiny.model.model.norm.weight.detach().numpy()
    d = np.zeros((1, 32), np.float32)
    d[0, 4] = 1.0
    (up, down), = logit_effects(tiny, d, top=3)
    logits = W_U @ (gain * d[0])
    assert [v for _, v in up] == pytest.approx(sorted(logits, reverse=True)[:3], rel=1e-5)
    assert [v for _, v in down] == pytest.approx(sorted(logits)[:3], rel=1e-5)


def test_unknown_feature_ids_name_close_ones(tiny):
    point = resolve_hookpoint(tiny.model, "blocks.1.hook_resid_post")
    with pytest.raises(ValidationError, match="SAE:L1:F99") as err:
        sae_source(_random_sae(32, 16, None), point, feature_ids=["SAE:L1:F99"])
    assert "SAE:L1:F" in (err.value.hint or "")


def test_corpus_forms_and_bad_corpora(tmp_path):
    txt = tmp_path / "a.txt"
    txt.write_text("first paragraph\nstill first\n\nsecond one\n")
    assert load_corpus(txt).passages == ["first paragraph still first", "second one"]
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "b.jsonl.gz").write_bytes(gzip.compress(b'{"body": "hello there"}\n'))
    (folder / "c.txt").write_text("one line\nanother line\n")
    got = load_corpus(folder, text_field="body")
    assert got.passages == ["hello there", "one line", "another line"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": 3}\n')
    with pytest.raises(InputFileError, match=r"bad.jsonl:2: field 'text'"):
        load_corpus(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(InputFileError, match="no text"):
        load_corpus(empty)
    with pytest.raises(ValidationError, match="no such file"):
        load_corpus(tmp_path / "missing.jsonl")


def test_builtin_corpus_is_labelled_generated():
    corpus = load_corpus("builtin", max_passages=50)
    assert corpus.synthetic and "generated by the embedded model" in corpus.note
    assert len(corpus.passages) == 50 and all(len(p) > 40 for p in corpus.passages)


def test_evidence_folder_round_trips(tiny, tmp_path):
    contexts = tokenize_corpus(tiny.tokenizer, load_corpus(_corpus_file(tmp_path)), context_length=16, seed=2)
    point = resolve_hookpoint(tiny.model, "blocks.1.hook_resid_post")
    features, _ = harvest_evidence(tiny, contexts, point, sae_source(_random_sae(32, 8, None), point))
    manifest = EvidenceManifest("tiny", point.name, {"kind": "sae"}, {"name": "t"}, 16, len(contexts), 0.5, 2,
                                len(contexts) * 15)
    folder = write_evidence(tmp_path / "evidence", EvidenceSet(manifest, contexts, features))
    back = read_evidence(folder)
    assert back.manifest == manifest
    assert back.contexts.tokens == contexts.tokens
    np.testing.assert_array_equal(back.contexts.held_out, contexts.held_out)
    for fid, f in features.items():
        g = back.feature(fid)
        assert [(e.context, e.role) for e in g.examples] == [(e.context, e.role) for e in f.examples]
    (folder / "features.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputFileError, match="evidence"):
        read_evidence(folder)
    with pytest.raises(ValidationError, match="feature_id"):
        back.feature("SAE:L1:F1234")
