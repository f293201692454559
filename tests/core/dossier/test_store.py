"""The dossier file: locked read-modify-write across processes, clear errors for hand edits, missing runs."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest

from interp_agent.core.dossier import Claim, Dossier, DossierStore, Evidence, RunRef, file_run
from interp_agent.core.errors import InputFileError, ValidationError

N_PROCESSES = 4
N_ITEMS = 20


def _item(worker: int, i: int) -> tuple[Claim, Evidence]:
    claim = Claim.new("tracks", "m", f"L{worker}:D{i}", criterion="c")
    ev = Evidence.new("correlational", "supports", f"worker {worker} item {i}", {"worker": worker, "i": i},
                      RunRef(f"runs/w{worker}", "report.json"), provenance="correlational", tool="inspect")
    return claim, ev


def _file_items(path: str, worker: int, barrier) -> None:
    """One process: wait for the others, then file N_ITEMS claims one update at a time (each on a shared
    claim too, so every process also appends to the same claim)."""
    store = DossierStore(path)
    shared = Claim.new("causes", "m", "shared", criterion="c")
    barrier.wait()
    for i in range(N_ITEMS):
        claim, ev = _item(worker, i)
        shared_ev = Evidence.new("causal", "supports", f"w{worker} i{i}", {"worker": worker, "i": i},
                                 RunRef(f"runs/w{worker}", "summary.json"), provenance="interventional",
                                 tool="intervene")
        store.update(lambda d, c=claim, e=ev, s=shared_ev: d.add(c, [e]).add(shared, [s]))


def test_processes_filing_at_once_lose_no_claim_or_evidence(tmp_path: Path):
    path = tmp_path / "dossiers" / "race.json"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(N_PROCESSES)
    procs = [ctx.Process(target=_file_items, args=(str(path), w, barrier)) for w in range(N_PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * N_PROCESSES
    dossier = DossierStore(path).read()
    ids = {c.id for c in dossier.claims}
    for w in range(N_PROCESSES):
        for i in range(N_ITEMS):
            assert _item(w, i)[0].id in ids, (w, i)
    shared = next(c for c in dossier.claims if c.feature_id == "shared")
    assert len(shared.evidence) == N_PROCESSES * N_ITEMS
    assert len(dossier.claims) == N_PROCESSES * N_ITEMS + 1


def _update_once(path: str) -> None:
    claim, ev = _item(99, 0)
    DossierStore(path).update(lambda d: d.add(claim, [ev]))


def test_an_update_waits_for_the_lock_another_process_holds(tmp_path: Path):
    store = DossierStore.open(tmp_path / "dossiers" / "held.json")
    ctx = multiprocessing.get_context("spawn")
    with store.locked():
        child = ctx.Process(target=_update_once, args=(str(store.path),))
        child.start()
        time.sleep(1.5)  # ample for a spawned child to import and reach the lock
        assert child.is_alive(), "the update ran while another process held the lock"
        assert store.read().claims == ()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert len(store.read().claims) == 1


def test_open_creates_an_empty_dossier_beside_its_lock_file(tmp_path: Path):
    store = DossierStore.open(tmp_path / "dossiers" / "units.json")
    assert store.name == "units" and store.workspace == tmp_path
    assert store.read() == Dossier(name="units", created=store.read().created)
    assert store.lock_path.parent == store.path.parent
    text = store.path.read_text()
    assert text.startswith("{\n  \"schema_version\": \"interp-agent.dossier.v1\"")


@pytest.mark.parametrize("name", ["../escape", ".hidden", "a/b", "", "x" * 81, "sp ace"])
def test_unsafe_dossier_names_are_refused(tmp_path: Path, name: str):
    with pytest.raises(ValidationError, match="safe file name"):
        DossierStore.in_workspace(tmp_path, name)


def test_a_file_that_is_not_json_names_the_line(tmp_path: Path):
    store = DossierStore.open(tmp_path / "dossiers" / "units.json")
    lines = store.path.read_text().splitlines()
    lines[2] = lines[2].rstrip(",")  # drop a comma after "name"
    store.path.write_text("\n".join(lines))
    with pytest.raises(InputFileError) as err:
        store.read()
    assert err.value.line == 4 and err.value.path == str(store.path)
    assert "units.json:4" in str(err.value) and "comma" in (err.value.hint or "")


def test_a_bad_field_names_the_file_and_the_field_path(workspace: Path):
    store = DossierStore.in_workspace(workspace, "units")
    file_run(store, "inspect", workspace / "runs" / "toy-a")
    raw = json.loads(store.path.read_text())
    raw["claims"][1]["evidence"][0]["stance"] = "maybe"
    store.path.write_text(json.dumps(raw, indent=2))
    before = store.path.read_text()
    with pytest.raises(InputFileError) as err:
        store.read()
    assert err.value.field == "claims[1].evidence[0].stance"
    assert "supports" in err.value.message and err.value.hint
    with pytest.raises(InputFileError):
        file_run(store, "inspect", workspace / "runs" / "toy-b")
    assert store.path.read_text() == before, "a broken dossier must not be overwritten"


def test_a_file_renamed_by_hand_is_refused_until_its_name_matches(tmp_path: Path):
    store = DossierStore.open(tmp_path / "dossiers" / "units.json")
    other = DossierStore(tmp_path / "dossiers" / "other.json")
    other.path.write_text(store.path.read_text())
    with pytest.raises(InputFileError, match="other.json") as err:
        other.read()
    assert err.value.field == "name"


def test_check_path_refuses_a_broken_file_and_creates_nothing(tmp_path: Path):
    path = tmp_path / "dossiers" / "new.json"
    assert DossierStore.check_path(path).name == "new" and not path.exists()
    path.parent.mkdir(parents=True)
    path.write_text("{")
    with pytest.raises(InputFileError):
        DossierStore.check_path(path)


def test_evidence_whose_run_folder_is_gone_is_flagged_not_dropped(workspace: Path):
    import shutil

    store = DossierStore.in_workspace(workspace, "units")
    file_run(store, "intervene", workspace / "runs" / "iv1", run_id="iv1")
    assert store.missing_runs() == ()
    shutil.rmtree(workspace / "runs" / "iv1")
    dossier = store.read()
    missing = store.missing_runs(dossier)
    assert len(dossier.claims) == 3 and all(c.evidence for c in dossier.claims)
    assert {m.claim_id for m in missing} == {c.id for c in dossier.claims} | {None}
    assert all(m.reason == "run folder not found" and m.folder == "runs/iv1" for m in missing)
    assert not store.run_exists(dossier.claims[0].evidence[0].run)


def test_open_gives_a_new_dossier_its_model_and_leaves_an_empty_criterion_to_the_first_run(workspace: Path):
    store = DossierStore.open(workspace / "dossiers" / "inv.json", model="toy/model-a", criterion="")
    assert store.read().models == ("toy/model-a",) and store.read().criterion is None
    file_run(store, "inspect", workspace / "runs" / "toy-a")
    again = DossierStore.open(store.path, model="other", criterion="ignored for an existing dossier")
    assert again.read().models == ("toy/model-a",) and again.read().criterion is not None
