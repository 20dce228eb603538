"""clean.engine: ray on a real local Ray cluster (2 CPUs): the same outputs as the local stage."""

import inspect
import json
import os
import random
import string
from collections.abc import Iterator
from pathlib import Path

import pytest

from nlpforge import pipeline
from nlpforge.corpus.clean import output_paths, run_clean
from nlpforge.errors import DataError
from nlpforge.recipe import CleanConfig, DataConfig, Recipe
from nlpforge.runs import RunDir

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """A real S3 API on loopback (moto's server), its endpoint and test credentials in the
    environment before the Ray cluster starts, so every Ray worker reads them as pyarrow does."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env["AWS_ENDPOINT_URL"]
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()


@pytest.fixture(scope="module")
def cluster(s3: str) -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _real_paragraphs() -> list[str]:
    """Paragraphs of the standard library's docstrings: real prose nobody here wrote."""
    import argparse
    import collections
    import email
    import json as json_mod
    import logging
    import pathlib
    import subprocess
    import textwrap
    import unittest

    out = []
    for mod in (argparse, collections, email, json_mod, logging, pathlib, subprocess, textwrap, unittest):
        for _, obj in inspect.getmembers(mod):
            doc = inspect.getdoc(obj) if callable(obj) else None
            for para in (doc or "").split("\n\n"):
                words = para.split()
                if 12 <= len(words) <= 120 and ">>>" not in para:
                    out.append(" ".join(words))
    return sorted(set(out))


def _corpus(tmp_path: Path) -> list[str]:
    """Two JSONL files and a text folder with exact and near duplicates (within and across files),
    chains of near duplicates, PII, records too short, and lines that do not parse."""
    rng = random.Random(7)
    paras = _real_paragraphs()
    assert len(paras) > 150
    docs = rng.sample(paras, 150)

    def edit(text: str) -> str:
        words = text.split()
        i = rng.randrange(len(words))
        words[i] = "".join(rng.choice(string.ascii_lowercase) for _ in range(6))
        return " ".join(words)

    a, b = [], []
    for i, d in enumerate(docs):
        (a if i % 2 else b).append(d)
        if i % 9 == 0:
            b.append(d)  # an exact copy, in the other file
        if i % 7 == 0:
            first = edit(d)
            a.append(first)
            b.append(edit(first))  # a chain: an edit of an edit
        if i % 11 == 0:
            a.append(f"{d} Write to jane.doe{i}@example.org or call 415-555-01{i % 90:02d}.")
    a += ["ok", "too short"]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in a) + "\n{not json\n")
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps({"text": t, "id": i}) for i, t in enumerate(b)) + "\n")
    (tmp_path / "docs").mkdir()
    for i, d in enumerate(rng.sample(docs, 12)):
        (tmp_path / "docs" / f"{i:02d}.txt").write_text(f"{d}\n\nThis message is confidential; if you are not the recipient, delete it.\n")
    return [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), str(tmp_path / "docs")]


def _outputs(out: Path) -> tuple[str, list[tuple[str, str]], dict]:
    paths = output_paths(out)
    rejects = [json.loads(x) for x in paths["rejects.jsonl"].read_text().splitlines()]
    return paths["corpus.jsonl"].read_text(), [(r["source"], r["reason"]) for r in rejects], json.loads(paths["report.json"].read_text())


@pytest.mark.parametrize(
    "settings",
    [
        {"near_dedup": {"enabled": True}, "boilerplate": {"enabled": True, "min_docs": 3}},
        {"near_dedup": {"enabled": True, "threshold": 0.5}, "sentence_dedup": 2},  # sentence dedup: its near dedup runs on the driver
    ],
    ids=["global-dedup", "sentence-dedup"],
)
def test_ray_clean_writes_what_the_local_stage_writes(cluster: None, tmp_path: Path, settings: dict) -> None:
    data = DataConfig(inputs=_corpus(tmp_path), format="text")
    local = run_clean(data, CleanConfig(**settings), tmp_path / "local")
    on_ray = run_clean(data, CleanConfig(**settings, engine="ray", n_process=2, batch_size=16), tmp_path / "ray")
    corpus, rejects, report = _outputs(tmp_path / "local")
    r_corpus, r_rejects, r_report = _outputs(tmp_path / "ray")
    assert r_report == report == on_ray == local
    assert r_corpus == corpus and r_rejects == rejects
    reasons = {k: v["docs"] for k, v in report["rejected"].items()}
    assert reasons["duplicate"] >= 10 and reasons["near_duplicate"] >= 10 and reasons["invalid_json"] == 1 and reasons["too_short"] >= 2, reasons
    assert report["pii_redacted"]["EMAIL_ADDRESS"] >= 10 and "example.org" not in corpus
    if "boilerplate" in settings:
        assert report["boilerplate_lines_removed"] >= 12 and "confidential" not in corpus
    else:
        assert report["repeated_sentences_removed"] > 0


