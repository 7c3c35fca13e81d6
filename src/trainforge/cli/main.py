"""``trainforge``: the root parser and its subcommands, each listed once.

Heavy libraries are imported inside the command functions, so ``trainforge --help`` and ``trainforge tasks``
never import torch.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from trainforge.errors import ConfigError, TrainforgeError


def cmd_init(args: argparse.Namespace) -> int:
    """Print (or write) a commented example config for a task."""
    from trainforge.config.template import render_template

    text = render_template(_spec(args.task))
    if args.output:
        if os.path.exists(args.output):
            raise TrainforgeError(f"{args.output} already exists; choose another file name or delete it first")
        with open(args.output, "x", encoding="utf-8") as handle:
            handle.write(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Check config and data (columns, labels, splits) without loading a model."""
    from trainforge.sdk import validate

    if not args.json:
        print(validate(args.config, args.overrides, interpolate=not args.no_env).summary())
        return 0
    import json

    try:  # one JSON document on stdout either way, for programs (the web app) that run this command
        report = validate(args.config, args.overrides, interpolate=not args.no_env)
    except TrainforgeError as exc:
        print(_json_errors(exc))
        return exc.exit_code
    print(json.dumps({"ok": True, **report.to_dict()}))
    return 0


def _json_errors(exc: TrainforgeError) -> str:
    """``{"ok": false, "errors": [{key, message}]}`` for ``--json``; secret values from the environment redacted."""
    import json

    from trainforge._utils.secrets import redact

    problems = exc.problems if isinstance(exc, ConfigError) else [("data", str(exc))]
    return json.dumps({"ok": False, "errors": [{"key": k, "message": redact(m)} for k, m in problems]})


