"""Activations of models the layer formula does not describe (convolutional vision models), by a meta-device trace.

For inputs that are not token sequences (``pixel_values``), the model runs one forward pass on the meta device (no
memory, no compute) on a real collated batch moved there, and every leaf module's output is counted: each is kept
for the backward pass by the operation that reads it (a convolution's input, a norm's input, an activation's output),
which is what a summary-style estimate (torchinfo's "forward/backward pass size") counts. Models whose forward cannot
run on the meta device (one that reads a tensor's value, e.g. ``.item()``) get no trace, and the report says so.
"""

from __future__ import annotations

import copy
from typing import Any


def leaf_output_bytes(model: Any, batch: dict[str, Any]) -> int | None:
    """Bytes of every leaf module's output in one training-mode forward pass of ``batch``, on the meta device.

    Args:
        model: The run's model on the meta device (copied; the copy's buffers move to the meta device too).
        batch: A collated batch (CPU tensors; ``labels`` are left out).

    Returns:
        The bytes, or None when the forward pass does not run on the meta device.
    """
    import torch

    traced = copy.deepcopy(model).to_empty(device="meta").train()
    total = 0

    def count(module: Any, inputs: Any, output: Any) -> None:
        nonlocal total
        for tensor in output if isinstance(output, tuple | list) else (output,):
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel() * tensor.element_size()

    hooks = [m.register_forward_hook(count) for m in traced.modules() if not list(m.children())]
    inputs = {k: v.to("meta") for k, v in batch.items() if isinstance(v, torch.Tensor) and k != "labels"}
    try:
        traced(**inputs)
    # A forward that reads values (``.item()``, data-dependent shapes) raises one of these on the meta device.
    except (RuntimeError, NotImplementedError, TypeError, ValueError, IndexError):
        return None
    finally:
        for hook in hooks:
            hook.remove()
    return total
