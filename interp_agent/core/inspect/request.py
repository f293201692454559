"""The inspect contract: one request object that the API, the CLI, the MCP tool and the job share.

``InspectRequest`` is the single definition of what ``inspect`` takes. Its field
docstrings are the parameters' descriptions: ``field_docs`` reads them (as sparsify's
configs do through simple_parsing), so the CLI's ``--help`` is written from them, the job
kind's allowed parameters are its field names, and a test checks the MCP tool's input
model against it. Adding a parameter is one field here plus its docstring.

Checks that need only the request are in ``__post_init__``; checks that need the run
(an output folder) belong to the backend (``core.inspect.backends``).
"""

from __future__ import annotations

import ast
import inspect as _pyinspect
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

from interp_agent.core.errors import ValidationError, arg
from interp_agent.core.ranking.config import RankingConfig

BackendName = Literal["records", "features", "toy", "hf", "neuronpedia", "saelens"]
BACKENDS: tuple[str, ...] = get_args(BackendName)
BACKEND_ALIASES: dict[str, BackendName] = {"jsonl": "features"}
"""Other names a backend answers to (jsonl: interp-lab's name of the features backend); reports name the canonical."""
BackendChoice = Literal["records", "features", "toy", "hf", "neuronpedia", "saelens", "jsonl"]
"""What ``backend`` accepts: a backend name or an alias."""
Pooling = Literal["last", "mean", "max"]

LIVE_BACKENDS: tuple[str, ...] = ("hf", "saelens")
"""Backends that harvest a live model (they read dataset/pack, hookpoints, pooling and sae)."""

CLI_RANKING_FIELDS: tuple[str, ...] = (
    "top_k", "candidates", "held_out_fraction", "split_salt", "bootstrap", "alpha", "seed",
)
"""RankingConfig fields the CLI exposes as flags (``--top-k`` …)."""