def cmd_estimate(args: argparse.Namespace) -> int:
    """Estimate parameters, peak memory, speed and fit of a config before training it."""
    from trainforge.sdk import estimate

    if not args.json:
        result = estimate(
            args.config, args.overrides, not args.no_env, measure=not args.no_measure, memory_limit=args.memory_limit
        )
        print(result.summary())
        return 0
    import json

    try:  # one JSON document on stdout either way, as validate --json
        result = estimate(
            args.config, args.overrides, not args.no_env, measure=not args.no_measure, memory_limit=args.memory_limit
        )
    except TrainforgeError as exc:
        print(_json_errors(exc))
        return exc.exit_code
    print(json.dumps({"ok": True, **result.to_dict()}))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train from a config, with dotted overrides; several processes or a cluster re-launch this same command."""
    import signal

    from trainforge.config.loading import load_config
    from trainforge.training import launch

    config = load_config(args.config, args.overrides, interpolate=not args.no_env)  # a bad config fails here
    # What each launched process (or SLURM task) runs: this command, as typed.
    command = (["--debug"] if args.debug else []) + launch.train_command(
        args.config, args.overrides, args.resume, args.no_env
    )
    if args.print_launch:
        launch.print_launch(config, command)
        return 0

    def interrupted(signum, frame):  # SIGTERM (a scheduler, the web app's Cancel) ends the run like Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    from trainforge.training.display import ConsoleDisplay
    from trainforge.training.driver import run

    result = run(config, resume=args.resume, listeners=(ConsoleDisplay(),), command=command)
    if not launch.reports_result():
        return 0  # one of several processes: the launching one (or rank 0) reports
    if result.job_ids and not result.metrics:
        print(f"submitted: SLURM job {', '.join(result.job_ids)}; the run goes to {result.output_dir}")
        return 0
    shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(result.metrics.items()) if isinstance(v, float))
    print(f"done: {result.output_dir}  {shown}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict with a finished run on a file of inputs."""
    from trainforge.sdk import predict

    frame = predict(args.run_dir, args.input, args.output, args.overrides)
    print(f"wrote {len(frame)} predictions to {args.output}", file=sys.stderr)
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    """List tasks, or show one task's columns and fields."""
    from trainforge.tasks import list_tasks

    if not args.task:
        for spec in list_tasks():
            print(f"{spec.name:24} {spec.summary}")
        return 0
    from trainforge.config.template import field_rows

    spec = _spec(args.task)
    print(f"{spec.name}: {spec.summary}\n\ncolumns (data.columns maps them to yours):")
    for column in spec.columns:
        print(f"  {column.name:16} {'required' if column.required else 'optional':9} {column.help}")
    print("\nfields:")
    for key, tier, default, help_text in field_rows(spec):
        if args.all or tier == "basic" or key.startswith("params."):
            print(f"  {key:38} {default:14} {help_text}")
    if not args.all:
        print("\n(basic fields and task params shown; --all lists every field)")
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    """Start the web app (needs the ``app`` extra)."""
    from pathlib import Path

    try:
        from trainforge.app.server import AppSettings, serve
    except ImportError as exc:
        raise TrainforgeError(f"the web app needs {exc.name}: pip install 'trainforge[app]'") from None
    models_dir = Path(args.models_dir).expanduser() if args.models_dir else None
    settings = AppSettings(
        Path(args.workspace).expanduser(),
        models_dir,
        args.max_concurrent,
        args.host,
        allow_remote_code=args.allow_remote_code,
    )
    try:
        serve(settings, args.port)
    except ValueError as exc:  # an unusable TRAINFORGE_APP_TOKEN
        raise TrainforgeError(str(exc)) from None
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """Talk to a finished LLM run: one answer with --prompt, else a conversation (interactive on a terminal)."""
    from trainforge.tasks.llm._inference import chat

    overrides = {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature, "top_p": args.top_p}
    return chat(args.run_dir, args.prompt, args.system, overrides, image=args.image)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve finished runs over HTTP (OpenAI-compatible for text generation); needs the ``app`` extra."""
    from pathlib import Path

    try:
        from trainforge.serve import ServeSettings, serve
    except ImportError as exc:
        raise TrainforgeError(f"trainforge serve needs {exc.name}: pip install 'trainforge[app]'") from None
    problems = [("--max-loaded", "must be at least 1")] if args.max_loaded < 1 else []
    problems += [("--batch-window-ms", "must be at least 0")] if args.batch_window_ms < 0 else []
    if problems:
        raise ConfigError(problems)
    settings = ServeSettings(Path(args.run_dir), args.host, None, args.max_loaded, args.batch_window_ms)
    try:
        serve(settings, args.port)
    except ValueError as exc:  # an unusable TRAINFORGE_APP_TOKEN
        raise ConfigError([("TRAINFORGE_APP_TOKEN", str(exc))]) from None
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a finished run: merged model, ONNX (verified with onnxruntime), or the way to GGUF."""
    from pathlib import Path

    from trainforge.sdk import export

    result = export(
        args.run_dir, args.format, args.quantize, Path(args.output) if args.output else None, args.tolerance
    )
    print(result.summary())
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a finished run on labelled data with the task's metrics; the report goes beside the run."""
    from trainforge.sdk import evaluate

    columns = {}
    for item in args.columns:
        logical, sep, column = item.partition("=")
        if not sep or not logical or not column:
            raise ConfigError([("--columns", f"{item!r} is not logical=column (e.g. text=review)")])
        columns[logical] = column
    if args.max_rows is not None and args.max_rows < 1:
        raise ConfigError([("--max-rows", "must be at least 1")])
    report = evaluate(args.run_dir, args.data, args.split, columns, args.name, args.max_rows, args.overrides)
    print(report.summary())
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    """Publish a finished run to the Hub (the token comes from HF_TOKEN or `hf auth login`)."""
    from trainforge.sdk import push

    result = push(args.run_dir, args.repo_id, args.revision, private=not args.public, license=args.license)
    if args.json:  # one JSON document on stdout, for programs (the web app) that run this command
        import dataclasses
        import json

        print(json.dumps(dataclasses.asdict(result)))
    else:
        print(result.summary())
    return 0


def _spec(name: str):
    from trainforge.tasks import get_task, task_names

    if name not in task_names():
        raise ConfigError([("task", f"unknown task {name!r}; known: {', '.join(task_names())}")])
    return get_task(name)


COMMANDS: tuple[tuple[str, Callable[[argparse.Namespace], int], str], ...] = (
    ("init", cmd_init, "print a commented example config for a task"),
    ("validate", cmd_validate, "check a config and its data; nothing is trained"),
    ("estimate", cmd_estimate, "estimate parameters, peak memory, speed and fit before training"),
    ("train", cmd_train, "train from a config"),
    ("predict", cmd_predict, "predict with a finished run"),
    ("tasks", cmd_tasks, "list tasks, or show a task's columns and fields"),
    ("chat", cmd_chat, "talk to a finished LLM run (its chat template, stops at EOS)"),
    ("app", cmd_app, "start the web app (forms, job queue, live curves, playground)"),
    ("evaluate", cmd_evaluate, "score a finished run on labelled data with its task's metrics (report beside it)"),
    ("export", cmd_export, "export a finished run: merged model, ONNX (verified), GGUF (how)"),
    ("serve", cmd_serve, "serve finished runs over HTTP: OpenAI-compatible chat/completions, /v1/predict"),
    ("push", cmd_push, "publish a finished run to the Hugging Face Hub (private by default; never checkpoints)"),
)


