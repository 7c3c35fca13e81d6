"""Image + text rows for vision-language models: checked conversations, TRL's collator, batched generation.

Every row becomes one image and a prompt/completion pair of conversations (``{"role", "content"}`` turns, the shape
TRL's SFT trainer reads): the prompt is what the model is shown (the image with the question, or the task's default
captioning prompt; for chat rows every turn before the last assistant turn), the completion the answer it learns.
Batches go through TRL's ``DataCollatorForVisionLanguageModeling`` (trl/trainer/sft_trainer.py): the processor's
chat template renders both parts, the processor expands the image placeholder into image tokens and computes the
pixel values, and the labels keep the completion's tokens only (prompt, image and padding tokens are -100).

Conversations travel through ``datasets`` as JSON text: Arrow would otherwise merge the keys of text and image parts
(``{"type": "image", "text": None}``), which the template would then render.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from trainforge.data.images import open_rgb
from trainforge.data.labels import is_missing, rows
from trainforge.errors import DataError

ROLES = ("system", "user", "assistant")
IMAGE_PART_KEYS = ("image", "path", "url")  # where an image part of a chat message may carry its image


# ---------------------------------------------------------------------------------------------------- rows


def pair_rows(frame: pd.DataFrame, default_prompt: str, origin: str, columns: dict[str, str]) -> list[str]:
    """Problems of prompt/answer rows (empty or non-text answers and prompts), one message per kind; [] when none.

    ``columns`` maps the logical names (``prompt``, ``answer``) to the user's, for messages. Rows without a prompt
    column take ``default_prompt``; an empty cell in a prompt column is an error (it is not silently captioning).
    """
    problems = []
    for name in ("answer", "prompt"):
        if name not in frame:
            continue
        values = frame[name]
        empty = values.map(is_missing)
        other = ~empty & ~values.map(lambda value: isinstance(value, str))
        named = f"the {name} column ({columns.get(name, name)!r})"
        if empty.any():
            count = int(empty.sum())
            problems.append(f"{origin}: {named} is empty in {count} row(s), first: {rows(values.index[empty])}")
        if other.any():
            problems.append(
                f"{origin}: {named} holds values that are not text in {int(other.sum())} row(s), first: "
                f"{rows(values.index[other])}"
            )
    return [f"{p}. Every row needs a non-empty string: fill or drop those rows." for p in problems]


def pair_conversations(frame: pd.DataFrame, default_prompt: str) -> list[tuple[list, list]]:
    """``(prompt turns, completion turns)`` per row: the user's prompt (or ``default_prompt``) and the answer."""
    prompts = frame["prompt"] if "prompt" in frame else pd.Series(default_prompt, index=frame.index)
    return [
        ([{"role": "user", "content": str(prompt).strip()}], [{"role": "assistant", "content": str(answer).strip()}])
        for prompt, answer in zip(prompts, frame["answer"], strict=True)
    ]


def message_conversations(frame: pd.DataFrame, origin: str, column: str) -> tuple[list[tuple[list, list]], list[str]]:
    """``(prompt turns, completion turns)`` per chat row, and the problems found (first five rows of each kind).

    The completion is the last assistant turn; every turn before it is the prompt (earlier assistant turns are
    context, not trained). A turn's content is a string, or a list of parts ``{"type": "text", "text": ...}`` /
    ``{"type": "image"}``: with parts, the row's image goes where its one image part stands; with strings only, it
    goes before the first user turn's text.
    """
    found: dict[str, list[str]] = {}
    pairs = []
    for row, value in frame[column].items():
        try:
            pairs.append(_split_conversation(_turns(value)))
        except ValueError as exc:
            found.setdefault(str(exc), []).append(str(int(row) + 1))
    problems = [
        f"{origin}: column {column!r}, rows {', '.join(numbers[:5])}{' ...' if len(numbers) > 5 else ''}: {why}"
        for why, numbers in found.items()
    ]
    return pairs, problems


