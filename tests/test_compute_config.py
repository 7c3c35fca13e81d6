"""The compute: section: refusals at validate (naming key and fix) and the launches --print-launch renders.

Nothing here starts a process: the two-process runs are in test_compute_multiprocess.py.
"""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

import pytest
import yaml

from trainforge.cli.main import main
from trainforge.config.loading import load_config


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def config_file(tmp_path, base_config) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(base_config))
    return path


def launched(out: str) -> list[list[str]]:
    """The ``accelerate launch`` commands printed, split like a shell would."""
    return [shlex.split(line) for line in out.splitlines() if line.startswith("accelerate launch")]


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


# ----------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("overrides", "key", "phrase"),
    [
        (["compute.num_machines=2", "compute.machine_rank=2"], "compute.machine_rank", "ranks 0 to 1"),
        (["compute.num_machines=2"], "compute.main_process_ip", "address of the machine of rank 0"),
        (["compute.fsdp_offload_params=true"], "compute.fsdp_offload_params", "applies to compute.strategy: fsdp"),
        (["compute.deepspeed_stage=3"], "compute.deepspeed_stage", "applies to compute.strategy: deepspeed"),
        (["compute.slurm_partition=gpu"], "compute.slurm_partition", "applies to compute.launcher: slurm"),
        (
            ["compute.launcher=slurm", "compute.machine_rank=1", "compute.num_machines=2"],
            "compute.machine_rank",
            "SLURM gives each node its rank",
        ),
        (
            ["compute.strategy=fsdp", "compute.fsdp_sharding=hybrid_shard"],
            "compute.fsdp_sharding",
            "needs compute.fsdp_version: 1",
        ),
        (
            ["compute.strategy=deepspeed", "compute.deepspeed_offload_params=cpu"],
            "compute.deepspeed_offload_params",
            "only by ZeRO stage 3",
        ),
        (
            ["compute.accelerate_config=acc.yaml", "compute.strategy=fsdp"],
            "compute.strategy",
            "already chooses the strategy",
        ),
        (
            [
                "compute.num_processes=2",
                "search.trials=2",
                'search.space={"training.learning_rate": {"choice": [0.1]}}',
            ],
            "compute.num_processes",
            "a search trains each trial in one process",
        ),
        (["compute.num_processes=0"], "compute.num_processes", "greater than or equal to 1"),
        (["compute.strategy=zero"], "compute.strategy", "'ddp', 'fsdp' or 'deepspeed'"),
    ],
)
def test_config_refusals_name_the_key(capsys, config_file, overrides, key, phrase):
    code, _, err = cli(capsys, "validate", config_file, *overrides)
    assert code == 2, err
    assert f"{key}: " in err and phrase in err, err
    assert "Traceback" not in err


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is not None, reason="deepspeed is installed here")
def test_deepspeed_missing_is_refused_with_the_install_hint_but_still_rendered(capsys, config_file):
    overrides = ["compute.strategy=deepspeed", "compute.num_processes=2"]
    code, _, err = cli(capsys, "validate", config_file, *overrides)
    assert code == 2 and "compute.strategy: deepspeed is not installed: pip install deepspeed" in err
    code, _, err = cli(capsys, "train", config_file, *overrides)
    assert code == 2 and "pip install deepspeed" in err  # refused before any process starts
    # --print-launch renders for the GPU machines where it will be installed.
    code, out, _ = cli(capsys, "train", config_file, *overrides, "compute.deepspeed_stage=3", "--print-launch")
    (argv,) = launched(out)
    assert code == 0 and "--use_deepspeed" in argv and option(argv, "--zero_stage") == "3"
    assert option(argv, "--zero3_save_16bit_model") == "true"  # the run folder gets a plain model


