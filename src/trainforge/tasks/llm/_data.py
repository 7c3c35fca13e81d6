"""LLM data shapes: detect them, check every row, and encode rows with the run's chat template.

Accepted shapes (``ACCEPTED``) are detected from the columns present and their content; a row that fits none
raises a ``DataError`` naming the file, row and column, showing the value and the accepted shapes.
"""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from trainforge.errors import ConfigError, DataError

ROLES = ("system", "user", "assistant", "tool")
ACCEPTED = (
    "accepted shapes: a messages column holding a list of {role, content} turns (or that list as a JSON string), "
    "with roles system/user/assistant and at least one assistant turn; prompt + completion columns (strings); "
    "alpaca instruction (+ optional input) + output columns; or a text column of plain strings"
)
ACCEPTED_PREFERENCE = (
    "accepted shapes: chosen and rejected columns holding strings (with a prompt column, or whole texts sharing "
    "the prompt up to 'Assistant:') or lists of {role, content} turns (whole conversations sharing their earlier "
    "turns, with or without a prompt column, or assistant turns after a prompt column)"
)

# ---------------------------------------------------------------------------------------------------- cells


def _missing(value) -> bool:
    if isinstance(value, list | tuple | np.ndarray | dict):
        return False
    return (
        value is None
        or (isinstance(value, float) and np.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def _parse(value):
    """A JSON (or Python-literal) string holding a list/dict becomes that object; anything else is returned as is."""
    if isinstance(value, np.ndarray):
        return [_parse(v) for v in value.tolist()]
    if isinstance(value, list):
        return [_parse(v) for v in value]
    if isinstance(value, dict):
        return {k: _parse(v) for k, v in value.items()}
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            try:
                return ast.literal_eval(value)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return value
    return value


def _bad(origin: str, row, column: str, value, why: str, accepted: str = ACCEPTED) -> DataError:
    shown = repr(value)
    shown = shown if len(shown) <= 200 else shown[:200] + "..."
    return DataError(f"{origin}: row {int(row) + 1}, column {column!r}: {why}; the value is {shown}. {accepted}")


def to_messages(value, origin: str, row, column: str, accepted: str = ACCEPTED) -> list[dict[str, str]]:
    """Check one cell holds a list of {role, content} turns and return it as plain dicts."""
    parsed = _parse(value)
    if isinstance(parsed, dict):
        parsed = [parsed]
    if not isinstance(parsed, list) or not parsed:
        why = (
            "a string that is not a JSON list of turns" if isinstance(value, str) else "not a non-empty list of turns"
        )
        raise _bad(origin, row, column, value, why, accepted)
    turns = []
    for turn in parsed:
        if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
            raise _bad(origin, row, column, value, "each turn must be a mapping with 'role' and 'content'", accepted)
        if turn["role"] not in ROLES:
            raise _bad(origin, row, column, value, f"unknown role {turn['role']!r} (use {', '.join(ROLES)})", accepted)
        if not isinstance(turn["content"], str):
            raise _bad(origin, row, column, value, "turn content must be a string", accepted)
        turns.append({"role": turn["role"], "content": turn["content"]})
    return turns


def _looks_like_messages(value) -> bool:
    parsed = _parse(value)
    return isinstance(parsed, list) and bool(parsed) and isinstance(parsed[0], dict) and "role" in parsed[0]


def _require_filled(frame: pd.DataFrame, column: str, origin: str, accepted: str = ACCEPTED) -> None:
    missing = frame[column].map(_missing)
    if missing.any():
        first = frame.index[missing][0]
        raise DataError(
            f"{origin}: column {column!r} is empty in {int(missing.sum())} row(s), first row {int(first) + 1}. "
            f"Fill or drop those rows. {accepted}"
        )


# ---------------------------------------------------------------------------------------------------- SFT shapes


def detect_sft_format(frame: pd.DataFrame, origin: str) -> str:
    """One of messages, prompt_completion, alpaca, text — from the columns present and the first row's content."""
    columns = set(frame.columns)
    if "messages" in columns:
        return "messages"
    if {"prompt", "completion"} <= columns:
        return "prompt_completion"
    if {"instruction", "output"} <= columns:
        return "alpaca"
    if "text" in columns:
        return "messages" if _looks_like_messages(frame["text"].iloc[0]) else "text"
    found = ", ".join(map(str, columns)) or "none"
    raise DataError(f"{origin}: no column fits a known LLM data shape (columns found: {found}). {ACCEPTED}")


def normalize_sft(frame: pd.DataFrame, data_format: str, origin: str) -> pd.DataFrame:
    """Rows in the canonical columns of ``data_format`` (messages | prompt + completion | text), every row checked."""
    if data_format == "messages":
        column = "messages" if "messages" in frame else "text"
        _require_filled(frame, column, origin)
        messages = [to_messages(v, origin, i, column) for i, v in frame[column].items()]
        for (i, turns), value in zip(zip(frame.index, messages, strict=True), frame[column], strict=True):
            if not any(t["role"] == "assistant" for t in turns):
                raise _bad(origin, i, column, value, "the conversation has no assistant turn to learn from")
        return pd.DataFrame({"messages": messages}, index=frame.index)
    if data_format == "prompt_completion":
        for column in ("prompt", "completion"):
            _require_filled(frame, column, origin)
            for i, value in frame[column].items():
                if not isinstance(value, str):
                    raise _bad(origin, i, column, value, "must be a string")
        return pd.DataFrame({"prompt": frame["prompt"], "completion": frame["completion"]}, index=frame.index)
    if data_format == "alpaca":
        for column in ("instruction", "output"):
            _require_filled(frame, column, origin)
        extra = frame["input"] if "input" in frame else pd.Series([""] * len(frame), index=frame.index)
        prompts = [
            str(instruction) + (f"\n\n{inp}" if not _missing(inp) else "")
            for instruction, inp in zip(frame["instruction"], extra, strict=True)
        ]
        return pd.DataFrame({"prompt": prompts, "completion": frame["output"].astype(str)}, index=frame.index)
    _require_filled(frame, "text", origin)
    for i, value in frame["text"].items():
        if not isinstance(value, str):
            raise _bad(origin, i, "text", value, "plain-text rows must be strings")
    return pd.DataFrame({"text": frame["text"]}, index=frame.index)


# ---------------------------------------------------------------------------------------------------- encoding


def render(tokenizer, messages, add_generation_prompt: bool = False) -> str:
    """The chat template applied to ``messages`` as text."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def _ends_turn_with_eos(tokenizer) -> bool:
    from trainforge.tasks.llm._tokenizer import assistant_turn_end

    return assistant_turn_end(tokenizer) == tokenizer.eos_token


def encode_conversation(tokenizer, messages: list[dict], assistant_only: bool) -> tuple[list[int], list[int]]:
    """Token ids of the templated conversation and labels (-100 outside assistant turns when ``assistant_only``).

    Each assistant turn is trained through the EOS that closes it (appended when the template writes none).
    """
    eos = tokenizer.eos_token
    if not _ends_turn_with_eos(tokenizer):
        messages = [dict(m, content=m["content"] + eos) if m["role"] == "assistant" else m for m in messages]
    full = render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:i], add_generation_prompt=True) if i else ""
        through = render(tokenizer, messages[: i + 1])
        if not (full.startswith(before) and full.startswith(through) and through.startswith(before)):
            raise ConfigError(
                [
                    (
                        "params.chat_template",
                        "the chat template renders earlier turns differently once later turns follow, "
                        "so assistant turns "
                        "cannot be located for the loss mask; use a built-in template (chatml, zephyr, llama3)",
                    )
                ]
            )
        turn = through[len(before) :]
        end = turn.rfind(eos)
        spans.append((len(before), len(before) + (end + len(eos) if end >= 0 else len(turn))))
    encoded = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = encoded["input_ids"]
    if not assistant_only:
        return ids, list(ids)
    labels = [
        token if any(start <= offset[0] < stop for start, stop in spans) and offset[1] > offset[0] else -100
        for token, offset in zip(ids, encoded["offset_mapping"], strict=True)
    ]
    return ids, labels


def encode_plain(
    tokenizer, prompt: str, completion: str, add_eos: bool, completion_only: bool
) -> tuple[list[int], list[int]]:
    """``prompt + completion`` as plain text (EOS appended); labels only on the completion when asked."""
    prompt_ids = tokenizer(prompt)["input_ids"] if prompt else tokenizer("")["input_ids"]
    full = tokenizer(prompt + completion)["input_ids"]
    if add_eos and tokenizer.eos_token_id is not None and (not full or full[-1] != tokenizer.eos_token_id):
        full = full + [tokenizer.eos_token_id]
    cut = len(prompt_ids) if full[: len(prompt_ids)] == prompt_ids else _common_prefix(prompt_ids, full)
    labels = [-100] * cut + full[cut:] if completion_only else list(full)
    return full, labels


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def encode_sft_row(
    row: dict, data_format: str, tokenizer, params, completion_only: bool
) -> tuple[list[int], list[int]]:
    """One canonical row -> (input_ids, labels), templated when the tokenizer carries the run's template."""
    templated = bool(tokenizer.chat_template)
    if data_format == "messages":
        return encode_conversation(tokenizer, row["messages"], completion_only)
    if data_format in ("prompt_completion", "alpaca"):
        if templated:
            turns = [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["completion"]}]
            return encode_conversation(tokenizer, turns, completion_only)
        return encode_plain(tokenizer, row["prompt"], row["completion"], params.add_eos_token, completion_only)
    return encode_plain(tokenizer, "", row["text"], params.add_eos_token, False)


def fit_block(encoded: list[tuple[list[int], list[int]]], block_size: int, drop: bool) -> tuple[list, dict[str, int]]:
    """Truncate (or drop) sequences longer than ``block_size``; rows left with nothing to learn are dropped."""
    kept, counts = [], {"too_long": 0, "dropped": 0}
    for ids, labels in encoded:
        if len(ids) > block_size:
            counts["too_long"] += 1
            if drop:
                counts["dropped"] += 1
                continue
            ids, labels = ids[:block_size], labels[:block_size]
        if all(label == -100 for label in labels):
            counts["dropped"] += 1
            continue
        kept.append((ids, labels))
    return kept, counts


def show_example(tokenizer, ids: list[int], labels: list[int], limit: int = 600) -> str:
    """Decoded text with the trained tokens between ⟦ and ⟧."""
    parts: list[str] = []
    run: list[int] = []
    trained: bool | None = None
    for token, label in zip(ids, labels, strict=True):
        state = label != -100
        if state != trained and run:
            text = tokenizer.decode(run)
            parts.append(f"⟦{text}⟧" if trained else text)
            run = []
        trained = state
        run.append(token)
    if run:
        text = tokenizer.decode(run)
        parts.append(f"⟦{text}⟧" if trained else text)
    shown = "".join(parts)
    return shown if len(shown) <= limit else shown[:limit] + " ..."


# ---------------------------------------------------------------------------------------------------- preference


# The word that opens the answer in hh-rlhf-style text ("\n\nHuman: ...\n\nAssistant: ..."), "### Response:" etc.
_ANSWER_MARKER = re.compile(r"(?i)\b(assistant|response|answer|bot|gpt)\s*:")


@dataclass
class PreferencePairs:
    """Preference rows as prompt/chosen/rejected, with what ``normalize_preference`` found out about them."""

    frame: pd.DataFrame
    conversational: bool
    notes: list[str] = field(default_factory=list)


def normalize_preference(frame: pd.DataFrame, origin: str) -> PreferencePairs:
    """Rows as prompt/chosen/rejected (strings, or lists of turns), every row checked.

    Besides a prompt column with answers, two whole-conversation shapes are read: chosen and rejected holding the
    whole conversation (the reference's own shape, even beside a prompt column, which it then ignores; and hh-rlhf's
    pairs, as lists of turns or as "Human: ... Assistant: ..." text), whose prompt is what the two share.
    Pairs whose chosen equals rejected carry no preference: they are dropped with a note; if every pair is such a
    pair, that is an error.

    Raises:
        DataError: Naming the row and column of a pair that fits no shape, or when every pair is identical.
    """
    for column in ("chosen", "rejected"):
        _require_filled(frame, column, origin, ACCEPTED_PREFERENCE)
    has_prompt = "prompt" in frame
    if has_prompt:
        _require_filled(frame, "prompt", origin, ACCEPTED_PREFERENCE)
    conversational = _looks_like_messages(frame["chosen"].iloc[0])
    rows, identical, shared = {}, [], 0
    for i in frame.index:
        prompt = frame.at[i, "prompt"] if has_prompt else None
        chosen, rejected = frame.at[i, "chosen"], frame.at[i, "rejected"]
        if conversational:
            row, from_conversation = _conversation_pair(prompt, chosen, rejected, origin, i)
        else:
            row, from_conversation = _string_pair(prompt, chosen, rejected, origin, i)
        shared += from_conversation
        if row is None:
            identical.append(i)
        else:
            rows[i] = row
    notes = []
    if identical and not rows:
        raise DataError(
            f"{origin}: chosen and rejected are the same in every pair ({len(identical)} rows): there is no "
            "preference to learn. Check that data.columns.chosen and data.columns.rejected name different columns."
        )
    if identical:
        shown = ", ".join(str(int(i) + 1) for i in identical[:10]) + (", ..." if len(identical) > 10 else "")
        notes.append(
            f"{origin}: {len(identical)} of {len(frame)} pairs have chosen == rejected (rows {shown}): they carry no "
            "preference signal and are dropped"
        )
    if shared:
        notes.append(
            f"{origin}: {shared} pair(s) hold whole conversations in chosen/rejected: the prompt is what the two share"
            + (" (the prompt column is not used for them, as in the reference)" if has_prompt else "")
        )
    out = pd.DataFrame(list(rows.values()), index=list(rows), columns=["prompt", "chosen", "rejected"])
    return PreferencePairs(out, conversational, notes)


def _string_pair(prompt, chosen, rejected, origin: str, i) -> tuple[dict | None, bool]:
    """(prompt/chosen/rejected strings or None for an identical pair, whether the prompt came from the answers)."""
    for column, value in (("chosen", chosen), ("rejected", rejected), ("prompt", prompt)):
        if value is not None and not isinstance(value, str):
            raise _bad(origin, i, column, value, "expected a string like the first row's", ACCEPTED_PREFERENCE)
    if chosen.strip() == rejected.strip():
        return None, False
    if prompt is not None:
        if prompt and chosen.startswith(prompt) and rejected.startswith(prompt):
            # Whole texts that repeat the prompt: train on the answers, not on the prompt twice.
            return {"prompt": prompt, "chosen": chosen[len(prompt) :], "rejected": rejected[len(prompt) :]}, True
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}, False
    common = len(os.path.commonprefix([chosen, rejected]))
    markers = list(_ANSWER_MARKER.finditer(chosen[:common]))
    if not markers:
        raise DataError(
            f"{origin}: row {int(i) + 1}: chosen/rejected are plain strings without a shared prompt, so a prompt "
            "column is needed (set data.columns.prompt), or whole texts that share it up to the answer "
            f"('Human: ... Assistant:'). {ACCEPTED_PREFERENCE}"
        )
    cut = markers[-1].end()
    return {"prompt": chosen[:cut], "chosen": chosen[cut:], "rejected": rejected[cut:]}, True


