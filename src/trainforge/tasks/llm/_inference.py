"""Finished LLM runs: merging the adapter, loading the run back, batched generation, predictors and ``chat``."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pandas as pd

from trainforge.errors import DataError, RunDirError
from trainforge.tasks.llm._models import MERGED_DIR
from trainforge.tasks.spec import predict_once

# ---------------------------------------------------------------------------------------------------- saving


# ---------------------------------------------------------------------------------------------------- loading


def load_run(run_dir: Path, config, head: str = "causal_lm"):
    """``(model, tokenizer)`` of a finished run: the merged model, the full model, or base + adapter."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    run_dir = Path(run_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(run_dir))
    auto = AutoModelForCausalLM if head == "causal_lm" else AutoModelForSequenceClassification
    if (run_dir / MERGED_DIR / "config.json").is_file():
        model = auto.from_pretrained(str(run_dir / MERGED_DIR))
    elif (run_dir / "adapter_config.json").is_file():
        from peft import PeftModel

        from trainforge.tasks.llm._models import load_base_model

        base = load_base_model(config, vocab_size=len(tokenizer), head=head, quantize=torch.cuda.is_available())
        model = PeftModel.from_pretrained(base, str(run_dir))
    elif (run_dir / "config.json").is_file():
        model = auto.from_pretrained(str(run_dir))
    else:
        raise RunDirError(f"{run_dir} holds no model (no config.json, adapter_config.json or {MERGED_DIR}/)")
    if torch.cuda.is_available():
        model = model.to("cuda")
    return model.eval(), tokenizer


def prompt_ids(tokenizer, prompt, template: bool = True) -> list[int]:
    """Token ids of a prompt (a string or a list of turns) as the run was trained: templated when it has one.

    ``template=False`` reads a string as raw text to continue (an OpenAI-style completion): no chat template, the
    tokenizer's own special tokens only.
    """
    if template and tokenizer.chat_template:
        turns = prompt if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]
        text = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    if isinstance(prompt, list):
        raise DataError("this run was trained without a chat template: give plain-text prompts, not lists of turns")
    return tokenizer(str(prompt))["input_ids"]


