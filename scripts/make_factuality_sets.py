#!/usr/bin/env python3
"""Build two labelled factuality / hallucination sets from real text found on this machine.

Sources (all written by third parties, none by this project):

* ``metadata``  -- ``Summary:`` vs long description of installed Python distributions (``*.dist-info/METADATA``);
* ``docstring`` -- first paragraph vs the rest of docstrings of functions/classes in installed packages (parsed with ``ast``);
* ``manpage``   -- NAME line vs DESCRIPTION section of man pages under /usr/share/man (groff parsed roughly);
* ``changelog`` -- entries of changelogs under /usr/share/doc (extractive set only: they have no human summary).

Debian package descriptions (apt-cache, dpkg status, apt lists) are deliberately NOT used.

Two sets:

* ``extractive``  -- output = 1-2 sentences copied verbatim from the source; half unedited (label 0, kind ``faithful``),
  half with exactly one controlled edit (label 1): ``entity_swap``, ``number_change``, ``negation``, ``unsupported_addition``.
* ``abstractive`` -- output = the real human-written summary (label 0), or that summary with one edit, or the real summary of a
  different document (``wrong_document``) (label 1).

Every edited record stores ``edit = {"original_output", "position", "before", "after", "rule", ...}`` such that
``original_output[:position] + after + original_output[position + len(before):] == output``.

Splits are by document (sha1 of doc_id), so a source document never appears in both dev and test; donors of edits (swapped
names, appended sentences, wrong-document summaries) are taken from documents of the same split only.

Usage::

    python scripts/make_factuality_sets.py                 # -> data/factsets/{extractive,abstractive}.jsonl, stats.json
    python scripts/make_factuality_sets.py --max-docs 40 --per-set 200 --out /tmp/fs
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import html
import json
import math
import os
import random
import re
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_SITE = ROOT / ".venv" / "lib" / "python3.11" / "site-packages"
PYENV_SITE = Path("/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages")
MAN_ROOT = Path("/usr/share/man")
DOC_ROOT = Path("/usr/share/doc")

T0 = time.time()


def log(msg: str) -> None:
    print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)


def stable_hash(*parts: object) -> int:
    return int(hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()[:15], 16)


def split_of(doc_id: str) -> str:
    return "dev" if stable_hash("split", doc_id) % 2 == 0 else "test"


# --------------------------------------------------------------------------------------------------------------------
# generic text helpers
# --------------------------------------------------------------------------------------------------------------------

STOP = set(
    """a an the and or but if then else of to in on at by for with from into onto over under about as is are was were be been being
    it its this that these those there here which who whom whose what when where why how not no nor so than too very can could
    will would should shall may might must do does did done has have had having i you he she we they them their our your his her
    also just only such each any all some more most other same own both few many much via per e g eg ie etc use used using
    one two see""".split()
)

WORD_RE = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    return WORD_RE.findall(text.lower())


def content_words(text: str) -> set[str]:
    return {t for t in tokens(text) if len(t) > 2 and t not in STOP and not t.isdigit()}


def alpha_ratio(s: str) -> float:
    if not s:
        return 0.0
    return sum(c.isalpha() or c == " " for c in s) / len(s)


_ABBR = {"e.g", "i.e", "etc", "vs", "cf", "dr", "mr", "mrs", "ms", "st", "no", "fig", "approx", "al", "inc", "ltd", "jr", "sr", "resp", "eg", "ie", "viz", "incl", "esp"}
_BOUND = re.compile(r"([.!?])([\"')\]]*)\s+(?=[A-Z0-9\"'(\[`])")
_BULLET = re.compile(r"^(?:[-*\u2022+]|\d{1,2}[.)])\s+")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of sentences; newlines are hard boundaries; bullet markers are not part of a sentence."""
    spans: list[tuple[int, int]] = []
    for lm in re.finditer(r"[^\n]+", text):
        line, base = lm.group(), lm.start()
        start = 0
        cuts = []
        for m in _BOUND.finditer(line):
            if m.group(1) == ".":
                w = re.search(r"(\S+)$", line[: m.start(1)])
                word = w.group(1).lower().lstrip("(\"'") if w else ""
                if word in _ABBR or re.fullmatch(r"[a-z]", word) or re.fullmatch(r"(?:[a-z]\.)+[a-z]", word):
                    continue
            cuts.append((m.end(2), m.end()))
        for end, nxt in cuts + [(len(line), len(line))]:
            seg = line[start:end]
            lead = len(seg) - len(seg.lstrip())
            s = start + lead
            b = _BULLET.match(line[s:end])
            if b:
                s += b.end()
            e = start + len(seg.rstrip())
            if e > s:
                spans.append((base + s, base + e))
            start = nxt
    return spans


