"""The README's "Use it from your own training loop" example runs as printed."""

import re
import tempfile
from pathlib import Path

import sampletune.api

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Use it from your own training loop"


def readme_example() -> str:
    text = README.read_text()
    assert SECTION in text, f"README.md lost its section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the section should hold one python example"
    return blocks[0]


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: str(tmp_path))
    scope = {"__name__": "readme_example"}
    exec(compile(readme_example(), str(README), "exec"), scope)
    assert (tmp_path / "sampler.json").exists() and (tmp_path / "schedule.npz").exists()
    study = scope["study"]  # 10 scored trials, and any proposal with no usable sampler
    assert study.best.state == "ok" and len(study.trials) >= 10
    assert sum(t.error is None for t in study.trials) == 10
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"uniform 0\.\d+  swift \(\S+\) 0\.\d+", lines[0]), lines
    assert re.fullmatch(r"p-SGD replayed 0\.\d+  selective backprop 0\.\d+", lines[1]), lines


def test_api_exports_exist():
    assert all(hasattr(sampletune.api, name) for name in sampletune.api.__all__)