def _generate_kwargs(tokenizer, max_new_tokens: int, temperature: float, top_p: float) -> dict[str, Any]:
    """``model.generate`` settings shared by batched and streamed answers: length, EOS, padding and sampling."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {"do_sample": False}
    )
    return {"max_new_tokens": max_new_tokens, "eos_token_id": tokenizer.eos_token_id, "pad_token_id": pad, **sampling}


def _left_padded(batch: list[list[int]], pad: int, device) -> tuple[Any, Any, int]:
    """``(input_ids, attention_mask, width)`` of prompts left-padded to the longest."""
    import torch

    width = max(len(ids) for ids in batch)
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch], device=device)
    mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=device)
    return input_ids, mask, width


def generate(
    model, tokenizer, prompts: list, max_new_tokens: int, temperature: float, top_p: float, batch_size: int = 8
) -> list[str]:
    """Answers to ``prompts`` (left-padded batches), each stopping at EOS, special tokens removed."""
    import torch

    kwargs = _generate_kwargs(tokenizer, max_new_tokens, temperature, top_p)
    answers = []
    for start in range(0, len(prompts), batch_size):
        batch = [prompt_ids(tokenizer, p) for p in prompts[start : start + batch_size]]
        input_ids, mask, width = _left_padded(batch, kwargs["pad_token_id"], model.device)
        with torch.inference_mode():
            output = model.generate(input_ids=input_ids, attention_mask=mask, **kwargs)
        answers += tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
    return [answer.strip() for answer in answers]


class GenerationStream:
    """One answer, generated in a background thread and read piece by piece as it comes (``for text in stream``).

    Iterating yields the new text as it is decoded (``transformers.TextIteratorStreamer``), never past a stop
    sequence: text that could be the start of one is held back until it is known not to be. Leaving the loop early
    (a client that went away) stops the generation at its next token. Once iterated, ``text`` is the whole answer,
    ``completion_tokens`` the tokens generated and ``finish_reason`` ``"stop"`` (EOS or a stop sequence) or
    ``"length"`` (``max_new_tokens`` reached). ``prompt_tokens`` is known from the start.

    Raises (while iterating): whatever ``model.generate`` raised in its thread.
    """

    def __init__(
        self, predictor: GenerationPredictor, ids: list[int], settings: dict[str, Any], stop: tuple[str, ...]
    ) -> None:
        self._predictor, self._ids, self._settings = predictor, ids, settings
        self.stop = tuple(s for s in stop if s)
        self.prompt_tokens = len(ids)
        self.completion_tokens = 0
        self.finish_reason: str | None = None
        self.text = ""
        self._cancel = threading.Event()
        self._output: Any = None
        self._error: BaseException | None = None
        self._started = False

    def __iter__(self):
        if self._started:
            raise RuntimeError("a generation stream is read once")
        self._started = True
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(self._predictor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        thread = threading.Thread(target=self._generate, args=(streamer,), daemon=True)
        thread.start()
        emitted = 0
        try:
            for piece in streamer:
                self.text += piece
                cut = self._stop_at(max(0, emitted - max(map(len, self.stop), default=0)))
                if cut is not None:
                    self.text, self.finish_reason = self.text[:cut], "stop"
                    self._cancel.set()
                    break
                safe = len(self.text) - self._held_back()
                if safe > emitted:
                    yield self.text[emitted:safe]
                    emitted = safe
            if len(self.text) > emitted:
                yield self.text[emitted:]
        finally:
            self._cancel.set()  # a consumer that stopped reading stops the generation too
            thread.join()
        if self._error is not None:
            raise self._error
        self._count()

    def _generate(self, streamer) -> None:
        """The generation thread: one ``model.generate`` at a time per predictor (its lock)."""
        import torch
        from transformers import StoppingCriteriaList

        predictor, finished = self._predictor, False
        try:
            with predictor._lock:
                if not self._cancel.is_set():
                    kwargs = _generate_kwargs(predictor.tokenizer, **self._settings)
                    input_ids, mask, _ = _left_padded([self._ids], kwargs["pad_token_id"], predictor.model.device)
                    with torch.inference_mode():
                        self._output = predictor.model.generate(
                            input_ids=input_ids,
                            attention_mask=mask,
                            streamer=streamer,
                            stopping_criteria=StoppingCriteriaList([_Cancelled(self._cancel)]),
                            **kwargs,
                        )
                    finished = True  # generate ended the streamer
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread, which raises it
            self._error = exc
        finally:
            if not finished:
                streamer.end()  # unblock the reader

    def _stop_at(self, start: int) -> int | None:
        """Where the earliest stop sequence begins in ``text`` (searching from ``start``), or None."""
        found = [i for i in (self.text.find(s, start) for s in self.stop) if i >= 0]
        return min(found) if found else None

    def _held_back(self) -> int:
        """Length of the longest end of ``text`` that is the start of a stop sequence (not yet safe to show)."""
        return max(
            (k for s in self.stop for k in range(min(len(s) - 1, len(self.text)), 0, -1) if self.text.endswith(s[:k])),
            default=0,
        )

    def _count(self) -> None:
        """Tokens generated, and ``length`` when the answer ran to ``max_new_tokens`` without ending."""
        if self._output is None:
            return
        generated = self._output[0, len(self._ids) :].tolist()
        self.completion_tokens = len(generated)
        if self.finish_reason is None:
            ended = bool(generated) and generated[-1] == self._predictor.tokenizer.eos_token_id
            full = len(generated) >= self._settings["max_new_tokens"]
            self.finish_reason = "length" if full and not ended else "stop"


class _Cancelled:
    """A stopping criterion (``transformers.StoppingCriteria``) that ends generation once ``event`` is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


# ---------------------------------------------------------------------------------------------------- predict


def _prompts(frame: pd.DataFrame) -> list:
    """Each row's prompt: its messages (list of turns or JSON), else its prompt, else its text."""
    from trainforge.tasks.llm._data import _missing, _parse

    columns = [c for c in ("messages", "prompt", "text") if c in frame]
    if not columns:
        raise DataError(
            f"the input needs a prompt, messages or text column; found: {', '.join(map(str, frame.columns))}"
        )
    prompts = []
    for position, (_, row) in enumerate(frame.iterrows()):
        value = next((row[c] for c in columns if not _missing(row[c])), None)
        if value is None:
            raise DataError(f"input row {position + 1} has no prompt (columns {', '.join(columns)} are all empty)")
        prompts.append(_parse(value))
    return prompts


GENERATION_KEYS = ("max_new_tokens", "temperature", "top_p")


