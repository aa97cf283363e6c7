"""Packaging facts: histolib imports fast without heavy dependencies, and the two
environment descriptions (pyproject.toml for pip, environment.yml for conda) agree."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

# conda package names that differ from their PyPI names
CONDA_TO_PYPI = {"pytorch": "torch"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def test_import_is_fast_and_light():
    code = (
        "import sys, time; t = time.perf_counter(); import histolib; dt = time.perf_counter() - t;"
        "heavy = [m for m in ('torch', 'matplotlib', 'ipywidgets', 'jupyter_client', 'IPython') if m in sys.modules];"
        "print(dt); print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    seconds, heavy = float(out[0]), out[1]
    assert heavy == "", f"`import histolib` pulled in {heavy}"
    assert seconds < 2.0, f"`import histolib` took {seconds:.2f} s"


def test_lower_layers_do_not_import_drawing_libraries():
    code = (
        "import sys; import histolib.images, histolib.data, histolib.histogram;"
        "print(','.join(m for m in ('matplotlib', 'ipywidgets', 'jupyter_client') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"lower layers imported {out}"


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_deps = {_name(r) for r in project["dependencies"]}
    pip_deps |= {_name(r) for r in project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip_section = set(), []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_section += dep.get("pip", [])
        else:
            conda.add(CONDA_TO_PYPI.get(_name(dep), _name(dep)))
    conda -= {"python", "pip"}
    assert conda == pip_deps, f"only in environment.yml: {conda - pip_deps}; only in pyproject: {pip_deps - conda}"
    assert any(p.strip() in ("-e .", "-e ./", ".") for p in pip_section), "environment.yml must pip-install the package"
    py = [d for d in env["dependencies"] if isinstance(d, str) and _name(d) == "python"]
    assert py and "3.10" in py[0], "environment.yml should ask for python>=3.10 like pyproject"


def test_ci_runs_the_readme_test_command():
    run = [l.strip() for l in (ROOT / ".ci" / "run").read_text().splitlines()
           if l.strip() and not l.strip().startswith(("#", "set ", "cd "))]
    readme = (ROOT / "README.md").read_text()
    assert run[-1] == "make test"
    assert "make test" in readme and "make lab" in readme