def build_parser() -> argparse.ArgumentParser:
    """The root parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="trainforge", description="Train and fine-tune models from one config.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on failure")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parsers = {name: sub.add_parser(name, help=help_text, description=help_text) for name, _, help_text in COMMANDS}
    for name, fn, _ in COMMANDS:
        parsers[name].set_defaults(fn=fn)
    parsers["init"].add_argument("task", help="task id (see `trainforge tasks`)")
    parsers["init"].add_argument("-o", "--output", help="write to this file (must not exist) instead of stdout")
    for name in ("validate", "estimate", "train"):
        parsers[name].add_argument("config", help="YAML config (trainforge's or AutoTrain's shape)")
        parsers[name].add_argument("overrides", nargs="*", help="dotted overrides, e.g. training.learning_rate=2e-5")
        parsers[name].add_argument(
            "--no-env",
            action="store_true",
            help="leave ${VAR} text as written instead of reading the environment (the web app's runs use this)",
        )
    parsers["validate"].add_argument("--json", action="store_true", help="print the report (or the errors) as JSON")
    parsers["estimate"].add_argument("--json", action="store_true", help="print the estimate (or the errors) as JSON")
    parsers["estimate"].add_argument(
        "--no-measure", action="store_true", help="skip the timed optimizer steps (memory and counts only)"
    )
    parsers["estimate"].add_argument(
        "--memory-limit", metavar="SIZE", help="plan for this much memory instead of what is free now (e.g. 16GiB)"
    )
    parsers["train"].add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    parsers["train"].add_argument(
        "--print-launch",
        action="store_true",
        help="print the exact launch (accelerate launch commands, per machine; the SLURM submission) and exit",
    )
    parsers["predict"].add_argument("run_dir", help="a finished run directory")
    parsers["predict"].add_argument("--input", required=True, help="file of inputs (csv, tsv, jsonl, json, parquet)")
    parsers["predict"].add_argument(
        "--output", required=True, help="where to write predictions (format from extension)"
    )
    parsers["predict"].add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the run's config for this prediction, e.g. --set params.max_new_tokens=64 (repeatable)",
    )
    parsers["chat"].add_argument("run_dir", help="a finished LLM run directory")
    parsers["chat"].add_argument("--prompt", help="answer this one prompt and exit")
    parsers["chat"].add_argument("--system", help="system message opening the conversation")
    parsers["chat"].add_argument(
        "--image", help="an image file the first message is about (runs that read images: vlm)"
    )
    parsers["chat"].add_argument(
        "--max-new-tokens", type=int, help="most tokens per answer (default: the run's params)"
    )
    parsers["chat"].add_argument(
        "--temperature", type=float, help="sampling temperature, 0 = greedy (default: the run's params)"
    )
    parsers["chat"].add_argument("--top-p", type=float, help="nucleus sampling mass (default: the run's params)")
    parsers["tasks"].add_argument("task", nargs="?", help="show this task's columns and fields")
    parsers["tasks"].add_argument("--all", action="store_true", help="show advanced fields too")
    parsers["app"].add_argument(
        "--host", default="127.0.0.1", help="address to bind; any non-loopback address requires a token"
    )
    parsers["app"].add_argument("--port", type=_port, default=7860, help="port to listen on (1-65535)")
    parsers["app"].add_argument(
        "--workspace", default="trainforge-workspace", help="job database, uploads and runs go here"
    )
    parsers["app"].add_argument("--models-dir", help="folder of local models offered in the model list")
    parsers["app"].add_argument(
        "--max-concurrent", type=_whole_number("count", 1), default=1, help="runs trained at the same time (1 or more)"
    )
    parsers["app"].add_argument(
        "--allow-remote-code",
        action="store_true",
        help="let configs set model.trust_remote_code: the model's own Python code then runs, always in a separate "
        "process (validation, training, prediction), never in the server. Off by default",
    )
    parsers["evaluate"].add_argument("run_dir", help="a finished run directory")
    parsers["evaluate"].add_argument(
        "--data", required=True, help="labelled rows: a file, a folder of split files, a saved dataset or a Hub id"
    )
    parsers["evaluate"].add_argument("--split", help="split of a folder, saved dataset or Hub dataset (default train)")
    parsers["evaluate"].add_argument(
        "--columns",
        nargs="*",
        default=[],
        metavar="LOGICAL=COLUMN",
        help="the data's column for a logical column, over the run's data.columns (e.g. text=review label=stars)",
    )
    parsers["evaluate"].add_argument("--name", help="report folder under <run>/evaluation/ (default: from --data)")
    parsers["evaluate"].add_argument("--max-rows", type=int, help="score only the first N rows")
    parsers["evaluate"].add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the run's config for the predictor, e.g. --set params.max_new_tokens=64 (repeatable)",
    )
    parsers["export"].add_argument("run_dir", help="a finished run directory")
    parsers["export"].add_argument(
        "--format", required=True, choices=("merged", "onnx", "gguf"), help="merged (LoRA folded in), onnx, gguf"
    )
    parsers["export"].add_argument("--quantize", help="onnx: int8 also writes model.int8.onnx")
    parsers["export"].add_argument("--output", help="folder to write (default: <run>/onnx; merged: <run>/merged)")
    parsers["export"].add_argument(
        "--tolerance", type=float, default=1e-4, help="onnx: largest output difference from PyTorch accepted"
    )
    parsers["serve"].add_argument(
        "run_dir", help="a finished run directory, or a folder of runs (model = folder name)"
    )
    parsers["serve"].add_argument(
        "--host", default="127.0.0.1", help="address to bind; any non-loopback address requires a token"
    )
    parsers["serve"].add_argument("--port", type=_port, default=8000, help="port to listen on (1-65535)")
    parsers["serve"].add_argument("--max-loaded", type=int, default=2, help="runs kept loaded at once")
    parsers["serve"].add_argument(
        "--batch-window-ms",
        type=float,
        default=5.0,
        help="how long a /v1/predict request waits for others to share one model call (0: no batching)",
    )
    parsers["push"].add_argument("run_dir", help="a finished run directory")
    parsers["push"].add_argument("--repo-id", help="target repository, e.g. your-name/my-model (default: hub.repo_id)")
    parsers["push"].add_argument(
        "--revision", help="branch to commit to, created from main when missing (default: hub.revision, else main)"
    )
    parsers["push"].add_argument(
        "--public",
        action="store_true",
        help="create the repository public (default: private; a private push never writes into a public repo)",
    )
    parsers["push"].add_argument(
        "--license", help="license id for the card when it states none, e.g. apache-2.0 (default: the base model's)"
    )
    parsers["push"].add_argument("--json", action="store_true", help="print the result as one JSON document")
    return parser


def _whole_number(what: str, low: int, high: int | None = None):
    """An argparse ``type``: a whole number in ``[low, high]``, else a usage error (exit 2) naming the range.

    Checked when the command line is read, not as a server traceback at bind time or a late failure.
    """
    span = f"from {low} to {high}" if high is not None else f"of {low} or more"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} is not a {what}; give a whole number {span}")
        return value

    return parse


_port = _whole_number("port", 1, 65535)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a subcommand; exit 0 only on success, with one clear paragraph on failure."""
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("TRAINFORGE_DEBUG") == "1"
    try:
        return args.fn(args)
    except TrainforgeError as exc:
        if debug:
            raise
        print(f"error: {_redacted(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - reported as one paragraph with a non-zero exit; --debug re-raises
        if debug:
            raise
        # Only a run that started has an events.jsonl holding the traceback; never point at one that does not exist.
        events = _started_run_events(args)
        where = f"{events} holds the traceback; " if events else ""
        print(
            f"error: {args.command} failed: {type(exc).__name__}: {_redacted(exc)}\n"
            f"({where}rerun with --debug to print it)",
            file=sys.stderr,
        )
        return 1


def _redacted(exc: BaseException) -> str:
    """The message of ``exc`` without the value of any secret-looking environment variable (a terminal, a CI log)."""
    from trainforge._utils.secrets import redact

    return redact(str(exc))


def _started_run_events(args: argparse.Namespace) -> str | None:
    """The events.jsonl of the run this ``train`` command started, if it got that far."""
    if args.command != "train":
        return None
    import contextlib
    import io
    from pathlib import Path

    from trainforge.config.loading import load_config

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # its notes were printed once already
            output = Path(load_config(args.config, args.overrides, interpolate=not args.no_env).output.dir)
    except TrainforgeError:
        return None
    events = output / "events.jsonl"
    return str(events) if events.is_file() else None


if __name__ == "__main__":
    sys.exit(main())
