"""The fitted hallucination score (fitted on real text): its parts, its direction on hand cases, the shipped
model file, and the metrics as local Hugging Face `evaluate` modules (equal to nlpforge's own)."""

from __future__ import annotations

import json
import math
import os

import pytest

from nlpforge.evals import factuality as F
from nlpforge.evals import hallucination_model as HM

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")

SOURCE = (
    "Helix Labs announced on March 3, 2021 that it will acquire Zentrix, a Lyon-based maker of drones, for $240 million. "
    "The deal will add about 1,200 employees. Maria Lopez, chief executive of Helix Labs, said the purchase would strengthen its position in Boston. "
    "Pandora 2.14.1 fixes 37 bugs. The Zephyr Kettle has no battery."
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


# --- parts -----------------------------------------------------------------------------------------


def test_lexical_parts() -> None:
    src = "The Zephyr Kettle costs 49 dollars and has no battery."
    same = F.lexical_parts("The Zephyr Kettle costs 49 dollars.", src)
    assert same["unigram_novelty"] == 0 and same["bigram_novelty"] == 0 and same["copied"] == 1.0 and same["longest_copy"] == 1.0
    assert same["novel_names"] == same["novel_numbers"] == same["novel_negation"] == 0
    edited = F.lexical_parts("The Aurora Kettle costs 59 dollars and does not have a battery.", src)
    assert edited["copied"] == 0.0 and 0 < edited["unigram_novelty"] < edited["bigram_novelty"] <= edited["trigram_novelty"] <= 1
    assert edited["novel_names"] == 1 and edited["novel_numbers"] == 1 and edited["novel_negation"] == 1  # Aurora, 59, not
    assert edited["longest_copy"] == pytest.approx(2 / 12)  # "kettle costs" and "dollars and" are the longest copied runs
    one_word = F.lexical_parts("Kettle", src)
    assert one_word["bigram_novelty"] is None and one_word["copied"] == 1.0  # undefined, not 0: one word has no bigram
    assert F.lexical_parts("", src)["unigram_novelty"] is None


def test_novel_antonym() -> None:
    src = "less is a filter for paging through compressed text. It supports high-level options."
    assert F.lexical_parts("A filter for compressed text.", src)["novel_antonym"] == 0
    assert F.lexical_parts("A filter for decompressed text.", src)["novel_antonym"] == 1  # negating prefix added
    assert F.lexical_parts("It offers low-level options.", src)["novel_antonym"] == 1  # from the antonym list (high/low)
    assert F.lexical_parts("A pager for uncompressed and low-level text.", src)["novel_antonym"] == 2
    assert F.lexical_parts("A filter for large text files.", src)["novel_antonym"] == 0  # new words, but no opposite in the source
    assert F.lexical_parts("It has a useful index.", "The indexer is dexterous.")["novel_antonym"] == 0  # "in"+"dex": stems under 4 letters do not count


def test_name_like_tokens() -> None:
    assert F._name_like("NumPy", False) and F._name_like("YAML", True) and F._name_like("ext4", True)
    assert F._name_like("Boston", False) and not F._name_like("Boston", True)  # capitalised mid-sentence only
    assert not F._name_like("kettle", False) and not F._name_like("42", False)


def test_features_mark_undefined_parts() -> None:
    f = HM.base_features({"unigram_novelty": 0.2, "bigram_novelty": None, "longest_copy": 0.5}, embedding=False)
    assert f["facts_undefined"] == 1.0 and f["fact_error"] == 0.0
    assert f["negation_mismatch_undefined"] == 1.0 and f["bigram_novelty_undefined"] == 1.0
    f = HM.base_features({"entity_precision": 0.5, "number_precision": 1.0, "negation_mismatch": 0.0, "novel_names": 9}, embedding=True)
    assert f["fact_error"] == 0.5 and f["facts_undefined"] == 0.0 and f["negation_mismatch_undefined"] == 0.0
    assert f["novel_names"] == 3.0 and "embedding_distance" in f  # counts are capped


def test_ramps_sum_to_the_feature() -> None:
    f = HM.feature_values({"unigram_novelty": 0.42}, {"unigram_novelty": [0.1, 0.3, 0.5]}, embedding=False)
    ramps = [f[f"unigram_novelty@{i}"] for i in range(4)]
    assert ramps == pytest.approx([0.1, 0.2, 0.12, 0.0]) and sum(ramps) == pytest.approx(0.42)


def test_regimes() -> None:
    assert HM.regime({"copied": 1.0, "longest_copy": 1.0}) == "copied"
    assert HM.regime({"copied": 0.0, "longest_copy": 0.8}) == "near_copy"
    assert HM.regime({"copied": 0.0, "longest_copy": 0.2}) == "free"


# --- the shipped model -------------------------------------------------------------------------------


def test_model_file_says_what_it_was_fitted_on_and_is_calibrated() -> None:
    m = json.loads(HM.MODEL_FILE.read_text())
    assert m["fit_data"]["split"] == "dev" and m["fit_data"]["records"] > 1000
    assert set(m["variants"]) == {"default", "embedding", "default+background", "embedding+background"}
    for name, v in m["variants"].items():
        assert ("embedding_distance@0" in v["features"]) == name.startswith("embedding")
        assert ("better_source_margin@0" in v["features"]) == name.endswith("+background") == v["background"]
        for reg in v["regimes"].values():
            if "coef" in reg:
                assert len(reg["coef"]) == len(reg["mean"]) == len(reg["scale"]) == len(v["features"])
                # error evidence never lowers the score
                assert all(c >= 0 for f, c in zip(v["features"], reg["coef"]) if HM.is_monotone(f))
        cv = m["dev_cv"][name]
        assert cv["calibration"]["ece"] < 0.05  # out of fold on dev
        assert cv["auroc"]["extractive/ALL"] >= 0.97 and cv["auroc"]["abstractive/ALL"] >= 0.7


def test_score_is_a_probability_and_extras_are_noisy_ored() -> None:
    parts = F.score_records([{"source": SOURCE, "output": "Helix Labs will buy Quantix."}])[0]
    p = parts["hallucination_score"]
    assert 0 <= p <= 1
    with_judge = F.hallucination_score({**{k: v for k, v in parts.items() if k != "hallucination_score"}, "judge_unsupported": 1.0})
    assert with_judge == pytest.approx(1 - (1 - p) * (1 - F.WEIGHTS["judge_unsupported"]), abs=1e-6)
    assert F.hallucination_score({}) is None
    assert F.hallucination_score({"entity_precision": 0.0}) == F.noisy_or_score({"entity_precision": 0.0})  # hand-built parts: hand weights
    assert F.hallucination_score(parts, weights=F.WEIGHTS) == F.noisy_or_score(parts)


def test_fitted_score_rises_with_each_kind_of_error() -> None:
    """Each edit of a faithful output scores higher than the output it edits."""
    cases = [
        ("Maria Lopez, chief executive of Helix Labs, said the purchase would strengthen its position in Boston.",
         "Maria Lopez, chief executive of Helix Labs, said the purchase would strengthen its position in Toronto."),
        ("The deal will add about 1,200 employees.", "The deal will add about 1,900 employees."),
        ("Pandora 2.14.1 fixes 37 bugs.", "Pandora 2.14.1 does not fix 37 bugs."),
        ("The Zephyr Kettle has no battery.", "The Zephyr Kettle has a battery."),
        ("The deal will add about 1,200 employees.", "The deal will add about 1,200 employees and a new factory in Ohio."),
        ("Helix Labs will acquire Zentrix for $240 million.", "The kettle boils water in three minutes and has a glass body."),
        ("Helix Labs will buy Zentrix for $240 million.", "Helix Labs will buy Zentrix for $310 million."),
        ("Helix Labs will buy Zentrix for $240 million.", "Quantix will buy Zentrix for $240 million."),
    ]
    flat = [t for pair in cases for t in pair]
    for embedding in (False, True):
        scores = [r["hallucination_score"] for r in F.score_records([{"source": SOURCE, "output": o} for o in flat], embedding=embedding)]
        for (good, bad), s_good, s_bad in zip(cases, scores[0::2], scores[1::2]):
            assert s_bad > s_good, (embedding, good, bad, s_good, s_bad)
        assert scores[0] < 0.1 and scores[2] < 0.1  # verbatim copies


def test_more_error_evidence_never_lowers_the_score() -> None:
    base = F.score_records([{"source": SOURCE, "output": "Helix Labs will buy Zentrix for $240 million and open an office."}], embedding=True)[0]
    base.pop("hallucination_score")
    for key, values in [("entity_precision", [1.0, 0.5, 0.0]), ("negation_mismatch", [0.0, 0.5, 1.0]), ("novel_names", [0, 1, 2, 3]),
                        ("novel_numbers", [0, 1, 2]), ("novel_antonym", [0, 1, 2]), ("embedding_distance", [0.1, 0.3, 0.6, 0.9])]:
        s = [F.hallucination_score({**base, key: v}) for v in values]
        assert all(b >= a - 1e-9 for a, b in zip(s, s[1:])), (key, s)


def test_fitted_score_ranks_a_real_text_sample(tmp_path) -> None:
    """A slice of the dev split (the fit data, so this checks wiring and calibration, not generalisation)."""
    from pathlib import Path

    data = Path(__file__).resolve().parents[1] / "data" / "factsets"
    if not (data / "extractive.jsonl").exists():
        pytest.skip("data/factsets not built (python scripts/make_factuality_sets.py)")
    recs = []
    for name in ("extractive", "abstractive"):
        rs = [json.loads(x) for x in (data / f"{name}.jsonl").open()]
        recs += [r for r in rs if r["split"] == "dev"][:40]
    scores = [r["hallucination_score"] for r in F.score_records(recs)]
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score([r["label"] for r in recs], scores) > 0.75
    brier = sum((s - r["label"]) ** 2 for s, r in zip(scores, recs)) / len(recs)
    assert brier < 0.2


# --- the set as background ---------------------------------------------------------------------------

# Real text nobody here wrote: the standard library's module docstrings (first line: a summary
# written by the module's authors; the rest: the text it summarises).
STDLIB = ("csv argparse pickle re string heapq difflib subprocess uuid fnmatch itertools inspect tokenize locale gettext random statistics "
          "hashlib socket sched struct copy pprint os time errno gc zlib configparser mimetypes ftplib smtplib rlcompleter optparse getopt "
          "getpass timeit doctest codeop pyclbr compileall").split()


@pytest.fixture(scope="module")
def summaries() -> tuple[list[dict], list[int]]:
    """Each module's summary against its own docstring (faithful), and against the docstring of
    another module (a summary of a different text)."""
    import importlib

    docs = []
    for name in STDLIB:
        first, _, body = (importlib.import_module(name).__doc__ or "").strip().partition("\n")
        docs.append((first.strip(), " ".join(body.split())))
    recs = [{"source": b, "output": s} for s, b in docs] + [{"source": docs[i][1], "output": docs[(i + 7) % len(docs)][0]} for i in range(len(docs))]
    return recs, [0] * len(docs) + [1] * len(docs)


def test_background_parts_tell_a_summary_of_another_text(summaries) -> None:
    from sklearn.metrics import roc_auc_score

    recs, y = summaries
    parts = F.background_parts([r["output"] for r in recs], [r["source"] for r in recs])
    margins = [p["better_source_margin"] for p in parts]
    assert roc_auc_score(y, margins) > 0.9
    own = sorted(margins[: len(y) // 2])
    assert own[len(own) // 2] < 0  # a module's own docstring usually fits its summary best
    assert all(0 <= p["idf_unsupported"] <= 1 for p in parts)
    # too few other sources to compare with: nothing, rather than a number that means little
    few = recs[: F.BACKGROUND_MIN]
    assert F.background_parts([r["output"] for r in few], [r["source"] for r in few]) == [None] * len(few)
    # a large set is compared with a seeded sample of the other sources
    sampled = F.background_parts([r["output"] for r in recs], [r["source"] for r in recs], max_background=F.BACKGROUND_MIN + 5)
    assert sampled == F.background_parts([r["output"] for r in recs], [r["source"] for r in recs], max_background=F.BACKGROUND_MIN + 5)
    assert sampled != parts and all(p is not None for p in sampled)


def test_score_with_background_beats_word_overlap_on_other_texts_summaries(summaries) -> None:
    """The +background variant, against the plain score and unigram overlap, on the same records."""
    from sklearn.metrics import roc_auc_score

    recs, y = summaries
    with_bg = F.score_records(recs, background=True)
    assert all(r["better_source_margin"] is not None for r in with_bg)
    plain = F.score_records(recs)
    assert "better_source_margin" not in plain[0]
    overlap = [F.lexical_parts(r["output"], r["source"])["unigram_novelty"] for r in recs]
    auc_bg = roc_auc_score(y, [r["hallucination_score"] for r in with_bg])
    assert auc_bg > max(roc_auc_score(y, overlap), roc_auc_score(y, [r["hallucination_score"] for r in plain])) and auc_bg > 0.85


# --- evaluate modules --------------------------------------------------------------------------------


PREDS = ["The kettle costs 49 dollars.", "It ships in two days", "", "Helix Labs will buy Zentrix."]
REFS = ["The kettle costs $49.", "It ships within two days.", "Nothing.", "Helix Labs will acquire Zentrix for $240 million."]


def test_evaluate_modules_equal_nlpforge_functions() -> None:
    import evaluate

    from nlpforge.evals import metrics as M
    from nlpforge.evals.hf_metrics import NAMES, metric_path

    assert all(os.path.isfile(os.path.join(metric_path(n), f"{n}.py")) for n in NAMES)
    with pytest.raises(KeyError):
        metric_path("accuracy")
    got = evaluate.load(metric_path("exact_match")).compute(predictions=PREDS, references=REFS)
    assert got == {"exact_match": M.exact_match(PREDS, REFS)}
    got = evaluate.load(metric_path("exact_match")).compute(predictions=PREDS, references=REFS, normalize="whitespace")
    assert got == {"exact_match": M.exact_match(PREDS, REFS, "whitespace")}
    assert evaluate.load(metric_path("token_f1")).compute(predictions=PREDS, references=REFS) == {"token_f1": M.mean_token_f1(PREDS, REFS)}
    assert evaluate.load(metric_path("rouge")).compute(predictions=PREDS, references=REFS) == M.rouge(PREDS, REFS)
    assert evaluate.load(metric_path("bleu")).compute(predictions=PREDS, references=REFS) == {"bleu": M.bleu(PREDS, REFS)}
    assert evaluate.load(metric_path("chrf")).compute(predictions=PREDS, references=REFS) == {"chrf": M.chrf(PREDS, REFS)}
    # batches added one at a time give the same value (evaluate's add_batch path)
    m = evaluate.load(metric_path("token_f1"))
    for p, r in zip(PREDS, REFS):
        m.add(predictions=p, references=r)
    assert m.compute()["token_f1"] == pytest.approx(M.mean_token_f1(PREDS, REFS))


def test_evaluate_hallucination_module_equals_score_records() -> None:
    import evaluate

    from nlpforge.evals.hf_metrics import metric_path

    sources = [SOURCE] * len(PREDS)
    got = evaluate.load(metric_path("hallucination")).compute(predictions=PREDS, sources=sources)
    want = [r["hallucination_score"] for r in F.score_records([{"source": s, "output": p} for p, s in zip(PREDS, sources)], background=True)]
    assert got["scores"] == want and got["defined"] == 3 and want[2] is None
    assert math.isclose(got["hallucination_score"], sum(w for w in want if w is not None) / 3)
