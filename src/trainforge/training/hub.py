"""Publishing a finished run to the Hugging Face Hub: ``hub.push`` after training, and ``trainforge push``.

Both go through ``push_run``:

- **What goes up** is an explicit allow-list (``ALLOWED``), not the folder minus some patterns: the model weights,
  the model/tokenizer/processor/task configs, ``config.resolved.yaml``, the card, ``metrics.json``, the loss curve,
  TensorBoard logs, evaluation reports (``metrics.json`` and ``report.md``; not ``predictions.jsonl``, which
  repeats every evaluated row) and the tabular/search summaries. Everything else stays: checkpoints (optimizer and
  scheduler state, RNG state), ``training_args.bin`` (a pickle), ``events.jsonl`` (host paths, tracebacks),
  exports (``merged/``, ``onnx/``), hidden files, symbolic links and anything a user dropped in (``.env``,
  ``*.pem``). ``select_files`` says what it left out.
- **Where**: ``repo_id``, created private unless asked otherwise. A default (private) push never writes into an
  existing public repository: it stops and says to pass ``--public`` (``hub.private: false``). ``revision`` is a
  branch, created from ``main`` when missing.
- **The token** comes only from the environment (``HF_TOKEN``, or the variable a ``hub.token: ${VAR}`` reference
  named when the config was loaded) or huggingface_hub's login cache (``hf auth login``). It travels in the
  ``Authorization`` header and nowhere else: never written, never printed, removed from every error message, and a
  file that holds it (or the value of any secret-looking environment variable) stops the upload before anything is
  sent.
- **The card** (``README.md``) goes up with the run's local path in its code snippets replaced by the repo id, and
  with a license in its front matter when one is known (``license``, ``hub.license`` or the base model's card).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from trainforge._utils.secrets import SECRET_NAME
from trainforge.errors import ConfigError, RunDirError, TrainforgeError


class PublishError(TrainforgeError):
    """The Hub refused or could not be reached, or the run holds a secret; the message says which and what to do."""


@dataclass(frozen=True)
class Rule:
    """Files of one kind that are published: name patterns in one folder (``""``: the run directory itself)."""

    folder: str
    names: tuple[str, ...]
    what: str
    recursive: bool = False  # the folder and every folder below it

    def matches(self, folder: str, name: str) -> bool:
        """Whether the file ``name`` in ``folder`` (relative, ``/``-separated) is of this kind."""
        if self.recursive:
            inside = folder == self.folder or folder.startswith(self.folder + "/")
        else:  # fnmatch's * also matches "/": the depth must be the pattern's own
            inside = fnmatchcase(folder, self.folder) and folder.count("/") == self.folder.count("/")
            inside = inside and (folder == "") == (self.folder == "")
        return inside and any(fnmatchcase(name, pattern) for pattern in self.names)


ALLOWED: tuple[Rule, ...] = (
    Rule("", ("*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "model.joblib"), "model weights"),
    Rule(
        "",
        ("*.json",),
        "model, generation, adapter, tokenizer, processor and task configs (thresholds, QA settings); metrics.json",
    ),
    Rule("", ("vocab.txt", "merges.txt", "*.model", "chat_template.jinja"), "tokenizer vocabularies and templates"),
    Rule("", ("config.resolved.yaml",), "the run's config (written without the token)"),
    Rule("", ("README.md", "loss_curve.svg"), "model card and loss curve"),
    Rule("", ("leaderboard.csv", "feature_importances.csv", "feature_importance.svg"), "tabular model reports"),
    Rule("[0-9]*_*", ("*.json", "*.safetensors", "*.txt"), "sentence-transformers modules (pooling, dense)"),
    Rule("adapter", ("*.json", "*.safetensors"), "the LoRA adapter kept beside a merged model"),
    Rule("tensorboard", ("events.out.tfevents.*",), "TensorBoard logs", recursive=True),
    Rule("evaluation/*", ("metrics.json", "report.md"), "evaluation reports"),
    Rule("search", ("leaderboard.csv", "best_config.yaml", "*.svg"), "hyperparameter search summary"),
)
# Tensor data, not text: a token cannot hide there, and scanning gigabytes would only slow the push.
_NOT_SCANNED = (".safetensors", ".bin")


@dataclass
class Selection:
    """The files a push uploads (relative paths) and what it left out (one line per folder or file)."""

    files: list[str]
    left_out: list[str]
    size: int = 0  # bytes to upload (before the card's rewrite)


@dataclass
class PushResult:
    """Where a push went and what it sent."""

    url: str
    repo_id: str
    revision: str
    private: bool
    files: list[str]
    left_out: list[str] = field(default_factory=list)
    commit_url: str | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """Lines for the CLI."""
        lines = list(self.notes)
        visibility = "private" if self.private else "public"
        lines.append(f"pushed {len(self.files)} files to {self.url} ({visibility}, branch {self.revision})")
        if self.commit_url:
            lines.append(f"commit: {self.commit_url}")
        if self.left_out:
            lines.append("left out: " + ", ".join(self.left_out))
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ token & checks


def resolve_token(config: Any = None) -> str | None:
    """The Hub token: ``hub.token`` when it was read from the environment at load, else ``HF_TOKEN`` or the login.

    A ``hub.token`` still holding ``${VAR}`` text (a config loaded without interpolation, as the web app's) is
    not a token: huggingface_hub's own lookup (``HF_TOKEN``, then the ``hf auth login`` cache) applies.
    """
    token = getattr(getattr(config, "hub", None), "token", None)
    if token is not None:
        value = token.get_secret_value()
        if value and "${" not in value:
            return value
    from huggingface_hub import get_token

    return get_token()


def hub_offline() -> bool:
    """Whether Hub requests are switched off (``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``, now or at import)."""
    from huggingface_hub import constants

    now = any(os.environ.get(name, "").upper() in ("1", "ON", "YES", "TRUE") for name in _OFFLINE_VARIABLES)
    return now or constants.is_offline_mode()


_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def hub_problems(config: Any, key: str = "hub.push") -> list[tuple[str, str]]:
    """What stops a push before it starts: no token, or the Hub switched off (empty when ``hub.push`` is off)."""
    if not config.hub.push:
        return []
    return push_problems(resolve_token(config), key, key)


def push_problems(token: str | None, token_key: str, offline_key: str) -> list[tuple[str, str]]:
    """The problems ``hub_problems`` reports, for a token already looked up (the keys name what is at fault)."""
    problems = []
    if token is None:
        problems.append(
            (
                token_key,
                "there is no Hub token to push with: export HF_TOKEN=<a write token from "
                "https://huggingface.co/settings/tokens> or run `hf auth login` (a token written into the config is "
                "not read)",
            )
        )
    if hub_offline():
        problems.append(
            (
                offline_key,
                "the Hub is switched off here (HF_HUB_OFFLINE=1 or TRANSFORMERS_OFFLINE=1): unset it to push",
            )
        )
    return problems


def check_hub(config: Any) -> None:
    """Refuse a run that pushes but cannot (no token, Hub offline) before anything loads or trains.

    Raises:
        ConfigError: Naming ``hub.push`` and how to provide a token or switch the Hub back on.
    """
    problems = hub_problems(config)
    if problems:
        raise ConfigError(problems)


# ------------------------------------------------------------------------------------------------ what goes up


def select_files(run_dir: Path) -> Selection:
    """The run's files that ``ALLOWED`` names (sorted), and a line for each top-level entry left out.

    Symbolic links and hidden files are never selected (a link named ``model.safetensors`` could point anywhere).
    """
    files: list[str] = []
    left: dict[str, int] = {}
    size = 0
    for path in sorted(run_dir.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        rel = PurePosixPath(path.relative_to(run_dir).as_posix())
        folder = "" if str(rel.parent) == "." else str(rel.parent)
        regular = path.is_file() and not path.is_symlink()
        hidden = any(part.startswith(".") for part in rel.parts)
        if regular and not hidden and any(rule.matches(folder, rel.name) for rule in ALLOWED):
            files.append(str(rel))
            size += path.stat().st_size
        else:
            top = rel.parts[0] + ("/" if len(rel.parts) > 1 else "")
            left[top] = left.get(top, 0) + 1
    left_out = [
        f"{name} ({count} file{'s' if count != 1 else ''})" if name.endswith("/") else name
        for name, count in sorted(left.items())
    ]
    return Selection(files, left_out, size)


def scan_for_secrets(run_dir: Path, files: list[str], token: str | None) -> None:
    """Stop when a file to upload holds the token or the value of a secret-looking environment variable.

    Raises:
        PublishError: Naming the file and the variable (never the value).
    """
    secrets = {"the Hub token": token} if token else {}
    secrets.update({f"${name}": value for name, value in os.environ.items() if SECRET_NAME.search(name)})
    needles = {name: value.encode() for name, value in secrets.items() if value and len(value) >= 8}
    if not needles:
        return
    longest = max(len(n) for n in needles.values())
    for rel in files:
        if rel.endswith(_NOT_SCANNED):
            continue
        with (run_dir / rel).open("rb") as handle:
            tail = b""
            while chunk := handle.read(1 << 20):
                window = tail + chunk
                for name, needle in needles.items():
                    if needle in window:
                        raise PublishError(
                            f"{run_dir / rel} holds the value of {name}: nothing was uploaded. Remove it from the "
                            "file (or the file from the run directory) and push again"
                        )
                tail = window[-longest:]


def base_model_license(model_name: str) -> str | None:
    """The ``license`` a base model's own card states: a local folder's README.md, or a Hub card already cached."""
    path = Path(model_name).expanduser()
    card: Path | None = path / "README.md" if path.is_dir() else None
    if card is None and "/" in model_name and not path.exists():
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model_name, "README.md")
        card = Path(cached) if isinstance(cached, str) else None
    if card is None or not card.is_file():
        return None
    from trainforge.training.artifacts import split_front_matter

    try:
        front, _ = split_front_matter(card.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError):
        return None
    value = front.get("license")
    return value if isinstance(value, str) and value else None


def card_for_hub(run_dir: Path, recorded_dir: str | None, repo_id: str, license: str | None) -> bytes:
    """The run's README.md as the Hub shows it: snippets load ``repo_id``; ``license`` set when the card has none.

    Only quoted paths (``from_pretrained("<run>")``) and the reproduce line's config path are rewritten; a run
    directory named like a common word (``run``) leaves the prose alone.
    """
    text = (run_dir / "README.md").read_text(encoding="utf-8")
    spellings = {str(run_dir), str(run_dir.resolve()), *([recorded_dir] if recorded_dir else [])}
    for spelling in sorted(spellings, key=len, reverse=True):
        text = text.replace(f'"{spelling}"', f'"{repo_id}"').replace(f'"{spelling}/', f'"{repo_id}/')
        text = text.replace(f"{spelling}/config.resolved.yaml", "config.resolved.yaml")
    if license:
        from huggingface_hub import ModelCard

        card = ModelCard(text)
        if not card.data.get("license"):
            card.data["license"] = license
            text = str(card)
    return text.encode("utf-8")


# ------------------------------------------------------------------------------------------------ the push


def push_run(
    run_dir: Path,
    repo_id: str,
    revision: str | None = None,
    private: bool = True,
    license: str | None = None,
    token: str | None = None,
    commit_message: str | None = None,
) -> PushResult:
    """Upload the finished run in ``run_dir`` to ``repo_id`` (see the module docstring for what and how).

    Args:
        run_dir: A finished run directory (``metrics.json``, ``config.resolved.yaml``).
        repo_id: ``namespace/name`` (or ``name``: the token owner's namespace).
        revision: Branch to commit to, created from ``main`` when missing (default ``main``).
        private: Create the repository private; also refuse to write into an existing public one.
        license: License id for the card when it states none (default: ``hub.license``, then the base model's).
        token: The token (``resolve_token``'s); looked up the same way when None.
        commit_message: Default: "Upload <run name> with trainforge".

    Raises:
        RunDirError: Not a finished run.
        ConfigError: No token, the Hub switched off, or a bad repo id / branch / license.
        PublishError: A secret in a file to upload, an existing public repository for a private push, or the Hub's
            refusal (status and message, with the token removed).
    """
    from trainforge.config.sections import HubSection

    run_dir = Path(run_dir)
    recorded = _finished_config(run_dir)
    hub = recorded.get("hub") or {}
    try:  # the same checks as a config's hub section
        section = HubSection(
            push=True, repo_id=repo_id, revision=revision, private=private, license=license or hub.get("license")
        )
    except ValueError as exc:
        raise ConfigError(_pydantic_problems(exc)) from None
    token = token if token is not None else resolve_token()
    problems = push_problems(token, "HF_TOKEN", "HF_HUB_OFFLINE")
    if problems:
        raise ConfigError(problems)
    assert token is not None and section.repo_id is not None  # push_problems and HubSection checked both
    selection = select_files(run_dir)
    scan_for_secrets(run_dir, selection.files, token)
    model_name = (recorded.get("model") or {}).get("name")
    card_license = section.license or (base_model_license(model_name) if model_name else None)
    notes = [] if card_license else ["the card states no license: set hub.license (or --license) to give one"]
    output_dir = (recorded.get("output") or {}).get("dir")
    try:
        return _upload(run_dir, section, token, selection, card_license, output_dir, commit_message, notes)
    except _http_errors() as exc:
        raise PublishError(_scrub(_describe(exc, section.repo_id), token)) from None


def _upload(
    run_dir: Path,
    section: Any,
    token: str,
    selection: Selection,
    card_license: str | None,
    output_dir: str | None,
    commit_message: str | None,
    notes: list[str],
) -> PushResult:
    """create_repo (private unless asked), the visibility check, the branch, one commit of the selected files."""
    from importlib.metadata import PackageNotFoundError, version

    from huggingface_hub import CommitOperationAdd, HfApi

    try:
        ours = version("trainforge")
    except PackageNotFoundError:
        ours = None
    api = HfApi(token=token, library_name="trainforge", library_version=ours)
    repo_id = section.repo_id
    url = api.create_repo(repo_id, private=section.private, exist_ok=True)
    repo_id = getattr(url, "repo_id", None) or repo_id  # "name" alone: the Hub puts it in the token's namespace
    info = api.repo_info(repo_id)
    if section.private and not info.private:
        raise PublishError(
            f"{repo_id} already exists and is public, and this push is private (the default): nothing was uploaded. "
            "To publish into the public repository pass --public (hub.private: false)"
        )
    branch = section.revision or "main"
    if branch != "main":
        api.create_branch(repo_id, branch=branch, exist_ok=True)
    operations = [
        CommitOperationAdd(
            path_in_repo=rel,
            path_or_fileobj=card_for_hub(run_dir, output_dir, repo_id, card_license)
            if rel == "README.md"
            else str(run_dir / rel),
        )
        for rel in selection.files
    ]
    commit = api.create_commit(
        repo_id,
        operations,
        commit_message=commit_message or f"Upload {run_dir.name} with trainforge",
        revision=branch,
    )
    return PushResult(
        str(url),
        repo_id,
        branch,
        bool(info.private),
        selection.files,
        selection.left_out,
        getattr(commit, "commit_url", None),
        notes,
    )


def _finished_config(run_dir: Path) -> dict[str, Any]:
    """The run's recorded config (``config.resolved.yaml``) as a dict.

    Raises:
        RunDirError: Not a run directory, or the run did not finish.
    """
    resolved = run_dir / "config.resolved.yaml"
    if not resolved.is_file():
        raise RunDirError(f"{run_dir} is not a trainforge run directory (no config.resolved.yaml)")
    if not (run_dir / "metrics.json").is_file():
        raise RunDirError(f"{run_dir} holds no finished run (no metrics.json): train it to the end, then push")
    data = yaml.safe_load(resolved.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _pydantic_problems(exc: ValueError) -> list[tuple[str, str]]:
    """``HubSection``'s validation errors, keyed by the push option that sets each field."""
    options = {"revision": "--revision", "license": "--license"}  # the section-level check is the repo id's
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return [("--repo-id", str(exc))]
    return [
        (options.get(".".join(str(p) for p in e["loc"]), "--repo-id"), str(e["msg"]).removeprefix("Value error, "))
        for e in errors()
    ]


def _http_errors() -> tuple[type[BaseException], ...]:
    """huggingface_hub's HTTP error, its HTTP library's base error (connection, timeout) and offline mode.

    The library is httpx in huggingface_hub 1.x and httpx2 in 2.x; ``HfHubHTTPError`` derives from its
    ``HTTPError``, so the base class is taken from there rather than from either module by name.
    """
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    base = next(c for c in HfHubHTTPError.__mro__[1:] if c.__name__ == "HTTPError")
    return (HfHubHTTPError, base, OfflineModeIsEnabled)


def _describe(exc: BaseException, repo_id: str) -> str:
    """One paragraph: the Hub's status and message, and the usual fix for 401/403/404."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    hints = {
        401: "the token was refused: check HF_TOKEN (or `hf auth login` again)",
        403: f"the token may not write to {repo_id}: use a token with write access to its namespace",
        404: f"{repo_id} was not found for this token: check the namespace",
    }
    hint = hints.get(status, "") if isinstance(status, int) else ""
    where = f"HTTP {status}: " if status else ""
    return f"pushing to {repo_id} failed: {where}{first}" + (f" ({hint})" if hint else "")


def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "<token>") if token else text
