"""Peak memory of one training step: weights, gradients, optimizer states, activations, runtime.

Weights and gradients are each parameter's bytes (4-bit QLoRA: 0.5 byte per quantized weight plus one fp32 absmax
per 64-weight block, bitsandbytes NF4 without double quantization as ``tasks/llm/_models._bnb_config`` sets it; int8:
1 byte per weight plus one fp32 scale per row); gradients exist for trainable parameters only, in their dtype.
Optimizer states follow each torch/transformers optimizer's ``state`` (``OPTIMIZER_STATES``).

Activations follow Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models" (Sec. 4.1,
Eq. 1): a GPT layer at 16-bit keeps ``s*b*h*(34 + 5*a*s/h)`` bytes -- 34*s*b*h for the matmul inputs, Q and K, V,
the GeLU input/output, the LayerNorm inputs (2 bytes each) and the dropout masks (1 byte each), plus 5*a*s^2*b for
the softmax output (2), its dropout mask (1) and output (2). Adapted here:

- per term, from the model's own modules (``estimate/layers.py``): which matmul inputs are kept (trainable or LoRA
  weights only), gated MLPs, grouped-query attention, cross-attention over the encoder's length, norms and dropouts;
- element size from the run's precision: 4 bytes in fp32 (CPU), 2 under bf16/fp16 autocast; dropout masks are 1-byte
  booleans on CUDA but *float* tensors on CPU (torch's CPU dropout multiplies by a saved float mask: measured);
- the ``a*s^2*b`` terms only when attention materialises the probabilities: ``eager``, or SDPA falling back to its
  math kernel (on CPU whenever attention dropout is on in training); fused kernels (SDPA flash/memory-efficient,
  flash-attention-2) keep Q, K, V, the output and a ``heads*s`` log-sum-exp instead;
- with gradient checkpointing (Korthikanti Sec. 5, "full activation recomputation"): each layer keeps only its input
  (``s*b*h`` values) and one layer's full activations exist again while it is recomputed in the backward pass;
- LM heads: transformers' loss keeps the ``rows x vocab`` fp32 logits, the log-softmax for the cross-entropy and, in
  the backward pass, their gradient: ``HF_LOGIT_COPIES`` (3) fp32 ``rows x vocab`` tensors at the peak (3.2 measured
  on SmolLM2-135M). TRL's fused log-prob head (SFT, DPO; trl 1.16 ``kernels/chunked_logprob.py``) never builds
  the full logits: it works on tiles of ``min(rows, 4096) x min(vocab, 32768)``; its Triton kernel (CUDA) keeps
  about one tile, its torch fallback (CPU) creates a dozen tile-sized temporaries per tile (the exponentials,
  probabilities, masks and gradient terms of ``_forward_tile``/``_backward_tile``): ``TRL_TILE_COPIES``.

Calibration (``benchmarks/estimate.py``, CPU, glibc malloc): the formula's activations agree with the bytes autograd
actually saves (``torch.autograd.graph.saved_tensors_hooks``) within a few percent for BERT (MiniLM) and Llama
(SmolLM2, LoRA), but the process's peak RSS grows by more: freed intermediates of the forward and backward pass stay in
the heap, so on CPU activations are multiplied by ``CPU_ACTIVATION_FACTOR``, and the runtime (Trainer, data, autograd
and allocator bookkeeping) adds ``CPU_RUNTIME_BYTES``; both constants were fitted on the measured runs listed in
CHANGELOG.md and are the only calibrated numbers. On CUDA the caching allocator reuses freed blocks, so no factor is
applied (``CUDA_RUNTIME_BYTES`` covers context and workspaces; not measured here, no GPU was available).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from trainforge.estimate.layers import Architecture, AttentionCore, Stack
from trainforge.estimate.result import MIB, Memory

# Calibrated on this project's CPU machines (see the module docstring and CHANGELOG.md): peak RSS growth of real runs
# minus weights, gradients and optimizer states was 1.0-1.26x the formula's activations (MiniLM full fine-tuning at
# batch 16 and 64; SmolLM2-135M LoRA) plus 28-43 MiB that no formula term covers (the tiny BERT/T5/Llama runs, whose
# tensors are a few MiB: Trainer, datasets, evaluation and saving).
CPU_ACTIVATION_FACTOR = 1.15
CPU_RUNTIME_BYTES = 32 * MIB
CUDA_RUNTIME_BYTES = 512 * MIB
HF_LOGIT_COPIES = 3
# fp32 tiles alive at the peak of TRL's fused head: measured 14.5 on CPU (SmolLM2-135M, 424 rows, vocab 49,152);
# on CUDA (Triton kernel: one tile buffer, the gradient accumulated in place) not measured here.
TRL_TILE_COPIES = {False: 14, True: 2}
TRL_TILE_ROWS = 4096  # trl.kernels.chunked_logprob.TOKEN_CHUNK_SIZE (trl 1.16)
TRL_TILE_VOCAB = 32768  # trl.trainer.utils._CHUNKED_LOGPROB_CHUNK_SIZE
NF4_BYTES = 0.5 + 4 / 64  # 4 bits per weight + one fp32 absmax per 64-weight block
INT8_BYTES = 1.0

# Optimizer -> (fp32-sized states per trainable parameter, factored second moment). From torch.optim and
# transformers' Adafactor (scale_parameter/relative_step as transformers builds it: no first moment).
OPTIMIZER_STATES = {
    "adamw_torch": 2,  # exp_avg, exp_avg_sq
    "adamw_torch_fused": 2,
    "adagrad": 1,  # sum
    "rmsprop": 1,  # square_avg (momentum 0: no buffer)
    "sgd": 0,  # momentum 0: no state
    "adafactor": -1,  # factored: rows + columns per matrix, a full second moment for vectors
}


@dataclass(frozen=True)
class Precision:
    """Element sizes of one run: activations, dropout masks, whether attention runs on a fused kernel path."""

    activation: int  # bytes per saved activation value
    mask: int  # bytes per saved dropout-mask value
    cuda: bool


def precision_of(resolved: str, cuda: bool) -> Precision:
    """Element sizes for a resolved precision (``fp32``/``bf16``/``fp16``) on CPU or CUDA."""
    activation = 2 if resolved in ("bf16", "fp16") else 4
    return Precision(activation, 1 if cuda else activation, cuda)


# ---------------------------------------------------------------------------------------------------- parameters


def parameter_bytes(model: Any, quantization: str | None, frozen_element: int | None = None) -> tuple[int, int]:
    """(weights, gradients) in bytes: every unique parameter at its dtype; trainable ones again for gradients.

    ``frozen_element`` overrides the bytes of frozen parameters (an LLM's LoRA base loads in bf16/fp16 under mixed
    precision: ``tasks/llm/_models.torch_dtype``). With ``quantization`` (QLoRA), the base's Linear weights
    (``model.quantizable_parameters``) take NF4/int8 bytes instead.
    """
    from trainforge.estimate.model import quantizable_parameters

    unique = list({id(p): p for p in model.parameters()}.values())
    frozen = [p for p in unique if not p.requires_grad]
    trainable = [p for p in unique if p.requires_grad]
    gradients = sum(p.numel() * p.element_size() for p in trainable)
    weights = gradients + sum(p.numel() * (frozen_element or p.element_size()) for p in frozen)
    if quantization:
        quantized = quantizable_parameters(model)
        # Those weights were counted at the frozen dtype; bitsandbytes stores them in 4 or 8 bits.
        element = frozen_element or (frozen[0].element_size() if frozen else 2)
        per_weight = NF4_BYTES if quantization == "int4" else INT8_BYTES
        weights += int(quantized * per_weight) - quantized * element
    return int(weights), int(gradients)


def optimizer_bytes(model: Any, optim: str) -> int:
    """Bytes of the optimizer's state for the trainable parameters (``OPTIMIZER_STATES``)."""
    states = OPTIMIZER_STATES[optim]
    trainable = [p for p in {id(p): p for p in model.parameters()}.values() if p.requires_grad]
    if states >= 0:
        return int(sum(states * p.numel() * p.element_size() for p in trainable))
    total = 0
    for p in trainable:  # Adafactor: fp32 row and column statistics of each matrix, a full one for vectors
        shape = tuple(p.shape)
        total += 4 * ((_product(shape[:-1]) + _product(shape[:-2] + shape[-1:])) if len(shape) >= 2 else p.numel())
    return total


