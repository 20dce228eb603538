"""The `nlpforge` command: one thin function per verb."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nlpforge.console import console, out, set_quiet
from nlpforge.errors import NlpforgeError, RecipeError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="From raw domain text to a served, evaluated language model.")

RecipeArg = Annotated[Path, typer.Argument(help="recipe YAML file")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override a recipe field: key.path=value (repeatable)")]
RunDirOpt = Annotated[Path | None, typer.Option("--run-dir", help="default: runs/<recipe name>")]
FreshOpt = Annotated[bool, typer.Option("--fresh", help="rerun stages even if their inputs are unchanged")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="show tracebacks")]


def _fail(exc: Exception, debug: bool) -> None:
    if debug:
        raise exc
    console.print(f"[bold red]error:[/bold red] {exc}", markup=True, highlight=False)
    raise typer.Exit(2 if isinstance(exc, RecipeError) else 1)


def _offline_env() -> None:
    # No hub at run time: fail fast on a hub id instead of hanging on the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@app.command()
def check(
    recipe: RecipeArg,
    set_: SetOpt = None,
    no_model: Annotated[bool, typer.Option("--no-model", help="skip the parameter count and memory estimate")] = False,
    debug: DebugOpt = False,
) -> None:
    """Validate a recipe (every error at once) and show one training sample with its loss mask."""
    from nlpforge.recipe import load_recipe

    _offline_env()
    try:
        r = load_recipe(recipe, set_)
        out.print(f"[green]ok[/green]: {recipe} is a valid recipe (name={r.name}, model={r.model.path})")
        _show_sample(r)
        if not no_model:
            _show_model(r)
    except NlpforgeError as exc:
        _fail(exc, debug)


def _show_sample(r) -> None:  # noqa: ANN001
    from nlpforge.corpus.clean import Cleaner
    from nlpforge.corpus.readers import read
    from nlpforge.data.chat import format_sample, load_tokenizer, render
    from nlpforge.data.formats import CHAT_FORMATS
    from nlpforge.errors import DataError
    from nlpforge.models import resolve_model_path

    if r.data.format not in CHAT_FORMATS:
        return
    if not Path(resolve_model_path(r.model.path)).exists():
        raise NlpforgeError(f"model.path: {r.model.path} does not exist (build the quickstart model with `python scripts/build_tiny_model.py`)")
    tok = load_tokenizer(r)
    cleaner = Cleaner(r.data, r.clean)
    for doc in read(r.data.inputs, r.data.text_field):
        record, text, _ = cleaner(doc)
        if record is None:
            continue
        record, _ = cleaner.anonymize_record(record, text, [])
        ids, mask = render(tok, record[r.data.messages_field])
        out.print(f"\nOne training sample ({doc.source}), {len(ids)} tokens, {sum(mask)} with loss (in green, between double brackets):")
        out.print(format_sample(tok, ids, mask), highlight=False)
        return
    raise DataError(f"data.inputs: no valid conversation found in {r.data.inputs}")


def _show_model(r) -> None:  # noqa: ANN001
    from nlpforge.models import resolve_model_path
    from nlpforge.train.check import model_report

    path = resolve_model_path(r.model.path)
    if not Path(path).exists():
        out.print(f"(model {r.model.path} is not a local folder here: no parameter count or memory estimate)")
        return
    rep = model_report(r)
    t = Table(title=f"model: {r.model.path} ({rep['task']}, {rep['peft']}, {rep['dtype']}, batch {rep['batch_size']} x {rep['max_length']} tokens)")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_row("parameters", f"{rep['params']:,}")
    t.add_row("trainable parameters", f"{rep['trainable_params']:,} ({rep['trainable_share']:.2%})")
    for k, v in rep["memory_gib"].items():
        t.add_row(f"GPU memory estimate: {k}", f"{v:.2f} GiB")
    out.print(t)


def _run(recipe: Path, stages: str | None, set_: list[str] | None, run_dir: Path | None, fresh: bool, quiet: bool, debug: bool) -> None:
    from nlpforge.pipeline import parse_stages, run_pipeline
    from nlpforge.recipe import load_recipe
    from nlpforge.runs import RunDir

    _offline_env()
    set_quiet(quiet)
    try:
        r = load_recipe(recipe, set_)
        run = RunDir(run_dir or Path("runs") / r.name)
        from nlpforge.train.launch import is_main_process, world_size

        if world_size() > 1 and not is_main_process():
            # a data-parallel worker: train only; the main process keeps the manifest and cache
            from nlpforge.train.run import run_train

            if parse_stages(stages) != ["train"]:
                raise RecipeError("under accelerate launch, run only the train stage: accelerate launch -m nlpforge train RECIPE")
            run_train(r, run.stage_dir("prepare"), run.stage_dir("train"))
            return
        report = run_pipeline(r, recipe, run, parse_stages(stages), fresh=fresh)
    except NlpforgeError as exc:
        _fail(exc, debug)
        return
    _print_results(run.root, report)


def _print_results(root: Path, report: list[dict]) -> None:
    table = Table(title=f"run directory: {root}")
    for col in ("stage", "status", "seconds", "summary"):
        table.add_column(col)
    for item in report:
        summary = item["summary"]
        text = ", ".join(f"{k}={v}" for k, v in summary.items() if not isinstance(v, dict)) if summary else ""
        table.add_row(item["stage"], item["status"], str(item["seconds"]), text)
    out.print(table, soft_wrap=True)
    results = root / "eval" / "results.json"
    if results.is_file() and json.loads(results.read_text()).get("task") == "classification":
        _print_classification(root)
        return
    if results.is_file():
        res = json.loads(results.read_text())
        t = Table(title="held-out eval")
        t.add_column("metric")
        cols = [c for c in ("base", "tuned", "delta") if c in res]
        for c in cols:
            t.add_column(c, justify="right")
        for k in ("loss", "perplexity", "exact_match", "stopped"):
            t.add_row(k, *[str(res[c].get(k, "")) for c in cols])
        out.print(t)
    bundle = root / "export"
    if (bundle / "nlpforge.json").is_file():
        from nlpforge.export.bundle import vllm_serve_command

        meta = json.loads((bundle / "nlpforge.json").read_text())
        out.print(f"\nServe it:  [bold]nlpforge serve {bundle}[/bold]")
        out.print(f"or with vLLM alone:  {vllm_serve_command(bundle, meta['serve']['vllm_args'])}", highlight=False)


def _print_classification(root: Path) -> None:
    res = json.loads((root / "eval" / "results.json").read_text())
    t = Table(title=f"held-out eval ({res['metrics']['samples']} rows, {len(res['labels'])} labels)")
    for col in ("metric", "tuned", f"majority ({res['majority']['prediction']})"):
        t.add_column(col, justify="right")
    for k in ("accuracy", "macro_f1", "micro_f1"):
        t.add_row(k, str(res["metrics"][k]), str(res["majority"][k]))
    out.print(t)
    if (root / "export" / "nlpforge.json").is_file():
        out.print(f"\nServe it:  [bold]nlpforge serve {root / 'export'}[/bold]")


@app.command()
def run(
    recipe: RecipeArg,
    stages: Annotated[str | None, typer.Option("--stages", help="comma-separated subset, e.g. clean,train")] = None,
    set_: SetOpt = None,
    run_dir: RunDirOpt = None,
    fresh: FreshOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run the recipe's stages in order, skipping those whose inputs did not change."""
    _run(recipe, stages, set_, run_dir, fresh, quiet, debug)


