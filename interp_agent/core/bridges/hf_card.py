"""The README.md card of a published run folder: what it is, which model, criterion, metrics, provenance, how to load.

The card is built only from the run's own artifacts (report.json, metrics.json,
summary.json, cfg.json, matches.json); every number in it says where it comes from, and a
run built from synthetic data says so in the title.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from interp_agent._version import __version__
from interp_agent.core.bridges.hf_plan import PublishPlan, RepoType, plan_publish
from interp_agent.core.errors import InputFileError

_TOP_FEATURES = 10
_VERDICTS = 20
_FILES_LISTED = 200


def _shallowest(plan: PublishPlan, name: str) -> str | None:
    """Path in the repo of the planned file called ``name`` nearest the top, if any."""
    hits = [f.path_in_repo for f in plan.files if f.path_in_repo.rsplit("/", 1)[-1] == name]
    return min(hits, key=lambda p: (p.count("/"), p)) if hits else None


def _read(folder: Path, rel: str | None) -> dict[str, Any] | None:
    if rel is None:
        return None
    path = folder / rel
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputFileError(
            path, f"not valid JSON: {exc.msg}", line=exc.lineno, hint="fix or remove the file before publishing"
        ) from None
    except OSError as exc:
        raise InputFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    if not isinstance(doc, dict):
        raise InputFileError(path, f"expected a JSON object, found {type(doc).__name__}")
    return doc


def _sae_folders(plan: PublishPlan) -> list[str]:
    """Folders (relative, '' for the top) holding an SAE: cfg.json beside SAE Lens or sparsify weights."""
    names: dict[str, set[str]] = {}
    for f in plan.files:
        parent, _, name = f.path_in_repo.rpartition("/")
        names.setdefault(parent, set()).add(name)
    return sorted(
        (d for d, n in names.items() if "cfg.json" in n and n & {"sae_weights.safetensors", "sae.safetensors"}),
        key=lambda d: (d.count("/") + bool(d), d),
    )


def _cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _synthetic(*docs: dict[str, Any] | None) -> bool:
    for doc in docs:
        if not doc:
            continue
        prov = doc.get("provenance")
        if doc.get("synthetic") is True or (isinstance(prov, dict) and prov.get("synthetic") is True):
            return True
    return False


def _association(feature: dict[str, Any]) -> str:
    assoc = feature.get("association") or {}
    for split in ("held_out", "train"):
        stats = assoc.get(split) or {}
        if stats.get("pearson_r") is not None:
            auroc = f", AUROC {stats['auroc']:.3f}" if stats.get("auroc") is not None else ""
            return f"r {stats['pearson_r']:+.3f}{auroc} ({split.replace('_', '-')}, n {stats.get('n')})"
    return "—"


def _causal(feature: dict[str, Any]) -> str:
    causal = feature.get("causal")
    if not causal or causal.get("mean_effect") is None:
        return "—"
    ci = causal.get("ci95")
    interval = f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci and None not in ci else ""
    return f"{causal['mean_effect']:+.3f}{interval} (n {causal.get('n')})"


def _front_matter(sae: bool, synthetic: bool, repo_type: str) -> str:
    meta: dict[str, Any] = {}
    if sae and repo_type == "model":
        meta["library_name"] = "saelens"
    tags = ["interp-agent", "mechanistic-interpretability"]
    if sae:
        tags += ["sparse-autoencoder", "saelens"]
    if synthetic:
        tags.append("synthetic")
    meta["tags"] = tags
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _title(
    model: str | None, hookpoint: str | None, criterion: str | None, sae: bool, report: bool, synthetic: bool
) -> str:
    if sae:
        what = f"Sparse autoencoder for {model or 'stored activations'}" + (f" at {hookpoint}" if hookpoint else "")
    elif report:
        what = f"Features of {model or 'a model'} ranked against a criterion"
    elif criterion:
        what = f"Interventions on {model or 'a model'} for a criterion"
    else:
        what = "interp-agent run"
    return f"# {'[SYNTHETIC] ' if synthetic else ''}{what}"


def _metrics_lines(
    metrics: dict[str, Any] | None,
    report: dict[str, Any] | None,
    summary: dict[str, Any] | None,
    rel: dict[str, str | None],
    synthetic: bool,
) -> list[str]:
    lines: list[str] = ["## Metrics", ""]
    held = (metrics or {}).get("held_out") or {}
    if held:
        lines += [
            f"SAE reconstruction on {held.get('n_rows', '?')} held-out rows the SAE was not trained on "
            f"(`{rel['metrics']}`):",
            "",
            "| metric | value |",
            "|---|---|",
        ]
        for key, label in (
            ("fvu", "fraction of variance unexplained (FVU)"),
            ("mse", "MSE per element"),
            ("l0", "L0 (active latents per row)"),
            ("dead_fraction", "dead latents"),
            ("dense_fraction", "dense latents (active on > 10% of rows)"),
        ):
            lines.append(f"| {label} | {_cell(held.get(key))} |")
        lines.append("")
    splice = (metrics or {}).get("splice") or {}
    if splice.get("ce_loss_clean") is not None:
        lines += [
            f"Spliced into the model on {splice.get('n_prompts', '?')} held-out prompts:",
            "",
            "| next-token CE clean | spliced | mean-ablated | loss recovered | KL(clean ‖ spliced) |",
            "|---|---|---|---|---|",
            f"| {_cell(splice.get('ce_loss_clean'))} | {_cell(splice.get('ce_loss_spliced'))} | "
            f"{_cell(splice.get('ce_loss_mean_ablated'))} | {_cell(splice.get('loss_recovered'))} | "
            f"{_cell(splice.get('kl_clean_to_spliced'))} |",
            "",
        ]
    features = (report or {}).get("features") or []
    if features:
        kinds = (
            "all synthetic: generated data, not measurements"
            if synthetic
            else "association is correlational (held-out split when it has one), the causal effect interventional"
        )
        lines += [
            f"Top {min(len(features), _TOP_FEATURES)} of {len(features)} ranked features (`{rel['report']}`); {kinds}:",
            "",
            "| rank | feature | label | importance | association | causal effect [95% CI] |",
            "|---|---|---|---|---|---|",
        ]
        for f in features[:_TOP_FEATURES]:
            lines.append(
                f"| {f.get('rank')} | `{_cell(f.get('feature_id'))}` | {_cell(f.get('label'))} | "
                f"{_cell(f.get('importance'))} | {_association(f)} | {_causal(f)} |"
            )
        lines.append("")
    rows = (summary or {}).get("features") or []
    if rows:
        lines += [
            f"Intervention verdicts (`{rel['summary']}`; effects on held-out prompts with 95% intervals, against "
            "generated controls):",
            "",
            "| feature | verdict | effect [95% CI] | control effect | KL on the other class |",
            "|---|---|---|---|---|",
        ]
        for f in rows[:_VERDICTS]:
            eff = f.get("effect") or {}
            ci = eff.get("ci95")
            interval = f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci and None not in ci else ""
            mean = eff.get("mean")
            lines.append(
                f"| `{_cell(f.get('feature_id'))}` | {_cell(f.get('verdict'))} | "
                f"{'—' if mean is None else f'{mean:+.4f}'}{interval} | "
                f"{_cell((f.get('control_effect') or {}).get('mean'))} | "
                f"{_cell((f.get('side_effect') or {}).get('kl_on_other_class'))} |"
            )
        lines.append("")
    if len(lines) == 2:
        lines += ["No metrics file (metrics.json, report.json, summary.json) in this run.", ""]
    return lines


def _inputs(docs: dict[str, dict[str, Any] | None]) -> list[str]:
    lines = []
    for rel, doc in docs.items():
        if not doc:
            continue
        raw = doc.get("provenance")
        prov: dict[str, Any] = raw if isinstance(raw, dict) else {}
        for item in prov.get("inputs") or []:
            name = Path(str(item.get("path", ""))).name
            lines.append(f"- `{rel}`: {item.get('role')} `{name}` sha256 `{item.get('sha256')}`")
        source = ((doc.get("data") or {}).get("source") or {}) if isinstance(doc.get("data"), dict) else {}
        for p, digest in zip(source.get("paths") or [], source.get("sha256") or [], strict=False):
            lines.append(f"- `{rel}`: {source.get('kind', 'input')} `{Path(str(p)).name}` sha256 `{digest}`")
    return lines


def render_card(
    path: str | Path, repo_id: str, *, repo_type: RepoType = "model", plan: PublishPlan | None = None
) -> str:
    """The README.md (model or dataset card) for publishing the run folder ``path`` as ``repo_id``.

    Raises:
        ValidationError: see ``plan_publish`` (when no plan is given).
        InputFileError: an artifact the card reads is not valid JSON (names the file).
    """
    plan = plan if plan is not None else plan_publish(path, repo_id, repo_type)
    folder = plan.folder
    rel = {name: _shallowest(plan, f"{name}.json") for name in ("report", "metrics", "summary", "matches")}
    report, metrics, summary, matches = (_read(folder, rel[k]) for k in ("report", "metrics", "summary", "matches"))
    saes = _sae_folders(plan)
    cfg = _read(folder, f"{saes[0]}/cfg.json" if saes and saes[0] else "cfg.json") if saes else None
    synthetic = _synthetic(report, metrics, summary, matches)
    sae_info = (metrics or {}).get("sae") or {}
    cfg_meta = (cfg or {}).get("metadata") or {}
    sae_model = (sae_info.get("model") or cfg_meta.get("model_name")) if saes else None
    run_model = (report or {}).get("model") or (summary or {}).get("model")
    model = sae_model if saes else run_model
    live = (report or {}).get("live") or {}
    hookpoint = (
        sae_info.get("hookpoint") or cfg_meta.get("hook_name") or ", ".join(live.get("hookpoints") or []) or None
    )
    criterion = (report or {}).get("criterion") or (summary or {}).get("criterion")

    lines = [
        _front_matter(bool(saes), synthetic, repo_type),
        _title(model, hookpoint, criterion, bool(saes), report is not None, synthetic),
        "",
    ]
    if synthetic:
        lines += [
            "> **Synthetic.** These artifacts were built from generated data (interp-agent's toy backend or "
            "records marked synthetic): no model was measured, and every number below is synthetic.",
            "",
        ]
    lines += [
        f"Published with interp-agent {__version__} from the run folder `{folder.name}`.",
        "",
        "## What this is",
        "",
    ]
    for d in saes:
        where = f"`{d}/`" if d else "the top folder"
        layout = (
            "SAE Lens layout (`cfg.json`, `sae_weights.safetensors`)"
            if any(f.path_in_repo == (f"{d}/" if d else "") + "sae_weights.safetensors" for f in plan.files)
            else "sparsify layout"
        )
        lines.append(
            f"- a sparse autoencoder in {where}, {layout}"
            + (
                f": {sae_info.get('architecture') or (cfg or {}).get('architecture')}, d_in {(cfg or {}).get('d_in')}, "
                f"d_sae {(cfg or {}).get('d_sae')}" + (f", k {(cfg or {}).get('k')}" if (cfg or {}).get("k") else "")
                if cfg and d == saes[0]
                else ""
            )
        )
    if report:
        lines.append(
            f"- `{rel['report']}`: {len(report.get('features') or [])} features ranked against the criterion "
            f"({report.get('backend')} backend), with held-out and, where given, causal evidence"
        )
    if summary:
        lines.append(
            f"- `{rel['summary']}`: interventions on {len(summary.get('features') or [])} features with controls"
        )
    if matches:
        lines.append(f"- `{rel['matches']}`: features matched one to one across two reports")
    records = [f.path_in_repo for f in plan.files if f.path_in_repo.endswith(("records.jsonl", "interventions.jsonl"))]
    if records:
        lines.append("- records: " + ", ".join(f"`{r}`" for r in records[:8]) + (" …" if len(records) > 8 else ""))
    lines += ["", "## Model", ""]
    if saes:
        lines.append(
            f"- SAE trained on: `{sae_model}`"
            if sae_model
            else "- SAE trained on: stored activations (no model recorded)"
        )
    if run_model and (not saes or run_model != sae_model):
        lines.append(f"- model of the report and interventions: `{run_model}`")
    lines.append(f"- hookpoint: `{hookpoint or 'not recorded'}`")
    if live.get("model_info"):
        info = live["model_info"]
        lines.append(f"- {info.get('n_layers')} layers, d_model {info.get('d_model')}, source {info.get('source')}")
    lines += [
        "",
        "## Criterion",
        "",
        f"> {' '.join(str(criterion).split())}" if criterion else "No criterion (an unsupervised SAE).",
        "",
    ]
    lines += _metrics_lines(metrics, report, summary, rel, synthetic)

    lines += ["## Provenance", ""]
    versions = sorted(
        {
            str(d["provenance"].get("tool_version"))
            for d in (report, metrics, summary, matches)
            if d and isinstance(d.get("provenance"), dict) and d["provenance"].get("tool_version")
        }
    )
    lines.append(f"- made with interp-agent {', '.join(versions) or 'unknown version'}; published with {__version__}")
    if synthetic:
        lines.append("- **synthetic**: every number comes from generated data, not from a model")
    else:
        if report:
            lines.append(
                f"- correlational: association, specificity and stability in {rel['report']} (ranked on a "
                "training split, reported on a held-out split)"
            )
        causal_in = (
            [f"causal effects in {rel['report']}"]
            if report and any(f.get("causal") for f in report.get("features") or [])
            else []
        )
        causal_in += [f"the verdicts in {rel['summary']}"] if summary else []
        if causal_in:
            lines.append(
                f"- interventional: {' and '.join(causal_in)} (effects of interventions on a behaviour score, "
                "with controls where the records have them)"
            )
        if metrics:
            lines.append("- SAE metrics: measured on held-out rows; splice metrics on held-out prompts")
    inputs = _inputs(
        {
            r: d
            for r, d in (
                (rel["report"], report),
                (rel["metrics"], metrics),
                (rel["summary"], summary),
                (rel["matches"], matches),
            )
            if r
        }
    )
    lines += (
        ["- inputs (file name and SHA-256):", *["  " + line for line in inputs]]
        if inputs
        else ["- inputs: none recorded"]
    )
    lines += ["", "## Files", "", "| file | bytes |", "|---|---|"]
    lines += [f"| `{_cell(f.path_in_repo)}` | {f.size:,} |" for f in plan.files[:_FILES_LISTED]]
    if len(plan.files) > _FILES_LISTED:
        lines.append(f"| … {len(plan.files) - _FILES_LISTED} more | |")
    lines += [
        "",
        "## How to load",
        "",
        "```python",
        "import json, os",
        "from huggingface_hub import snapshot_download",
        "",
    ]
    lines.append(
        f'path = snapshot_download("{repo_id}"' + (', repo_type="dataset"' if repo_type == "dataset" else "") + ")"
    )
    lens = [
        d for d in saes if any(f.path_in_repo == (f"{d}/" if d else "") + "sae_weights.safetensors" for f in plan.files)
    ]
    if lens:
        lines += [
            "",
            "from sae_lens import SAE",
            "",
            "sae = SAE.load_from_disk(" + (f'os.path.join(path, "{lens[0]}")' if lens[0] else "path") + ")",
        ]
    if report:
        lines += [
            "",
            f'report = json.load(open(os.path.join(path, "{rel["report"]}")))',
            'print([f["feature_id"] for f in report["features"][:5]])',
        ]
    lines += ["```", ""]
    return "\n".join(lines)


__all__ = ["render_card"]