def _product(shape: Iterable[int]) -> int:
    out = 1
    for size in shape:
        out *= int(size)
    return out


# ---------------------------------------------------------------------------------------------------- activations


@dataclass(frozen=True)
class Pass:
    """One forward pass of a step: ``rows`` sequences per example, their padded length per stack side."""

    rows: int
    lengths: dict[str, int]  # side (single/encoder/decoder) -> tokens

    def length(self, side: str) -> int:
        """Tokens of a stack on ``side`` (a single-stack model reads its one length)."""
        if side in self.lengths:
            return self.lengths[side]
        return self.lengths.get("single") or self.lengths.get("encoder") or max(self.lengths.values())

    def other(self, side: str) -> int:
        """Tokens a decoder's cross-attention reads (the encoder's)."""
        return self.lengths.get("encoder", self.length(side)) if side == "decoder" else self.length(side)


def activation_bytes(
    arch: Architecture,
    passes: list[Pass],
    batch: int,
    precision: Precision,
    attn_implementation: str,
    lm_head: str | None,
    checkpointing: bool,
) -> int:
    """Bytes the step's activations take at its peak (module docstring), summed over the step's forward passes.

    Args:
        arch: The model's stacks (``layers.architecture``).
        passes: The forward passes of one micro-batch and their padded lengths (all alive until the loss).
        batch: Examples per micro-batch (per device).
        precision: Element sizes.
        attn_implementation: The model's ``config._attn_implementation``.
        lm_head: ``"hf"`` (full logits and a cross-entropy), ``"trl"`` (TRL's fused log-prob head) or None (a
            small head: classification, tagging, spans, embeddings).
        checkpointing: Gradient checkpointing (each layer keeps its input; one layer is recomputed at a time).
    """
    total = 0.0
    largest_layer = 0
    for step in passes:
        rows = batch * step.rows
        for stack in arch.stacks:
            layer = _layer_bytes(stack, step, rows, precision, attn_implementation)
            largest_layer = max(largest_layer, layer)
            tokens = rows * step.length(stack.side)
            total += stack.layers * (tokens * stack.block.hidden * precision.activation if checkpointing else layer)
        tokens = rows * max(step.lengths.values())
        total += tokens * (arch.outside * precision.activation + arch.outside_masks * precision.mask)
        if lm_head is not None and arch.vocab:
            total += head_bytes(
                lm_head,
                rows * step.length("decoder" if arch.encoder_decoder else "single"),
                arch.vocab,
                precision.cuda,
            )
    if checkpointing:
        total += largest_layer  # the layer being recomputed in the backward pass
    return int(total)


