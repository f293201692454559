"""Benchmark: wall time of the CLI's model-free commands, whole process, start-up included.

Each command runs as its own process (``interp-agent …``, as a user runs it), N times,
round-robin with the other commands so that a drift of the machine's speed hits all of
them alike. Prints each command's median wall seconds (min and max beside it), its ratio
to a bare ``python -c pass`` measured in the same run, and its median peak RSS. With
``--interp-lab PATH`` (the ``interp-lab`` 3.1 console script of another environment) the
same commands of interp-lab run in the same rounds on the same inputs, and the last
column is ours / interp-lab.

Inputs: the seed examples (tests/fixtures/seed) and two 20-feature reports of the toy
backend, made once before timing. The embedding cache lives in a temporary folder
(``INTERP_AGENT_CACHE``): one untimed warm-up round fills it, and its wall times are
printed as the cold figures; the timed rounds are warm.

Goals: plan-scale and seed inspect within 0.5 s and at most interp-lab's time; match of
two 20-feature reports with text under 3 s warm.

    python tools/bench/cli_startup.py [--runs 5] [--interp-lab /path/to/venv/bin/interp-lab]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SEED = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "seed"
CRITERION = "the model is aware it is being evaluated"
TOY_CRITERION = "mentions a measurement unit"
PLAN = ["plan-scale", "--model-params", "70B", "--tokens", "1B", "--d-model", "8192", "--selected-layers", "4",
        "--latent-dim", "1M"]
GOAL_STARTUP_S = 0.5
GOAL_MATCH_TEXT_S = 3.0


@dataclass(frozen=True, slots=True)
class Case:
    """One command, ours and (when it has one) interp-lab's, on the same inputs."""

    name: str
    """Row label."""
    ours: list[str]
    """Arguments after ``interp-agent``."""
    theirs: list[str] | None
    """Arguments after ``interp-lab``; None where it has no such command."""
    note: str = ""
    """What differs between the two, if anything."""