def test_tabular_refuses_several_processes_by_name(capsys, tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"x": range(40), "target": [i % 2 for i in range(40)]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    config = {
        "task": "tabular_classification",
        "data": {"source": str(tmp_path / "t.csv")},
        "params": {"target_columns": ["target"]},
        "output": {"dir": str(tmp_path / "run")},
    }
    path = tmp_path / "tab.yaml"
    path.write_text(yaml.safe_dump(config))
    code, _, err = cli(capsys, "validate", path, "compute.num_processes=2")
    assert code == 2
    assert "compute.num_processes: does not apply to task tabular_classification (it trains in one process" in err
    code, _, err = cli(capsys, "validate", path, "compute.strategy=fsdp")
    assert code == 2 and "compute.strategy: does not apply to task tabular_classification" in err
    from trainforge.config.template import field_rows
    from trainforge.tasks import get_task

    keys = [key for key, *_ in field_rows(get_task("tabular_classification")) if key.startswith("compute.")]
    assert "compute.launcher" in keys and "compute.num_processes" not in keys  # docs and forms offer what applies


def test_more_cpu_processes_than_cores_is_refused(capsys, config_file, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    code, _, err = cli(capsys, "validate", config_file, "compute.num_processes=3")
    assert code == 2 and "compute.num_processes: 3 CPU processes but this machine has 2 core(s)" in err


def test_defaults_validate_and_resolve_with_the_section(base_config, tmp_path):
    config = load_config(base_config)
    assert config.compute.num_processes == 1 and config.compute.strategy == "ddp"
    assert config.compute.launcher == "local"


# ----------------------------------------------------------------------------------------------- print-launch


def test_one_process_needs_no_launcher(capsys, config_file):
    code, out, _ = cli(capsys, "train", config_file, "--print-launch")
    assert code == 0 and "no launcher" in out and not launched(out)
    assert not Path(yaml.safe_load(config_file.read_text())["output"]["dir"]).exists()  # nothing ran


def test_ddp_launch_is_accelerate_with_this_command(capsys, config_file):
    code, out, _ = cli(capsys, "train", config_file, "compute.num_processes=2", "--print-launch")
    (argv,) = launched(out)
    assert code == 0 and "--multi_gpu" in argv
    assert option(argv, "--num_processes") == "2" and option(argv, "--num_machines") == "1"
    assert option(argv, "--main_process_port") == "0"  # accelerate picks a free port when it launches
    # Each process runs the same command the user typed.
    assert argv[argv.index("-m") :] == ["-m", "trainforge", "train", str(config_file), "compute.num_processes=2"]


def test_launch_arguments_parse_with_accelerates_own_parser(config_file):
    from accelerate.commands.launch import launch_command_parser

    from trainforge.training.launch import accelerate_arguments, train_command

    config = load_config(str(config_file), ["compute.num_processes=2", "compute.strategy=fsdp"])
    args = launch_command_parser().parse_args(accelerate_arguments(config, train_command(str(config_file))))
    assert args.use_fsdp and args.num_processes == 2 and args.module and args.training_script == "trainforge"
    assert args.fsdp_state_dict_type == "FULL_STATE_DICT" and args.fsdp_version == "2"


def test_fsdp_options_render(capsys, config_file):
    overrides = [
        "compute.num_processes=2",
        "compute.strategy=fsdp",
        "compute.fsdp_sharding=shard_grad_op",
        "compute.fsdp_offload_params=true",
        "compute.fsdp_layer_class=BertLayer",
        "training.gradient_checkpointing=true",
    ]
    code, out, _ = cli(capsys, "train", config_file, *overrides, "--print-launch")
    (argv,) = launched(out)
    assert code == 0 and "--use_fsdp" in argv and "--multi_gpu" not in argv
    assert option(argv, "--fsdp_reshard_after_forward") == "false"  # FSDP2's shard_grad_op
    assert option(argv, "--fsdp_offload_params") == "true"
    assert option(argv, "--fsdp_transformer_layer_cls_to_wrap") == "BertLayer"
    assert option(argv, "--fsdp_activation_checkpointing") == "true"  # training.gradient_checkpointing, not twice
    code, out, _ = cli(
        capsys,
        "train",
        config_file,
        *overrides[:2],
        "compute.fsdp_version=1",
        "compute.fsdp_sharding=hybrid_shard",
        "--print-launch",
    )
    (argv,) = launched(out)
    assert option(argv, "--fsdp_version") == "1" and option(argv, "--fsdp_reshard_after_forward") == "HYBRID_SHARD"


def test_gradient_checkpointing_under_fsdp_is_fsdps_not_the_trainers(base_config):
    from trainforge.metrics import GREATER_IS_BETTER  # noqa: F401 - the arguments module's import path
    from trainforge.tasks.spec import Metric
    from trainforge.training.arguments import training_arguments

    base_config["training"]["gradient_checkpointing"] = True
    metric = Metric("f1", True)
    ddp = training_arguments(load_config(base_config), Path("run"), True, metric, 100)
    base_config["compute"] = {"strategy": "fsdp", "num_processes": 2}
    fsdp = training_arguments(load_config(base_config), Path("run"), True, metric, 100)
    from transformers import TrainingArguments

    # Read back through TrainingArguments: transformers 5.24 names it activation_checkpointing (the old name mirrors).
    assert TrainingArguments(**ddp).gradient_checkpointing and not TrainingArguments(**fsdp).gradient_checkpointing


def test_two_machines_render_one_command_per_machine(capsys, config_file):
    overrides = ["compute.num_processes=2", "compute.num_machines=2", "compute.main_process_ip=10.0.0.1"]
    code, out, _ = cli(capsys, "train", config_file, *overrides, "--print-launch")
    assert code == 0
    first, second = launched(out)
    for rank, argv in enumerate((first, second)):
        assert option(argv, "--num_processes") == "4" and option(argv, "--num_machines") == "2"
        assert option(argv, "--machine_rank") == str(rank)
        assert option(argv, "--main_process_ip") == "10.0.0.1" and option(argv, "--main_process_port") == "29500"
    # Machine 1 runs the same config with its rank; that override travels to its processes.
    assert f"trainforge train {config_file} {' '.join(overrides)} compute.machine_rank=1" in out
    assert second[-1] == "compute.machine_rank=1" and "compute.machine_rank=1" not in first


def test_users_accelerate_config_is_passed_and_explicit_keys_override_it(capsys, config_file, tmp_path):
    accelerate = tmp_path / "accelerate.yaml"
    accelerate.write_text(
        yaml.safe_dump(
            {
                "compute_environment": "LOCAL_MACHINE",
                "distributed_type": "MULTI_GPU",
                "num_machines": 1,
                "num_processes": 4,
                "mixed_precision": "no",
                "use_cpu": False,
                "debug": False,
            }
        )
    )
    code, out, _ = cli(capsys, "train", config_file, f"compute.accelerate_config={accelerate}", "--print-launch")
    (argv,) = launched(out)
    assert code == 0 and option(argv, "--config_file") == str(accelerate) and "--num_processes" not in argv
    code, out, _ = cli(
        capsys,
        "train",
        config_file,
        f"compute.accelerate_config={accelerate}",
        "compute.num_processes=2",
        "--print-launch",
    )
    (argv,) = launched(out)
    assert option(argv, "--num_processes") == "2"
    code, _, err = cli(capsys, "validate", config_file, f"compute.accelerate_config={tmp_path / 'none.yaml'}")
    assert code == 2 and "compute.accelerate_config: " in err and "accelerate config" in err


def test_slurm_submission_renders_the_sbatch_script(capsys, config_file):
    overrides = [
        "compute.launcher=slurm",
        "compute.num_processes=4",
        "compute.num_machines=2",
        "compute.slurm_partition=gpu",
        "compute.slurm_gpus_per_node=4",
        "compute.slurm_time_min=120",
        "compute.slurm_mem_gb=64",
        'compute.slurm_setup=["source .venv/bin/activate"]',
        'compute.slurm_additional={"mail-type": "END"}',
    ]
    code, out, _ = cli(capsys, "train", config_file, *overrides, "--print-launch")
    assert code == 0
    for line in (
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=120",
        "#SBATCH --mem=64GB",
        "#SBATCH --mail-type=END",
        "source .venv/bin/activate",
        "-m submitit.core._submit",
    ):
        assert line in out, line
    run_dir = Path(yaml.safe_load(config_file.read_text())["output"]["dir"]).resolve()
    assert f"#SBATCH --output={run_dir}/slurm/%j_0_log.out" in out  # logs in the run directory
    assert "--num_processes 8 --num_machines 2 --machine_rank 0" in out  # what node 0's task launches
    assert not run_dir.exists()


def test_rendered_sbatch_is_what_submitits_slurm_executor_writes(config_file, monkeypatch):
    import submitit
    from submitit.slurm.slurm import SlurmExecutor

    from trainforge.training.slurm import SLURM_DIR, render_submission, sbatch_parameters

    config = load_config(
        str(config_file), ["compute.launcher=slurm", "compute.num_machines=2", "compute.slurm_qos=high"]
    )
    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # no srun on this machine
    folder = (Path(config.output.dir) / SLURM_DIR).resolve()
    executor = submitit.SlurmExecutor(folder=folder)
    executor.update_parameters(**sbatch_parameters(config))
    written = executor._make_submission_file_text(executor._submitit_command_str, "uid")
    rendered = render_submission(config, ["train", str(config_file)])
    assert rendered.endswith(written)


def test_search_on_slurm_is_a_job_array_of_workers_on_one_study(capsys, config_file):
    overrides = [
        "compute.launcher=slurm",
        "compute.slurm_workers=3",
        "search.trials=6",
        'search.space={"training.learning_rate": {"loguniform": [1.0e-4, 1.0e-2]}}',
    ]
    code, out, _ = cli(capsys, "train", config_file, *overrides, "--print-launch")
    assert code == 0 and "#SBATCH --array=0-2%3" in out
    workers = [line for line in out.splitlines() if line.startswith("#   worker ")]
    assert len(workers) == 3
    storages = {shlex.split(line)[-1 if i == 0 else -2] for i, line in enumerate(workers)}
    assert len(storages) == 1 and storages.pop().startswith("search.storage=sqlite:///")  # one shared study
    assert "output.dir=" in workers[1] and "workers/worker-1" in workers[1]


def test_slurm_without_sbatch_is_refused_at_validate(capsys, config_file, monkeypatch):
    monkeypatch.delenv("TRAINFORGE_SLURM_CLUSTER", raising=False)
    monkeypatch.setattr("shutil.which", lambda name: None)
    code, _, err = cli(capsys, "validate", config_file, "compute.launcher=slurm")
    assert code == 2 and "compute.launcher: slurm: sbatch is not on this machine's PATH" in err
    code, _, err = cli(capsys, "validate", config_file, "compute.launcher=slurm", "compute.slurm_workers=2")
    assert code == 2 and "compute.slurm_workers: array workers share a search's trials" in err


def test_a_run_directory_in_the_way_fails_before_any_process_starts(capsys, config_file, base_config):
    run_dir = Path(base_config["output"]["dir"])
    run_dir.mkdir(parents=True)
    (run_dir / "events.jsonl").write_text('{"event": "run_finished"}\n')
    (run_dir / "metrics.json").write_text("{}")
    code, out, err = cli(capsys, "train", config_file, "compute.num_processes=2")
    assert code == 2 and "already holds a run" in err and "ChildFailedError" not in err + out
    assert sorted(p.name for p in run_dir.iterdir()) == ["events.jsonl", "metrics.json"]  # untouched


def test_a_process_of_a_launch_trains_instead_of_launching_again(monkeypatch, base_config):
    from trainforge.training import launch

    config = load_config(base_config, ["compute.num_processes=2"])
    assert launch.wants_launch(config) and launch.reports_result()
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert not launch.wants_launch(config) and not launch.reports_result()
    monkeypatch.setenv("RANK", "0")  # rank 0 of the user's own torchrun reports
    assert launch.reports_result()
    monkeypatch.setenv(launch.LAUNCHED_ENV, "1")  # ... unless trainforge launched it: the launcher reports
    assert not launch.reports_result()
