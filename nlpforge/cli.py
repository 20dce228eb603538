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
    console.quiet = False  # --quiet silences progress, never the reason for failing
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
        for k in ("loss", "perplexity", "exact_match", "stopped", "hallucination_score"):
            if k in res.get("tuned", {}):
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


for _name in ("prepare", "export"):
    _stage_command(_name)


@app.command("eval")
def eval_command(
    recipe: Annotated[str, typer.Argument(help="recipe YAML file; or `factuality` to score --input pairs without a model")],
    input_: Annotated[Path | None, typer.Option("--input", help="factuality: JSONL with source and output fields")] = None,
    output: Annotated[Path | None, typer.Option("--output", help="factuality: JSONL written with hallucination_score and its parts")] = None,
    source_field: Annotated[str, typer.Option("--source-field", help="factuality: field holding the source text")] = "source",
    output_field: Annotated[str, typer.Option("--output-field", help="factuality: field holding the generated text")] = "output",
    reference_field: Annotated[str | None, typer.Option("--reference-field", help="factuality: field holding a reference answer (adds answer_f1)")] = None,
    lm_eval: Annotated[str | None, typer.Option("--lm-eval", help="comma-separated lm-evaluation-harness tasks to run on the tuned model (other eval.lm_eval keys via --set)")] = None,
    set_: SetOpt = None,
    run_dir: RunDirOpt = None,
    fresh: FreshOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run the eval stage of a recipe (base vs tuned, gates, report), or `eval factuality` on a file."""
    if recipe == "factuality" and not Path(recipe).is_file():
        _eval_factuality(input_, output, source_field, output_field, reference_field, quiet, debug)
        return
    if input_ or output:
        _fail(RecipeError("--input/--output belong to `nlpforge eval factuality`; for a recipe give only RECIPE"), debug)
    if lm_eval:  # the same as --set eval.lm_eval.tasks=[...]: part of the recipe, so the stage cache sees it
        set_ = [*(set_ or []), "eval.lm_eval.tasks=[" + ",".join(json.dumps(t.strip()) for t in lm_eval.split(",") if t.strip()) + "]"]
    _run(Path(recipe), "eval", set_, run_dir, fresh, quiet, debug)


def _eval_factuality(input_: Path | None, output: Path | None, source_field: str, output_field: str, reference_field: str | None, quiet: bool, debug: bool) -> None:
    from nlpforge.console import track
    from nlpforge.evals.factuality import score_records, summarize
    from nlpforge.evals.io import read_records
    from nlpforge.runs import atomic_file

    set_quiet(quiet)
    try:
        if input_ is None or output is None:
            raise RecipeError("eval factuality needs --input FILE and --output FILE")
        records = read_records(input_, required=[output_field])
        scored = score_records(records, source_field, output_field, reference_field, progress=track)
        with atomic_file(output) as f:
            for rec, sc in zip(records, scored):
                f.write(json.dumps({**rec, **sc}, ensure_ascii=False) + "\n")
    except NlpforgeError as exc:
        _fail(exc, debug)
        return
    summary = summarize(scored)
    t = Table(title=f"factuality of {len(records)} outputs ({input_})")
    for col in ("part", "mean", "defined for"):
        t.add_column(col)
    for k, v in summary.items():
        if isinstance(v, dict):
            t.add_row(k, "-" if v["mean"] is None else f"{v['mean']:.4f}", str(v["defined"]))
    out.print(t)
    out.print(f"wrote {output}")


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
    bundle: Annotated[str, typer.Argument(help="an exported bundle folder (runs/<name>/export) or a registry ref NAME@STAGE|NAME@VERSION")],
    engine: Annotated[str, typer.Option(help="vllm (in-process AsyncLLM), hf (transformers, dynamic batching), vllm-server (exec vLLM's own server)")] = "vllm",
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="NLPFORGE_API_KEY", help="require this Bearer key")] = None,
    api_key_file: Annotated[Path | None, typer.Option("--api-key-file", help="file with accepted keys, one per line")] = None,
    max_queue: Annotated[int, typer.Option(help="requests in flight before answering 429")] = 256,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="largest max_tokens a request may ask for")] = 4096,
    max_prompt_tokens: Annotated[int | None, typer.Option(help="longest prompt in tokens (default: max_model_len - 1)")] = None,
    max_body_bytes: Annotated[int, typer.Option(help="largest request body")] = 1 << 20,
    feedback_dir: Annotated[Path | None, typer.Option(help="store /v1/feedback here (feedback.jsonl)")] = None,
    log_prompts: Annotated[bool, typer.Option("--log-prompts", help="log each prompt to stderr")] = False,
    redact_pii: Annotated[bool, typer.Option("--redact-pii", help="redact PII in logged prompts and in the completions and feedback stored under --feedback-dir")] = False,
    threads: Annotated[int | None, typer.Option(help="hf engine: torch CPU threads")] = None,
    max_batch: Annotated[int, typer.Option(help="hf engine: most sequences per generate batch")] = 16,
    drain: Annotated[int, typer.Option(help="seconds to let open requests finish on shutdown")] = 30,
    extra: Annotated[list[str] | None, typer.Argument(help="extra vLLM flags after -- (--engine vllm-server)")] = None,
    debug: DebugOpt = False,
) -> None:
    """Serve a bundle behind an OpenAI-compatible API (chat, completions, classify, feedback, metrics)."""
    _offline_env()
    try:
        from nlpforge.export.registry import resolve

        path = resolve(bundle)
        if engine == "vllm-server":
            from nlpforge.serve.vllm_server import serve as exec_vllm

            console.print(f"serving {path} on http://{host}:{port}/v1 (vLLM's own server)")
            exec_vllm(path, host, port, api_key, extra)
            return
        from nlpforge.serve.app import ServerConfig
        from nlpforge.serve.server import read_api_keys, serve_bundle

        cfg = ServerConfig(api_keys=read_api_keys(api_key, api_key_file), max_body_bytes=max_body_bytes, max_prompt_tokens=max_prompt_tokens,
                           max_tokens_limit=max_tokens, max_queue=max_queue, feedback_dir=feedback_dir, log_prompts=log_prompts, redact_pii=redact_pii)
        console.print(f"serving {path} on http://{host}:{port}/v1 ({engine} engine)")
        serve_bundle(path, engine, host, port, cfg, drain_s=drain, threads=threads, max_batch=max_batch)
    except NlpforgeError as exc:
        _fail(exc, debug)


feedback_app = typer.Typer(no_args_is_help=True, help="Feedback collected by `nlpforge serve --feedback-dir`.")
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    folder: Annotated[Path, typer.Argument(help="the server's --feedback-dir (or its feedback.jsonl)")],
    kind: Annotated[str, typer.Option("--kind", help="kto (thumbs up/down) or dpo (preferred vs served answer)")] = "kto",
    output: Annotated[Path, typer.Option("--out", help="JSONL file to write")] = Path("feedback-export.jsonl"),
    debug: DebugOpt = False,
) -> None:
    """Write feedback as a KTO or DPO dataset in TRL's conversational shape (data.format: kto|preference)."""
    from nlpforge.serve.feedback import export_feedback

    try:
        if kind not in ("kto", "dpo"):
            raise RecipeError(f"--kind {kind}: valid kinds are kto, dpo")
        n = export_feedback(folder, kind, output)  # type: ignore[arg-type]
        out.print(f"wrote {n} {kind} rows to {output}")
    except NlpforgeError as exc:
        _fail(exc, debug)


models_app = typer.Typer(no_args_is_help=True, help="A local registry of bundles: immutable versions and stages ($NLPFORGE_REGISTRY, default ./registry).")
app.add_typer(models_app, name="models")
RegistryOpt = Annotated[Path | None, typer.Option("--registry", help="registry folder (default: $NLPFORGE_REGISTRY or ./registry)")]


@models_app.command("register")
def models_register(
    bundle: Annotated[Path, typer.Argument(help="an exported bundle folder")],
    name: Annotated[str | None, typer.Option(help="model name (default: the bundle's name)")] = None,
    registry: RegistryOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Copy a bundle into the registry as the next immutable version."""
    from nlpforge.export.registry import register

    try:
        n, v = register(bundle, name, registry)
        out.print(f"registered {n}@{v}")
    except NlpforgeError as exc:
        _fail(exc, debug)


@models_app.command("list")
def models_list(registry: RegistryOpt = None) -> None:
    """Every model, its versions and stages."""
    from nlpforge.export.registry import describe, names

    t = Table(title="models")
    for col in ("name", "version", "stages", "task", "registered"):
        t.add_column(col)
    for n in names(registry):
        for row in describe(n, registry):
            t.add_row(n, row["version"], ",".join(row["stages"]), row["task"], str(row["registered"]))
    out.print(t)


@models_app.command("show")
def models_show(ref: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME@STAGE")], registry: RegistryOpt = None, debug: DebugOpt = False) -> None:
    """Versions of a model (or one version) as JSON: stages, task, base model, eval summary, path."""
    from nlpforge.export.registry import describe, resolve

    try:
        name = ref.split("@")[0]
        rows = describe(name, registry)
        if "@" in ref:
            path = str(resolve(ref, registry))
            rows = [r for r in rows if r["path"] == path]
        if not rows:
            raise NlpforgeError(f"{ref}: not in the registry")
        out.print_json(json.dumps(rows))
    except NlpforgeError as exc:
        _fail(exc, debug)


@models_app.command("promote")
def models_promote(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION")],
    stage: Annotated[str, typer.Option("--stage", help="staging, production or archived")] = "production",
    registry: RegistryOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Point a stage at a version (`nlpforge serve NAME@production` then serves it)."""
    from nlpforge.export.registry import promote

    try:
        st = promote(ref, stage, registry)
        out.print(f"{ref} is now {stage}; stages: {st}")
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
