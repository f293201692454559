"""One definition of the inspect contract: the request, and the CLI, tool and job parameters checked against it."""

from __future__ import annotations

import argparse
import dataclasses
import typing

import pytest

from interp_agent.core.errors import ValidationError
from interp_agent.core.inspect.backends import BACKEND_REGISTRY
from interp_agent.core.inspect.request import (
    BACKEND_ALIASES,
    BACKENDS,
    CLI_RANKING_FIELDS,
    InspectRequest,
    field_docs,
    param_names,
    params_read_by,
)
from interp_agent.core.ranking.config import RankingConfig


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"backend": "gpu"}, r"unknown `backend='gpu'`; use one of records"),
    ({"criterion": "  "}, "`criterion` is empty"),
    ({"backend": "toy"}, "toy backend generates its own records"),
    ({"backend": "records", "neuronpedia": ["gpt2-small@0-res-jb:3"]}, r"set `backend='neuronpedia'`"),
    ({"backend": "hf", "records": None, "pack": "french", "saelens_id": "layer_1"}, r"set `backend='saelens'`"),
    ({"backend": "hf"}, "hf backend harvests its own records"),
    ({"backend": "neuronpedia", "records": None, "neuronpedia": ["a@0-b:1"], "features": "f.jsonl"},
     "drop `features`"),
    ({"pooling": "median"}, "`pooling` must be one of last, mean, max, got 'median'"),
    ({"records": None}, "no evidence given"),
    ({"backend": "records", "records": None}, "the records backend needs `records`"),
    ({"backend": "hf", "records": None}, "harvests a live model on prompts, and none were given"),
])
def test_a_contradictory_request_is_refused_naming_the_value_and_the_fix(kwargs: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        InspectRequest(**({"model": "m", "criterion": "c", "records": "r.jsonl"} | kwargs))  # pyright: ignore[reportArgumentType]


@pytest.mark.parametrize(("given", "backend"), [
    ({"records": "r.jsonl"}, "records"), ({"dataset": "d.jsonl"}, "hf"), ({"pack": "french"}, "hf"),
    ({"features": "f.jsonl"}, "features"), ({"records": "r.jsonl", "features": "f.jsonl"}, "records"),
    ({"neuronpedia": ["gpt2-small@0-res-jb:3"]}, "neuronpedia"),
    ({"saelens_release": "r", "saelens_id": "i", "pack": "french"}, "saelens"),
])
def test_the_backend_is_inferred_from_what_is_given(given: dict, backend: str) -> None:
    assert InspectRequest(model="m", criterion="c", **given).backend == backend  # pyright: ignore[reportArgumentType]


def test_a_pack_stands_in_for_the_criterion_of_a_live_backend_only() -> None:
    assert InspectRequest(model="m", backend="hf", pack="measurement_unit").criterion == ""
    with pytest.raises(ValidationError, match="`criterion` is empty"):
        InspectRequest(model="m", backend="features", features="f.jsonl", pack="measurement_unit")


def test_the_request_is_immutable_and_keeps_lists_as_tuples() -> None:
    request = InspectRequest(model="m", criterion="c", backend="hf", pack="french",
                             hookpoints=["blocks.1.hook_resid_post"], interventions="a.jsonl")  # type: ignore[arg-type]
    assert request.hookpoints == ("blocks.1.hook_resid_post",) and request.interventions == ("a.jsonl",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.model = "other"  # type: ignore[misc]


def test_job_params_build_a_request_and_unknown_ones_are_named() -> None:
    request = InspectRequest.from_params({"model": "m", "criterion": "c", "records": "r", "config": {"top_k": 5}})
    assert request.config == RankingConfig(top_k=5)
    with pytest.raises(ValidationError, match=r"unknown parameter\(s\) \['bogus'\]; allowed: model, criterion"):
        InspectRequest.from_params({"model": "m", "criterion": "c", "bogus": 1})
    with pytest.raises(ValidationError, match="bad config"):
        InspectRequest.from_params({"model": "m", "criterion": "c", "records": "r", "config": {"no_such_field": 1}})


def test_every_request_field_has_a_description() -> None:
    docs = field_docs(InspectRequest)
    assert set(docs) == set(param_names()) and all(len(d) > 10 for d in docs.values())


def test_the_backend_registry_holds_exactly_the_backends_a_request_may_name() -> None:
    assert tuple(BACKEND_REGISTRY) == BACKENDS
    assert "hookpoints" in params_read_by("hf") and "hookpoints" not in params_read_by("records")
    assert "saelens_id" in params_read_by("saelens") and "saelens_id" not in params_read_by("hf")


def test_the_job_kind_allows_exactly_the_request_fields() -> None:
    from interp_agent.jobs.kinds import INSPECT_PARAMS

    assert INSPECT_PARAMS == param_names()


def test_the_cli_flags_are_the_request_fields_with_their_defaults_and_choices() -> None:
    from interp_agent.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    actions = {a.dest: a for a in sub.choices["inspect"]._actions if a.dest != "help"}
    expected = {n for n in param_names() if n != "config"} | set(CLI_RANKING_FIELDS) | {"out", "json", "dossier",
                                                                                     "csv_out"}
    assert set(actions) == expected
    for f in dataclasses.fields(InspectRequest):
        if f.name in actions and f.default is not dataclasses.MISSING:
            assert actions[f.name].default == f.default, f.name
    assert actions["backend"].choices == [*BACKENDS, *BACKEND_ALIASES]  # jsonl: an alias of features
    assert actions["hookpoints"].option_strings == ["--hookpoint"] and actions["hookpoints"].default is None
    assert actions["top_k"].default == RankingConfig().top_k and actions["candidates"].type is int


TOOL_ONLY = {"wait_seconds", "positives", "negatives", "dossier"}
"""InspectInput fields that are about the call, not the request."""


def test_the_tool_input_model_is_checked_against_the_request() -> None:
    from interp_agent.server.models import InspectInput

    request_fields = {f.name: f for f in dataclasses.fields(InspectRequest)}
    config_fields = {f.name: f for f in dataclasses.fields(RankingConfig)}
    hints = typing.get_type_hints(InspectRequest)
    for name, info in InspectInput.model_fields.items():
        if name in TOOL_ONLY:
            continue
        assert name in request_fields or name in config_fields, f"InspectInput.{name} is not an InspectRequest field"
        field = request_fields.get(name) or config_fields[name]
        if field.default is not dataclasses.MISSING and name != "model":
            assert info.default == field.default, name
        choices = typing.get_args(hints[name]) if name in hints and "Literal" in str(hints[name]) else None
        if choices:
            assert set(typing.get_args(info.annotation)) == set(choices), name


def test_the_keyword_arguments_of_inspect_are_the_request_fields_plus_out_and_progress() -> None:
    import inspect as pyinspect

    from interp_agent.core.inspection import inspect

    signature = pyinspect.signature(inspect)
    assert set(signature.parameters) == set(param_names()) | {"out", "progress"}
    for f in dataclasses.fields(InspectRequest):
        default = signature.parameters[f.name].default
        if f.default is not dataclasses.MISSING and default is not pyinspect.Parameter.empty:
            assert default == f.default, f.name
