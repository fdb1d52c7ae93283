"""The README's commands are the ones CI runs, and its Python example works."""

from __future__ import annotations

import re

import pytest

from conftest import REPO


def _blocks(lang: str) -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_readme_test_command_is_what_ci_runs():
    test_cmd = _blocks("bash")[1].strip()
    ci = (REPO / ".ci" / "run").read_text()
    assert test_cmd in ci, "the README's test command must be exactly the command in .ci/run"
    main_cmd = _blocks("bash")[0].strip()
    assert main_cmd.startswith("python3 -m venv .venv") and "pip install torch==2.13.0" in main_cmd


@pytest.mark.slow
def test_readme_python_example_runs(nmd18_path, monkeypatch):
    code = _blocks("python")[0].replace('"../shared/data/nmd18"', repr(str(nmd18_path)))
    monkeypatch.chdir(REPO)
    exec(compile(code, "README.md", "exec"), {})
