"""The visible device and the memory available to a training run on it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from trainforge.errors import ConfigError

_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20}
_UNITS |= {"g": 2**30, "gb": 10**9, "gib": 2**30, "t": 2**40, "tb": 10**12, "tib": 2**40}


@dataclass(frozen=True)
class Device:
    """Where training would run: CUDA device 0 when visible, else the CPU."""

    cuda: bool
    name: str
    available: int  # bytes free now (CUDA: torch.cuda.mem_get_info; CPU: MemAvailable + this process's own RSS)
    limited: bool = False  # ``available`` was given (``--memory-limit``), not read from the machine


def parse_size(text: str, key: str = "--memory-limit") -> int:
    """``"8GiB"``, ``"512MB"``, ``"1.5g"`` or a byte count -> bytes.

    Raises:
        ConfigError: Naming ``key`` when the text is not a size, or is a size below one byte.
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ConfigError([(key, f"{text!r} is not a memory size; write e.g. 16GiB, 512MB or 2000000000")])
    return check_memory_limit(int(float(match.group(1)) * _UNITS[unit]), key, shown=text)


def check_memory_limit(limit: int, key: str = "--memory-limit", shown: object = None) -> int:
    """``limit`` (bytes) when it is a usable memory limit: a whole number of at least one byte.

    A limit of 0 (``--memory-limit 0``, ``0.1B``) would be planned for and reported as "does NOT fit" with exit 0,
    a wrong answer to a typo rather than a refusal.

    Raises:
        ConfigError: Naming ``key`` when ``limit`` is not a positive integer.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        value = limit if shown is None else shown
        raise ConfigError([(key, f"{value!r} is not a memory limit; give a size above zero, e.g. 16GiB or 512MB")])
    return limit


def visible_device(memory_limit: int | None = None) -> Device:
    """The device a run would train on and its available memory (``memory_limit`` replaces the reading).

    CPU: ``MemAvailable`` (psutil) plus this process's resident memory, which a ``trainforge train`` started instead
    would have to itself; CUDA: free bytes of device 0.
    """
    import torch

    if torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info(0)
        name = f"CUDA {torch.cuda.get_device_name(0)}"
        available = free
    else:
        import psutil

        threads = torch.get_num_threads()
        name = f"CPU ({os.cpu_count()} cores, {threads} torch thread{'s' if threads != 1 else ''})"
        available = psutil.virtual_memory().available + psutil.Process().memory_info().rss
    if memory_limit is not None:
        return Device(torch.cuda.is_available(), name, memory_limit, limited=True)
    return Device(torch.cuda.is_available(), name, int(available))


def process_bytes(cuda: bool) -> int:
    """What a training process holds before its model loads: this process's RSS now (libraries, data, tokenizer)."""
    if cuda:
        return 0  # the GPU's budget: CUDA context and workspaces are in memory.CUDA_RUNTIME_BYTES
    import psutil

    return int(psutil.Process().memory_info().rss)