def _conversation_pair(prompt, chosen, rejected, origin: str, i) -> tuple[dict | None, bool]:
    """(prompt/chosen/rejected lists of turns or None for an identical pair, whether they were whole conversations)."""
    chosen_turns = to_messages(chosen, origin, i, "chosen", ACCEPTED_PREFERENCE)
    rejected_turns = to_messages(rejected, origin, i, "rejected", ACCEPTED_PREFERENCE)
    if chosen_turns == rejected_turns:
        return None, False
    whole = prompt is None or chosen_turns[0]["role"] != "assistant"
    if whole:
        shared = 0
        while shared < min(len(chosen_turns), len(rejected_turns)) and chosen_turns[shared] == rejected_turns[shared]:
            shared += 1
        if not shared:
            raise _bad(
                origin,
                i,
                "rejected",
                rejected,
                "chosen and rejected are whole conversations that share no turn, so there is no prompt: they must be "
                "conversations sharing the turns before the answer (typically sharing every turn but the last), "
                "or answers after a prompt column",
                ACCEPTED_PREFERENCE,
            )
        prompt_turns = chosen_turns[:shared]
        chosen_turns, rejected_turns = chosen_turns[shared:], rejected_turns[shared:]
    else:
        prompt_turns = (
            to_messages(prompt, origin, i, "prompt", ACCEPTED_PREFERENCE)
            if _looks_like_messages(prompt)
            else [{"role": "user", "content": str(prompt)}]
        )
    for column, turns, value in (("chosen", chosen_turns, chosen), ("rejected", rejected_turns, rejected)):
        if not turns:
            raise _bad(
                origin, i, column, value, "no answer after the turns chosen and rejected share", ACCEPTED_PREFERENCE
            )
        if turns[0]["role"] != "assistant" or turns[-1]["role"] != "assistant":
            why = (
                "the answer after the shared turns must start with an assistant turn"
                if turns[0]["role"] != "assistant"
                else "the last turn must be the assistant's answer"
            )
            raise _bad(origin, i, column, value, why, ACCEPTED_PREFERENCE)
    return {"prompt": prompt_turns, "chosen": chosen_turns, "rejected": rejected_turns}, whole


