"""The production loop on the tiny model, through the real CLI: serve NAME@production with
--watch-registry, chat through the official `openai` client with grounding context, rate the
answers on /v1/feedback, `nlpforge improve` trains a KTO candidate on top of production and
compares the two on both held-out sets, registers it into staging; `promote` moves it to
production and the running server answers from it without a restart; `nlpforge monitor` reports
the traffic it recorded."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, nlpforge
from openai import OpenAI
from serve_util import serve

from nlpforge.errors import DataError
from nlpforge.improve import candidate_recipe, feedback_sets, held_out
from nlpforge.recipe import load_recipe

MODEL = "quickstart-chat"
EMAIL = "dana.whitfield@example.org"


def _feedback_line(i: int, rating: str | None, preferred: str | None = None) -> dict:
    return {"id": f"chatcmpl-{i}", "choice": 0, "revision": 1, "model": MODEL, "prompt": [{"role": "user", "content": f"question {i}"}],
            "answer": f"answer {i}", "rating": rating, "preferred": preferred}


def test_feedback_split_is_by_completion_and_stable_as_feedback_grows(tmp_path: Path) -> None:
    """A completion's split depends on its id alone: more feedback never moves an earlier one."""
    folder = tmp_path / "fb"
    folder.mkdir()
    rows = [_feedback_line(i, "up" if i % 3 else "down", "better" if i % 5 == 0 else None) for i in range(400)]
    (folder / "feedback.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:200]))
    feedback_sets(folder, "kto", 0.2, tmp_path / "first")
    (folder / "feedback.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    counts = feedback_sets(folder, "kto", 0.2, tmp_path / "second")
    first = {r["id"]: r["split"] for r in map(json.loads, (tmp_path / "first/ids.jsonl").read_text().splitlines())}
    second = {r["id"]: r["split"] for r in map(json.loads, (tmp_path / "second/ids.jsonl").read_text().splitlines())}
    assert len(first) == 200 and len(second) == 400
    assert all(second[i] == s for i, s in first.items())
    assert 0.14 < counts["heldout"]["completions"] / 400 < 0.26  # about the share asked for
    assert all((s == "heldout") == held_out(i, 0.2) for i, s in second.items())
    # every completion's examples land in one split only
    train = {r["prompt"][0]["content"] for r in map(json.loads, (tmp_path / "second/train.jsonl").read_text().splitlines())}
    held = {r["prompt"][0]["content"] for r in map(json.loads, (tmp_path / "second/heldout.jsonl").read_text().splitlines())}
    assert train and held and not train & held


def test_feedback_that_cannot_train_the_method_is_refused_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "feedback.jsonl").write_text("".join(json.dumps(_feedback_line(i, "up")) + "\n" for i in range(50)))
    with pytest.raises(DataError, match="dpo needs preferred answers"):
        feedback_sets(tmp_path, "dpo", 0.2, tmp_path / "out")


def test_candidate_recipe_trains_on_production_and_gates_against_it(chat_bundle: Path, tmp_path: Path) -> None:
    r = load_recipe(ROOT / "recipes/quickstart-chat.yaml", ["improve.method=dpo", "improve.learning_rate=0.001", "train.packing=true"])
    cand = candidate_recipe(r, chat_bundle, "tiny-chat", tmp_path)
    assert (cand.model.path, cand.name, cand.train.task, cand.data.format) == (str(chat_bundle), "tiny-chat", "dpo", "preference")
    assert (cand.train.learning_rate, cand.train.packing, cand.eval.compare_base, cand.export.format) == (0.001, False, True, "merged")
    assert cand.data.inputs == [str(tmp_path / "train.jsonl")] and cand.data.eval_inputs == [str(tmp_path / "heldout.jsonl")]
    assert set(cand.eval.gates) == set(r.improve.gates) and cand.clean == r.clean  # the recipe's PII redaction applies to the feedback


def test_serve_feedback_improve_promote_and_the_watching_server_swaps(quickstart_run: Path, tmp_path: Path) -> None:
    reg, fb, run = tmp_path / "registry", tmp_path / "feedback", tmp_path / "improve-run"
    nlpforge("models", "register", str(quickstart_run / "export"), "--registry", str(reg))
    nlpforge("models", "promote", f"{MODEL}@v1", "--stage", "production", "--registry", str(reg))
    rows = [json.loads(x) for x in (quickstart_run / "prepare/eval.jsonl").read_text().splitlines()][:30]
    with serve(f"{MODEL}@production", tmp_path / "serve.log", "--engine", "hf", "--threads", "1", "--registry", str(reg), "--watch-registry",
               "--watch-interval", "0.5", "--feedback-dir", str(fb)) as s:
        c = OpenAI(base_url=f"{s.url}/v1", api_key="unused", max_retries=0)

        def ask(r: dict, i: int) -> tuple[str, str, str | None]:
            msgs = r["messages"][:-1]
            if i == 0:  # a user who writes their address: the training data must not keep it
                msgs = [*msgs[:-1], {"role": "user", "content": f"{msgs[-1]['content']} My email is {EMAIL}."}]
            done = c.chat.completions.create(model=MODEL, messages=msgs, metadata={"context": r["messages"][-1]["content"]})
            return done.id, done.choices[0].message.content or "", done.system_fingerprint

        before = [ask(r, i) for i, r in enumerate(rows)]
        assert {fp for _, _, fp in before} == {f"{MODEL}@v1"}
        for (rid, answer, _), r in zip(before, rows):
            ref = r["messages"][-1]["content"]
            body = {"id": rid, "rating": "up"} if answer == ref else {"id": rid, "rating": "down", "preferred": ref}
            assert httpx.post(f"{s.url}/v1/feedback", json=body).status_code == 200
        stored = [json.loads(x) for x in (fb / "feedback.jsonl").read_text().splitlines()]
        assert len(stored) == 30 and {x["version"] for x in stored} == {f"{MODEL}@v1"}
        ratings = {x["rating"] for x in stored}
        assert ratings == {"up", "down"}, ratings  # KTO needs both

        # improve. This part checks the loop's mechanics, so its gates only bound the metrics' range: a 1 M-parameter
        # model tuned at a high rate, judged on ~6 held-out rows, moves by 0.4 either way from one machine to the next
        # (seen on CI). That the numbers decide is checked by a gate that fails, below, and by tests/test_eval_gates.py.
        gates = "improve.gates={exact_match: {max_decrease: 1.0}, hallucination_score: {max_increase: 1.0}}"
        args = ["improve", "recipes/quickstart-chat.yaml", "--feedback", str(fb), "--from", f"{MODEL}@production", "--registry", str(reg),
                "--run-dir", str(run), "--heldout", str(quickstart_run / "prepare/eval.jsonl"), "--quiet",
                "--set", "improve.learning_rate=0.005", "--set", "improve.epochs=2"]
        done = nlpforge(*args, "--set", gates)
        assert f"registered {MODEL}@v2" in done.stdout, done.stdout
        rec = json.loads((run / "improve.json").read_text())
        assert rec["passed"] and rec["registered"] == f"{MODEL}@v2" and rec["production"]["version"] == "v1"
        for name in ("feedback", "recipe"):
            comp = rec["comparison"][name]
            assert comp["base"] and comp["tuned"] and {g["metric"] for g in comp["gates"]} == {"exact_match", "hallucination_score"}
            for g in comp["gates"]:  # the gate is what the numbers say
                delta = comp["tuned"][g["metric"]] - comp["base"][g["metric"]]
                assert g["value"] == pytest.approx(delta, abs=2e-4)
        assert rec["comparison"]["recipe"]["base"]["samples"] == 84
        ids = [json.loads(x) for x in (run / "feedback/ids.jsonl").read_text().splitlines()]
        assert sorted(x["id"] for x in ids) == sorted(rid for rid, _, _ in before)
        assert all((x["split"] == "heldout") == held_out(x["id"], 0.2) for x in ids)
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["improve"]["feedback"]["ids_sha256"] == rec["feedback"]["ids_sha256"] and manifest["improve"]["registered"] == f"{MODEL}@v2"
        corpus = (run / "clean/corpus.jsonl").read_text()
        assert EMAIL not in corpus and "<EMAIL_ADDRESS>" in corpus
        lineage = json.loads((reg / MODEL / "v2/registry.json").read_text())["lineage"]
        assert lineage["parent"] == f"{MODEL}@v1" and lineage["feedback_ids_sha256"] == rec["feedback"]["ids_sha256"]
        assert json.loads((reg / MODEL / "stages.json").read_text()) == {"production": "v1", "staging": "v2"}

        # a gate that fails: nothing registered, the reason named, exit 1
        failed = nlpforge(*args, "--set", "improve.gates={exact_match: {min: 1.01}}", check=False)
        said = (failed.stdout + failed.stderr).replace("\n", " ")
        refused = json.loads((run / "improve.json").read_text())
        em = refused["comparison"]["feedback"]["tuned"]["exact_match"]
        assert not refused["passed"] and refused["registered"] is None and "recipe" not in refused["comparison"]  # stopped before export
        assert failed.returncode == 1 and f"candidate not registered: feedback held-out: exact_match: tuned {round(em, 4)} < min 1.01" in said, said
        assert sorted(p.name for p in (reg / MODEL).iterdir() if p.is_dir()) == ["v1", "v2"]

        # promote: the watching server swaps without a restart; the new version answers, and differently
        assert ask(rows[1], 1)[2] == f"{MODEL}@v1"
        nlpforge("models", "promote", f"{MODEL}@v2", "--stage", "production", "--registry", str(reg))
        deadline = time.time() + 120
        while (fp := ask(rows[1], 1)[2]) != f"{MODEL}@v2" and time.time() < deadline:
            time.sleep(0.5)
        assert fp == f"{MODEL}@v2", s.log.read_text()[-3000:]
        after = [ask(r, i) for i, r in enumerate(rows)]
        assert {a[2] for a in after} == {f"{MODEL}@v2"}
        assert any(a[1] != b[1] for a, b in zip(after, before))
        metrics = httpx.get(f"{s.url}/metrics").text
        assert f'nlpforge_model_info{{model="{MODEL}",version="{MODEL}@v2"}} 1.0' in metrics
        assert 'nlpforge_model_swaps_total{result="swapped"} 1.0' in metrics
        assert s.proc.poll() is None

    # the recorded traffic, reported: both versions, the ratings given to v1, every answer grounded and scored
    nlpforge("monitor", str(fb), "--bundle", f"{MODEL}@production", "--registry", str(reg), "--out", str(tmp_path / "monitor.html"))
    rep = json.loads((tmp_path / "monitor.json").read_text())
    v1, v2 = rep["versions"][f"{MODEL}@v1"], rep["versions"][f"{MODEL}@v2"]
    ups = sum(x["rating"] == "up" for x in stored)
    assert (v1["up"], v1["down"], v1["preferred"]) == (ups, 30 - ups, 30 - ups) and v2["up"] + v2["down"] == 0
    assert v2["completions"] >= 30 and v1["grounded_answers"] == v1["completions"] and rep["drift_reference"]["oov_rate"] is not None
