"""What one transformer layer keeps for the backward pass, read from the (meta-device) model's modules.

The activation formula (``estimate/memory.py``) needs, per layer and per token, how many values autograd saves.
Korthikanti et al. derive it for a GPT layer with trainable weights (2022, "Reducing Activation Recomputation in Large
Transformer Models", Sec. 4.1): the inputs of the QKV, output and MLP matmuls, Q and K for QK^T, the softmax output,
its dropout mask and output, V, the MLP's GeLU input and output, the dropout masks, and the LayerNorm inputs. Real
models differ from that GPT layer, so each term is read from the model instead of assumed:

- a matmul keeps its input only when its weight trains (a frozen base under LoRA keeps none), and linears fed the
  same tensor (Q, K, V; gate and up) keep it once; a LoRA layer keeps its dropout's output and mask (PEFT applies a
  dropout per adapted module) or, without dropout, the shared input;
- the MLP keeps one value per intermediate unit (GeLU/ReLU input), three for a gated MLP (SwiGLU: gate, activation,
  up);
- attention keeps Q, K, V (K and V repeated to every head, as transformers' eager and SDPA paths do for grouped
  queries) and either the softmax probabilities (eager, or SDPA falling back to its math kernel when attention
  dropout is on) with their dropout mask and output, or the output and log-sum-exp of a fused kernel;
- every norm keeps its input; every dropout with p > 0 keeps a mask.

Layer roles come from the module names transformers uses across BERT, RoBERTa, DistilBERT, T5, BART, GPT-2, Llama,
Mistral, Qwen, Gemma and Phi (``ROLES``); a linear of unknown role counts as its own input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Last name component (optionally qualified by its parent's name) -> role of a linear layer in a transformer block.
ROLES = {
    "attn_in": {
        "q_proj", "k_proj", "v_proj", "query", "key", "value", "q", "k", "v", "qkv_proj", "c_attn", "Wqkv",
        "query_key_value", "qkv", "q_lin", "k_lin", "v_lin",
    },
    "attn_out": {"o_proj", "out_proj", "o", "out_lin", "attention.output.dense", "attn.c_proj", "dense_attn"},
    "mlp_in": {
        "gate_proj", "up_proj", "fc1", "wi", "wi_0", "wi_1", "c_fc", "w1", "w3", "gate_up_proj", "lin1",
        "intermediate.dense", "dense_h_to_4h",
    },
    "mlp_out": {"down_proj", "fc2", "wo", "w2", "lin2", "mlp.c_proj", "output.dense", "dense_4h_to_h"},
}  # fmt: skip
_QUERY_NAMES = ("q_proj", "query", "q", "q_lin")
_CROSS = ("crossattention", "encdecattention", "encoder_attn", "cross_attn")
_ATTENTION_DROPOUT = ("attention_probs_dropout_prob", "attention_dropout", "attn_pdrop", "dropout_rate")
_HEADS = ("num_attention_heads", "num_heads", "n_head", "encoder_attention_heads")


@dataclass(frozen=True)
class AttentionCore:
    """One attention module of a block: heads, width of Q (heads x head size), cross or self, probs dropout."""

    heads: int
    width: int
    cross: bool
    dropout: float


@dataclass(frozen=True)
class Block:
    """Values one layer saves per token, besides its attention cores.

    ``own``: per token of its own sequence; ``other``: per token of the other sequence (a decoder's cross-attention
    K/V inputs, per encoder token); ``masks``/``other_masks``: dropout masks likewise.
    """

    hidden: int
    own: float
    other: float
    masks: float
    other_masks: float
    attentions: tuple[AttentionCore, ...]


@dataclass(frozen=True)
class Stack:
    """A stack of identical layers: its path, layer count, side (encoder/decoder/single) and per-layer block."""

    path: str
    layers: int
    side: str
    block: Block


@dataclass(frozen=True)
class Architecture:
    """The model as the activation formula sees it."""

    stacks: tuple[Stack, ...]
    hidden: int
    vocab: int
    outside: float  # values saved per token outside the stacks (embedding norm/dropout, final norm)
    outside_masks: float
    encoder_decoder: bool
    notes: tuple[str, ...] = field(default_factory=tuple)


def architecture(model: Any) -> Architecture:
    """Read the stacks of identical layers and what each layer saves (see the module docstring).

    Args:
        model: The run's model (meta device is fine), LoRA applied when the run applies it.

    Returns:
        The stacks; a model with no recognisable stack gets an empty tuple (activations then count only the
        embeddings), and a note says so.
    """
    import torch

    config = _config_of(model)
    hidden = int(_first(config, ("hidden_size", "d_model", "n_embd", "dim"), 0) or 0)
    vocab = int(_first(config, ("vocab_size",), 0) or 0)
    stacks: list[Stack] = []
    inside: set[str] = set()
    for path, module in model.named_modules():
        if not isinstance(module, torch.nn.ModuleList) or not len(module) or any(path.startswith(p) for p in inside):
            continue
        kinds = {type(child) for child in module}
        if len(kinds) != 1 or not _linear_units(module[0]):
            continue
        inside.add(path + ".")
        side = "decoder" if "decoder" in path.lower() else "encoder" if "encoder" in path.lower() else "single"
        stacks.append(Stack(path, len(module), side, _block(module[0], config, hidden)))
    notes = () if stacks else ("no stack of transformer layers found: activations count the embeddings only",)
    outside, outside_masks = _outside(model, inside, hidden)
    encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
    return Architecture(tuple(stacks), hidden, vocab, outside, outside_masks, encoder_decoder, notes)


def _config_of(model: Any) -> Any:
    """The transformers config of a model, a PEFT model or a sentence-transformers model."""
    config = getattr(model, "config", None)
    if config is None:
        for module in model.modules():
            config = getattr(module, "config", None)
            if config is not None and hasattr(config, "to_dict"):
                break
    text = getattr(config, "get_text_config", None)
    return text() if callable(text) else config


def _first(config: Any, names: tuple[str, ...], default: Any) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return default


@dataclass
class _Unit:
    """A linear layer of a block (a LoRA layer with its base counted as one)."""

    path: str
    in_features: int
    out_features: int
    trainable: bool
    lora_dropout: float | None  # None: no adapter; 0: adapter without dropout

    @property
    def role(self) -> str:
        parts = self.path.split(".")
        last2 = ".".join(parts[-2:]) if len(parts) > 1 else parts[-1]
        last3 = ".".join(parts[-3:]) if len(parts) > 2 else last2
        for role, names in ROLES.items():
            if parts[-1] in names or last2 in names or last3 in names:
                return role
        return "other"

    @property
    def parent(self) -> str:
        return self.path.rsplit(".", 1)[0] if "." in self.path else ""

    @property
    def cross(self) -> bool:
        return any(word in self.path.lower() for word in _CROSS)


def _linear_units(block: Any) -> list[_Unit]:
    import torch
    from transformers.pytorch_utils import Conv1D

    units: list[_Unit] = []
    skip: list[str] = []
    for path, module in block.named_modules():
        if any(path.startswith(p) for p in skip):
            continue
        base = getattr(module, "base_layer", None)
        if base is not None and hasattr(module, "lora_dropout"):  # a PEFT LoRA layer wrapping its base
            dropouts = list(module.lora_dropout.values())  # one per adapter (the run has one); Identity at p = 0
            p = float(getattr(dropouts[0], "p", 0.0) or 0.0) if dropouts else 0.0
            weight = base.weight
            fan_in, fan_out = _fans(base, weight)
            units.append(_Unit(path, fan_in, fan_out, bool(weight.requires_grad), p))
            skip.append(path + ".")
        elif isinstance(module, torch.nn.Linear | Conv1D) and "lora_" not in path:
            fan_in, fan_out = _fans(module, module.weight)
            units.append(_Unit(path, fan_in, fan_out, bool(module.weight.requires_grad), None))
    return units


def _fans(module: Any, weight: Any) -> tuple[int, int]:
    from transformers.pytorch_utils import Conv1D

    if isinstance(module, Conv1D):  # GPT-2's Conv1D stores (in, out)
        return int(weight.shape[0]), int(weight.shape[1])
    return int(weight.shape[1]), int(weight.shape[0])


def _block(block: Any, config: Any, hidden: int) -> Block:
    """Per-token saved values of one layer (module docstring); attention cores listed apart."""
    import torch

    units = _linear_units(block)
    groups: dict[tuple[str, str], list[_Unit]] = {}
    for unit in units:
        role = unit.role
        if role == "attn_in":  # Q, K and V read one input (K and V of a cross-attention read the encoder's)
            kind = "cross_kv" if unit.cross and unit.path.rsplit(".", 1)[-1] not in _QUERY_NAMES else role
            key = (kind, unit.parent)
        elif role == "other":
            key = (role, unit.path)
        else:
            key = (role, unit.parent)
        groups.setdefault(key, []).append(unit)
    own = other = masks = other_masks = 0.0
    for (kind, _), members in groups.items():
        width = max(u.in_features for u in members)
        saved, lora_masks = _group_saved(members)
        if kind == "cross_kv":
            other += saved * width
            other_masks += lora_masks * width
        else:
            own += saved * width
            masks += lora_masks * width
    mlp_in = [u for u in units if u.role == "mlp_in"]
    mlp_out = [u for u in units if u.role == "mlp_out"]
    intermediate = mlp_out[0].in_features if mlp_out else int(_first(config, ("intermediate_size", "d_ff"), 0) or 0)
    gated = len(mlp_in) >= 2 or any(u.out_features >= 2 * intermediate > 0 for u in mlp_in)
    own += (3 if gated else 1) * intermediate
    for _path, module in block.named_modules():
        name = type(module).__name__
        if name.endswith(("LayerNorm", "RMSNorm", "Norm")) and not list(module.children()):
            weight = getattr(module, "weight", None)
            trains = weight is not None and bool(weight.requires_grad)
            own += hidden * (2 if "RMS" in name and trains else 1)  # an RMSNorm's trainable scale keeps its input too
    attention_parents = {u.parent for u in units if u.role == "attn_in"}
    for path, module in block.named_modules():
        if isinstance(module, torch.nn.Dropout) and module.p > 0:
            parent = path.rsplit(".", 1)[0] if "." in path else ""
            if "lora_dropout" in path:
                continue  # a LoRA layer's own dropout: counted with its linear above
            if parent in attention_parents:
                continue  # the attention probabilities' dropout: counted with the attention core
            siblings = [u.role for u in units if u.parent == parent]
            masks += intermediate if "mlp_in" in siblings and "mlp_out" in siblings else hidden
    heads = int(_first(config, _HEADS, 1) or 1)
    probs_dropout = float(_first(config, _ATTENTION_DROPOUT, 0.0) or 0.0)
    cores = []
    for parent in sorted(attention_parents):
        queries = [u for u in units if u.parent == parent and u.role == "attn_in"]
        cross = any(u.cross for u in queries)
        query = [u for u in queries if u.path.rsplit(".", 1)[-1] in _QUERY_NAMES]
        # Q's width is heads x head size; a fused QKV projection (GPT-2's c_attn) holds three of them.
        width = query[0].out_features if query else max(u.out_features for u in queries) // 3
        cores.append(AttentionCore(heads, width or hidden, cross, probs_dropout))
    return Block(hidden, own, other, masks, other_masks, tuple(cores))


def _group_saved(members: list[_Unit]) -> tuple[float, float]:
    """(saved inputs, saved dropout masks) of linears reading one tensor, in units of its width."""
    saved = 1.0 if any(u.trainable for u in members) else 0.0
    masks = 0.0
    for unit in members:
        if unit.lora_dropout is None:
            continue
        if unit.lora_dropout > 0:
            saved += 1.0  # the dropout's output, which lora_A keeps
            masks += 1.0
        else:
            saved = max(saved, 1.0)  # lora_A keeps the shared input itself
    return saved, masks


def _outside(model: Any, inside: set[str], hidden: int) -> tuple[float, float]:
    """Per-token values saved outside the stacks: norm inputs and dropout masks (embeddings, final norm)."""
    import torch

    own = masks = 0.0
    for path, module in model.named_modules():
        if any(path.startswith(p) for p in inside):
            continue
        name = type(module).__name__
        if name.endswith(("LayerNorm", "RMSNorm", "Norm")) and not list(module.children()):
            own += hidden
        elif isinstance(module, torch.nn.Dropout) and module.p > 0:
            masks += hidden
    return own, masks
