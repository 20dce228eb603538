"""Early stopping with best-checkpoint selection, `nlpforge check`'s model report,
`nlpforge tune`, report_to passthrough, and the shipped GPU recipes."""

import json
from pathlib import Path

import pytest
from conftest import ROOT, nlpforge, support_sample
from test_peft import make_recipe

from nlpforge.recipe import load_recipe
from nlpforge.tasks import task_for


def run_prepare(r, corpus, out):  # noqa: ANN001, ANN201 - the prepare stage of the recipe's task
    return task_for(r).prepare(r, corpus, out)


def run_train(r, prepared, out):  # noqa: ANN001, ANN201 - the train stage of the recipe's task
    return task_for(r).train(r, prepared, out)



@pytest.fixture(scope="module")
def prepared(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("extras")
    lines = (ROOT / "corpora/support/conversations.jsonl").read_text().splitlines()[:60]
    rows = []
    for i, x in enumerate(lines):
        try:
            rows.append(json.dumps({**json.loads(x), "source": f"a:{i}"}))
        except json.JSONDecodeError:
            continue
    corpus = tmp / "corpus.jsonl"
    corpus.write_text("\n".join(r for r in rows if '"messages"' in r) + "\n")
    run_prepare(make_recipe(tiny_model, train={}), corpus, tmp / "prep")
    return tmp / "prep"


def test_early_stopping_keeps_the_best_checkpoint(tiny_model: Path, prepared: Path, tmp_path: Path) -> None:
    # a learning rate far too high (Adam moves every LoRA weight by about 3 per step): the held-out
    # loss jumps around and stops improving; 0.3 was not enough once package versions moved
    r = make_recipe(tiny_model, train={"max_steps": 30, "eval_steps": 2, "learning_rate": 3.0, "lr_scheduler": "constant", "early_stopping": {"metric": "eval_loss", "patience": 2}})
    summary = run_train(r, prepared, tmp_path)
    assert summary["steps"] < 30, summary  # stopped early
    assert summary["best_checkpoint"].startswith("checkpoint-")
    # the saved adapter is the best checkpoint's: its eval loss is the best one seen
    assert summary["eval"]["eval_loss"] == pytest.approx(summary["best_metric"], rel=1e-4)
    evals = [json.loads(x)["eval_loss"] for x in (tmp_path / "log.jsonl").read_text().splitlines() if "eval_loss" in json.loads(x)]
    during, final = evals[:-1], evals[-1]  # the last line is the final evaluate() of the loaded best adapter
    assert summary["best_metric"] == pytest.approx(min(during), rel=1e-6) and during[-1] > min(during)
    assert final == pytest.approx(min(during), rel=1e-4)


def test_check_prints_parameters_trainable_and_memory(tiny_model: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    proc = nlpforge("check", "recipes/quickstart-chat.yaml", "--set", f"model.path={tiny_model}")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model), LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, target_modules="all-linear"))
    trainable, total = model.get_nb_trainable_parameters()
    out = proc.stdout
    assert f"{total - trainable:,}" in out and f"{trainable:,}" in out
    assert "GPU memory estimate: total" in out


def test_check_memory_estimate_scales_with_batch_and_qlora(tiny_model: Path) -> None:
    from nlpforge.train.check import model_report

    base = model_report(make_recipe(tiny_model, train={"batch_size": 4}))
    big = model_report(make_recipe(tiny_model, train={"batch_size": 8}))
    ckpt = model_report(make_recipe(tiny_model, train={"batch_size": 8, "gradient_checkpointing": True}))
    q = model_report(make_recipe(tiny_model, peft={"method": "qlora"}, train={"batch_size": 4}))
    m = lambda r: r["memory_gib"]  # noqa: E731
    assert m(big)["activations"] == pytest.approx(2 * m(base)["activations"]) and m(ckpt)["activations"] < m(big)["activations"]
    assert m(q)["weights"] < m(base)["weights"] / 5 and q["trainable_params"] == base["trainable_params"]


def test_report_to_is_passed_to_the_trainer(tiny_model: Path, tmp_path: Path) -> None:
    from nlpforge.train.common import args_kwargs

    r = make_recipe(tiny_model, train={"report_to": ["tensorboard", "mlflow"]})
    assert args_kwargs(r, tmp_path, False)["report_to"] == ["tensorboard", "mlflow"]
    with pytest.raises(ValueError, match="report_to"):
        make_recipe(tiny_model, train={"report_to": ["tensorbored"]})


@pytest.mark.slow
def test_tune_writes_trials_and_a_best_recipe(tiny_model: Path, tmp_path: Path) -> None:
    support_sample(tmp_path, 80)
    recipe = tmp_path / "tune.yaml"
    recipe.write_text(
        f"name: tune\ndata:\n  inputs: [{tmp_path / 'raw.jsonl'}]\n  splits:\n    eval: 0.2\nmodel:\n  path: {tiny_model}\n"
        "train:\n  max_steps: 3\n  batch_size: 8\n  threads: 2\n  save_steps: 100\n"
        "tune:\n  metric: eval_loss\n  direction: minimize\n  params:\n    train.learning_rate: {low: 1.0e-4, high: 3.0e-2, log: true}\n    peft.r: {choices: [4, 8]}\n"
    )
    proc = nlpforge("tune", str(recipe), "--trials", "2", "--quiet", "--run-dir", str(tmp_path / "run"))
    trials = [json.loads(x) for x in (tmp_path / "run/tune/trials.jsonl").read_text().splitlines()]
    assert len(trials) == 2 and all({"train.learning_rate", "peft.r", "eval_loss"} <= set(t) for t in trials)
    best = min(trials, key=lambda t: t["eval_loss"])
    best_recipe = load_recipe(tmp_path / "run/tune/best.yaml")
    assert best_recipe.train.learning_rate == pytest.approx(best["train.learning_rate"]) and best_recipe.peft.r == best["peft.r"]
    assert "eval_loss" in proc.stdout and "best recipe" in proc.stdout


@pytest.mark.parametrize("name", ["gpu-chat-8b-qlora", "gpu-dpo-feedback", "gpu-kto-feedback", "gpu-classify-encoder"])
def test_gpu_recipes_are_valid_and_consistent(name: str) -> None:
    from nlpforge.data.formats import to_canonical
    from nlpforge.train.peft_methods import peft_config

    r = load_recipe(ROOT / "recipes" / f"{name}.yaml")
    assert r.model.dtype == "bfloat16"
    task = {"gpu-chat-8b-qlora": "sft", "gpu-dpo-feedback": "dpo", "gpu-kto-feedback": "kto", "gpu-classify-encoder": "classification"}[name]
    assert r.train.task == task
    peft_config(r, "SEQ_CLS" if task == "classification" else "CAUSAL_LM")  # builds
    if name == "gpu-chat-8b-qlora":
        assert r.peft.method == "qlora" and r.train.gradient_checkpointing and r.train.early_stopping is not None
    if task in ("dpo", "kto"):  # the shipped feedback rows read in the recipe's format
        rows = [json.loads(x) for x in (ROOT / r.data.inputs[0]).read_text().splitlines()[:20]]
        assert all(to_canonical(x, r.data) for x in rows)
    if task == "classification":
        assert r.tune is not None and r.train.early_stopping.metric == r.tune.metric == "eval_macro_f1"
