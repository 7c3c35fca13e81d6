"""Windows of (question, context) pairs for extractive question answering, as Hugging Face's ``run_qa.py`` cuts them.

A context longer than one window is split into overlapping windows (``stride`` context tokens shared); each window is
labelled with the tokens of its question's first answer, or with [CLS] when it does not hold the answer whole (or the
question has none). Evaluation windows also keep what post-processing needs (``metrics/squad.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainforge.data.labels import rows
from trainforge.errors import DataError


def check_question_room(
    tokenizer, questions: pd.Series, origin: str, max_length: int, stride: int, file_column: str = "question"
) -> None:
    """Refuse questions so long that a window of ``max_length`` tokens keeps no more than ``stride`` context tokens.

    The tokenizer cannot cut such a window (it stops with a Rust panic); naming the rows here says what to change.

    Args:
        tokenizer: The run's tokenizer.
        questions: One split's questions (index: the rows named in the message).
        origin: The split's file or name.
        max_length: Tokens per window (``params.max_length`` as the model's positions allow).
        stride: ``params.doc_stride``.
        file_column: The user's name of the question column.

    Raises:
        DataError: Naming the rows, the longest question's length and the settings that would fit it.
    """
    if questions.empty:
        return
    encoded = tokenizer([q.lstrip() for q in questions], add_special_tokens=False)["input_ids"]
    lengths = np.array([len(ids) for ids in encoded])
    room = max_length - tokenizer.num_special_tokens_to_add(pair=True) - stride
    long = lengths >= room
    if long.any():
        raise DataError(
            f"{origin}: {int(long.sum())} question(s) leave no room for the context in a window of {max_length} "
            f"tokens (params.max_length) sharing {stride} (params.doc_stride): questions up to {room - 1} tokens fit, "
            f"the longest has {int(lengths.max())}; {rows(questions.index[long])} of column {file_column!r}. Raise "
            "params.max_length, lower params.doc_stride, or shorten those questions."
        )


def encode_windows(tokenizer, frame: pd.DataFrame, max_length: int, stride: int, evaluation: bool) -> dict:
    """Tokenise (question, context) pairs into overlapping windows; label each with its answer's tokens.

    Args:
        tokenizer: A fast tokenizer.
        frame: Rows with ``question``, ``context`` and, when labelled, ``answers`` (as ``analyze`` read them).
        max_length: Tokens per window.
        stride: Context tokens shared by consecutive windows.
        evaluation: Also keep what post-processing needs: ``example_index`` (row of ``frame``), ``offset_mapping``
            (character spans of context tokens, None elsewhere), ``null_index`` ([CLS]), ``context``, ``gold``.

    Returns:
        Columns of the windows: ``input_ids``, ``attention_mask`` (``token_type_ids``), and with answers
        ``start_positions``/``end_positions`` (the first answer's tokens; [CLS] when the window does not hold it
        whole, or the question has none).
    """
    right = tokenizer.padding_side == "right"  # the question first, unless the model pads on the left
    questions, contexts = [q.lstrip() for q in frame["question"]], list(frame["context"])
    encoded = tokenizer(
        questions if right else contexts,
        contexts if right else questions,
        truncation="only_second" if right else "only_first",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    sample_map = encoded.pop("overflow_to_sample_mapping")
    offsets = encoded.pop("offset_mapping")
    columns = {key: list(values) for key, values in encoded.items()}
    answers = list(frame["answers"]) if "answers" in frame else None
    extra: dict[str, list] = {"start_positions": [], "end_positions": []} if answers is not None else {}
    if evaluation:
        extra |= {"example_index": [], "offset_mapping": [], "null_index": [], "context": [], "gold": []}
    for window, example in enumerate(sample_map):
        ids = encoded["input_ids"][window]
        cls = ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0
        sequence = encoded.sequence_ids(window)
        in_context = [s == (1 if right else 0) for s in sequence]
        if answers is not None:
            start, end = _answer_tokens(answers[example], offsets[window], in_context, cls)
            extra["start_positions"].append(start)
            extra["end_positions"].append(end)
        if evaluation:
            extra["example_index"].append(example)
            extra["offset_mapping"].append(
                [list(o) if c else None for o, c in zip(offsets[window], in_context, strict=True)]
            )
            extra["null_index"].append(cls)
            extra["context"].append(contexts[example])
            extra["gold"].append(answers[example]["text"] if answers is not None else [])
    return columns | extra


def _answer_tokens(answer: dict, offsets, in_context: list[bool], cls: int) -> tuple[int, int]:
    """First and last token of the first answer inside this window, else (cls, cls)."""
    if not answer["text"] or True not in in_context:  # no answer, or a context that tokenised to nothing
        return cls, cls
    start_char = answer["answer_start"][0]
    end_char = start_char + len(answer["text"][0])
    first = in_context.index(True)
    last = len(in_context) - 1 - in_context[::-1].index(True)
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return cls, cls
    start = first
    while start <= last and offsets[start][0] <= start_char:
        start += 1
    end = last
    while end >= first and offsets[end][1] >= end_char:
        end -= 1
    return start - 1, end + 1
