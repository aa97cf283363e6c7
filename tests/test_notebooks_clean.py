"""The committed notebooks are clean: executed in order, no errors, kernel python3, no widget state.

nbval (run by `make test`) re-executes them; this test checks what is committed, so
readers on GitHub see outputs from a full, successful run. Fix with `make notebooks`.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_notebooks_are_numbered():
    assert NOTEBOOKS, "no notebooks found"
    for nb in NOTEBOOKS:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", nb.name), f"{nb.name}: expected NN_topic.ipynb"
    numbers = [int(nb.name[:2]) for nb in NOTEBOOKS]
    assert len(set(numbers)) == len(numbers), "two notebooks share a number"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_clean(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3", "kernel must be python3"
    assert not nb["metadata"].get("widgets"), "widget state is stored; run `make notebooks`"
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    assert code, "notebook has no code"
    counts = [c.get("execution_count") for c in code]
    assert None not in counts, "some code cells were not executed; run `make notebooks`"
    assert counts == list(range(1, len(counts) + 1)), f"execution counts out of order: {counts}"
    for c in code:
        for out in c.get("outputs", []):
            assert out.get("output_type") != "error", f"error output in cell: {''.join(c['source'])[:80]}"
    # every notebook states on top how long it takes on a CPU
    first = "".join(nb["cells"][0]["source"])
    assert re.search(r"CPU", first) and re.search(r"\d+\s*(s|sec|seconds|min|minutes)\b", first), \
        "the first cell must state how long the notebook takes on a CPU"
    # every notebook checks what it teaches
    assert any("assert" in "".join(c["source"]) for c in code), "notebook has no assert"