@dataclass(slots=True)
class Timing:
    """Wall seconds and peak RSS (MB) of each run of one command line."""

    argv: list[str]
    seconds: list[float]
    rss_mb: list[float]


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Run ``argv`` once; wall seconds and its peak RSS in MB (the process's own, from wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"exit {proc.returncode}: {' '.join(argv)}")
    return seconds, usage.ru_maxrss / 1024  # Linux reports KiB


def _checked(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Run ``argv`` once, failing loudly with its stderr; returns its wall seconds."""
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    if proc.returncode:
        raise SystemExit(f"exit {proc.returncode}: {' '.join(argv)}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def _ours() -> list[str]:
    """The ``interp-agent`` console script of this interpreter, else ``python -m interp_agent.cli``."""
    script = Path(sys.executable).with_name("interp-agent")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "interp_agent.cli"]


def _interpreter_of(script: str) -> str | None:
    """The Python a console script starts (its shebang), to measure that interpreter's bare start too."""
    try:
        first = Path(script).read_text(errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return None
    return first[2:].strip().split()[0] if first.startswith("#!") and "python" in first else None


def cases(work: Path) -> list[Case]:
    """The commands timed, with their inputs under ``work`` (made by :func:`prepare`)."""
    seed_records = [
        "--records", str(SEED / "activation_records.jsonl"), "--interventions", str(SEED / "interventions.jsonl")
    ]
    return [
        Case("plan-scale", PLAN, PLAN),
        Case("profile-env", ["profile-env"], ["profile-env"]),
        Case("inspect records (seed)",
             ["inspect", "--model", "my/model", "--criterion", CRITERION, "--backend", "records",
                                        *seed_records, "--out", "out/rec"],
             ["inspect", "--model", "my/model", "--criterion", CRITERION, "--backend", "records", *seed_records,
              "--out", "out/il-rec"]),
        Case("inspect features (seed)",
             ["inspect", "--model", "my/model", "--criterion", CRITERION, "--backend", "features",
                                         "--features", str(SEED / "features.jsonl"), "--out", "out/feat"],
             ["inspect", "--model", "my/model", "--criterion", CRITERION, "--backend", "jsonl",
              "--features", str(SEED / "features.jsonl"), "--out", "out/il-feat"],
             "ours: all-MiniLM-L6-v2 label similarity (cached embeddings); interp-lab: lexical hash"),
        Case("match 20x20, no text", ["match", "--left", "toy-a", "--right", "toy-b", "--out", "out/m0/matches.json",
                                      "--no-text"],
             ["match", "--left", "il-toy-a/report.json", "--right", "il-toy-b/report.json", "--top-k", "20",
              "--weights", "text=0,activation=0.25,decoder=0.2,causal=0.2", "--out", "out/il-m0.json"],
             "interp-lab's toy reports have 16 features"),
        Case("match 20x20, text (warm)",
             ["match", "--left", "toy-a", "--right", "toy-b", "--out", "out/m1/matches.json"],
             ["match", "--left", "il-toy-a/report.json", "--right", "il-toy-b/report.json", "--top-k", "20",
              "--out", "out/il-m1.json"],
             "ours: all-MiniLM-L6-v2 from the embedding cache; interp-lab: its default lexical hash"),
        Case("export-graph", ["export-graph", "--report", "rec-report", "--out", "out/graph.json"],
             ["export-attribution-graph", "--report", "il-rec-report/report.json", "--out", "out/il-graph.json"]),
        Case("doctor --quick", ["doctor", "--quick"], ["doctor"],
             "interp-lab has no --quick; its doctor loads no model"),
    ]


def prepare(work: Path, ours: list[str], theirs: list[str] | None, env: dict[str, str]) -> None:
    """Make the reports the timed commands read (untimed)."""
    (work / "out").mkdir()
    records = ["--records", str(SEED / "activation_records.jsonl")]
    for side in ("a", "b"):
        _checked([*ours, "inspect", "--model", f"toy/model-{side}", "--criterion", TOY_CRITERION, "--backend", "toy",
                  "--top-k", "20", "--out", f"toy-{side}"], env, work)
    _checked(
        [*ours, "inspect", "--model", "my/model", "--criterion", CRITERION, *records, "--out", "rec-report"], env, work
    )
    if theirs:
        for side in ("a", "b"):
            _checked([*theirs, "inspect", "--model", f"toy/model-{side}", "--criterion", TOY_CRITERION,
                      "--backend", "toy",
                      "--top-k", "20", "--out", f"il-toy-{side}"], env, work)
        # interp-lab 3.1 cannot graph a report made with --interventions ("could not convert string to float")
        _checked([*theirs, "inspect", "--model", "my/model", "--criterion", CRITERION, "--backend", "records", *records,
                  "--out", "il-rec-report"], env, work)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each command (the median is printed)")
    ap.add_argument("--interp-lab", metavar="PATH", help="interp-lab's CLI (console script), timed on the same inputs")
    args = ap.parse_args()
    if args.runs < 1:
        raise SystemExit("--runs must be at least 1")
    ours = _ours()
    theirs = [args.interp_lab] if args.interp_lab else None
    if theirs and not shutil.which(theirs[0]):
        raise SystemExit(f"--interp-lab {args.interp_lab}: not an executable")
    with tempfile.TemporaryDirectory(prefix="cli-startup-") as tmp:
        work = Path(tmp)
        env = os.environ | {"INTERP_AGENT_CACHE": str(work / "cache")}
        prepare(work, ours, theirs, env)
        table = cases(work)
        lines: dict[str, list[str]] = {"python -c pass": [sys.executable, "-c", "pass"]}
        il_python = _interpreter_of(theirs[0]) if theirs else None
        if il_python and Path(il_python).resolve() != Path(sys.executable).resolve():
            lines["interp-lab's python -c pass"] = [il_python, "-c", "pass"]
        for case in table:
            lines[case.name] = [*ours, *case.ours]
            if theirs and case.theirs is not None:
                lines[f"il:{case.name}"] = [*theirs, *case.theirs]
        cold = {key: _checked(argv, env, work) for key, argv in lines.items()}  # warm-up: fills the caches
        timings = {key: Timing(argv, [], []) for key, argv in lines.items()}
        for _ in range(args.runs):
            for timing in timings.values():
                seconds, rss = _timed(timing.argv, env, work)
                timing.seconds.append(seconds)
                timing.rss_mb.append(rss)

    med = {key: statistics.median(t.seconds) for key, t in timings.items()}
    base = med["python -c pass"]
    print(f"{args.runs} runs each, round-robin; baseline python -c pass: {base * 1000:.1f} ms median; "
          f"{os.cpu_count()} cores")
    head = f"{'command':<27}{'median s':>9}{'min':>7}{'max':>7}{'x pass':>8}{'RSS MB':>8}{'cold s':>8}"
    if theirs:
        head += f"  | {'interp-lab s':>12}{'x pass':>8}{'RSS MB':>8}{'ours/il':>9}"
    print(head)
    for key in ["python -c pass", "interp-lab's python -c pass", *(c.name for c in table)]:
        if key not in timings:
            continue
        t = timings[key]
        row = (f"{key:<27}{med[key]:>9.3f}{min(t.seconds):>7.3f}{max(t.seconds):>7.3f}{med[key] / base:>8.1f}"
               f"{statistics.median(t.rss_mb):>8.0f}{cold[key]:>8.2f}")
        il = f"il:{key}"
        if il in timings:
            row += (f"  | {med[il]:>12.3f}{med[il] / base:>8.1f}{statistics.median(timings[il].rss_mb):>8.0f}"
                    f"{med[key] / med[il]:>9.2f}")
        print(row)
    notes = [f"{c.name}: {c.note}" for c in table if c.note and theirs]
    if notes:
        print("notes:\n  " + "\n  ".join(notes))
    for name in ("plan-scale", "inspect records (seed)"):
        met = "met" if med[name] <= GOAL_STARTUP_S else "NOT met"
        verdict = f"{name}: {med[name]:.3f} s, goal <= {GOAL_STARTUP_S} s: {met}"
        if f"il:{name}" in med:
            ok = med[name] <= med[f"il:{name}"]
            verdict += f"; <= interp-lab's {med[f'il:{name}']:.3f} s: {'met' if ok else 'NOT met'}"
        print(verdict)
    name = "match 20x20, text (warm)"
    print(f"{name}: {med[name]:.3f} s, goal < {GOAL_MATCH_TEXT_S} s: "
          f"{'met' if med[name] < GOAL_MATCH_TEXT_S else 'NOT met'}"
          f" (cold, first run with an empty embedding cache: {cold[name]:.2f} s)")


if __name__ == "__main__":
    main()
