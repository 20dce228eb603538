"""Release gates: the rule arithmetic, recipe validation, and a gate that must fail through the
CLI on a real quickstart run (the stage fails, export is blocked, the report says why)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import nlpforge

from nlpforge.errors import RecipeError
from nlpforge.evals.gates import GateError, assert_gates_passed, check_gates
from nlpforge.recipe import GateConfig, load_recipe

RESULTS = {"base": {"hallucination_score": 0.20, "exact_match": 0.4}, "tuned": {"hallucination_score": 0.25, "exact_match": 0.6}, "delta": {"hallucination_score": 0.05, "exact_match": 0.2}}


def test_gate_rules() -> None:
    gates = {"hallucination_score": GateConfig(max_increase=0.02), "exact_match": GateConfig(min=0.5, max_decrease=0.0)}
    rows = {(r["metric"], r["rule"]): r["passed"] for r in check_gates(gates, RESULTS)}
    assert rows == {("hallucination_score", "max_increase"): False, ("exact_match", "min"): True, ("exact_match", "max_decrease"): True}
    assert all(r["passed"] for r in check_gates({"hallucination_score": GateConfig(max_increase=0.05, max=0.25)}, RESULTS))
    with pytest.raises(RecipeError, match=r"eval.gates.acuracy: no such metric .*exact_match"):
        check_gates({"acuracy": GateConfig(min=0.8)}, RESULTS)
    with pytest.raises(RecipeError, match="set eval.compare_base: true"):
        check_gates({"exact_match": GateConfig(max_decrease=0.1)}, {"tuned": RESULTS["tuned"]})


def test_gate_needs_a_bound(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="a gate needs at least one of"):
        load_recipe("recipes/quickstart-chat.yaml", ["eval.gates={exact_match: {}}"])


def test_export_refuses_results_with_a_failed_gate(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({**RESULTS, "gates": check_gates({"hallucination_score": GateConfig(max_increase=0.02)}, RESULTS)}))
    with pytest.raises(GateError, match="hallucination_score: rose by 0.05 > max_increase 0.02"):
        assert_gates_passed(path)


@pytest.mark.slow
def test_failing_gate_fails_the_run_and_blocks_export(quickstart_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(quickstart_run, tmp_path / "run"))
    export_before = json.loads((run / "manifest.json").read_text())["stages"]["export"]["finished"]
    # exact match can never reach 1.01: this gate must fail
    args = ["run", "recipes/quickstart-chat.yaml", "--quiet", "--run-dir", str(run), "--set", f"model.path={tiny_model}",
            "--set", "eval.max_samples=12", "--set", "eval.gates={exact_match: {min: 1.01}, hallucination_score: {max_increase: 0.02}}"]
    proc = nlpforge(*args, check=False)
    err = " ".join(proc.stderr.split())
    assert proc.returncode == 1, err[-3000:]
    assert "1 release gate(s) failed, export blocked: exact_match: tuned" in err and "< min 1.01" in err
    results = json.loads((run / "eval/results.json").read_text())
    assert results["passed"] is False
    assert {(g["metric"], g["passed"]) for g in results["gates"]} == {("exact_match", False), ("hallucination_score", True)}
    assert "hallucination_score" in results["tuned"] and "hallucination_score" in results["delta"]
    samples = [json.loads(x) for x in (run / "eval/samples.jsonl").read_text().splitlines()]
    assert len(samples) == 12 and "hallucination_score" in samples[0]["tuned_factuality"]
    report = (run / "eval/report.html").read_text()
    assert "GATES FAILED: export blocked" in report and "data:image/png;base64," in report
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["eval"]["status"] == "failed"
    assert manifest["stages"]["export"]["finished"] == export_before  # export did not run

    # the eval command alone also reports it, and export alone is refused
    again = nlpforge(*(["eval"] + args[1:]), check=False)
    assert again.returncode == 1 and "export blocked" in " ".join(again.stderr.split())
    export = nlpforge(*(["export"] + args[1:]), check=False)
    assert export.returncode == 1


def test_engine_scored_generation_matches_chat_and_samples(quickstart_run: Path) -> None:
    """Eval's SelfCheck samples and token uncertainty: log-probs and entropies come with the answer of the one decoding loop."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from nlpforge.engines import Sampling
    from nlpforge.engines.bundle import BundleInfo
    from nlpforge.engines.hf import HFEngine

    bundle = quickstart_run / "export"
    model, tok = AutoModelForCausalLM.from_pretrained(bundle), AutoTokenizer.from_pretrained(bundle)
    stops = json.loads((bundle / "generation_config.json").read_text())["eos_token_id"]
    rows = [json.loads(x) for x in (quickstart_run / "prepare/eval.jsonl").read_text().splitlines()[:3]]
    prompts = [r["messages"][:-1] for r in rows]
    engine = HFEngine.from_model(model, tok, BundleInfo.for_model("chat", stops), batch_size=3)
    greedy = engine.chat_generate(prompts, Sampling(max_tokens=32, logprobs=0))
    assert [g[0].text for g in greedy] == [c.text for c in engine.chat(prompts, 32)]
    g = greedy[0][0]
    assert g.logprobs is not None and g.entropies is not None
    assert len(g.logprobs) == len(g.token_ids) == len(g.entropies) and all(lp.logprob <= 0 for lp in g.logprobs)
    with torch.inference_mode():  # the first token's log-probability, recomputed by hand
        from nlpforge.data.chat import prompt_ids

        ids = torch.tensor([prompt_ids(tok, prompts[0])])
        ref = model(input_ids=ids).logits[0, -1].float().log_softmax(-1)[g.token_ids[0]].item()
    assert g.logprobs[0].logprob == pytest.approx(ref, abs=1e-4)
    sampled = engine.chat_generate(prompts, Sampling(max_tokens=16, n=4, temperature=1.5, seed=1))
    assert [len(s) for s in sampled] == [4, 4, 4]
    assert len({s.text for s in sampled[0]} | {s.text for s in sampled[1]}) > 2  # sampling varies