def test_ray_clean_reads_s3_uris(cluster: None, tmp_path: Path) -> None:
    """The same corpus from an S3 bucket (files and a prefix) gives the local stage's outputs,
    with the records named by their URIs; the pipeline keys a URI input on its listing."""
    import boto3

    from nlpforge.corpus import remote

    (tmp_path / "in").mkdir()
    inputs = _corpus(tmp_path / "in")
    bucket = boto3.client("s3")
    bucket.create_bucket(Bucket="corpus")
    for f in sorted((tmp_path / "in").rglob("*")):
        if f.is_file():
            bucket.upload_file(str(f), "corpus", f"raw/{f.relative_to(tmp_path / 'in')}")
    uris = ["s3://corpus/raw/a.jsonl", "s3://corpus/raw/b.jsonl", "s3://corpus/raw/docs"]
    settings = {"near_dedup": {"enabled": True}, "sentence_dedup": 2}
    run_clean(DataConfig(inputs=inputs, format="text"), CleanConfig(**settings), tmp_path / "local")
    run_clean(DataConfig(inputs=uris, format="text"), CleanConfig(**settings, engine="ray", n_process=2, batch_size=16), tmp_path / "ray")
    local = json.dumps(_outputs(tmp_path / "local")).replace(str(tmp_path / "in"), "s3://corpus/raw")
    assert json.dumps(_outputs(tmp_path / "ray")) == local and '"s3://corpus/raw/docs/03.txt' in local
    before = remote.fingerprint(uris[2])
    recipe = Recipe.model_validate({"name": "s3", "data": {"inputs": uris, "format": "text"}, "clean": {"engine": "ray"}, "model": {"path": "m"}})
    assert pipeline._input_hashes(pipeline.STAGES[0].inputs(recipe, RunDir(tmp_path)), RunDir(tmp_path), "clean", recipe)[uris[2]] == before
    bucket.put_object(Bucket="corpus", Key="raw/docs/03.txt", Body=b"changed")
    assert remote.fingerprint(uris[2]) != before
    with pytest.raises(DataError, match="no such object or prefix"):
        remote.expand("s3://corpus/nothing-here", {".jsonl": "jsonl"})
    with pytest.raises(DataError, match="read by clean.engine: ray"):
        run_clean(DataConfig(inputs=uris, format="text"), CleanConfig(), None)


def test_clean_cli_with_ray_and_check(cluster: None, tmp_path: Path) -> None:
    from conftest import nlpforge

    src = tmp_path / "in.jsonl"
    texts = _real_paragraphs()[:40]
    src.write_text("\n".join(json.dumps({"text": t}) for t in [*texts, texts[10], "Mail me at a.b@example.com: " + texts[11]]) + "\n")
    run_clean(DataConfig(inputs=[str(src)], format="text"), CleanConfig(), tmp_path / "local")
    nlpforge("clean", "--input", str(src), "--output", str(tmp_path / "ray"), "--quiet", "--ray", "--set", "n_process=2")
    outs = {name: _outputs(tmp_path / name) for name in ("local", "ray")}
    assert outs["ray"] == outs["local"] and outs["ray"][2]["rejected"]["duplicate"]["docs"] == 1 and "example.com" not in outs["ray"][0]
    too_many = nlpforge("clean", "--input", str(src), "--output", str(tmp_path / "x"), "--ray", "--set", f"n_process={os.cpu_count() + 1}", check=False)
    assert too_many.returncode != 0 and f"the Ray cluster has {os.cpu_count()} CPU(s)" in too_many.stderr and not (tmp_path / "x").exists(), too_many.stderr
    bad = nlpforge("check", "recipes/quickstart-chat.yaml", "--no-model", "--set", "clean.ray_address=auto", check=False)
    assert bad.returncode == 2 and "clean.ray_address is set but clean.engine is local" in bad.stderr, bad.stderr