def _turns(value: Any) -> list[dict]:
    """A cell as a list of ``{"role", "content"}`` turns (a JSON string is parsed); raises ValueError saying why."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError("not a JSON list of {role, content} turns") from None
    if not isinstance(value, list) or not value:
        raise ValueError("not a non-empty list of {role, content} turns")
    turns = []
    for turn in value:
        if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
            raise ValueError("each turn must be a mapping with 'role' and 'content'")
        if turn["role"] not in ROLES:
            raise ValueError(f"unknown role {turn['role']!r} (use {', '.join(ROLES)})")
        turns.append({"role": turn["role"], "content": _content(turn["content"])})
    return turns


def _content(content: Any) -> str | list[dict]:
    if isinstance(content, np.ndarray):
        content = content.tolist()
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not all(isinstance(part, dict) for part in content):
        raise ValueError("a turn's content must be a string or a list of {type, ...} parts")
    parts: list[dict] = []
    for part in content:
        if part.get("type") == "image":
            parts.append({"type": "image"})  # the row's image column supplies the image
        elif part.get("type") == "text" and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        else:
            raise ValueError("content parts must be {'type': 'text', 'text': ...} or {'type': 'image'}")
    return parts


def _split_conversation(turns: list[dict]) -> tuple[list, list]:
    if turns[-1]["role"] != "assistant":
        raise ValueError("the last turn must be the assistant's answer (the completion that is learnt)")
    prompt, completion = turns[:-1], turns[-1:]
    if not any(turn["role"] == "user" for turn in prompt):
        raise ValueError("no user turn before the assistant's answer")
    if not text_of(completion[0]["content"]).strip():
        raise ValueError("the assistant's answer is empty")
    images = sum(_image_parts(turn["content"]) for turn in turns)
    structured = any(isinstance(turn["content"], list) for turn in turns)
    if structured and images != 1:
        where = "no image placeholder" if images == 0 else f"{images} image placeholders"
        raise ValueError(
            f"{where} in turns written as parts: a row has one image, so exactly one user turn holds "
            "{'type': 'image'} (or write every content as a string: the image then goes before the first user text)"
        )
    if _image_parts(completion[0]["content"]):
        raise ValueError("the image placeholder is in the assistant's answer; put it in a user turn")
    return prompt, completion


def _image_parts(content: str | list[dict]) -> int:
    return 0 if isinstance(content, str) else sum(part["type"] == "image" for part in content)


def text_of(content: str | list[dict]) -> str:
    """The text of a turn's content (its text parts joined by spaces)."""
    if isinstance(content, str):
        return content
    return " ".join(part["text"] for part in content if part.get("type") == "text")


def literal_image_tokens(pairs: list[tuple[list, list]], index, token: str, origin: str) -> str | None:
    """A problem when a text holds the processor's image token itself (it would desynchronise images and tokens)."""
    if not token:
        return None
    bad = [i for i, (prompt, completion) in zip(index, pairs, strict=True) if _holds(prompt + completion, token)]
    if not bad:
        return None
    return (
        f"{origin}: {rows(bad)} hold the text {token!r}, the model's image token: the processor would count it as an "
        "image that is not there. Remove it from the text (the image column supplies the image)"
    )


def _holds(turns: list[dict], token: str) -> bool:
    return any(token in text_of(turn["content"]) for turn in turns)