def head_bytes(kind: str, rows: int, vocab: int, cuda: bool) -> int:
    """Bytes of an LM head's fp32 logits at the step's peak (module docstring): ``hf`` or TRL's fused ``trl`` head."""
    if kind == "trl":
        return TRL_TILE_COPIES[cuda] * min(rows, TRL_TILE_ROWS) * min(vocab, TRL_TILE_VOCAB) * 4
    return HF_LOGIT_COPIES * rows * vocab * 4


def _layer_bytes(stack: Stack, step: Pass, rows: int, precision: Precision, attn_implementation: str) -> int:
    block = stack.block
    own, other = step.length(stack.side), step.other(stack.side)
    values = block.own * own + block.other * other
    masks = block.masks * own + block.other_masks * other
    total = rows * (values * precision.activation + masks * precision.mask)
    for core in block.attentions:
        total += rows * _attention_bytes(core, own, other if core.cross else own, precision, attn_implementation)
    return int(total)


def _attention_bytes(core: AttentionCore, queries: int, keys: int, precision: Precision, implementation: str) -> float:
    """Per-sequence bytes of one attention core: fused kernels keep no ``heads*q*k`` probabilities (module doc)."""
    element = precision.activation
    fused = implementation in ("flash_attention_2", "flash_attention_3", "flex_attention") or (
        implementation == "sdpa" and (precision.cuda or core.dropout == 0)
    )
    if fused:  # Q and the output per query, K and V per key, an fp32 log-sum-exp per head and query
        return element * core.width * (2 * queries + 2 * keys) + 4 * core.heads * queries
    probabilities = core.heads * queries * keys
    kept = element * core.width * (queries + 2 * keys) + element * probabilities
    if core.dropout > 0:
        kept += (precision.mask + element) * probabilities  # the dropout's mask and output
    return kept


# ---------------------------------------------------------------------------------------------------- total


def total_memory(
    weights: int,
    gradients: int,
    optimizer: int,
    activations: int,
    activations_checkpointed: int,
    cuda: bool,
    checkpointing: bool,
    reference: int = 0,
) -> Memory:
    """The breakdown with the device's calibration applied (``CPU_ACTIVATION_FACTOR``, runtime bytes)."""
    factor = 1.0 if cuda else CPU_ACTIVATION_FACTOR
    return Memory(
        weights=weights,
        gradients=gradients,
        optimizer=optimizer,
        activations=int(activations * factor),
        activations_checkpointed=int(activations_checkpointed * factor),
        overhead=CUDA_RUNTIME_BYTES if cuda else CPU_RUNTIME_BYTES,
        reference_model=reference,
        checkpointing=checkpointing,
    )