@dataclass(frozen=True, slots=True)
class InspectRequest:
    """What to rank against which criterion, from which evidence."""

    model: str
    """Model the evidence belongs to (checked against the records' model); for hf/saelens the model to load:
    smollm2-135m (embedded), a local folder or a hub id.
    """
    criterion: str = ""
    """Natural-language criterion to rank features against (a pack brings its own)."""
    backend: BackendChoice | None = None
    """records: activation records; features (alias jsonl): a feature JSONL dump (label similarity, no measured
    association); toy: generated planted records, labelled synthetic; hf: harvest a live model (smollm2-135m
    embedded, a local folder or a hub id) on a dataset or pack; neuronpedia: import feature cards (no criterion
    measurement unless records are given too); saelens: hf with an SAE (sae, or saelens_release and saelens_id),
    its latents harvested at its hookpoint and ranked. Default: inferred from what is given (neuronpedia refs:
    neuronpedia; a saelens release: saelens; prompts (dataset or pack): hf; records: records; only features:
    features).
    """
    records: str | Path | None = field(default=None, metadata={"path": True})
    """Activation records: JSONL file, Parquet dataset folder, or a harvest folder (``interp-agent harvest``)."""
    features: str | Path | None = field(default=None, metadata={"path": True})
    """Feature JSONL (labels, examples, signatures); required by the features backend."""
    interventions: tuple[str | Path, ...] | None = field(
        default=None, metadata={"path": True, "flag": "--interventions", "metavar": "FILE"})
    """Intervention records JSONL (causal evidence; repeatable: the rows of every file are pooled)."""
    allow_intervention_criterion_mismatch: bool = False
    """Use intervention rows whose criterion text differs from the criterion."""
    config: RankingConfig = field(default_factory=RankingConfig)
    """Ranking settings (split, top_k, candidates, bootstrap, alpha, seed)."""
    dataset: str | Path | None = field(default=None, metadata={"path": True, "backends": LIVE_BACKENDS})
    """Scored prompts JSONL {prompt_id, text, criterion_score} (hf backend)."""
    pack: str | None = field(default=None, metadata={"backends": LIVE_BACKENDS})
    """Built-in criterion pack instead of a dataset (hf backend), e.g. measurement_unit."""
    hookpoints: tuple[str, ...] | None = field(
        default=None, metadata={"flag": "--hookpoint", "metavar": "H", "backends": LIVE_BACKENDS})
    """TransformerLens hookpoint to harvest, e.g. blocks.15.hook_resid_post (repeatable; hf backend; default: a few
    middle layers).
    """
    pooling: Pooling = field(default="last", metadata={"backends": LIVE_BACKENDS})
    """One row per prompt from its tokens: last (next-token criteria), mean or max (hf backend)."""
    sae: str | Path | None = field(default=None, metadata={"path": True, "backends": LIVE_BACKENDS})
    """SAE Lens folder whose latents are ranked too, as SAE:L{layer}:F{i} (hf and saelens backends)."""
    neuronpedia: tuple[str | Path, ...] | None = field(default=None, metadata={"metavar": "REF_OR_FILE"})
    """A Neuronpedia feature (gpt2-small@6-res_scefr-ajt:650, its neuronpedia.org URL or API URL; fetched over the
    network, key from NEURONPEDIA_API_KEY, cached) or a SAEDashboard export file (repeatable; neuronpedia backend).
    """
    saelens_release: str | None = field(default=None, metadata={"backends": ("saelens",)})
    """SAE Lens pretrained release, e.g. gemma-scope-2b-pt-res-canonical (saelens backend; fetched once from the hub or
    its cache, then cached).
    """
    saelens_id: str | None = field(default=None, metadata={"backends": ("saelens",)})
    """SAE id within the saelens release, e.g. layer_12/width_16k/canonical."""

    def __post_init__(self) -> None:
        if self.backend is None:
            object.__setattr__(self, "backend", infer_backend({f.name: getattr(self, f.name) for f in fields(self)}))
        if self.backend not in BACKENDS and self.backend not in BACKEND_ALIASES:
            raise ValidationError(f"unknown {arg('backend', self.backend)}; use one of {', '.join(BACKENDS)} "
                                  f"(or an alias: {', '.join(f'{a} = {b}' for a, b in BACKEND_ALIASES.items())})")
        live = self.backend_name in LIVE_BACKENDS
        if (not self.criterion or not self.criterion.strip()) and not (live and self.pack):
            raise ValidationError(f"{arg('criterion')} is empty; describe what the features should relate to",
                                  hint=f"or give a built-in {arg('pack')}, which brings its own criterion")
        if self.pooling not in get_args(Pooling):
            raise ValidationError(
                f"{arg('pooling')} must be one of {', '.join(get_args(Pooling))}, got {self.pooling!r}")
        if not isinstance(self.config, RankingConfig):
            raise ValidationError(f"config must be a RankingConfig, got {type(self.config).__name__}")
        for name in ("hookpoints", "neuronpedia", "interventions"):  # lists become tuples: the request is immutable
            value: Any = getattr(self, name)
            if isinstance(value, (str, Path)):  # one name or path given where several may be
                value = (value,)
            if value is not None and not isinstance(value, tuple):
                value = tuple(value)
            object.__setattr__(self, name, value)
        self._check_backend_arguments(live)

    def _check_backend_arguments(self, live: bool) -> None:
        """Arguments that the chosen backend does not read are refused, naming the backend that does."""
        if self.neuronpedia and self.backend_name != "neuronpedia":
            raise ValidationError(f"{arg('neuronpedia')} refs/files are read by the neuronpedia backend",
                                  hint=f"set {arg('backend', 'neuronpedia')}, or leave {arg('backend')} out")
        if self.backend_name == "neuronpedia" and self.features is not None:
            raise ValidationError("the neuronpedia backend writes its imported cards as feature JSONL to the output "
                                  "folder", hint=f"drop {arg('features')}")
        if self.backend_name == "toy" and self.records is not None:
            raise ValidationError("the toy backend generates its own records",
                                  hint=f"drop {arg('records')}, or set {arg('backend', 'records')}")
        if (self.saelens_release or self.saelens_id) and self.backend_name != "saelens":
            raise ValidationError(f"{arg('saelens_release')}/{arg('saelens_id')} are read by the saelens backend",
                                  hint=f"set {arg('backend', 'saelens')}, or leave {arg('backend')} out")
        if live and self.records is not None:
            raise ValidationError(f"the {self.backend_name} backend harvests its own records",
                                  hint=f"drop {arg('records')}, or set {arg('backend', 'records')} to rank them")
        if self.backend_name == "records" and self.records is None:
            raise ValidationError(
                f"the records backend needs {arg('records')}: activation records (JSONL file or Parquet folder)",
                hint=f"give {arg('records')}; to harvest a live model on prompts give {arg('dataset')} or "
                     f"{arg('pack')} with {arg('backend', 'hf')}")
        if live and self.dataset is None and self.pack is None:
            raise ValidationError(
                f"the {self.backend_name} backend harvests a live model on prompts, and none were given",
                                  hint=f"give {arg('dataset')} (scored prompts JSONL) or a built-in {arg('pack')}")
        if self.backend_name == "saelens":
            from interp_agent.core.bridges.saelens import sae_for_inspection

            if self.sae is not None or not (self.saelens_release and self.saelens_id):
                sae_for_inspection(self.sae, self.saelens_release, self.saelens_id)  # its argument checks only
        if self.backend_name == "features" and self.features is None:
            raise ValidationError(f"the features backend needs {arg('features')}: a feature JSONL dump",
                                  hint=f"give {arg('features')}")

    @property
    def backend_name(self) -> BackendName:
        """The backend this request runs: the one given, or the one inferred from what it gives."""
        assert self.backend is not None, "__post_init__ sets the backend"
        return BACKEND_ALIASES.get(self.backend, self.backend)  # type: ignore[return-value]  # checked in __post_init__

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> InspectRequest:
        """A request from JSON parameters (a job's params): ``config`` is an object of RankingConfig fields.

        Raises:
            ValidationError: an unknown parameter, a bad config or an invalid request.
        """
        unknown = sorted(set(params) - set(param_names()))
        if unknown:
            raise ValidationError(f"unknown parameter(s) {unknown}; allowed: {', '.join(param_names())}")
        kwargs = dict(params)
        if kwargs.get("config") is not None:
            kwargs["config"] = ranking_config_from_json(kwargs["config"])
        else:
            kwargs.pop("config", None)
        return cls(**kwargs)


