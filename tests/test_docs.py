"""The README, docs, results, sources, benchmarks and tests describe the project as it is: no development-process
words, result files named by what they hold, every cited result file present, a README a newcomer reads."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import REPO

PROCESS_WORDS = re.compile(  # the pattern line itself is the one line this test does not scan
    r"\bsessions? ?[0-9]+|\bthe lead\b|\bthe helpers?\b|\bissues? ?#?[0-9]+|stretch goal|\bidle[0-9]", re.I)
RUN_NAMED = re.compile(r"session|idle|_[a-d]\.json$|final[0-9]*\.|run[0-9]|lowload|loaded[0-9]")
TEXT_SUFFIXES = {".md", ".json", ".csv", ".log", ".txt", ".py", ".sh", ".toml", ".yaml", ".yml", ".cfg"}
README_MAX_LINES = 150


def _text_files(*roots: str) -> list[Path]:
    out = []
    for root in roots:
        path = REPO / root
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        out += [p for p in files if p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts]
    return out


def test_no_process_words():
    hits = []
    for path in _text_files("README.md", "docs", "results", "benchmarks", "tests", "src/tnmat"):
        for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            if "PROCESS_WORDS = re.compile" in line or "r\"\\bsessions? ?[0-9]+" in line:
                continue
            if m := PROCESS_WORDS.search(line):
                hits.append(f"{path.relative_to(REPO)}:{lineno}: {m.group(0)!r}")
    assert not hits, "development-process words (say what is true now; history lives in git):\n" + "\n".join(hits)


def test_result_files_named_by_what_they_hold():
    named_by_run = [str(p.relative_to(REPO)) for p in (REPO / "results").rglob("*")
                    if p.is_file() and RUN_NAMED.search(p.name)]
    assert not named_by_run, f"result files named after the run that made them: {named_by_run}"


def test_cited_result_files_exist():
    """Every ``results/...`` file the README and docs/ cite is committed (a rename cannot leave a stale
    reference)."""
    missing = []
    cited = re.compile(r"(?<![\w./-])results/[\w./-]+\.(?:json|md|csv|log|png|gz|npz)\b")
    for path in _text_files("README.md", "docs"):
        for ref in cited.findall(path.read_text()):
            if not (REPO / ref).exists() and not (path.parent / ref).exists():  # repository or page relative
                missing.append(f"{path.relative_to(REPO)}: {ref}")
    assert not missing, "cited result files that are not in the repository:\n" + "\n".join(missing)


def test_readme_is_short():
    n = len((REPO / "README.md").read_text().splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; keep it <= {README_MAX_LINES}, details go to docs/"
