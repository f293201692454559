"""``interp-agent explain`` on the command line: bad input names the flag; exports are written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interp_agent.cli import EXIT_BAD_INPUT, main
from interp_agent.core.errors import ModelUnavailableError
from interp_agent.core.explain.corpus import load_corpus


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("argv, words", [
    (["--hookpoint", "blocks.3.hook_resid_post", "--scorers", "detection"], ["--judge", "detection"]),
    (["--hookpoint", "blocks.3.hook_resid_post", "--scorers", "embedding,vibes"], ["--scorers", "vibes"]),
    ([], ["--sae", "--hookpoint"]),
    (["--hookpoint", "blocks.3.hook_resid_post", "--explainer", "none"], ["--explanations"]),
])
def test_bad_explain_calls_name_the_flag_and_exit_2(capsys, tmp_path: Path, argv, words) -> None:
    code, _, err = run(capsys, "explain", *argv, "--out", str(tmp_path / "x"))
    assert code == EXIT_BAD_INPUT
    assert all(w in err for w in words), err
    assert not (tmp_path / "x").exists()


def test_an_empty_corpus_file_is_named(capsys, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    code, _, err = run(capsys, "explain", "--hookpoint", "blocks.3.hook_resid_post", "--model", "smollm2-135m",
                       "--corpus", str(empty), "--out", str(tmp_path / "x"))
    assert code == EXIT_BAD_INPUT and "empty.txt" in err and "no text" in err


def test_an_unreachable_hub_dataset_says_what_to_do(monkeypatch) -> None:
    import datasets

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'no-such-owner/no-such-dataset' on the Hub (offline)")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)  # what the hub client raises with no network
    with pytest.raises(ModelUnavailableError, match="no-such-owner/no-such-dataset") as err:
        load_corpus("hf:no-such-owner/no-such-dataset")
    assert "built-in corpus" in (err.value.hint or "")


def test_explain_writes_labels_and_a_neuronpedia_export(capsys, tmp_path: Path, write_explain_inputs) -> None:
    write_explain_inputs(tmp_path, n_passages=300)
    code, out, _ = run(capsys, "explain", "--model", str(tmp_path / "model"), "--sae", str(tmp_path / "sae"),
                       "--corpus", str(tmp_path / "corpus.txt"), "--max-contexts", "300", "--context-length", "16",
                       "--n-features", "3", "--labels-out", str(tmp_path / "labels.csv"),
                       "--neuronpedia-out", str(tmp_path / "np.json"), "--neuronpedia-source", "1-res-test",
                       "--out", str(tmp_path / "run"), "--json")
    assert code == 0
    compact = json.loads(out)
    assert compact["n_explained"] >= 1 and compact["distribution"]["n"] == compact["n_explained"]
    assert (tmp_path / "labels.csv").read_text().startswith("feature_id")
    exported = json.loads((tmp_path / "np.json").read_text())
    assert exported and {"modelId", "layer", "index", "description"} <= set(exported[0])
    assert exported[0]["layer"] == "1-res-test"
