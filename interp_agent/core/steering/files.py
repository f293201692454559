"""Reading a steering vector from either file format: our safetensors or a llama.cpp control-vector GGUF."""

from __future__ import annotations

from pathlib import Path

from interp_agent.core.errors import InputFileError
from interp_agent.core.steering.vectors import SteeringVector, read_safetensors


def load_steering(path: str | Path) -> SteeringVector:
    """Read a steering vector: our safetensors, or a llama.cpp control-vector GGUF (told apart by its magic).

    Raises:
        InputFileError: the file is missing, not a safetensors/GGUF file, not a steering vector, or its
            tensors and metadata disagree (the message names the file and the field).
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(p, "no such file", hint="give the .safetensors or .gguf file export-steering wrote")
    with open(p, "rb") as fh:
        magic = fh.read(4)
    if magic == b"GGUF":
        from interp_agent.core.steering.controlvector import read_control_vector

        return read_control_vector(p)
    return read_safetensors(p)
