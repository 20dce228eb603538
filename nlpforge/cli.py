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
def check(recipe: RecipeArg, set_: SetOpt = None, debug: DebugOpt = False) -> None:
    """Validate a recipe (every error at once) and show one training sample with its loss mask."""
    from nlpforge.recipe import load_recipe

    _offline_env()
    try:
        r = load_recipe(recipe, set_)
        out.print(f"[green]ok[/green]: {recipe} is a valid recipe (name={r.name}, model={r.model.path})")
        _show_sample(r)
    except NlpforgeError as exc:
        _fail(exc, debug)


def _show_sample(r) -> None:  # noqa: ANN001
    from nlpforge.corpus.clean import Cleaner
    from nlpforge.corpus.readers import read
    from nlpforge.data.chat import format_sample, load_tokenizer, render
    from nlpforge.errors import DataError

    if r.data.format != "messages":
        return
    if not Path(r.model.path).exists():
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


def _run(recipe: Path, stages: str | None, set_: list[str] | None, run_dir: Path | None, fresh: bool, quiet: bool, debug: bool) -> None:
    from nlpforge.pipeline import parse_stages, run_pipeline
    from nlpforge.recipe import load_recipe
    from nlpforge.runs import RunDir

    _offline_env()
    set_quiet(quiet)
    try:
        r = load_recipe(recipe, set_)
        run = RunDir(run_dir or Path("runs") / r.name)
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


for _name in ("prepare", "train", "eval", "export"):
    _stage_command(_name)


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


@app.command()
def score(
    output: Annotated[Path, typer.Option("--output", help="scored file: .jsonl, .csv or .parquet (batch files: .jsonl)")],
    model: Annotated[str | None, typer.Option("--model", help="bundle folder or NAME@STAGE (not needed for --task factuality)")] = None,
    input_: Annotated[Path | None, typer.Option("--input", help="rows to score: .jsonl, .csv, .parquet or .json")] = None,
    task: Annotated[str, typer.Option("--task", help="generate | chat | classify | perplexity | factuality")] = "chat",
    batch_file: Annotated[Path | None, typer.Option("--batch-file", help="OpenAI batch requests (.jsonl) instead of --input/--task")] = None,
    text_field: Annotated[str | None, typer.Option("--text-field", help="column with the text (default: text; chat: messages)")] = None,
    prompt_template: Annotated[str | None, typer.Option("--prompt-template", help="prompt built from row fields, e.g. 'Q: {question}\\nA:'")] = None,
    engine: Annotated[str, typer.Option("--engine", help="auto (vllm on a GPU, else hf) | vllm | hf")] = "auto",
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="default: the bundle's generation_config")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", help="0 = greedy (the bundle's default unless it says otherwise)")] = None,
    top_p: Annotated[float | None, typer.Option("--top-p")] = None,
    stop: Annotated[list[str] | None, typer.Option("--stop", help="stop string (repeatable)")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="sampling seed")] = None,
    n: Annotated[int, typer.Option("--n", help="completions per row")] = 1,
    source_field: Annotated[str, typer.Option("--source-field", help="factuality: column with the source text")] = "source",
    output_field: Annotated[str, typer.Option("--output-field", help="factuality: column with the answer to check")] = "output",
    reference_field: Annotated[str | None, typer.Option("--reference-field", help="factuality: optional reference column")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="rows per engine batch")] = 32,
    threads: Annotated[int | None, typer.Option("--threads", help="torch CPU threads")] = None,
    dtype: Annotated[str | None, typer.Option("--dtype", help="float32 | bfloat16 | float16 (default: the bundle's)")] = None,
    num_shards: Annotated[int, typer.Option("--num-shards", help="split the job into K shards (one per machine)")] = 1,
    shard_index: Annotated[int, typer.Option("--shard-index", help="which shard this run scores (0..K-1)")] = 0,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", help="rows per resumable output part")] = 1000,
    rejects: Annotated[Path | None, typer.Option("--rejects", help="default: OUTPUT.rejects.jsonl")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="discard the parts of an interrupted run and start over")] = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Score a file offline (resumable: rerun the same command after a crash), or run an OpenAI batch file."""
    from nlpforge.engines import Sampling
    from nlpforge.score.runner import ScoreJob, run_score
    from nlpforge.score.tasks import TASKS, ScoreOptions

    _offline_env()
    set_quiet(quiet)
    try:
        if batch_file is not None:
            if input_ is not None:
                raise RecipeError("give --batch-file or --input, not both")
            input_, task = batch_file, "batch"
        elif input_ is None:
            raise RecipeError("give --input FILE (with --task) or --batch-file FILE")
        elif task not in TASKS:
            raise RecipeError(f"--task {task}: valid tasks are {', '.join(TASKS)}")
        sampling = None
        if any(v is not None for v in (max_tokens, temperature, top_p, seed)) or stop or n != 1:
            from nlpforge.engines import read_bundle
            from nlpforge.score.runner import resolve_model

            base = read_bundle(resolve_model(model)).defaults if model else Sampling()
            given = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "stop": stop or None, "seed": seed, "n": n}
            sampling = base.model_copy(update={k: v for k, v in given.items() if v is not None})
            sampling = Sampling.model_validate(sampling.model_dump())
        opts = ScoreOptions(text_field, prompt_template, sampling, source_field, output_field, reference_field)
        job = ScoreJob(input_, output, task, model, engine, opts, batch_size, threads, num_shards, shard_index, chunk_rows, rejects, fresh, dtype)
        summary = run_score(job)
    except NlpforgeError as exc:
        _fail(exc, debug)
        return
    except ValueError as exc:  # pydantic: an invalid sampling option
        _fail(RecipeError(str(exc)), debug)
        return
    _print_score_summary(summary)


def _print_score_summary(s: dict) -> None:
    t = Table(title=f"score: {s['rows']} rows written, {s['errors']} rejected" + (f", {s['rows_per_s']} rows/s" if s.get("rows_per_s") else ""))
    t.add_column("item")
    t.add_column("value")
    for reason, count in s["error_reasons"].items():
        t.add_row(f"rejected: {reason}", str(count))
    for key in ("label_distribution", "finish_reasons", "status_codes"):
        for k, v in s.get(key, {}).items():
            t.add_row(f"{key.replace('_', ' ')}: {k}", str(v))
    for key in ("perplexity", "hallucination_score"):
        if key in s:
            t.add_row(key, ", ".join(f"{k}={v:.4g}" for k, v in s[key].items()))
    out.print(t)
    out.print(f"wrote {s['output']}" + (f"; rejects in {s['rejects']}" if s["errors"] else ""), highlight=False)


def main() -> None:
    app(prog_name="nlpforge")


if __name__ == "__main__":
    sys.exit(main())
