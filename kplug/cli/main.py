"""The ``kplug`` command line: train, tune, bench, evaluate, predict, plugins, presets, doctor, init, and
commands plugins add.

Exit codes: 0 success, 2 bad config or input, or a nan/inf training loss (message on
stderr, no traceback unless ``--debug``), 130 interrupted (Ctrl-C: ``kplug train``
checkpoints where it stopped and prints the command that continues), 1 an unexpected
internal error or, for ``kplug doctor``, a plugin that failed to load.
``--no-plugins`` loads kplug's built-in components only, no installed plugin package.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kplug.backend import quiet_logs
from kplug.errors import ConfigError, KplugError

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
# Commands that build runs from components: they warn about plugins that failed to load.
COMMANDS_USING_PLUGINS = ("train", "tune", "bench", "evaluate", "predict")
# Commands that read the plugin index and load no plugin (they answer in a second or two).
COMMANDS_READING_THE_INDEX = ("plugins", "doctor")


def _data_argument(values: list[str] | None) -> str | dict[str, str] | None:
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    options = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep:
            raise ConfigError(
                f"--data {value!r}: give one PATH, or KEY=VALUE options for the run's data source."
            )
        options[key] = item
    return options


def _train(args: argparse.Namespace) -> int:
    from kplug.train.trainer import Trainer

    if args.config is None and args.resume is None:
        raise ConfigError("kplug train needs a CONFIG file, or --resume RUN_DIR to continue a run.")
    if args.nproc is not None:
        from kplug.distribute.processes import launch

        return launch(_train_argv(args), args.nproc)
    launched = _launch_elsewhere(args)
    if launched is not None:
        return launched
    trainer = Trainer(args.config, plugins=args.plugins, output=args.output, resume=args.resume)
    try:
        result = trainer.fit()
    except KeyboardInterrupt as interrupt:
        from kplug.train.interrupt import interrupt_message

        url = None if trainer.remote is None else trainer.remote.url
        print(interrupt_message(trainer.run_dir, interrupt, url), file=sys.stderr)
        return EXIT_INTERRUPTED
    if trainer.distribution is not None and not trainer.distribution.is_chief:
        return EXIT_OK  # rank 0 reports for the group
    metrics = {k: v for k, v in result.metrics.items() if k != "split"}
    shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
    if shown:
        print(f"Final {result.metrics['split']} metrics: {shown}")
    if trainer.remote is not None:
        print(f"Run directory: {trainer.remote.url} (trained in the local copy {result.run_dir})")
    else:
        print(f"Run directory: {result.run_dir}")
    caught = sum(entry["count"] for entry in result.report.get("warnings", []))
    if caught:
        print(
            f"kplug: {caught} Python warning(s) while training; see report.json (warnings).", file=sys.stderr
        )
    return EXIT_OK


def _launch_elsewhere(args: argparse.Namespace) -> int | None:
    """The exit code when a plugin trained the run somewhere else (``kplug_launch``), else ``None``."""
    from kplug.distribute.processes import world_size
    from kplug.plugin.manager import get_plugins

    plugins = get_plugins(args.plugins)
    if world_size() > 1 or not plugins.implements("kplug_launch"):
        return None  # a process of a launched group trains here
    from kplug.config.load import load_config
    from kplug.train.rundir import CONFIG_FILE
    from kplug.train.storage import is_url

    if args.config is None and (is_url(args.resume) or not (Path(args.resume) / CONFIG_FILE).is_file()):
        return None  # the trainer reads the saved config (from its local copy) or says what is missing
    config = load_config(args.config if args.config is not None else Path(args.resume) / CONFIG_FILE)
    output = args.resume if args.resume is not None else args.output
    if output is not None:
        config = config.model_copy(update={"output": config.output.model_copy(update={"dir": str(output)})})
    train = {"config": args.config, "output": args.output, "resume": args.resume}
    return plugins.call_hook("kplug_launch", config=config, train=train)


def _train_argv(args: argparse.Namespace) -> list[str]:
    """The ``kplug train`` arguments each launched process runs with (all but ``--nproc``)."""
    argv = ["train"] + ([args.config] if args.config else [])
    argv += ["--output", args.output] if args.output else []
    argv += ["--resume", args.resume] if args.resume else []
    argv += ["--no-plugins"] if getattr(args, "no_plugins", False) else []
    return argv + (["--debug"] if getattr(args, "debug", False) else [])


def _evaluate(args: argparse.Namespace) -> int:
    from kplug.inference.prediction import evaluation

    data = _data_argument(args.data)
    result = evaluation(args.run_dir, data=data, split=args.split, plugins=args.plugins)
    print(result.table())
    name = "evaluation-" + (
        Path(str(data)).stem if isinstance(data, str) else args.split if data is None else "data"
    )
    from kplug.train.rundir import write_json
    from kplug.train.storage import RemoteRunDir, is_url

    if is_url(args.run_dir):  # a run directory at an fsspec URL
        RemoteRunDir(args.run_dir, "run directory").write_text(
            f"{name}.json", json.dumps(result.metrics, indent=2)
        )
        print(f"Wrote {args.run_dir.rstrip('/')}/{name}.json", file=sys.stderr)
        return EXIT_OK
    write_json(Path(args.run_dir) / f"{name}.json", result.metrics)
    print(f"Wrote {Path(args.run_dir) / f'{name}.json'}", file=sys.stderr)
    return EXIT_OK


def _predict(args: argparse.Namespace) -> int:
    from kplug.inference.prediction import predict
    from kplug.inference.records import format_records, output_format

    fmt = output_format(args.format, args.output)
    if args.output and not Path(args.output).resolve().parent.is_dir():
        raise ConfigError(
            f"--output {args.output!r}: the directory {Path(args.output).parent} does not exist."
        )
    records = predict(args.run_dir, data=_data_argument(args.data), split=args.split, plugins=args.plugins)
    text = format_records(records, fmt)
    if args.output:
        Path(args.output).write_text(text)
        print(f"Wrote {len(records)} predictions to {args.output} ({fmt})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _tune(args: argparse.Namespace) -> int:
    from kplug.tune.search import format_summary, tune

    try:
        result = tune(args.config, trials=args.trials, output=args.output, plugins=args.plugins)
    except KeyboardInterrupt:
        print(
            "kplug: interrupted. Run the same kplug tune command again to continue the search.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(format_summary(result.rows))
    print(f"Search folder: {result.output} (summary.csv, study.db, trial-*/)")
    if result.best_config_path is not None:
        print(
            f"Best: {result.metric} {result.best_value:.6g} in {result.best_run_dir}; "
            f"its config: {result.best_config_path}"
        )
    return EXIT_OK


def _bench(args: argparse.Namespace) -> int:
    from kplug.speed.run import bench

    tty = sys.stdout.isatty()

    def progress(line: str) -> None:
        if line.endswith("..."):  # a probe starts: shown on a terminal, replaced by its result
            if tty:
                print(line, end="\r", flush=True)
            return
        print(f"{line}\033[K" if tty else line, flush=True)

    result = bench(
        args.config,
        backends=args.backends,
        steps=args.steps,
        settings=args.settings,
        timeout=args.timeout,
        progress=progress,
    )
    print(result.summary(table=False))  # the progress lines were the table
    if args.apply and result.best is not None:
        from kplug.speed.apply import record, write_compile_settings
        from kplug.speed.run import compact

        settings = result.best.result["settings"]
        write_compile_settings(args.config, settings)
        where = record(result)
        print(
            f"Wrote train.compile: {compact(settings)} into {args.config} (for {result.best.backend}: "
            f"KERAS_BACKEND={result.best.backend} kplug train {args.config}); recorded in {where}."
        )
    return EXIT_OK if result.best is not None else EXIT_BAD_INPUT


def _init(args: argparse.Namespace) -> int:
    from kplug.cli.starter import write_starter

    data = write_starter(args.task, args.output, force=args.force)
    print(
        f"Wrote {args.output} ({args.task}) and its sample data in {data}; edit them, then: kplug train {args.output}"
    )
    return EXIT_OK


def _plugins(args: argparse.Namespace) -> int:
    index = args.index
    if index is None:
        from kplug.cli.plugin_index import PluginIndex
        from kplug.plugin.manager import get_plugins

        index = PluginIndex.from_plugins(get_plugins(args.plugins))
    rows = [tuple(component) for component in index.components]
    widths = [max(len(r[i]) for r in rows + [("KIND", "NAME", "PROVIDER", "")]) for i in range(3)]
    print(f"{'KIND':<{widths[0]}}  {'NAME':<{widths[1]}}  {'PROVIDER':<{widths[2]}}  DESCRIPTION")
    for kind, name, provider, description in rows:
        print(f"{kind:<{widths[0]}}  {name:<{widths[1]}}  {provider:<{widths[2]}}  {description}")
    for name, error in index.failures:
        print(f"BROKEN plugin {name} (disabled): {error}", file=sys.stderr)
    return EXIT_OK


def _presets(args: argparse.Namespace) -> int:
    from kplug.cli.presets import format_rows, preset_rows, summary

    plugins = args.plugins if args.plugins is not None else _load(None, getattr(args, "no_plugins", False))
    rows, warnings = preset_rows(plugins)
    if args.here:
        rows = [row for row in rows if row.preset.on_this_machine]
    print(format_rows(rows))
    for warning in warnings:
        print(warning, file=sys.stderr)
    print(summary(rows), file=sys.stderr)
    return EXIT_OK


def _doctor(args: argparse.Namespace) -> int:
    from kplug.cli.doctor import diagnose

    index = args.index
    if index is None:
        from kplug.cli.plugin_index import PluginIndex
        from kplug.plugin.manager import get_plugins

        index = PluginIndex.from_plugins(get_plugins(args.plugins))
    facts = diagnose(index)
    print(json.dumps(facts, indent=2))
    return EXIT_OK if not facts["failures"] else 1


def build_parser(plugins: Any = None, index: Any = None) -> argparse.ArgumentParser:
    """The argument parser of the ``kplug`` command, with the commands plugins add.

    Args:
        plugins: extra plugin objects or a ``Plugins`` (default: the installed plugins).
        index: a ``PluginIndex``: list the plugins' commands from it (names and help only; such
            a command is parsed by a parser built from the loaded plugins) and load no plugin.
    """
    parser, warnings = _parser(plugins, index)
    for warning in warnings:
        print(warning, file=sys.stderr)
    return parser


def _parser(plugins: Any, index: Any) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser, and the warnings about plugin commands that could not be added."""
    from kplug.cli.plugin_index import kplug_version

    parser = argparse.ArgumentParser(prog="kplug", description="Fine-tune Keras 3 models on any backend.")
    parser.add_argument("--version", action="version", version=f"kplug {kplug_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and backend log lines")
    parser.add_argument(
        "--no-plugins",
        action="store_true",
        help="load only kplug's built-in components, no installed plugin packages",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_commands(commands)
    if index is None:
        warnings = _add_plugin_commands(commands, plugins)
    else:
        for name, help_text in index.commands:
            commands.add_parser(name, help=help_text, add_help=False)
        warnings = list(index.warnings)
    for sub in commands.choices.values():
        if not sub.add_help:
            continue  # a plugin command listed from the index
        sub.add_argument("--debug", action="store_true", help="show tracebacks", default=argparse.SUPPRESS)
        sub.add_argument(
            "--no-plugins", action="store_true", help="built-in components only", default=argparse.SUPPRESS
        )
    return parser, warnings


def _add_commands(commands: argparse._SubParsersAction) -> None:
    """kplug's own commands."""
    train = commands.add_parser("train", help="train a run from a config file")
    train.add_argument("config", nargs="?", help="run config (.yaml, .json or .toml)")
    train.add_argument("--output", help="run directory (overrides output.dir)")
    train.add_argument(
        "--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint"
    )
    train.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="start N training processes on this host with torchrun's engine (needs torch installed)",
    )
    train.set_defaults(handler=_train)

    tune = commands.add_parser("tune", help="search the config's tune.space with Optuna")
    tune.add_argument("config", help="run config with a tune section")
    tune.add_argument("--trials", type=int, required=True, help="finished trials the search should have")
    tune.add_argument("--output", help="search folder (default runs/<name>-tune); run again to continue")
    tune.set_defaults(handler=_tune)

    bench = commands.add_parser(
        "bench", help="time the config on each backend and compile setting, recommend the fastest"
    )
    bench.add_argument("config", help="run config (.yaml, .json or .toml)")
    bench.add_argument("--backends", nargs="+", metavar="NAME", help="backends to probe (default: installed)")
    bench.add_argument("--steps", type=int, default=30, help="batches timed per probe after warm-up (30)")
    bench.add_argument(
        "--settings",
        nargs="+",
        metavar="S",
        help="all (default), default (Keras' own), or KEY=VALUE,... e.g. jit_compile=true,steps_per_execution=8",
    )
    bench.add_argument("--timeout", type=float, default=180.0, help="seconds per probe before it fails (180)")
    bench.add_argument(
        "--apply", action="store_true", help="write the fastest settings into the config (train.compile)"
    )
    bench.set_defaults(handler=_bench)

    for name, handler, help_text in (
        ("evaluate", _evaluate, "evaluate a finished run"),
        ("predict", _predict, "predict with a finished run (JSON lines or CSV, one flat record per example)"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("run_dir", help="run directory written by kplug train")
        command.add_argument(
            "--data",
            nargs="+",
            metavar="PATH|KEY=VALUE",
            help="a file for the run's data reader, or its options",
        )
        command.add_argument("--split", default="test", choices=["train", "validation", "test"])
        if name == "predict":
            command.add_argument("--output", help="write predictions here instead of stdout")
            command.add_argument(
                "--format",
                choices=["jsonl", "csv"],
                help="jsonl (one JSON object per line) or csv; default: from the --output extension, else jsonl",
            )
        command.set_defaults(handler=handler)

    from kplug.cli.starter import TASKS

    init = commands.add_parser("init", help="write a starter config with every field explained")
    init.add_argument(
        "--task", choices=list(TASKS), default="image-classification", help="what the model learns"
    )
    init.add_argument("--output", default="run.yaml", help="the config file to write (default run.yaml)")
    init.add_argument("--force", action="store_true", help="replace an existing file")
    init.set_defaults(handler=_init)

    commands.add_parser("plugins", help="list every component and its provider").set_defaults(
        handler=_plugins
    )
    presets = commands.add_parser(
        "presets",
        help="list the pretrained models the backbones can load, and which are on this machine",
    )
    presets.add_argument("--here", action="store_true", help="only the ones on this machine")
    presets.set_defaults(handler=_presets)
    commands.add_parser("doctor", help="backend, devices, versions, plugin health").set_defaults(
        handler=_doctor
    )


def _add_plugin_commands(commands: argparse._SubParsersAction, plugins: Any) -> list[str]:
    """Let each plugin's ``kplug_add_commands`` add subcommands (e.g. kplug-compress: ``export``).

    A plugin whose hook raises, or takes a command name that kplug or an earlier plugin
    already has, loses all its commands (the warning returned names it); kplug's own
    commands and the other plugins' go on.
    """
    from kplug.plugin.manager import get_plugins

    try:
        loaded = get_plugins(plugins)
    except KplugError:
        return []  # kplug's own commands still work; the ones that load plugins report the error
    warnings = []
    owners = dict.fromkeys(commands.choices, "kplug")
    for implementation in loaded.manager.hook.kplug_add_commands.get_hookimpls():
        name = loaded.providers.get(implementation.plugin_name, implementation.plugin_name)
        before = set(commands.choices)
        problem = _command_problem(implementation.function, commands, owners, f"plugin {name}")
        added = set(commands.choices) - before
        if problem is None:
            owners.update(dict.fromkeys(added, f"plugin {name}"))
        else:
            _remove_commands(commands, added)
            warnings.append(f"kplug: warning: plugin {name}: {problem}; its commands are not available.")
    return warnings


def _command_problem(
    hook: Any, commands: argparse._SubParsersAction, owners: dict[str, str], plugin: str
) -> str | None:
    """Call one plugin's ``kplug_add_commands``; return what went wrong, or ``None``."""
    try:
        hook(commands=commands)
    except argparse.ArgumentError as error:
        taken = error.message.rpartition(": ")[2]  # "conflicting subparser: train"
        return f"kplug_add_commands adds the command '{taken}', which {owners.get(taken, plugin)} already has"
    except Exception as error:  # a broken plugin must not take the kplug command down
        return f"kplug_add_commands raised {type(error).__name__}: {error}"
    return None


def _remove_commands(commands: argparse._SubParsersAction, names: set[str]) -> None:
    """Take back the commands a failed plugin added before it failed (argparse has no public way)."""
    for name in names:
        del commands._name_parser_map[name]
    commands._choices_actions[:] = [a for a in commands._choices_actions if a.dest not in names]


def _warn_failures(plugins: Any) -> None:
    for failure in plugins.failures:
        print(f"kplug: warning: plugin {failure.name} is disabled: {failure.error}", file=sys.stderr)


def _load(plugins: Any, no_plugins: bool) -> Any:
    """The plugins every command uses: installed ones (or ``plugins``), or built-ins only with --no-plugins."""
    from kplug.plugin.manager import Plugins, get_plugins, load_plugins

    if isinstance(plugins, Plugins):
        return plugins
    if no_plugins:
        return load_plugins(plugins or (), entry_points=False)
    return get_plugins(plugins)


def _command_word(argv: list[str]) -> str | None:
    """The command in ``argv``: the first word that is not an option (kplug's own options take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _plugin_index(no_plugins: bool) -> Any:
    """The ``PluginIndex`` of the installed plugins (stored, or built by loading them), or ``None``."""
    from kplug.cli.plugin_index import PluginIndex, load_index

    def build() -> PluginIndex:
        loaded = _load(None, no_plugins)
        parser, warnings = _parser(loaded, None)
        core = argparse.ArgumentParser().add_subparsers()
        _add_commands(core)
        listed = parser._subparsers._group_actions[0]._choices_actions  # name and help, in order
        commands = [[action.dest, action.help or ""] for action in listed if action.dest not in core.choices]
        return PluginIndex.from_plugins(loaded, commands, warnings)

    try:
        return load_index(no_plugins, build)
    except KplugError:
        return None  # the full path below reports the error the way it always has


def main(argv: Sequence[str] | None = None, plugins: Any = None) -> int:
    """Run the CLI; returns the exit code.

    ``--help``, ``--version``, usage errors and ``kplug plugins`` read the plugin index
    (``kplug.cli.plugin_index``) and load no plugin; other commands load the plugins they
    use, and a command a plugin adds is parsed by the parser the loaded plugins build.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
        plugins: extra plugin objects or a ``Plugins`` (default: the installed plugins).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    options = argv[: argv.index("--")] if "--" in argv else argv
    no_plugins = "--no-plugins" in options
    if quiet_logs.wanted(debug="--debug" in options):
        quiet_logs.install()
    index = _plugin_index(no_plugins) if plugins is None else None
    if index is not None and _command_word(argv) not in index.command_names():
        args = build_parser(index=index).parse_args(argv)
        loaded = None
        if args.command not in COMMANDS_READING_THE_INDEX:
            try:
                loaded = _load(None, no_plugins)
            except KplugError:
                loaded = None  # the commands that use plugins report the error
    else:
        try:
            loaded = _load(plugins, no_plugins)
        except KplugError:
            loaded = None  # kplug's own commands still work; the ones that load plugins report the error
        try:
            parser = build_parser(loaded if loaded is not None else plugins)
        except KplugError as error:
            print(f"kplug: error: {error}", file=sys.stderr)
            return EXIT_BAD_INPUT
        args = parser.parse_args(argv)
        index = None
    args.index = index
    args.plugins = loaded if loaded is not None else plugins
    if loaded is not None and args.command in COMMANDS_USING_PLUGINS:
        _warn_failures(loaded)
    try:
        return args.handler(args)
    except KplugError as error:
        if args.debug:
            raise
        print(f"kplug: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("kplug: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED


def entry_point() -> Any:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