def _stage_command(name: str) -> None:
    def command(recipe: RecipeArg, set_: SetOpt = None, run_dir: RunDirOpt = None, fresh: FreshOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False) -> None:
        _run(recipe, name, set_, run_dir, fresh, quiet, debug)

    command.__doc__ = f"Run only the {name} stage of a recipe."
    app.command(name)(command)


for _name in ("prepare", "eval", "export"):
    _stage_command(_name)


@app.command("train")
def train_command(
    recipe: RecipeArg,
    num_processes: Annotated[int, typer.Option("--num-processes", help="data-parallel processes, launched with `accelerate launch` (CPU: gloo)")] = 1,
    accelerate_config: Annotated[Path | None, typer.Option("--accelerate-config", help="an accelerate config (recipes/accelerate/: ddp, fsdp, deepspeed-zero2/3)")] = None,
    set_: SetOpt = None,
    run_dir: RunDirOpt = None,
    fresh: FreshOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run only the train stage of a recipe; with --num-processes N, data-parallel on Accelerate."""
    if num_processes > 1 or accelerate_config is not None:
        from nlpforge.train.launch import launch

        argv = ["train", str(recipe), *[x for item in set_ or [] for x in ("--set", item)]]
        argv += ["--run-dir", str(run_dir)] if run_dir else []
        argv += [flag for flag, on in (("--fresh", fresh), ("--quiet", quiet), ("--debug", debug)) if on]
        try:
            raise typer.Exit(launch(argv, num_processes, accelerate_config))
        except NlpforgeError as exc:
            _fail(exc, debug)
    _run(recipe, "train", set_, run_dir, fresh, quiet, debug)


@app.command("tune")
def tune_command(
    recipe: RecipeArg,
    trials: Annotated[int, typer.Option("--trials", min=1, help="number of Optuna trials")] = 10,
    set_: SetOpt = None,
    run_dir: RunDirOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Search the ranges of the recipe's `tune` section with Optuna; write the trials table and the best recipe."""
    from nlpforge.recipe import load_recipe
    from nlpforge.runs import RunDir
    from nlpforge.train.tune import run_tune

    _offline_env()
    set_quiet(quiet)
    try:
        r = load_recipe(recipe, set_)
        res = run_tune(r, recipe, RunDir(run_dir or Path("runs") / r.name), trials, set_ or [])
    except NlpforgeError as exc:
        _fail(exc, debug)
        return
    keys = list(res["best_params"])
    t = Table(title=f"tune: {len(res['trials'])} trials, {res['direction']} {res['metric']}")
    for col in ("trial", *keys, res["metric"], "train_loss", "seconds"):
        t.add_column(col, justify="right")
    for row in sorted(res["trials"], key=lambda x: x[res["metric"]], reverse=res["direction"] == "maximize"):
        mark = " *" if row["trial"] == res["best_trial"] else ""
        t.add_row(f"{row['trial']}{mark}", *[f"{row[k]:.4g}" if isinstance(row[k], float) else str(row[k]) for k in keys], f"{row[res['metric']]:.4f}", str(row["train_loss"]), str(row["seconds"]))
    out.print(t)
    out.print(f"best recipe: {res['best_recipe']}")


@app.command("clean")
def clean_command(
    recipe: Annotated[Path | None, typer.Argument(help="recipe YAML file (or use --input/--output)")] = None,
    input_: Annotated[list[str] | None, typer.Option("--input", help="file or folder to clean (repeatable); standalone mode")] = None,
    output: Annotated[Path | None, typer.Option("--output", help="standalone mode: folder for corpus.jsonl, rejects.jsonl, report.json")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="standalone mode: YAML with the keys of a recipe's clean section")] = None,
    fmt: Annotated[str, typer.Option("--format", help="standalone mode: text (documents) or messages (chat)")] = "text",
    text_field: Annotated[str, typer.Option("--text-field", help="field holding the text (JSONL, JSON, CSV, Parquet)")] = "text",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would be kept and dropped; write nothing")] = False,
    set_: SetOpt = None,
    run_dir: RunDirOpt = None,
    fresh: FreshOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Clean a corpus: the clean stage of a recipe, or standalone with --input/--output."""
    from nlpforge.corpus.clean import run_clean
    from nlpforge.recipe import CleanConfig, DataConfig, load_config, load_recipe

    _offline_env()
    set_quiet(quiet)
    try:
        if input_:
            if recipe is not None:
                raise RecipeError("give either a RECIPE or --input, not both")
            if output is None and not dry_run:
                raise RecipeError("--output FOLDER is required (or --dry-run)")
            cfg = load_config(config, CleanConfig, set_)
            data = DataConfig.model_validate({"inputs": input_, "format": fmt, "text_field": text_field})
            report = run_clean(data, cfg, None if dry_run else output)
        elif recipe is None:
            raise RecipeError("give a RECIPE, or --input PATH --output FOLDER for standalone cleaning")
        elif dry_run:
            r = load_recipe(recipe, set_)
            report = run_clean(r.data, r.clean, None)
        else:
            _run(recipe, "clean", set_, run_dir, fresh, quiet, debug)
            return
    except NlpforgeError as exc:
        _fail(exc, debug)
        return
    _print_clean_report(report, None if dry_run else output)


def _print_clean_report(report: dict, output: Path | None) -> None:
    t = Table(title=f"clean: {report['kept_docs']} kept, {report['rejected_docs']} rejected of {report['input_docs']}" + ("" if output else " (dry run: nothing written)"))
    for col in ("reason", "docs", "chars", "example"):
        t.add_column(col)
    for reason, item in report["rejected"].items():
        t.add_row(reason, str(item["docs"]), str(item["chars"]), (item["examples"] or [""])[0][:100])
    out.print(t)
    if report["pii_redacted"]:
        out.print("PII (" + report["pii_operator"] + "): " + ", ".join(f"{k}={v}" for k, v in report["pii_redacted"].items()))
    if output:
        out.print(f"wrote {output}/corpus.jsonl, rejects.jsonl, report.json")


@app.command()
def serve(
    bundle: Annotated[Path, typer.Argument(help="an exported bundle folder (runs/<name>/export)")],
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="NLPFORGE_API_KEY", help="require this Bearer key")] = None,
    extra: Annotated[list[str] | None, typer.Argument(help="extra vLLM flags after --")] = None,
    debug: DebugOpt = False,
) -> None:
    """Serve a bundle behind an OpenAI-compatible API on the vLLM engine."""
    from nlpforge.serve.vllm_server import serve as serve_bundle

    try:
        console.print(f"serving {bundle} on http://{host}:{port}/v1 (vLLM engine)")
        serve_bundle(bundle, host, port, api_key, extra)
    except NlpforgeError as exc:
        _fail(exc, debug)


def main() -> None:
    app(prog_name="nlpforge")


if __name__ == "__main__":
    sys.exit(main())