class GenerationPredictor:
    """A finished text-generation run (SFT, generic, DPO, ORPO), loaded once: answers prompts and conversations.

    Thread-safe: ``generate`` calls on the shared model and tokenizer run one at a time.
    """

    def __init__(self, run_dir: Path, config) -> None:
        """Load the run's model and tokenizer (``load_run``: merged model, full model, or base + adapter).

        Raises:
            RunDirError: The run directory holds no model.
        """
        self.run_dir, self.config = Path(run_dir), config
        self.model, self.tokenizer = load_run(self.run_dir, config)
        self._lock = threading.Lock()

    @property
    def has_chat_template(self) -> bool:
        """Whether the run was trained with a chat template (else prompts are plain text, turns unknown)."""
        return bool(self.tokenizer.chat_template)

    def generation(self, **overrides: Any) -> dict[str, Any]:
        """``max_new_tokens``, ``temperature`` and ``top_p``: the run's params, with the non-None ``overrides``."""
        unknown = set(overrides) - set(GENERATION_KEYS)
        if unknown:
            raise DataError(f"unknown generation settings {sorted(unknown)}; known: {', '.join(GENERATION_KEYS)}")
        params = self.config.params
        return {k: overrides[k] if overrides.get(k) is not None else getattr(params, k) for k in GENERATION_KEYS}

    def generate(self, prompts: list, **overrides: Any) -> list[str]:
        """One answer per prompt (a string, or a list of turns for a templated run); see ``generate``."""
        with self._lock:
            return generate(self.model, self.tokenizer, prompts, **self.generation(**overrides))

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add a ``generation`` column: the answer to each row's prompt (params max_new_tokens, temperature, top_p).

        Args:
            frame: n rows with a ``messages`` (list of turns or its JSON), ``prompt`` or ``text`` column.

        Returns:
            A copy of ``frame`` (n rows) with ``generation`` (str, special tokens removed).

        Raises:
            DataError: No prompt column, a row without a prompt, or turns for a run trained without a chat template.
        """
        out = frame.copy()
        out["generation"] = self.generate(_prompts(frame))
        return out

    def stream(
        self, prompt: str | list[dict[str, str]], stop: tuple[str, ...] = (), template: bool = True, **overrides: Any
    ) -> GenerationStream:
        """The answer to one prompt, read as it is generated (``GenerationStream``): ``generate``'s generation.

        Args:
            prompt: A string, or a list of ``{"role", "content"}`` turns for a run with a chat template.
            stop: Stop sequences: the answer ends before the first one (which is not part of it).
            template: False reads a string as raw text to continue, without the chat template (a completion).
            overrides: ``max_new_tokens``, ``temperature``, ``top_p`` (None keeps the run's value).

        Raises:
            DataError: Turns for a run without a chat template, or an unknown generation setting.
        """
        settings = self.generation(**overrides)
        return GenerationStream(self, prompt_ids(self.tokenizer, prompt, template), settings, tuple(stop))

    def chat(self, messages: list[dict[str, str]], **generation: Any) -> str:
        """The reply to a conversation (``{"role", "content"}`` turns, the last one the user's).

        A run trained without a chat template has no notion of turns: it answers the last user message alone.
        ``generation`` overrides ``max_new_tokens``, ``temperature`` or ``top_p`` (None keeps the run's value).

        Raises:
            DataError: No user message to answer.
        """
        return self.generate([self.conversation_prompt(messages)], **generation)[0]

    def conversation_prompt(self, messages: list[dict[str, str]]) -> str | list[dict[str, str]]:
        """The prompt that answers ``messages``: the turns, or the last user message alone for a template-less run.

        Raises:
            DataError: No user message to answer.
        """
        users = [m for m in messages if m.get("role") == "user"]
        if not users:
            raise DataError("the conversation has no user message to answer")
        return list(messages) if self.has_chat_template else str(users[-1]["content"])


class ScorePredictor:
    """A finished reward model, loaded once: scores texts or prompt + completion pairs (a scalar per row)."""

    def __init__(self, run_dir: Path, config) -> None:
        """Load the run's sequence-classification model and tokenizer.

        Raises:
            RunDirError: The run directory holds no model.
        """
        self.run_dir, self.config = Path(run_dir), config
        self.model, self.tokenizer = load_run(self.run_dir, config, head="seq_cls")
        self._lock = threading.Lock()

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add a ``score`` column: the reward model's scalar for prompt + completion (or text) in each row.

        Args:
            frame: n rows with a ``text`` column, or ``prompt`` and ``completion`` columns.

        Returns:
            A copy of ``frame`` (n rows) with ``score`` (float; higher is preferred).

        Raises:
            DataError: Neither a text column nor prompt + completion columns.
        """
        import torch

        tokenizer = self.tokenizer
        if "text" in frame:
            texts = frame["text"].astype(str).tolist()
        elif {"prompt", "completion"} <= set(frame.columns):
            texts = [_scored_text(tokenizer, p, c) for p, c in zip(frame["prompt"], frame["completion"], strict=True)]
        else:
            raise DataError(
                "the input needs a text column or prompt + completion columns; "
                f"found: {', '.join(map(str, frame.columns))}"
            )
        scores = []
        with self._lock, torch.inference_mode():
            for text in texts:
                ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=self.config.params.block_size)
                scores.append(float(self.model(**ids.to(self.model.device)).logits[0, 0]))
        out = frame.copy()
        out["score"] = scores
        return out


predict_generate = predict_once(GenerationPredictor)  # spec.predict of the generation tasks: load, answer, once
predict_score = predict_once(ScorePredictor)  # spec.predict of llm_reward


def _scored_text(tokenizer, prompt: str, completion: str) -> str:
    if tokenizer.chat_template:
        turns = [{"role": "user", "content": str(prompt)}, {"role": "assistant", "content": str(completion)}]
        return tokenizer.apply_chat_template(turns, tokenize=False)
    return str(prompt) + str(completion) + (tokenizer.eos_token or "")


# ---------------------------------------------------------------------------------------------------- chat


def chat(
    run_dir: Path,
    prompt: str | None,
    system: str | None,
    overrides: dict,
    stream_in=None,
    stream_out=None,
    image: str | None = None,
) -> int:
    """One answer to ``prompt``, or a conversation read line by line (interactive on a terminal).

    The run's predictor is loaded once for the whole conversation (``trainforge.sdk.load_predictor``). ``image`` (a
    file path) goes with the first message, as an image part before its text, for runs whose task reads images.

    Raises:
        RunDirError: Not a finished run, a run that does not generate text (a reward model, a classifier), or an
            image for a run that reads none.
    """
    from trainforge.sdk import load_predictor
    from trainforge.tasks.spec import ChatPredictor

    stream_in = stream_in or sys.stdin
    stream_out = stream_out or sys.stdout
    config = _finished_config(Path(run_dir))
    if config.task == "llm_reward":
        raise RunDirError(
            f"{run_dir} is a reward model (it scores texts); use `trainforge predict` on prompt/completion rows"
        )
    if image is not None and not _reads_images(config.task):
        raise RunDirError(f"--image: {run_dir} is a {config.task} run, which reads no images; drop --image")
    if image is not None and not Path(image).expanduser().is_file():
        raise DataError(f"--image: no such file: {image}")
    predictor = load_predictor(run_dir)
    if not isinstance(predictor, ChatPredictor):
        raise RunDirError(f"{run_dir} is a {config.task} run, which does not generate text: use `trainforge predict`")
    settings = {k: overrides.get(k) for k in GENERATION_KEYS}
    history: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []

    def answer(text: str) -> str:
        content: Any = text
        if image is not None and not any(turn["role"] == "user" for turn in history):
            content = [{"type": "image", "path": image}, {"type": "text", "text": text}]
        history.append({"role": "user", "content": content})
        reply = predictor.chat(history, **settings)  # a run without a chat template answers the last turn alone
        history.append({"role": "assistant", "content": reply})
        return reply

    if prompt is not None:
        print(answer(prompt), file=stream_out)
        return 0
    interactive = stream_in.isatty()
    if interactive:
        print(f"chatting with {run_dir} (empty line or Ctrl-D to quit)", file=sys.stderr)
    while True:
        if interactive:
            print("you> ", end="", file=sys.stderr, flush=True)
        line = stream_in.readline()
        if not line or (interactive and not line.strip()):
            return 0
        if line.strip():
            print(("bot> " if interactive else "") + answer(line.rstrip("\n")), file=stream_out, flush=True)


def _reads_images(task: str) -> bool:
    """Whether ``task``'s predict reads an image column (``Column.kind == "image"``)."""
    from trainforge.tasks import get_task

    return any(column.kind == "image" for column in get_task(task).inputs_to_predict())


def _finished_config(run_dir: Path):
    from trainforge.config.loading import load_config

    if not (run_dir / "config.resolved.yaml").is_file():
        raise RunDirError(f"{run_dir} is not a trainforge run directory (no config.resolved.yaml)")
    if not (run_dir / "metrics.json").is_file():
        raise RunDirError(f"{run_dir} holds no finished run (no metrics.json): train it to the end first")
    return load_config(run_dir / "config.resolved.yaml")
