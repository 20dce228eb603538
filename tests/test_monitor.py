"""The serving monitor's series on a registry of its own: finish reasons, empty answers and
refusals, latency and feedback per model, the grounded-answer score histogram with its gate
count, the bounded scoring queue, and the switch that turns factuality scoring off."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry

from nlpforge.evals.factuality import score_records
from nlpforge.serve.monitor import Monitor

SOURCE = "The Comet Earbuds weigh 48 grams and cost $59. They come in black and white."
TRUE = "The Comet Earbuds weigh 48 grams."
FALSE = "The Comet Earbuds weigh 212 grams and cost $99."


def value(reg: CollectorRegistry, name: str, **labels: str) -> float:
    v = reg.get_sample_value(name, labels)
    return 0.0 if v is None else v


def wait_idle(m: Monitor) -> None:
    deadline = time.time() + 120  # the first score loads spaCy
    while not m.idle() and time.time() < deadline:
        time.sleep(0.05)
    assert m.idle()


def test_answers_are_counted_by_finish_reason_emptiness_and_refusal() -> None:
    reg = CollectorRegistry()
    m = Monitor(reg)
    m.answered("base", ["", "I'm sorry, but I can't share that.", "It weighs 48 grams.", "  As an AI, I cannot"], ["stop", "stop", "length", None], 0.3)
    m.answered("support-lora", ["I cannot say."], ["stop"], 2.0)
    assert value(reg, "nlpforge_finish_reasons_total", model="base", reason="stop") == 2
    assert value(reg, "nlpforge_finish_reasons_total", model="base", reason="length") == 1
    assert value(reg, "nlpforge_finish_reasons_total", model="base", reason="none") == 1
    assert value(reg, "nlpforge_empty_answers_total", model="base") == 1
    assert value(reg, "nlpforge_refusals_total", model="base") == 2 and value(reg, "nlpforge_refusals_total", model="support-lora") == 1
    assert value(reg, "nlpforge_generation_seconds_bucket", model="base", le="0.5") == 1
    assert value(reg, "nlpforge_generation_seconds_bucket", model="support-lora", le="1.0") == 0
    m.rated("base", "up")
    m.rated("base", "down")
    m.rated("base", "down")
    assert value(reg, "nlpforge_feedback_total", model="base", rating="down") == 2


def test_grounded_answers_are_scored_off_the_request_path_into_the_histogram() -> None:
    reg = CollectorRegistry()
    m = Monitor(reg, gate=0.5)
    want = [r["hallucination_score"] for r in score_records([{"source": SOURCE, "output": TRUE}, {"source": SOURCE, "output": FALSE}])]
    assert want[0] < 0.5 < want[1]  # the contradicting answer scores above the gate, the supported one below
    m.grounded("base", SOURCE, [TRUE, FALSE])
    wait_idle(m)
    assert value(reg, "nlpforge_hallucination_score_count", model="base") == 2
    assert value(reg, "nlpforge_hallucination_score_sum", model="base") == sum(want)
    assert value(reg, "nlpforge_hallucination_score_bucket", model="base", le="0.5") == 1
    assert value(reg, "nlpforge_hallucination_over_gate_total", model="base") == 1
    m.close()


def test_a_full_queue_drops_and_counts_and_off_means_off() -> None:
    reg = CollectorRegistry()
    m = Monitor(reg, max_pending=0)
    m.grounded("base", SOURCE, [TRUE, FALSE])
    assert value(reg, "nlpforge_factuality_dropped_total") == 2 and m.idle()
    reg = CollectorRegistry()
    off = Monitor(reg, factuality=False)
    off.grounded("base", SOURCE, [FALSE])
    assert off.idle() and value(reg, "nlpforge_hallucination_score_count", model="base") == 0 and value(reg, "nlpforge_factuality_dropped_total") == 0
