"""The image installs what it copies: infra/Dockerfile's COPY lines (with .dockerignore) give a tree, which
is built into a wheel and installed into a fresh venv, where `mailpulse --help` runs and every
subcommand's entry point imports, from outside this checkout.

No Docker engine here, so the image's own `pip install .` is played by pip: the project is built from
exactly the copied files. The dependencies are not downloaded again: the fresh venv reads them from this
environment's site-packages (placed after its own, without running this environment's .pth files, so the
editable install of this checkout stays out), and the installed project's requirements are checked
against their versions."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]  # the build context of compose (`context: ..`)
DOCKERFILE = ROOT / "infra" / "Dockerfile"


@dataclass(frozen=True)
class Copy:
    sources: list[str]
    dest: PurePosixPath  # absolute, in the image
    into_dir: bool  # the destination is a directory (`dir/`, or several sources)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def image_layout(text: str) -> tuple[list[Copy], PurePosixPath]:
    """The COPY instructions (destinations made absolute) and the directory `pip install .` runs in."""
    workdir = PurePosixPath("/")
    copies: list[Copy] = []
    installed_in = None
    for word, rest in instructions(text):
        if word == "WORKDIR":
            workdir = workdir / rest
        elif word in ("COPY", "ADD"):
            args = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
            if any(a.startswith("--from") for a in args):
                continue  # from another stage: not from the build context
            paths = [a for a in args if not a.startswith("--")]
            dest = paths[-1]
            into_dir = dest.endswith("/") or dest in (".", "..") or len(paths) > 2
            copies.append(Copy(paths[:-1], workdir / dest, into_dir))
        elif word == "RUN" and re.search(r"\bpip install\b.*\s\.(\s|$|&)", rest):
            installed_in = workdir
    assert installed_in is not None, "the Dockerfile installs the project with `pip install .`"
    return copies, installed_in


def dockerignore_patterns(root: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """(exclude, pattern) of .dockerignore, in order; a later match wins, `!` re-includes."""
    path = root / ".dockerignore"
    patterns = []
    for raw in path.read_text().splitlines() if path.exists() else []:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        glob = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(glob):
            if glob.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif glob.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif glob[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif glob[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(glob[i]), i + 1
        patterns.append((exclude, re.compile(regex + "(?:/.*)?")))  # a directory excludes its contents
    return patterns


def ignored(relative: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    verdict = False
    for exclude, pattern in patterns:
        if pattern.fullmatch(relative):
            verdict = exclude
    return verdict


def copy_context(context: Path, dockerfile: Path, image: Path) -> Path:
    """Lay out under ``image`` what the Dockerfile copies from ``context``; the directory it installs."""
    copies, installed_in = image_layout(dockerfile.read_text())
    patterns = dockerignore_patterns(context)

    def place(source: Path, target: Path) -> None:
        relative = source.relative_to(context).as_posix()
        if ignored(relative, patterns):
            return
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            for child in sorted(source.iterdir()):
                place(child, target / child.name)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)

    for copy in copies:
        for name in copy.sources:
            source = context / name
            assert source.exists(), f"COPY {name}: not in the build context"
            dest = image / copy.dest.relative_to("/")
            # A directory's contents go into the destination; a file goes into it when it is a directory.
            place(source, dest / source.name if source.is_file() and copy.into_dir else dest)
    return image / installed_in.relative_to("/")


def run(argv: list[str | Path], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    # No PYTHONPATH and no MAILPULSE_* settings: nothing of this checkout or this test's environment.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("MAILPULSE_")}
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


# Run in the fresh venv: imports what every subcommand's function imports (cli.py imports the heavy
# modules inside them, so that `mailpulse --help` stays fast), and checks the requirements' versions.
PROBE = """
import argparse, ast, importlib, sys
from importlib.metadata import distribution, version
from packaging.requirements import Requirement
import mailpulse.cli as cli

assert cli.__file__.startswith(sys.prefix), f"mailpulse imported from {cli.__file__}, not the fresh venv"
unmet = []
for text in distribution("mailpulse").requires or []:
    req = Requirement(text)
    if req.marker is None or req.marker.evaluate({"extra": ""}):
        if version(req.name) not in req.specifier:
            unmet.append(f"{req.name} {version(req.name)} not {req.specifier}")
assert not unmet, unmet
[sub] = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
functions = {name: parser.get_default("func").__name__ for name, parser in sub.choices.items()}
tree = ast.parse(open(cli.__file__).read())
bodies = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
for command, function in sorted(functions.items()):
    for node in ast.walk(bodies[function]):
        if isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module)
            for alias in node.names:
                getattr(module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
    print("imported", command)
"""


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the project installed from the image's files; its bin/ directory."""
    work = tmp_path_factory.mktemp("image")
    app = copy_context(ROOT, DOCKERFILE, work / "image")
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", work / "wheels", app], work)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    venv = work / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", venv], work)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    [wheel] = (work / "wheels").glob("mailpulse-*.whl")
    installed = run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel], work
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    # Only now (pip must not see this environment's editable mailpulse): the dependencies, after the
    # venv's own site-packages.
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], work)
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site.stdout.strip()) / "zz_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return venv / "bin"


def test_the_copied_tree_is_what_the_dockerfile_says(tmp_path: Path) -> None:
    context = tmp_path / "context"
    for name in ("pkg/a.py", "pkg/__pycache__/a.pyc", "pkg/sub/b.py", "README.md", "other/c.py", ".venv/x"):
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        (context / name).write_text(name)
    (context / ".dockerignore").write_text("**/__pycache__\n.venv\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM python:3.11-slim\nWORKDIR /app\nCOPY README.md ./\nCOPY pkg ./pkg\n"
        "RUN pip install --no-cache-dir . && \\\n    useradd x\n"
    )
    app = copy_context(context, dockerfile, tmp_path / "image")
    assert app == tmp_path / "image" / "app"
    copied = sorted(p.relative_to(app).as_posix() for p in app.rglob("*") if p.is_file())
    assert copied == ["README.md", "pkg/a.py", "pkg/sub/b.py"]


def test_the_image_installs_a_mailpulse_that_runs_every_role(image_venv: Path, tmp_path: Path) -> None:
    helped = run([image_venv / "mailpulse", "--help"], tmp_path)
    assert helped.returncode == 0, helped.stderr[-3000:]
    assert "ingest" in helped.stdout and "dashboard" in helped.stdout
    probed = run([image_venv / "python", "-c", PROBE], tmp_path)
    assert probed.returncode == 0, probed.stderr[-3000:]
    for role in ("ingest", "process", "poll", "alerts", "dashboard", "migrate", "run", "demo"):
        assert f"imported {role}" in probed.stdout.splitlines()


def test_the_installed_dashboard_has_its_page(image_venv: Path, tmp_path: Path) -> None:
    """Package data (the dashboard's static files) is in the image too, not only the modules."""
    source = sorted(p.name for p in (ROOT / "analytics" / "static").iterdir() if p.is_file())
    listed = run(
        [
            image_venv / "python",
            "-c",
            "import importlib.resources as r; print(sorted(p.name for p in (r.files('analytics') / 'static')"
            ".iterdir() if p.is_file()))",
        ],
        tmp_path,
    )
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert listed.stdout.strip() == str(source)