def render_preference(row: dict, tokenizer, add_eos: bool) -> dict[str, str]:
    """Prompt (ending with the generation prompt) and completions (ending with EOS) as strings.

    A BOS written by the template is removed from the prompt when the tokenizer adds one itself, so that the TRL
    trainers, which tokenize these strings, see it once.
    """
    eos = tokenizer.eos_token or ""
    prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
    if tokenizer.chat_template:
        if isinstance(prompt, str):
            prompt = [{"role": "user", "content": prompt}]
            chosen = [{"role": "assistant", "content": chosen}]
            rejected = [{"role": "assistant", "content": rejected}]
        if not _ends_turn_with_eos(tokenizer):
            chosen = [dict(m, content=m["content"] + eos) for m in chosen]
            rejected = [dict(m, content=m["content"] + eos) for m in rejected]
        prompt_text = render(tokenizer, prompt, add_generation_prompt=True)
        texts = {}
        for name, turns in (("chosen", chosen), ("rejected", rejected)):
            full = render(tokenizer, prompt + turns)
            if not full.startswith(prompt_text):
                raise ConfigError(
                    [
                        (
                            "params.chat_template",
                            "the template renders the prompt differently before an answer; "
                            "use a built-in template (chatml, zephyr, llama3)",
                        )
                    ]
                )
            answer = full[len(prompt_text) :]
            end = answer.rfind(eos) if eos else -1
            texts[name] = answer[: end + len(eos)] if end >= 0 else answer
    elif isinstance(prompt, list):
        raise ConfigError(
            [("params.chat_template", "conversational preference data needs a chat template; remove 'none'")]
        )
    else:
        prompt_text = prompt
        texts = {
            n: v + (eos if add_eos and not v.endswith(eos) else "")
            for n, v in (("chosen", chosen), ("rejected", rejected))
        }
    bos = tokenizer.bos_token
    if bos and prompt_text.startswith(bos) and tokenizer("x")["input_ids"][:1] == [tokenizer.bos_token_id]:
        prompt_text = prompt_text[len(bos) :]
    return {"prompt": prompt_text, **texts}


def preference_lengths(rendered: list[dict[str, str]], tokenizer) -> list[int]:
    """Tokens of the longer of prompt+chosen / prompt+rejected, per row."""
    chosen = tokenizer([r["prompt"] + r["chosen"] for r in rendered])["input_ids"]
    rejected = tokenizer([r["prompt"] + r["rejected"] for r in rendered])["input_ids"]
    return [max(len(a), len(b)) for a, b in zip(chosen, rejected, strict=True)]


def as_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts (lists of turns kept as Python lists)."""
    return frame.to_dict(orient="records")
