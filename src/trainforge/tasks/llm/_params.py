"""Parameters every LLM task shares, and how the reference's params map onto them.

Template, sequence length, attention and generation settings (LoRA/QLoRA live in the shared ``peft:`` section);
checks only this machine can make (flash-attn installed).
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any, Literal

from pydantic import Field

from trainforge.config.sections import ADVANCED, BASIC
from trainforge.errors import ConfigError
from trainforge.tasks.spec import AUTOTRAIN_DROP as DROP
from trainforge.tasks.spec import AutoTrainShape, TaskParams

TemplateName = Literal["tokenizer", "chatml", "zephyr", "llama3", "none"]


class LLMParams(TaskParams):
    """Parameters every LLM task shares (tokenizer, template, sequence length, attention, generation)."""

    chat_template: TemplateName | None = Field(
        None,
        description=(
            "Chat template: 'tokenizer' (the model's own), a built-in (chatml, zephyr, llama3: adds their special "
            "tokens and resizes embeddings) or 'none'. Default: the model's own for conversational data (chatml when "
            "it has none), and for prompt/completion data when the model has one; plain text otherwise."
        ),
        json_schema_extra=BASIC,
    )
    block_size: int = Field(1024, gt=0, description="Maximum tokens per training sequence.", json_schema_extra=BASIC)
    truncation: Literal["truncate", "drop"] = Field(
        "truncate",
        description="Sequences longer than block_size: cut to block_size, or drop the row (counted either way).",
        json_schema_extra=ADVANCED,
    )
    add_eos_token: bool = Field(
        True,
        description="End plain-text examples with the EOS token (chat turns always end with it).",
        json_schema_extra=ADVANCED,
    )
    padding_side: Literal["right", "left"] = Field(
        "right", description="Tokenizer padding side for training.", json_schema_extra=ADVANCED
    )
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2", "flex_attention"] | None = Field(
        None,
        description="Attention kernel (default: the model's, usually sdpa). flex_attention skips the masked blocks of "
        "padding-free packed batches on GPU.",
        json_schema_extra=ADVANCED,
    )
    max_new_tokens: int = Field(
        256, gt=0, description="predict/chat: most tokens generated per answer.", json_schema_extra=ADVANCED
    )
    temperature: float = Field(
        0.0, ge=0, description="predict/chat: sampling temperature (0 = greedy).", json_schema_extra=ADVANCED
    )
    top_p: float = Field(
        1.0, gt=0, le=1, description="predict/chat: nucleus sampling mass.", json_schema_extra=ADVANCED
    )


class PreferenceParams(LLMParams):
    """Shared by the preference methods (DPO, ORPO, reward): pairs longer than block_size are cut or dropped."""


def check_config(config) -> list[tuple[str, str]]:
    """Problems only this machine reveals (flash-attn missing), before any data loads; QLoRA is checked with peft:."""
    problems = []
    params = config.params
    if params.attn_implementation == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        problems.append(
            ("params.attn_implementation", "flash_attention_2 needs the flash-attn package (and a CUDA GPU)")
        )
    return problems


AUTOTRAIN_PARAMS = {
    "block_size": "block_size",
    "chat_template": "chat_template",
    "add_eos_token": "add_eos_token",
    "padding": "padding_side",
    "use_flash_attention_2": "attn_implementation",
    "model_max_length": "model_max_length",
    "trainer": "trainer",
    "unsloth": "unsloth",
    "distributed_backend": "distributed_backend",
    "max_prompt_length": "max_prompt_length",
    "max_completion_length": "max_completion_length",
}


def autotrain_value(trainer: str):
    """Convert the reference's LLM param values for the task whose reference trainer is ``trainer``."""

    def convert(name: str, value: Any) -> Any:
        if name == "trainer":
            expected = {"default", "generic"} if trainer == "default" else {trainer}
            if value not in expected:
                raise ConfigError([("params.trainer", f"{value!r} does not match this task; use task: llm-{value}")])
            return DROP
        if name == "block_size" and (value is None or value == -1 or isinstance(value, list | str)):
            if isinstance(value, list | str) and str(value) not in ("-1", "None"):
                value = int(str(value).split(",")[0]) if not isinstance(value, list) else int(value[0])
                return value
            _note("params.block_size -1 (automatic) -> trainforge's default 1024")
            return DROP
        if name in ("max_prompt_length", "max_completion_length"):
            if value is not None:
                _note(f"params.{name} {value}: trainforge cuts whole pairs at block_size (see params.truncation)")
            return DROP
        if name == "model_max_length":
            _note(f"params.model_max_length {value}: trainforge cuts sequences at block_size only")
            return DROP
        if name == "chat_template" and value in (None, "None"):
            return None
        if name == "use_flash_attention_2":
            return "flash_attention_2" if value else DROP
        if name == "unsloth":
            if value:
                raise ConfigError([("params.unsloth", "unsloth is not supported; remove it")])
            return DROP
        if name == "distributed_backend":
            if value not in (None, "ddp"):
                raise ConfigError(
                    [("params.distributed_backend", f"{value!r}: multi-GPU launch goes through accelerate")]
                )
            return DROP
        return value

    return convert


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


def autotrain_shape(
    trainer: str, aliases: tuple[str, ...], columns: dict[str, str], params: dict[str, str] | None = None
) -> AutoTrainShape:
    """How the reference's configs for one LLM trainer map onto a task.

    Args:
        trainer: The reference's ``params.trainer`` value (``sft``, ``default``, ``dpo``, ``orpo``, ``reward``).
        aliases: The reference's task names that pick this task.
        columns: Its ``column_mapping`` keys -> our logical columns.
        params: Params of this trainer only, beside the ones every LLM task maps (``AUTOTRAIN_PARAMS``).
    """
    return AutoTrainShape(
        aliases=aliases,
        columns=columns,
        params={**AUTOTRAIN_PARAMS, **(params or {})},
        values=autotrain_value(trainer),
    )
