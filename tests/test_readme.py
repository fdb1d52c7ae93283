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


def _headline_mae() -> str:
    """The relaxed test MAE of the headline table's default row (meV/cation, as printed)."""
    text = (REPO / "README.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| **TTN") and "(the default)" in line)
    return re.search(r"\*\*([0-9.]+) / [0-9.]+\*\*", row).group(1)


def test_readme_python_example_prints_the_headline_comment():
    """The example's closing comment states the headline number (the slow test checks that it prints it)."""
    code = _blocks("python")[0]
    assert f"# test MAE {_headline_mae()} meV/cation" in code
    assert "solver=" not in code and "loss=" not in code, "the example shows the defaults, not a solver/loss"


@pytest.mark.slow
def test_readme_python_example_reproduces_the_headline(nmd18_path, monkeypatch, capsys):
    """The README's Python example prints the headline MAE to the digits the README shows (minutes)."""
    code = _blocks("python")[0].replace('"../shared/data/nmd18"', repr(str(nmd18_path)))
    monkeypatch.chdir(REPO)
    exec(compile(code, "README.md", "exec"), {})
    printed = re.search(r"test MAE ([0-9.]+) meV/cation", capsys.readouterr().out)
    assert printed, "the example printed no test MAE"
    assert printed.group(1) == _headline_mae()


def _tnmat_commands(path=REPO / "README.md") -> list[str]:
    """Every ``tnmat ...`` command line of a Markdown file's code (fenced and indented blocks, not prose),
    continuations joined and trailing comments dropped."""
    out, cmd, fenced = [], None, False
    for line in path.read_text().splitlines():
        text = line.strip()
        if text.startswith("```"):
            fenced = not fenced
            continue
        if cmd is not None:
            cmd += " " + text.rstrip("\\").strip()
        elif text.startswith("tnmat ") and (fenced or line.startswith("    ")):
            cmd = text.rstrip("\\").strip()
        else:
            continue
        if not text.endswith("\\"):
            out.append(cmd.split(" #")[0].strip())
            cmd = None
    return out


def test_readme_tnmat_commands_parse():
    """The CLI accepts every tnmat command the README and docs/ show (so a renamed option cannot leave the README
    stale); running them is the job of the tests of each subcommand and of CI's main job."""
    import shlex

    from tnmat.cli import build_parser

    commands = _tnmat_commands()
    assert len(commands) >= 5, commands  # the quick-start block
    for page in sorted((REPO / "docs").rglob("*.md")):  # the command reference and the detailed results
        commands += _tnmat_commands(page)
    parser = build_parser()
    for cmd in commands:
        argv = shlex.split(cmd)[1:]
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"README command rejected by the CLI: {cmd}")
        assert callable(args.func), cmd