def cap_source(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars`` at a sentence boundary (never mid-sentence)."""
    if len(text) <= max_chars:
        return text
    last = 0
    for _s, e in sentence_spans(text):
        if e <= max_chars:
            last = e
        else:
            break
    if last == 0:
        return ""
    return text[:last].rstrip()


def paragraphs_from_lines(lines: list[str]) -> str:
    """Blank lines separate paragraphs; bullet items start a new line; continuation lines are joined with a space."""
    paras: list[list[str]] = []
    cur: list[str] = []
    for raw in lines + [""]:
        s = raw.strip()
        if not s:
            if cur:
                paras.append(cur)
            cur = []
            continue
        if _BULLET.match(s) or not cur:
            cur.append(s)
        else:
            cur[-1] = cur[-1] + " " + s
    out = []
    for p in paras:
        items = [re.sub(r"\s+", " ", x).strip() for x in p]
        items = [x for x in items if len(x.split()) >= 3 and alpha_ratio(x) >= 0.6]
        if items:
            out.append("\n".join(items))
    return "\n\n".join(out)


_INLINE = [
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),
    (re.compile(r"!\[[^\]]*\]\[[^\]]*\]"), ""),
    (re.compile(r"\[!\[[^\]]*\]\([^)]*\)\]\([^)]*\)"), ""),
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),
    (re.compile(r"`([^`<]+?)\s*<[^>]+>`_{1,2}"), r"\1"),
    (re.compile(r":[\w:.+-]+:`~[\w.]*\.([^`.]+)`"), r"\1"),
    (re.compile(r":[\w:.+-]+:`~?([^`]+)`"), r"\1"),
    (re.compile(r"``([^`]+)``"), r"\1"),
    (re.compile(r"`([^`]+)`_{0,2}"), r"\1"),
    (re.compile(r"\|[\w .-]+\|_{0,2}"), ""),
    (re.compile(r"<!--.*?-->"), ""),
    (re.compile(r"</?[A-Za-z][^>]*>"), ""),
    (re.compile(r"https?://\S+|www\.\S+"), ""),
    (re.compile(r"\*\*([^*]+)\*\*"), r"\1"),
    (re.compile(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<!\w)__([^_]+)__(?!\w)"), r"\1"),
    (re.compile(r"(?<![\w_])_([^_\s][^_]*?)_(?![\w_])"), r"\1"),
    (re.compile(r"\(\s*\)"), ""),
    (re.compile(r"\s+([,.;:!?])(?=\s|$)"), r"\1"),
    (re.compile(r"[ \t]{2,}"), " "),
]


def inline_clean(s: str) -> str:
    for pat, rep in _INLINE:
        s = pat.sub(rep, s)
    return html.unescape(s).strip()


_CODEISH = re.compile(r"[{}=;<>\\]|\(\)|^\s*(?:import|from|def|class|return|print|pip|\$|>>>|#include)\b")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def strip_markup_blocks(text: str) -> list[str]:
    """Drop code fences, rst directives/literal blocks, headings, tables, doctest lines, indented code; return prose lines."""
    lines = [re.sub(r"^(\s*)(?:>\s?)+", r"\1", x) for x in text.replace("\t", "    ").splitlines()]  # markdown blockquotes
    out: list[str] = []
    i, n = 0, len(lines)
    in_fence = False
    while i < n:
        line = lines[i]
        s = line.strip()
        if s.startswith("```") or s.startswith("~~~"):
            in_fence = not in_fence
            out.append("")
            i += 1
            continue
        if in_fence:
            i += 1
            continue
        if s.startswith("<!--"):
            while i < n and "-->" not in lines[i]:
                i += 1
            i += 1
            out.append("")
            continue
        if s.startswith(".. ") or s == "..":
            base = _indent(line)
            i += 1
            while i < n and (not lines[i].strip() or _indent(lines[i]) > base):
                if not lines[i].strip() and i + 1 < n and lines[i + 1].strip() and _indent(lines[i + 1]) <= base:
                    break
                i += 1
            out.append("")
            continue
        if s.endswith("::"):
            keep = s[:-2].rstrip()
            if keep:
                out.append(" " * _indent(line) + keep + ":")
            base = _indent(line)
            i += 1
            while i < n and (not lines[i].strip() or _indent(lines[i]) > base):
                i += 1
            out.append("")
            continue
        if len(s) >= 3 and re.fullmatch(r"([=\-~^\"'`#*+_.:])\1{2,}", s):
            if out and out[-1].strip() and len(out[-1].strip()) <= len(s) + 2:
                out[-1] = ""
            out.append("")
            i += 1
            continue
        if re.match(r"#{1,6}(\s|$)", s):
            out.append("")
            i += 1
            continue
        if s.count("|") >= 2 or (len(s) > 3 and re.fullmatch(r"[+\-=| :]+", s)):
            out.append("")
            i += 1
            continue
        if s.startswith((">>>", "... ", "$ ", "% ", "In [", "Out[")) or s == "...":
            i += 1
            continue
        if re.match(r"\[[^\]]+\]:\s*\S+", s):
            i += 1
            continue
        if s and _indent(line) >= 4 and (not out or not out[-1].strip()):
            # an indented block after a blank line: keep it only if it reads as prose
            j = i
            block = []
            while j < n and (not lines[j].strip() or _indent(lines[j]) >= 4):
                block.append(lines[j])
                j += 1
            body = [b for b in block if b.strip()]
            if any(_CODEISH.search(b) for b in body) or alpha_ratio(" ".join(body)) < 0.8:
                out.append("")
            else:
                out.extend(b.strip() for b in block)
            i = j
            continue
        out.append(line)
        i += 1
    return [inline_clean(x) if x.strip() else "" for x in out]


# --------------------------------------------------------------------------------------------------------------------
# documents
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Doc:
    doc_id: str
    origin: str
    body: str  # cleaned, already capped
    summary: str | None = None
    split: str = ""
    sents: list[tuple[int, int]] = field(default_factory=list)
    cwords: set[str] = field(default_factory=set)


def site_dirs(explicit: list[str] | None) -> list[Path]:
    if explicit:
        return [Path(p) for p in explicit]
    dirs = []
    if (ROOT / ".venv" / ".installed").exists() and VENV_SITE.is_dir():
        dirs.append(VENV_SITE)
    if PYENV_SITE.is_dir():
        dirs.append(PYENV_SITE)
    return dirs


def clean_summary(s: str) -> str:
    s = inline_clean(re.sub(r"\s+", " ", s or "")).strip()
    s = re.sub(r"\s*[(\[]\s*$", "", s).strip()
    return s


def summary_ok(s: str) -> bool:
    words = s.split()
    return (
        3 <= len(words) <= 40
        and alpha_ratio(s) >= 0.75
        and "http" not in s
        and s.lower() not in {"unknown", "none"}
        and not s.endswith((":", ",", ";"))
        and s.count("(") == s.count(")")
    )


def load_metadata(sites: list[Path], max_docs: int, max_chars: int, rng: random.Random) -> list[Doc]:
    seen_names: set[str] = set()
    paths = []
    for site in sites:
        for p in sorted(site.glob("*.dist-info/METADATA")):
            paths.append(p)
    docs = []
    parser = HeaderParser()
    for p in paths:
        try:
            msg = parser.parsestr(p.read_text(encoding="utf-8", errors="replace"))
        except Exception:
            continue
        name = (msg.get("Name") or p.parent.name.split("-")[0]).strip().lower().replace("_", "-")
        if name in seen_names:
            continue
        seen_names.add(name)
        summary = clean_summary(msg.get("Summary") or "")
        raw = msg.get_payload() or ""
        if not isinstance(raw, str) or len(raw.strip()) < 50:
            raw = msg.get("Description") or ""
            raw = re.sub(r"\n {7}\|", "\n", raw)
        if len(raw) < 300:
            continue
        body = paragraphs_from_lines(strip_markup_blocks(raw[:40000]))
        if len(body) < 300 or len(body) < 0.08 * min(len(raw), 40000):
            continue
        body = cap_source(body, max_chars)
        if len(body) < 300:
            continue
        docs.append(Doc(f"metadata:{name}", "metadata", body, summary if summary_ok(summary) else None))
    rng.shuffle(docs)
    return docs[:max_docs]


_SECTION_CUT = re.compile(
    r"^(Parameters|Params|Args|Arguments|Keyword Arguments|Kwargs|Other Parameters|Returns?|Return type|Yields?|Raises|Examples?|Attributes|"
    r"See Also|References|Methods|Usage|Inputs|Outputs|Shape|Variables)\s*:?\s*$",
    re.I,
)


def split_docstring(doc: str) -> tuple[str, str] | None:
    paras = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)
    if len(paras) < 2:
        return None
    first = paras[0]
    if any(line.startswith((" ", ">>>", ":", "..")) for line in first.splitlines()):
        return None
    summary = clean_summary(first)
    rest_lines = []
    for line in paras[1].splitlines():
        st = line.strip()
        if _SECTION_CUT.match(st) or st.startswith((":param", ":return", ":raises", ":type", ":rtype", ":ivar", ":cvar", "@param", "@return")):
            break
        rest_lines.append(line)
    body = paragraphs_from_lines(strip_markup_blocks("\n".join(rest_lines)))
    return summary, body


def _py_files(site: Path) -> dict[str, list[Path]]:
    groups: dict[str, list[Path]] = defaultdict(list)
    for top in sorted(os.listdir(site)):
        tp = site / top
        if top.endswith((".dist-info", ".egg-info", ".libs", ".data")) or top.startswith(("_", ".")) or top == "__pycache__":
            continue
        if tp.is_file() and top.endswith(".py"):
            groups[top[:-3]].append(tp)
            continue
        if not tp.is_dir():
            continue
        for dp, dns, fns in os.walk(tp):
            dns[:] = sorted(d for d in dns if d not in {"tests", "test", "testing", "__pycache__", "_vendor", "vendor", "examples"})
            for fn in sorted(fns):
                if fn.endswith(".py") and not fn.startswith("test_"):
                    groups[top].append(Path(dp) / fn)
    return groups


def load_docstrings(sites: list[Path], max_docs: int, max_chars: int, seed: int, per_pkg: int = 40, per_file: int = 3) -> list[Doc]:
    groups: dict[str, list[Path]] = {}
    for site in sites:
        for k, v in _py_files(site).items():
            groups.setdefault(k, v)  # first site (the project venv) wins
    order = sorted(groups)
    for k in order:
        groups[k] = sorted(groups[k], key=lambda p: stable_hash(seed, "file", p.name, p.parent.name))
    docs: list[Doc] = []
    seen_sum: set[str] = set()
    seen_body: set[int] = set()
    pkg_count: Counter = Counter()
    cursor = {k: 0 for k in order}
    active = sorted(order, key=lambda k: stable_hash(seed, "pkg", k))
    parsed_bytes = 0
    while active and len(docs) < max_docs:
        nxt = []
        for pkg in active:
            if len(docs) >= max_docs:
                break
            files = groups[pkg]
            if cursor[pkg] >= len(files) or pkg_count[pkg] >= per_pkg or parsed_bytes > 60_000_000:
                continue
            path = files[cursor[pkg]]
            cursor[pkg] += 1
            nxt.append(pkg)
            try:
                if path.stat().st_size > 400_000:
                    continue
                src = path.read_text(encoding="utf-8", errors="replace")
                parsed_bytes += len(src)
                tree = ast.parse(src)
            except Exception:
                continue
            rel = f"{pkg}/{path.name}" if path.parent.name == pkg else f"{pkg}/.../{path.parent.name}/{path.name}"
            found = 0

            def visit(node: ast.AST, prefix: str, pkg: str = pkg, rel: str = rel) -> None:
                nonlocal found
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        qual = f"{prefix}{child.name}"
                        if found < per_file and pkg_count[pkg] < per_pkg:
                            ds = ast.get_docstring(child, clean=True)
                            if ds and len(ds) > 200:
                                sb = split_docstring(ds)
                                if sb:
                                    summary, body = sb
                                    body = cap_source(body, max_chars)
                                    key = re.sub(r"\W+", " ", summary.lower())
                                    bkey = stable_hash(re.sub(r"\W+", " ", body.lower())[:300])
                                    if (
                                        summary_ok(summary)
                                        and len(body) >= 200
                                        and len(sentence_spans(body)) >= 2
                                        and key not in seen_sum
                                        and bkey not in seen_body
                                    ):
                                        seen_sum.add(key)
                                        seen_body.add(bkey)
                                        docs.append(Doc(f"docstring:{rel}:{qual}", "docstring", body, summary))
                                        found += 1
                                        pkg_count[pkg] += 1
                        visit(child, qual + ".")

            visit(tree, "")
        active = nxt
    return docs


# ---- man pages ----------------------------------------------------------------------------------------------------

_GROFF_ESC = [
    (re.compile(r"\\f(?:\[[^\]]*\]|\(..|.)"), ""),
    (re.compile(r"\\s[+-]?\d+"), ""),
    (re.compile(r"\\\*\((?:lq|rq)|\\\((?:lq|rq)|\\\[(?:lq|rq)\]"), '"'),
    (re.compile(r"\\\((?:oq|cq|aq)|\\\[(?:oq|cq|aq)\]"), "'"),
    (re.compile(r"\\\(em|\\\[em\]"), "--"),
    (re.compile(r"\\\(en|\\\[en\]"), "-"),
    (re.compile(r"\\\(bu|\\\[bu\]"), "*"),
    (re.compile(r"\\\(co|\\\[co\]"), "(c)"),
    (re.compile(r"\\\(rg|\\\[rg\]"), "(R)"),
    (re.compile(r"\\\(dq|\\\[dq\]"), '"'),
    (re.compile(r"\\\*\(C[`']"), ""),
    (re.compile(r"\\\*\[[^\]]*\]|\\\*\(..|\\\*."), ""),
    (re.compile(r"\\\(..|\\\[[^\]]*\]"), ""),
    (re.compile(r"\\-"), "-"),
    (re.compile(r"\\\."), "."),
    (re.compile(r"\\[&|^)c%]"), ""),
    (re.compile(r"\\[~ 0]"), " "),
    (re.compile(r"\\e"), "\\\\"),
    (re.compile(r"\\\\"), "\\\\"),
    (re.compile(r"\\[a-zA-Z]\[[^\]]*\]|\\[a-zA-Z]'[^']*'"), ""),
]


def groff_inline(s: str) -> str:
    for pat, rep in _GROFF_ESC:
        s = pat.sub(rep, s)
    return s


def _macro_args(rest: str) -> list[str]:
    return [a[1:-1] if len(a) >= 2 and a[0] == '"' == a[-1] else a for a in re.findall(r'"[^"]*"|\S+', rest)]


def parse_man(text: str) -> tuple[str, str] | None:
    """Return (NAME description, DESCRIPTION section as paragraphs) for a man(7) page; None for mdoc or unparseable pages."""
    if re.search(r"^\.Dd\b|^\.Sh\b", text, re.M):
        return None
    sections: dict[str, list[str]] = defaultdict(list)
    cur = None
    nofill = False
    in_def = False
    for raw in text.splitlines():
        line = raw.rstrip()
        if in_def:
            if line.startswith(".."):
                in_def = False
            continue
        if line.startswith((".\\\"", "'\\\"", '.\\"')) or line in {".", "'"}:
            continue
        if line.startswith((".de ", ".de\t", ".am ")):
            in_def = True
            continue
        if line.startswith((".SH", ".sh")):
            title = " ".join(_macro_args(line[3:])).strip().upper()
            cur = groff_inline(title)
            sections[cur].append("")
            continue
        if cur is None:
            continue
        if line.startswith((".nf", ".EX", ".Vb")):
            nofill = True
            sections[cur].append("")
            continue
        if line.startswith((".fi", ".EE", ".Ve")):
            nofill = False
            continue
        if nofill:
            continue
        if line.startswith((".", "'")):
            m = re.match(r"[.'](\S+)\s*(.*)", line)
            if not m:
                continue
            mac, rest = m.group(1), m.group(2)
            if mac in {"B", "I", "SM", "SB"}:
                sections[cur].append(groff_inline(" ".join(_macro_args(rest))))
            elif mac in {"BR", "RB", "IR", "RI", "BI", "IB"}:
                sections[cur].append(groff_inline("".join(_macro_args(rest))))
            elif mac in {"PP", "P", "LP", "SS", "TP", "IP", "HP", "sp", "br", "RS", "RE", "TQ", "in", "ti", "Sp", "Ip", "Sh", "bp", "ne"}:
                sections[cur].append("")
            elif mac in {"UR", "UE", "MT", "ME"}:
                continue
            else:
                continue
            continue
        sections[cur].append(groff_inline(line))
    name_lines = " ".join(x for x in sections.get("NAME", []) if x.strip())
    m = re.search(r"\s(?:-{1,2}|\u2014|\u2013)\s+(.+)$", name_lines)
    if not m:
        return None
    desc_name = re.sub(r"\s+", " ", m.group(1)).strip()
    body_lines = sections.get("DESCRIPTION") or sections.get("OVERVIEW") or []
    body = paragraphs_from_lines([inline_clean(x) if x.strip() else "" for x in body_lines])
    return desc_name, body


def _man_files(max_scan: int, seed: int) -> list[Path]:
    files = []
    for sec in ("man1", "man5", "man7", "man8"):
        d = MAN_ROOT / sec
        if not d.is_dir():
            continue
        for fn in sorted(os.listdir(d)):
            p = d / fn
            if not p.is_symlink() and p.is_file():
                files.append(p)
    files.sort(key=lambda p: stable_hash(seed, "man", p.name))
    return files[:max_scan]


def load_manpages(max_docs: int, max_chars: int, seed: int) -> list[Doc]:
    docs: list[Doc] = []
    seen_sum: set[str] = set()
    seen_body: set[int] = set()
    per_family: Counter = Counter()
    family_cap = max(3, int(0.04 * max_docs))  # e.g. gcloud ships thousands of near-identical pages
    for p in _man_files(max(40 * max_docs, 400), seed):
        if len(docs) >= max_docs:
            break
        family = re.split(r"[_\-.]", p.name)[0]
        if per_family[family] >= family_cap:
            continue
        try:
            raw = gzip.open(p, "rb").read() if p.suffix == ".gz" else p.read_bytes()
            text = raw.decode("utf-8", errors="replace")
        except Exception:
            continue
        if text.lstrip().startswith(".so ") or len(text) < 200:
            continue
        parsed = parse_man(text)
        if not parsed:
            continue
        summary, body = parsed
        body = cap_source(body, max_chars)
        key = re.sub(r"\W+", " ", summary.lower()).strip()
        bkey = stable_hash(re.sub(r"\W+", " ", body.lower())[:300])
        if len(body) < 200 or len(sentence_spans(body)) < 2 or key in seen_sum or bkey in seen_body:
            continue
        seen_sum.add(key)
        seen_body.add(bkey)
        per_family[family] += 1
        name = p.name[:-3] if p.name.endswith(".gz") else p.name
        docs.append(Doc(f"manpage:{p.parent.name}/{name}", "manpage", body, summary if summary_ok(summary) and len(summary.split()) <= 25 else None))
    return docs


# ---- changelogs ---------------------------------------------------------------------------------------------------


def parse_changelog(text: str, max_chars: int) -> str:
    out: list[str] = []
    cur: str | None = None
    size = 0

    def flush() -> None:
        nonlocal cur, size
        if cur is not None:
            item = re.sub(r"\s+", " ", cur).strip()
            if len(item.split()) >= 3:
                out.append(item)
                size += len(item) + 1
        cur = None

    for raw in text.splitlines():
        if size > max_chars * 1.5:
            break
        s = raw.strip()
        if not s:
            flush()
            if out and out[-1] != "":
                out.append("")
            continue
        if re.match(r"^--\s.*<[^>]*@[^>]*>", s) or re.search(r"\S+@\S+\.\w+", s) and len(s.split()) <= 8:
            flush()
            continue
        if not raw.startswith((" ", "\t")) and re.match(r"^[\w.+-]+ \([^)]+\) [\w-]+;", s):
            flush()
            out.append(s)
            continue
        if re.match(r"^[*+\-]\s", s) or re.match(r"^\[\s*[\w .'-]+\s*\]$", s):
            flush()
            cur = s
            continue
        if cur is not None:
            cur += " " + s
        else:
            cur = s
    flush()
    lines = [re.sub(r"https?://\S+", "", x).rstrip() for x in out]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text


def load_changelogs(max_docs: int, max_chars: int, seed: int) -> list[Doc]:
    cands = []
    if DOC_ROOT.is_dir():
        for pkg in sorted(os.listdir(DOC_ROOT)):
            d = DOC_ROOT / pkg
            if d.is_symlink() or not d.is_dir():
                continue
            for fn in ("changelog.gz", "changelog.Debian.gz", "NEWS.gz", "changelog", "CHANGELOG.gz"):
                p = d / fn
                if p.is_file() and not p.is_symlink():
                    cands.append(p)
    cands.sort(key=lambda p: stable_hash(seed, "cl", str(p)))
    docs: list[Doc] = []
    seen: set[int] = set()
    for p in cands:
        if len(docs) >= max_docs:
            break
        try:
            with (gzip.open(p, "rb") if p.suffix == ".gz" else open(p, "rb")) as fh:
                raw = fh.read(30000).decode("utf-8", errors="replace")
        except Exception:
            continue
        body = cap_source(parse_changelog(raw, max_chars), max_chars)
        key = stable_hash(body[:400])
        if len(body) < 300 or key in seen:
            continue
        seen.add(key)
        docs.append(Doc(f"changelog:{p.parent.name}/{p.name}", "changelog", body, None))
    return docs


# --------------------------------------------------------------------------------------------------------------------
# entities, numbers, negations
# --------------------------------------------------------------------------------------------------------------------

MONTHS = "January February March April May June July August September October November December".split()
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
NOT_ENTITY = {
    "I", "The", "This", "That", "These", "Those", "A", "An", "It", "If", "In", "On", "For", "To", "See", "Note", "Notes", "True", "False", "None",
    "Returns", "Return", "Otherwise", "However", "Also", "When", "With", "By", "As", "At", "Or", "And", "But", "OK", "TODO", "NOTE", "FIXME",
    "Examples", "Example", "Default", "Defaults", "Args", "Parameters", "Warning", "Please", "You", "We", "Our", "Your", "Each", "All", "Any",
    "New", "Use", "Fix", "Add", "Update", "Remove", "Closes", "LP", "II", "III", "IV", "XXX", "USA", "UTC", "GMT", "EOF",
}
_CAPTOK = re.compile(r"(?<![\w.\-/@])([A-Z][A-Za-z0-9]*(?:[-+.][A-Za-z0-9]+)*\+*)(?![\w\-/@]|\.[A-Za-z0-9])")


def ent_category(tok: str) -> str | None:
    if tok in MONTHS:
        return "month"
    if tok in WEEKDAYS:
        return "weekday"
    core = re.sub(r"[^A-Za-z]", "", tok)
    if len(core) < 2 or "-" in tok:
        return None
    if core.isupper():
        return "acronym" if 2 <= len(core) <= 6 else None
    if any(c.isupper() for c in core[1:]):
        return "camel"
    if any(c.isdigit() for c in tok):
        return "alnum"
    return "cap"


def _sentence_initial(text: str, pos: int) -> bool:
    window = text[max(0, pos - 12) : pos]
    pre = window.rstrip()
    if not pre:
        return True
    return pre[-1] in ".!?:;\n\"'(*-\u2022[" or bool(re.search(r"\n\s*(?:[-*+\u2022]|\d+[.)])\s*$", window))


class EntityModel:
    """Decides which capitalised tokens are names (corpus statistics) and offers same-category replacements."""

    def __init__(self, docs: list[Doc]) -> None:
        cap_mid: Counter = Counter()
        lower: Counter = Counter()
        self.df: dict[str, set[str]] = defaultdict(set)
        for d in docs:
            text = d.body + "\n" + (d.summary or "")
            for t in re.findall(r"\b[a-z][a-z0-9]+\b", text):
                lower[t] += 1
            for m in _CAPTOK.finditer(text):
                if not _sentence_initial(text, m.start()):
                    cap_mid[m.group(1)] += 1
        self.cap_mid = cap_mid
        self.lower = lower
        self.rep_use: Counter = Counter()
        self.pool: dict[tuple[str, str, str], list[str]] = defaultdict(list)  # (origin, split, category) -> names
        self.all_pool: dict[tuple[str, str], list[str]] = defaultdict(list)
        # distributional context of each name (neighbouring lowercase words), to pick same-type replacements:
        # a programming language for a language, a person for a person, a file format for a file format
        self.ctx: dict[str, Counter] = defaultdict(Counter)
        found = {}
        for d in docs:
            mentions = self.find(d.body, d.body)
            found[d.doc_id] = sorted({(e[2], e[3]) for e in mentions})
            for s_, e_, name, _cat in mentions:
                left = re.findall(r"[a-z][a-z0-9']*|[A-Za-z]+", d.body[max(0, s_ - 40) : s_])[-2:]
                right = re.findall(r"[a-z][a-z0-9']*|[A-Za-z]+", d.body[e_ : e_ + 40])[:2]
                c = self.ctx[name]
                for i, w in enumerate(reversed(left)):
                    c[f"l{i}:{w.lower()}"] += 2 - i
                for i, w in enumerate(right):
                    c[f"r{i}:{w.lower()}"] += 2 - i
        self.ctx_norm = {k: math.sqrt(sum(v * v for v in c.values())) for k, c in self.ctx.items()}
        for d in docs:
            for name, _cat in found[d.doc_id]:
                self.df[name].add(d.doc_id)
        seen_o: set = set()
        seen_a: set = set()
        for d in docs:
            for name, cat in found[d.doc_id]:
                if (d.origin, d.split, name) not in seen_o:
                    seen_o.add((d.origin, d.split, name))
                    self.pool[(d.origin, d.split, cat)].append(name)
                if (d.split, name) not in seen_a:
                    seen_a.add((d.split, name))
                    self.all_pool[(d.split, cat)].append(name)

    def is_name(self, tok: str, initial: bool) -> str | None:
        if tok in NOT_ENTITY or tok.rstrip("+") in NOT_ENTITY:
            return None
        cat = ent_category(tok)
        if cat is None:
            return None
        if cat == "cap":
            if initial:
                return None
            lo = self.lower.get(tok.lower(), 0)
            if self.cap_mid.get(tok, 0) < 2 or lo > self.cap_mid.get(tok, 0):
                return None
        elif cat == "acronym" and initial and self.cap_mid.get(tok, 0) < 2:
            return None
        return cat

    def find(self, text: str, source: str) -> list[tuple[int, int, str, str]]:
        """Name mentions in ``text`` as (start, end, string, category).

        Runs of capitalised words separated by single spaces are one mention ("Google Cloud Storage") when any word of the
        run is a name, so a swap never replaces half of a multi-word name."""
        toks = []
        for m in _CAPTOK.finditer(text):
            tok = m.group(1)
            toks.append([m.start(), m.end(), tok, self.is_name(tok, _sentence_initial(text, m.start()))])
        runs: list[list[list]] = []
        for t in toks:
            if runs and text[runs[-1][-1][1] : t[0]] == " ":
                runs[-1].append(t)
            else:
                runs.append([t])
        out = []
        for run in runs:
            while run and run[0][3] is None and (run[0][2] in NOT_ENTITY or _sentence_initial(text, run[0][0])):
                run = run[1:]
            if not run or not any(t[3] for t in run):
                continue
            if len(run) == 1:
                out.append((run[0][0], run[0][1], run[0][2], run[0][3]))
            elif len(run) <= 4 and all(ent_category(t[2]) for t in run):
                out.append((run[0][0], run[-1][1], text[run[0][0] : run[-1][1]], f"multi{min(len(run), 3)}"))
        return out

    def similarity(self, a: str, b: str) -> float:
        ca, cb = self.ctx.get(a), self.ctx.get(b)
        if not ca or not cb:
            return 0.0
        if len(ca) > len(cb):
            ca, cb = cb, ca
        dot = sum(v * cb.get(k, 0) for k, v in ca.items())
        return dot / (self.ctx_norm[a] * self.ctx_norm[b] or 1.0)

    def replacement(self, name: str, cat: str, origin: str, split: str, source: str, rng: random.Random, avoid_doc: str) -> tuple[str, str] | None:
        pool = self.pool.get((origin, split, cat)) or []
        if len(pool) < 20:
            pool = pool + self.all_pool.get((split, cat), [])
        if not pool:
            return None
        src_low = source.lower()
        src_vocab = set(tokens(source))
        cands = rng.sample(pool, min(len(pool), 400))
        best = None
        for c in cands:
            if c == name or c.lower() in name.lower() or name.lower() in c.lower():
                continue
            docs = self.df.get(c, set()) - {avoid_doc}
            if not docs:
                continue
            if re.search(r"(?<![a-z0-9])" + re.escape(c.lower()) + r"(?![a-z0-9])", src_low):
                continue
            parts = [p.lower() for p in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", c)]
            share = sum(1 for p in parts if len(p) > 2 and p in src_vocab)
            if cat.startswith("multi") and any(p in src_low for p in c.lower().split()):
                share += 1
            lendiff = abs(len(c) - len(name))
            sim = self.similarity(name, c)
            score = 3.0 * sim + 0.6 * min(share, 2) + 0.2 * math.log1p(len(docs)) - 0.05 * lendiff - 0.6 * self.rep_use[c] + 0.4 * rng.random()
            if best is None or score > best[0]:
                best = (score, c, sorted(docs)[0])
        if best is None:
            return None
        self.rep_use[best[1]] += 1
        return best[1], best[2]


NUM_WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()
_NUM = re.compile(r"(?<![A-Za-z0-9_.\-/#@:])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)*)(?![A-Za-z0-9_]|[.,]\d)")
_NUMW = re.compile(r"\b(" + "|".join(NUM_WORDS[2:]) + r")\b", re.I)


def _num_in(text: str, val: str) -> bool:
    return re.search(r"(?<![\d.,])" + re.escape(val) + r"(?![\d]|[.,]\d)", text) is not None


def number_candidates(out: str, source: str, rng: random.Random) -> list[dict]:
    cands = []
    for m in _NUM.finditer(out):
        v = m.group(1)
        if not _num_in(source, v):
            continue
        alts = []
        if "." in v:
            parts = v.split(".")
            idx = rng.choice([len(parts) - 1, len(parts) - 1, max(0, len(parts) - 2)])
            for d in (1, 2, -1, 3, -2, 5):
                p2 = list(parts)
                x = int(parts[idx]) + d
                if x < 0:
                    continue
                p2[idx] = str(x)
                alts.append(".".join(p2))
        elif "," in v:
            n = int(v.replace(",", ""))
            for f in (2, 0.5, 3, 1.5, 10):
                alts.append(f"{int(n * f):,}")
        else:
            n = int(v)
            if len(v) > 1 and v.startswith("0"):
                continue
            if 1900 <= n <= 2099:
                alts = [str(n + d) for d in (1, -1, 2, -2, 3, -3, 5, 4)]
            elif n <= 12:
                alts = [str(x) for x in (n + 1, n + 2, n - 1, n + 3, n * 2, n + 4) if 0 <= x != n]
            elif n > 0 and n & (n - 1) == 0:
                alts = [str(n * 2), str(n // 2), str(n * 4)]
            else:
                alts = [str(n + d) for d in (max(1, n // 10), -max(1, n // 10), max(1, n // 4), 1, -1, 2)] + [str(n * 2)]
        if out[m.end() : m.end() + 1] == "%" or out[m.end() : m.end() + 8].lstrip().startswith("percent"):
            alts = [a for a in alts if float(a.replace(",", "")) <= 100]
        alts = [a for a in dict.fromkeys(alts) if a != v and not _num_in(source, a) and not a.startswith("-")]
        if alts:
            cands.append({"position": m.start(), "before": v, "after": alts[0] if rng.random() < 0.5 else rng.choice(alts), "rule": "digits"})
    for m in _NUMW.finditer(out):
        w = m.group(1)
        i = NUM_WORDS.index(w.lower())
        if not re.search(r"\b" + w + r"\b", source, re.I):
            continue
        alts = [NUM_WORDS[j] for j in (i + 1, i - 1, i + 2) if 2 <= j < len(NUM_WORDS)]
        alts = [a for a in alts if not re.search(r"\b" + a + r"\b", source, re.I) and not _num_in(source, str(NUM_WORDS.index(a)))]
        if alts:
            a = rng.choice(alts)
            cands.append({"position": m.start(), "before": w, "after": a.capitalize() if w[0].isupper() else a, "rule": "number_word"})
    return cands


# negation / polarity rules: (family, rule name, regex, replacement function)

_AUX_NOT = {
    "isn't": "is", "aren't": "are", "wasn't": "was", "weren't": "were", "doesn't": "does", "don't": "do", "didn't": "did", "hasn't": "has",
    "haven't": "have", "won't": "will", "shouldn't": "should", "wouldn't": "would", "couldn't": "could", "can't": "can", "mustn't": "must",
}

_VERB_PAIRS = [
    ("enable", "disable"), ("add", "remove"), ("create", "delete"), ("compress", "decompress"), ("encode", "decode"), ("encrypt", "decrypt"),
    ("install", "uninstall"), ("mount", "unmount"), ("lock", "unlock"), ("import", "export"), ("upload", "download"), ("increase", "decrease"),
    ("include", "exclude"), ("accept", "reject"), ("load", "unload"), ("connect", "disconnect"), ("allow", "forbid"), ("serialize", "deserialize"),
    ("start", "stop"), ("open", "close"), ("show", "hide"), ("send", "receive"), ("append", "prepend"), ("expand", "collapse"),
]
_IRREG = {"stop": ("stops", "stopped", "stopping"), "show": ("shows", "shown", "showing"), "hide": ("hides", "hidden", "hiding"),
          "send": ("sends", "sent", "sending"), "forbid": ("forbids", "forbidden", "forbidding"), "unlock": ("unlocks", "unlocked", "unlocking")}


def _forms(v: str) -> tuple[str, str, str, str]:
    if v in _IRREG:
        return (v, *_IRREG[v])
    if v.endswith("e"):
        return v, v + "s", v + "d", v[:-1] + "ing"
    if v.endswith("ss") or v.endswith("sh"):
        return v, v + "es", v + "ed", v + "ing"
    return v, v + "s", v + "ed", v + "ing"


ANTONYMS: dict[str, str] = {}
for _a, _b in _VERB_PAIRS:
    for _x, _y in zip(_forms(_a), _forms(_b)):
        ANTONYMS.setdefault(_x, _y)
        ANTONYMS.setdefault(_y, _x)
for _a, _b in [
    ("before", "after"), ("first", "last"), ("minimum", "maximum"), ("faster", "slower"), ("fast", "slow"), ("synchronous", "asynchronous"),
    ("synchronously", "asynchronously"), ("local", "remote"), ("true", "false"), ("success", "failure"), ("valid", "invalid"), ("lower", "upper"),
    ("lowercase", "uppercase"), ("absolute", "relative"), ("simple", "complex"), ("small", "large"), ("smaller", "larger"), ("high-level", "low-level"),
    ("safe", "unsafe"), ("secure", "insecure"), ("public", "private"), ("static", "dynamic"), ("inside", "outside"),
    ("above", "below"), ("internal", "external"), ("explicit", "implicit"), ("explicitly", "implicitly"), ("optional", "required"),
    ("mutable", "immutable"), ("visible", "invisible"), ("ascending", "descending"), ("forward", "backward"), ("older", "newer"),
    ("earlier", "later"), ("input", "output"), ("inputs", "outputs"), ("client", "server"), ("read-only", "writable"), ("binary", "text"),
    ("enabled", "disabled"), ("supported", "unsupported"), ("compatible", "incompatible"), ("correct", "incorrect"), ("lightweight", "heavyweight"),
    ("always", "never"), ("everything", "nothing"), ("automatically", "manually"), ("easy", "difficult"),
]:
    ANTONYMS.setdefault(_a, _b)
    ANTONYMS.setdefault(_b, _a)
PHRASES = {"at least": "at most", "at most": "at least", "more than": "less than", "less than": "more than", "greater than": "less than",
           "no longer": "still", "fewer than": "more than", "as well as": "instead of", "in addition to": "instead of"}

_3P = ["supports", "requires", "provides", "uses", "contains", "includes", "handles", "works", "needs", "affects", "changes", "checks",
       "prints", "reads", "writes", "displays", "stores", "calls", "runs", "builds", "generates", "produces", "performs", "implements",
       "returns", "lists", "keeps", "follows", "matches", "applies", "modifies", "preserves", "respects", "depends", "ignores", "exposes",
       "raises", "validates", "caches", "overrides", "reports", "updates", "copies", "fixes", "sets", "gets", "makes", "takes", "gives"]


def _base(v: str) -> str:
    if v.endswith("ies"):
        return v[:-3] + "y"
    if v.endswith(("sses", "ches", "shes", "xes", "zes")) or v in {"fixes", "does", "goes"}:
        return v[:-2]
    return v[:-1]


def _case_like(src: str, new: str) -> str:
    if src.isupper() and len(src) > 1:
        return new.upper()
    if src[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


_NO_COMPOUND = {"show", "shows", "open", "close", "start", "stop", "input", "output", "load", "first", "last", "most", "least", "text", "binary", "client", "server"}


def negation_candidates(out: str) -> list[dict]:
    cands: list[dict] = []

    def add(fam: str, rule: str, m: re.Match, after: str) -> None:
        cands.append({"position": m.start(), "before": m.group(0), "after": after, "rule": rule, "family": fam})

    # remove a negation
    for m in re.finditer(r"\b(is|are|was|were|does|do|did|has|have|had|will|should|must|would|could|can|may|might) not\b(?! only)", out, re.I):
        add("remove_not", f"{m.group(1).lower()}_not->{m.group(1).lower()}", m, m.group(1))
    for m in re.finditer(r"\b(" + "|".join(re.escape(k) for k in _AUX_NOT) + r")\b", out, re.I):
        add("remove_not", "contraction", m, _case_like(m.group(1), _AUX_NOT[m.group(1).lower()]))
    for m in re.finditer(r"\bcannot\b", out, re.I):
        add("remove_not", "cannot->can", m, _case_like(m.group(0), "can"))
    for m in re.finditer(r"\bwithout\b", out, re.I):
        add("remove_not", "without->with", m, _case_like(m.group(0), "with"))
    # add a negation
    for m in re.finditer(r"\b(is|are|was|were|will|should|must|can|could|would|may|has been|have been)\b(?! not\b)(?!n't)", out, re.I):
        w = m.group(1)
        if w.lower() == "can":
            after = _case_like(w, "cannot")
        elif " " in w:
            a, b = w.split(" ")
            after = f"{a} not {b}"
        else:
            after = f"{w} not"
        prev = out[: m.start()].rstrip().split(" ")[-1].lower() if m.start() else ""
        if prev in {"it", "there", "this", "that", "what", "which", "who", "if", "as"} and w.lower() in {"is", "are"} and out[m.end() :].startswith("?"):
            continue
        add("add_not", f"{w.lower()}->{after.lower()}", m, after)
    for m in re.finditer(r"\b(" + "|".join(_3P) + r")\b", out):
        pre = out[: m.start()].rstrip()
        if not pre or pre.endswith((".", ":", "\n")):
            continue
        prevw = pre.split()[-1].lower()
        if prevw in STOP - {"it", "this", "that", "which", "also", "only", "who"} or prevw.endswith(("ly",)) and prevw not in {"only", "also"}:
            continue
        if prevw.endswith(("ive", "al", "ful", "ous", "ic", "ent", "ant", "ble")) or not pre[-1].isalnum() and pre[-1] not in ")'\"":
            continue
        nxt = out[m.end() :].lstrip()
        if not nxt or not (nxt[0].isalnum() or nxt[0] in "\"'(") or re.match(r"(of|and|or|for|in|to|are|is)\b", nxt):
            continue
        add("does_not", f"{m.group(1)}->does not {_base(m.group(1))}", m, "does not " + _base(m.group(1)))
    # antonyms (lexical polarity flips), with article agreement
    for m in re.finditer(r"\b(?:(a|an) )?([A-Za-z][A-Za-z-]*[A-Za-z])\b", out, re.I):
        w = m.group(2)
        alt = ANTONYMS.get(w.lower())
        if not alt or (w[0].isupper() and not _sentence_initial(out, m.start(2)) and w.lower() not in {"true", "false"}):
            continue
        if w.lower() in _NO_COMPOUND and out[m.end() :].startswith(("-", "_")):
            continue
        if w.lower() == "open" and re.match(r"\s+source", out[m.end() :], re.I):
            continue
        new = _case_like(w, alt)
        if m.group(1):
            art = m.group(1)
            new_art = "an" if new[0].lower() in "aeiou" else "a"
            add("antonym", f"{w.lower()}->{alt}", m, _case_like(art, new_art) + " " + new)
        else:
            add("antonym", f"{w.lower()}->{alt}", m, new)
    for ph, alt in PHRASES.items():
        for m in re.finditer(r"\b" + ph + r"\b", out, re.I):
            add("antonym", f"{ph}->{alt}", m, _case_like(m.group(0), alt))
    # de-duplicate overlapping candidates at the same position (keep first)
    seen = set()
    uniq = []
    for c in cands:
        k = (c["position"], c["before"].lower())
        if k not in seen and c["after"].lower() != c["before"].lower():
            seen.add(k)
            uniq.append(c)
    return uniq


def apply_edit(text: str, e: dict) -> str:
    p = e["position"]
    assert text[p : p + len(e["before"])] == e["before"], (text, e)
    return text[:p] + e["after"] + text[p + len(e["before"]) :]


# --------------------------------------------------------------------------------------------------------------------
# set construction
# --------------------------------------------------------------------------------------------------------------------

EXT_KINDS = ["entity_swap", "number_change", "negation", "unsupported_addition"]
ABS_KINDS = ["entity_swap", "number_change", "negation", "unsupported_addition", "wrong_document"]


def good_sentence(text: str, origin: str) -> bool:
    words = text.split()
    if not (6 <= len(words) <= 45) or len(text) > 320:
        return False
    if alpha_ratio(text) < 0.78 or "http" in text or "://" in text or "@" in text or "|" in text or ">>>" in text:
        return False
    if sum(text.count(c) for c in "{}[]<>=_\\`$") > 2:
        return False
    if sum(w[:1].isupper() for w in words) > 0.4 * len(words):
        return False
    if origin != "changelog":
        if not (text[0].isupper() or text[0] in "\"'(") or text[-1] not in ".!?":
            return False
    return True


def doc_segments(doc: Doc) -> list[tuple[int, int]]:
    """Candidate verbatim outputs: single good sentences and pairs of adjacent good sentences on the same line."""
    spans = [(s, e) for s, e in doc.sents if good_sentence(doc.body[s:e], doc.origin)]
    segs = list(spans)
    for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
        if doc.body[e1:s2] == " " and e2 - s1 <= 420:
            segs.append((s1, e2))
    return segs


class Builder:
    def __init__(self, docs: list[Doc], seed: int) -> None:
        self.rng = random.Random(seed)
        self.docs = docs
        self.ents = EntityModel(docs)
        self.rule_use: Counter = Counter()
        self.fam_use: Counter = Counter()
        self.add_style: Counter = Counter()
        by: dict[tuple[str, str], list[Doc]] = defaultdict(list)
        for d in docs:
            by[(d.origin, d.split)].append(d)
        self.by = by
        # donor sentences for unsupported additions: (origin, split) -> [(doc_id, sentence)]
        self.donor_sents: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for d in docs:
            for s, e in d.sents:
                t = d.body[s:e]
                if good_sentence(t, d.origin) and 6 <= len(t.split()) <= 25:
                    self.donor_sents[(d.origin, d.split)].append((d.doc_id, t))

    # ---- individual edits --------------------------------------------------------------------------------------

    def edit_entity(self, out: str, doc: Doc) -> dict | None:
        mentions = [m for m in self.ents.find(out, doc.body) if re.search(r"(?<![a-z0-9])" + re.escape(m[2].lower()) + r"(?![a-z0-9])", doc.body.lower())]
        self.rng.shuffle(mentions)
        for s, e, name, cat in mentions:
            rep = self.ents.replacement(name, cat, doc.origin, doc.split, doc.body, self.rng, doc.doc_id)
            if rep:
                art = re.search(r"\b(an?) $", out[:s], re.I)
                if art:
                    first = rep[0][0]
                    vowel = first.lower() in "aeio" or (first.isupper() and rep[0][:2].isupper() and first in "AEFHILMNORSX")
                    new_art = _case_like(art.group(1), "an" if vowel else "a")
                    if new_art.lower() != art.group(1).lower():
                        return {"position": art.start(1), "before": out[art.start(1) : e], "after": f"{new_art} {rep[0]}", "rule": cat, "donor_doc_id": rep[1]}
                return {"position": s, "before": name, "after": rep[0], "rule": cat, "donor_doc_id": rep[1]}
        return None

    def edit_number(self, out: str, doc: Doc) -> dict | None:
        cands = number_candidates(out, doc.body, self.rng)
        return self.rng.choice(cands) if cands else None

    def edit_negation(self, out: str, doc: Doc) -> dict | None:
        cands = negation_candidates(out)
        good = []
        for c in cands:
            new = apply_edit(out, c)
            if new in doc.body:
                continue
            good.append(c)
        if not good:
            return None
        self.rng.shuffle(good)
        good.sort(key=lambda c: (self.fam_use[c["family"]], self.rule_use[c["rule"]]))
        c = good[0]
        self.fam_use[c["family"]] += 1
        self.rule_use[c["rule"]] += 1
        return c

    def _pick_donor_sentence(self, doc: Doc, exclude: str) -> tuple[str, str] | None:
        pool = self.donor_sents.get((doc.origin, doc.split), [])
        if not pool:
            return None
        best = None
        src_tok = set(tokens(doc.body))
        for did, sent in self.rng.sample(pool, min(len(pool), 150)):
            if did == doc.doc_id or sent in exclude:
                continue
            cw = content_words(sent)
            missing = cw - doc.cwords
            if len(missing) < 2:
                continue
            toks = tokens(sent)
            overlap = sum(t in src_tok for t in toks) / max(1, len(toks))
            has_names = bool([m for m in self.ents.find(sent, sent) if m[3] != "month"])
            score = overlap - 0.15 * has_names - 0.01 * abs(len(toks) - 14) + 0.1 * self.rng.random()
            if best is None or score > best[0]:
                best = (score, did, sent)
        return (best[1], best[2]) if best else None

    def _lowerable(self, sent: str) -> bool:
        first = sent.split()[0]
        return first.lower() in STOP or (first[0].isupper() and first[1:].islower() and self.ents.lower.get(first.lower(), 0) >= 3 and first not in self.ents.cap_mid)

    def edit_addition(self, out: str, doc: Doc, abstractive: bool) -> dict | None:
        use_summary = abstractive and self.rng.random() < 0.5
        donor = None
        if use_summary:
            donor = self._pick_wrong_summary(doc, exclude=out, need_lowerable=True)
            if donor:
                did, clause = donor
                clause = clause.rstrip(".")
                clause = clause[0].lower() + clause[1:]
                if out.endswith("."):
                    return {"position": len(out) - 1, "before": ".", "after": f" and {clause}.", "rule": "and_summary", "donor_doc_id": did}
                return {"position": len(out), "before": "", "after": f" and {clause}", "rule": "and_summary", "donor_doc_id": did}
        donor = self._pick_donor_sentence(doc, exclude=out)
        if not donor:
            return None
        did, sent = donor
        styles = ["sentence"]
        if out.endswith(".") and sent.endswith(".") and self._lowerable(sent) and len(sent.split()) <= 20:
            styles += ["and_clause", "semicolon"]
        styles.sort(key=lambda s: (self.add_style[s], self.rng.random()))
        style = styles[0]
        self.add_style[style] += 1
        if style == "sentence":
            if out.endswith((".", "!", "?")):
                return {"position": len(out), "before": "", "after": " " + sent, "rule": style, "donor_doc_id": did}
            return {"position": len(out), "before": "", "after": ". " + sent, "rule": style, "donor_doc_id": did}
        clause = sent[0].lower() + sent[1:]
        joiner = ", and " if style == "and_clause" else "; "
        return {"position": len(out) - 1, "before": ".", "after": joiner + clause, "rule": style, "donor_doc_id": did}

    def _pick_wrong_summary(self, doc: Doc, exclude: str, need_lowerable: bool = False) -> tuple[str, str] | None:
        pool = [d for d in self.by.get((doc.origin, doc.split), []) if d.summary and d.doc_id != doc.doc_id]
        if not pool:
            return None
        own = content_words(doc.summary or "")
        best = None
        for d in self.rng.sample(pool, min(len(pool), 200)):
            s = d.summary
            if s.lower() == (doc.summary or "").lower() or s.lower() in exclude.lower():
                continue
            cw = content_words(s)
            if not cw or len(cw - doc.cwords) < 1:
                continue
            if own and len(cw & own) / len(cw | own) >= 0.5:
                continue
            if need_lowerable and not self._lowerable(s):
                continue
            support = len(cw & doc.cwords) / len(cw)
            shared_own = len(cw & own) / max(1, len(own))
            score = support + 0.5 * shared_own + 0.3 * self.rng.random()
            if best is None or score > best[0]:
                best = (score, d.doc_id, s)
        return (best[1], best[2]) if best else None

    def make_edit(self, kind: str, out: str, doc: Doc, abstractive: bool) -> dict | None:
        if kind == "entity_swap":
            e = self.edit_entity(out, doc)
        elif kind == "number_change":
            e = self.edit_number(out, doc)
        elif kind == "negation":
            e = self.edit_negation(out, doc)
        elif kind == "unsupported_addition":
            e = self.edit_addition(out, doc, abstractive)
        elif kind == "wrong_document":
            w = self._pick_wrong_summary(doc, exclude=out)
            e = {"position": 0, "before": out, "after": w[1], "rule": "same_origin_summary", "donor_doc_id": w[0]} if w else None
        else:
            raise ValueError(kind)
        if e is None:
            return None
        new = apply_edit(out, e)
        if new == out or (kind != "wrong_document" and new in doc.body):
            return None
        e = {k: v for k, v in e.items() if k != "family"} | ({"family": e["family"]} if "family" in e else {})
        e["original_output"] = out
        return e

    # ---- sets --------------------------------------------------------------------------------------------------

    def _round_robin(self, origins: list[str], eligible) -> list[Doc]:
        lists = {o: [d for d in self.docs if d.origin == o and eligible(d)] for o in origins}
        for o in origins:
            self.rng.shuffle(lists[o])
        order: list[Doc] = []
        i = 0
        while any(i < len(v) for v in lists.values()):
            for o in origins:
                if i < len(lists[o]):
                    order.append(lists[o][i])
            i += 1
        return order

    def build_extractive(self, n_pairs: int) -> list[dict]:
        recs: list[dict] = []
        kind_count: Counter = Counter()
        target = math.ceil(n_pairs / len(EXT_KINDS))
        docs = self._round_robin(["metadata", "docstring", "manpage", "changelog"], lambda d: True)
        origin_count: Counter = Counter()
        origin_cap = math.ceil(n_pairs * 0.32)
        for doc in docs:
            if kind_count.total() >= n_pairs:
                break
            if origin_count[doc.origin] >= origin_cap:
                continue
            segs = doc_segments(doc)
            if len(segs) < 1:
                continue
            kinds = [k for k in EXT_KINDS if kind_count[k] < target]
            self.rng.shuffle(kinds)
            kinds.sort(key=lambda k: kind_count[k])
            done = False
            for kind in kinds:
                order = list(segs)
                self.rng.shuffle(order)
                # prefer single sentences for additions (the faithful partner gets two sentences when possible)
                if kind == "unsupported_addition":
                    order.sort(key=lambda se: doc.body[se[0] : se[1]].count(". ") > 0)
                for s, e in order[:25]:
                    out = doc.body[s:e]
                    ed = self.make_edit(kind, out, doc, abstractive=False)
                    if not ed:
                        continue
                    # faithful partner: another segment of the same doc with the same surface trait where possible
                    partner = self._faithful_partner(doc, segs, (s, e), kind, ed)
                    fs, fe = partner
                    recs.append(self._rec("extractive", doc, doc.body[fs:fe], 0, "faithful", None))
                    recs.append(self._rec("extractive", doc, apply_edit(out, ed), 1, kind, ed))
                    kind_count[kind] += 1
                    origin_count[doc.origin] += 1
                    done = True
                    break
                if done:
                    break
            if len(recs) % 200 == 0 and done:
                log(f"  extractive: {len(recs)} records")
        return recs

    def _faithful_partner(self, doc: Doc, segs, used, kind, ed) -> tuple[int, int]:
        others = [se for se in segs if se != used and not (se[0] < used[1] and used[0] < se[1])]
        if not others:
            return used
        if kind == "number_change":
            pref = [se for se in others if _NUM.search(doc.body[se[0] : se[1]])]
        elif kind == "negation":
            pref = [se for se in others if negation_candidates(doc.body[se[0] : se[1]])]
        elif kind == "entity_swap":
            pref = [se for se in others if self.ents.find(doc.body[se[0] : se[1]], doc.body)]
        else:
            target_len = len(apply_edit(ed["original_output"], ed).split())
            pref = sorted(others, key=lambda se: abs(len(doc.body[se[0] : se[1]].split()) - target_len))[:3]
        pool = pref or others
        return self.rng.choice(pool)

    def build_abstractive(self, n_pairs: int) -> list[dict]:
        """One faithful + one edited record per document; kinds balanced, then topped up with whatever kinds still apply."""
        recs: list[dict] = []
        kind_count: Counter = Counter()
        docs = self._round_robin(["metadata", "docstring", "manpage"], lambda d: d.summary is not None)
        origin_count: Counter = Counter()
        used: set[str] = set()
        for pass_no, target, origin_cap in ((1, math.ceil(n_pairs / len(ABS_KINDS)), math.ceil(n_pairs * 0.4)), (2, n_pairs, n_pairs)):
            for doc in docs:
                if kind_count.total() >= n_pairs:
                    break
                if doc.doc_id in used or origin_count[doc.origin] >= origin_cap:
                    continue
                out = doc.summary
                kinds = [k for k in ABS_KINDS if kind_count[k] < target]
                self.rng.shuffle(kinds)
                kinds.sort(key=lambda k: kind_count[k])
                for kind in kinds:
                    ed = self.make_edit(kind, out, doc, abstractive=True)
                    if not ed:
                        continue
                    copied = is_copied(out, doc.body)
                    recs.append(self._rec("abstractive", doc, out, 0, "faithful", None, copied=copied))
                    recs.append(self._rec("abstractive", doc, apply_edit(out, ed), 1, kind, ed, copied=copied))
                    kind_count[kind] += 1
                    origin_count[doc.origin] += 1
                    used.add(doc.doc_id)
                    if len(recs) % 200 == 0:
                        log(f"  abstractive: {len(recs)} records (pass {pass_no})")
                    break
        return recs

    def _rec(self, set_name: str, doc: Doc, output: str, label: int, kind: str, edit: dict | None, **extra) -> dict:
        r = {"id": "", "set": set_name, "origin": doc.origin, "doc_id": doc.doc_id, "source": doc.body, "output": output, "label": label, "kind": kind, "edit": edit, "split": doc.split}
        r.update(extra)
        return r


def is_copied(summary: str, source: str) -> bool:
    st = " ".join(tokens(summary))
    return bool(st) and (" " + st + " ") in (" " + " ".join(tokens(source)) + " ")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "data" / "factsets"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-set", type=int, default=1500, help="records per set (about half label 1)")
    ap.add_argument("--max-docs", type=int, default=None, help="max documents loaded per origin (default: derived from --per-set)")
    ap.add_argument("--max-source-chars", type=int, default=4000)
    ap.add_argument("--site-packages", action="append", help="site-packages dir(s) for metadata/docstrings (default: project venv + pyenv)")
    args = ap.parse_args(argv)

    rng = random.Random(args.seed)
    n_pairs = args.per_set // 2
    cap = args.max_docs or max(60, int(n_pairs * 1.6))
    sites = site_dirs(args.site_packages)
    log(f"site-packages: {[str(s) for s in sites]}")

    docs: list[Doc] = []
    md = load_metadata(sites, cap, args.max_source_chars, random.Random(args.seed))
    log(f"metadata: {len(md)} docs ({sum(d.summary is not None for d in md)} with usable Summary)")
    ds = load_docstrings(sites, cap, args.max_source_chars, args.seed)
    log(f"docstrings: {len(ds)} docs")
    mp = load_manpages(cap, args.max_source_chars, args.seed)
    log(f"man pages: {len(mp)} docs ({sum(d.summary is not None for d in mp)} with usable NAME line)")
    cl = load_changelogs(min(cap, max(40, n_pairs // 3)), args.max_source_chars, args.seed)
    log(f"changelogs: {len(cl)} docs")
    docs = md + ds + mp + cl
    for d in docs:
        d.split = split_of(d.doc_id)
        d.sents = sentence_spans(d.body)
        d.cwords = content_words(d.body)

    b = Builder(docs, args.seed)
    log("entity model ready")
    ext = b.build_extractive(n_pairs)
    log(f"extractive: {len(ext)} records")
    ab = b.build_abstractive(n_pairs)
    log(f"abstractive: {len(ab)} records")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stats: dict = {"seed": args.seed, "site_packages": [str(s) for s in sites], "docs_loaded": Counter(d.origin for d in docs)}
    for name, recs in (("extractive", ext), ("abstractive", ab)):
        rng.shuffle(recs)
        prefix = "ext" if name == "extractive" else "abs"
        for i, r in enumerate(recs):
            r["id"] = f"{prefix}-{i:05d}"
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            for r in recs:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        st: dict = {
            "records": len(recs),
            "docs": len({r["doc_id"] for r in recs}),
            "by_label": Counter(str(r["label"]) for r in recs),
            "by_split": Counter(r["split"] for r in recs),
            "by_kind": Counter(r["kind"] for r in recs),
            "by_origin": Counter(r["origin"] for r in recs),
            "by_split_kind": {s: Counter(r["kind"] for r in recs if r["split"] == s) for s in ("dev", "test")},
            "by_split_origin": {s: Counter(r["origin"] for r in recs if r["split"] == s) for s in ("dev", "test")},
            "by_origin_kind": {o: Counter(r["kind"] for r in recs if r["origin"] == o) for o in sorted({r["origin"] for r in recs})},
            "edit_rules": {k: Counter((r["edit"] or {}).get("rule") for r in recs if r["kind"] == k) for k in sorted({r["kind"] for r in recs}) if k != "faithful"},
        }
        if name == "abstractive":
            st["copied"] = Counter(str(r.get("copied")) for r in recs if r["label"] == 0)
        stats[name] = st
    (out / "stats.json").write_text(json.dumps(stats, indent=1, sort_keys=True) + "\n")
    log(f"wrote {out}/extractive.jsonl ({len(ext)}), abstractive.jsonl ({len(ab)}), stats.json")
    for name in ("extractive", "abstractive"):
        st = stats[name]
        print(f"{name}: {st['records']} records / {st['docs']} docs; labels {dict(st['by_label'])}; splits {dict(st['by_split'])}")
        print(f"  kinds   {dict(st['by_kind'])}")
        print(f"  origins {dict(st['by_origin'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