def as_json(turns: list[dict]) -> str:
    """Turns as the JSON text the datasets hold."""
    return json.dumps(turns, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------------- batches


@dataclass
class VisionTextCollator:
    """Rows of (image path, prompt JSON, completion JSON) -> TRL's model batch: images opened now, answer-only labels.

    ``max_length`` cuts prompt + completion (image tokens included) to that many tokens; None keeps every token.
    """

    processor: Any
    max_length: int | None = None

    def __post_init__(self) -> None:
        from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

        # completion_only_loss: the labels of the prompt (with its image tokens) and of the padding are -100.
        self.inner = DataCollatorForVisionLanguageModeling(
            processor=self.processor, max_length=self.max_length, completion_only_loss=True
        )

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """The batch: ``input_ids``, ``attention_mask``, ``labels``, ``pixel_values`` (and the processor's extras)."""
        rows = [
            {
                "images": [open_rgb(e["image"])],
                "prompt": json.loads(e["prompt"]),
                "completion": json.loads(e["completion"]),
            }
            for e in examples
        ]
        return self.inner(rows)


def show_example(processor: Any, batch: dict[str, Any]) -> str:
    """The first row of ``batch`` as text, its trained (labelled) tokens in ⟦ ⟧ and image-token runs counted."""
    tokenizer = processor.tokenizer
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    mask = batch["attention_mask"][0].tolist()
    spans: list[tuple[bool, list[int]]] = []
    for token, label, keep in zip(ids, labels, mask, strict=True):
        if not keep:
            continue
        trained = label != -100
        if spans and spans[-1][0] == trained:
            spans[-1][1].append(token)
        else:
            spans.append((trained, [token]))
    text = "".join(
        ("⟦" + tokenizer.decode(tokens) + "⟧") if trained else tokenizer.decode(tokens) for trained, tokens in spans
    )
    token = getattr(processor, "image_token", None)
    if token:
        pattern = f"(?:{re.escape(token)})+"
        text = re.sub(pattern, lambda m: f"{token}×{len(m.group(0)) // len(token)}", text)
    return text


# ---------------------------------------------------------------------------------------------------- generation


def image_parts_to_images(turns: list[dict]) -> tuple[list[dict], list[Any]]:
    """Chat turns with bare ``{"type": "image"}`` placeholders, and the images their image parts carried, opened.

    An image part carries its image under ``image``, ``path`` or ``url`` (a path, data URI, bytes or PIL image), or
    OpenAI's ``{"type": "image_url", "image_url": {"url": ...}}``.

    Raises:
        DataError: An image part carries nothing, or an image that cannot be opened.
    """
    images, out = [], []
    for turn in turns:
        content = turn.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                if isinstance(part, dict) and part.get("type") in ("image", "image_url"):
                    value = next((part[k] for k in (*IMAGE_PART_KEYS, "image_url") if part.get(k) is not None), None)
                    if isinstance(value, dict):  # OpenAI's {"type": "image_url", "image_url": {"url": ...}}
                        value = value.get("url")
                    if value is None:
                        raise DataError("an image part of the conversation carries no image (image, path or url)")
                    images.append(open_rgb(value))
                    parts.append({"type": "image"})
                else:
                    parts.append(part)
            content = parts
        out.append({**turn, "content": content})
    return out, images


def generate_answers(
    model: Any,
    processor: Any,
    prompts: list[list[dict]],
    images: list[list[Any]],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    batch_size: int = 8,
) -> tuple[list[str], list[int]]:
    """Greedy (or sampled) answers to ``prompts`` (turns with image placeholders), with the tokens each generated.

    Each prompt is rendered with the processor's chat template and a generation prompt, its images (a list per
    prompt, matching its placeholders; a prompt whose content is all strings gets them before its first user text)
    expanded by the processor; batches are left-padded. Generation stops at the tokenizer's EOS.
    """
    import torch
    from trl.data_utils import prepare_multimodal_messages

    tokenizer = processor.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {}
    answers, lengths = [], []
    for start in range(0, len(prompts), batch_size):
        batch_images = images[start : start + batch_size]
        texts = [
            processor.apply_chat_template(
                prepare_multimodal_messages(turns, images=row), tokenize=False, add_generation_prompt=True
            )
            for turns, row in zip(prompts[start : start + batch_size], batch_images, strict=True)
        ]
        flat = [image for row in batch_images for image in row]
        inputs = processor(
            images=flat or None,
            text=texts,
            padding=True,
            padding_side="left",
            return_tensors="pt",
            add_special_tokens=False,  # the template wrote the special tokens (as in training)
        ).to(model.device)
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=pad,
                do_sample=bool(sampling),
                **sampling,
            )
        new = output[:, inputs["input_ids"].shape[1] :]
        answers += [text.strip() for text in tokenizer.batch_decode(new, skip_special_tokens=True)]
        lengths += [int(n) for n in (new != pad).sum(dim=1).tolist()]
    return answers, lengths