def infer_backend(given: Mapping[str, Any]) -> str:
    """The backend implied by the parameters given (a request's, or a job's params), its ``backend`` left out.

    Raises:
        ValidationError: nothing given that any backend reads.
    """
    if given.get("neuronpedia"):
        return "neuronpedia"
    if given.get("saelens_release") or given.get("saelens_id"):
        return "saelens"
    if given.get("dataset") is not None or given.get("pack") is not None:
        return "hf"
    if given.get("records") is not None:
        return "records"
    if given.get("features") is not None:
        return "features"
    raise ValidationError(
        "no evidence given: inspect needs prompts for a live model, activation records, a feature dump or "
        "Neuronpedia features",
        hint=f"give {arg('dataset')} or {arg('pack')} (a live model; backend hf), {arg('records')}, "
             f"{arg('features')} or {arg('neuronpedia')}; or {arg('backend', 'toy')} for generated demo data")


def ranking_config_from_json(config: Any) -> RankingConfig:
    """RankingConfig from a JSON object of its fields.

    Raises:
        ValidationError: not an object, or a field RankingConfig does not have.
    """
    if not isinstance(config, dict):
        raise ValidationError(f"config must be an object of RankingConfig fields, got {config!r}")
    try:
        return RankingConfig(**config)
    except TypeError as exc:
        names = ", ".join(f.name for f in fields(RankingConfig))
        raise ValidationError(f"bad config: {exc}; fields: {names}") from None


def ranking_config(**values: Any) -> RankingConfig:
    """RankingConfig from caller-facing settings; ``candidates`` is raised to ``top_k`` when below it."""
    if "top_k" in values:
        default = RankingConfig.__dataclass_fields__["candidates"].default
        values["candidates"] = max(values.get("candidates", default), values["top_k"])
    return RankingConfig(**values)


def param_names() -> tuple[str, ...]:
    """The parameter names of an inspect request (the job kind's allowed params), in field order."""
    return tuple(f.name for f in fields(InspectRequest))


def params_read_by(backend: str) -> tuple[str, ...]:
    """The parameters ``backend`` (or an alias) reads: every field but those scoped to other backends (``config``
    included)."""
    backend = BACKEND_ALIASES.get(backend, backend)
    return tuple(f.name for f in fields(InspectRequest) if backend in f.metadata.get("backends", BACKENDS))


def path_params() -> tuple[str, ...]:
    """Parameters that name files or folders (resolved inside the workspace by the server)."""
    return tuple(f.name for f in fields(InspectRequest) if f.metadata.get("path"))


@cache
def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its docstring (the string literal right after the field) for a dataclass."""
    try:
        tree = ast.parse(textwrap.dedent(_pyinspect.getsource(cls)))
    except (OSError, TypeError):  # no source shipped (a frozen or bytecode-only install): no descriptions
        return {}
    body = tree.body[0].body  # type: ignore[attr-defined]  # the parsed source is one class definition
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:], strict=False):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def choices(cls: type, name: str) -> tuple[str, ...] | None:
    """The closed choices of a ``Literal`` field, or None."""
    hint = _hints(cls)[name]
    if type(None) in get_args(hint):  # Optional[Literal[...]]: the Literal's choices
        hint = next(a for a in get_args(hint) if a is not type(None))
    args = get_args(hint)
    return args if args and all(isinstance(a, str) for a in args) and str(hint).startswith("typing.Literal") else None


def cli_options() -> list[tuple[str, dict[str, Any]]]:
    """``(flag, argparse keyword arguments)`` for each request field and CLI ranking field; help from docstrings."""
    specs: list[tuple[str, dict[str, Any]]] = []
    defaults = InspectRequest.__dataclass_fields__
    for f in fields(InspectRequest):
        if f.name == "config":
            continue
        kwargs: dict[str, Any] = {"dest": f.name, "help": field_docs(InspectRequest).get(f.name, "")}
        if f.name == "model":
            kwargs["required"] = True
        elif str(f.type).startswith("bool"):
            kwargs["action"] = "store_true"
        elif str(f.type).startswith("tuple"):
            kwargs |= {"action": "append", "default": None}
        else:
            kwargs["default"] = defaults[f.name].default
        if "metavar" in f.metadata:
            kwargs["metavar"] = f.metadata["metavar"]
        if (options := choices(InspectRequest, f.name)) is not None:
            kwargs["choices"] = list(options)
        specs.append((f.metadata.get("flag", "--" + f.name.replace("_", "-")), kwargs))
    for name in CLI_RANKING_FIELDS:
        default = RankingConfig.__dataclass_fields__[name].default
        help_text = f"{field_docs(RankingConfig).get(name, name)} (default {default})"
        specs.append(("--" + name.replace("_", "-"),
                      {"dest": name, "type": type(default), "default": default, "help": help_text}))
    return specs
