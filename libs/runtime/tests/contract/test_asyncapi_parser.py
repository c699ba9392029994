"""docs/asyncapi.yaml is valid AsyncAPI 3.0 for the reference parser (`@asyncapi/parser` on node).

The parser is installed once into `.cache/asyncapi-parser-<version>/` of the repository
and reused by later runs; without node on PATH the test is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from runtime_testkit.cli import REPO

PARSER_VERSION = "3.6.6"
CACHE = REPO / ".cache" / f"asyncapi-parser-{PARSER_VERSION}"
COMMITTED = REPO / "docs" / "asyncapi.yaml"

# Prints one JSON line per diagnostic; exit 1 when the parser returns no document.
VALIDATE_JS = """
const fs = require("fs");
const { Parser } = require("@asyncapi/parser");
new Parser().parse(fs.readFileSync(process.argv[1], "utf8")).then(({ document, diagnostics }) => {
  for (const d of diagnostics) {
    console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message,
                                 path: d.path.join(".") }));
  }
  process.exit(document ? 0 : 1);
});
"""
ERROR, WARNING = 0, 1


def parser_modules() -> Path:
    """node_modules holding the parser, installed on first use (atomically, for parallel runs)."""
    modules = CACHE / "node_modules"
    if (modules / "@asyncapi" / "parser" / "package.json").exists():
        return modules
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not on PATH: cannot install @asyncapi/parser")
    staging = CACHE.with_name(f"{CACHE.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    done = subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(staging),
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            f"@asyncapi/parser@{PARSER_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"npm install @asyncapi/parser failed:\n{done.stderr}"
    try:
        staging.rename(CACHE)
    except OSError:
        # Another run installed it first: use theirs.
        shutil.rmtree(staging, ignore_errors=True)
    return modules


def validate(path: Path) -> tuple[int, list[dict[str, Any]]]:
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, "-e", VALIDATE_JS, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NODE_PATH": str(parser_modules())},
    )
    assert not done.stderr.strip(), done.stderr
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


pytestmark = pytest.mark.skipif(
    shutil.which("node") is None,
    reason="node is not on PATH: the AsyncAPI document is validated where node is installed",
)


def test_committed_document_is_valid_asyncapi() -> None:
    code, diagnostics = validate(COMMITTED)

    problems = [d for d in diagnostics if d["severity"] in (ERROR, WARNING)]
    assert problems == []
    assert code == 0


def test_the_parser_rejects_a_broken_document(tmp_path: Path) -> None:
    # Proves the validation above has teeth: an operation pointing at a missing channel.
    doc = yaml.safe_load(COMMITTED.read_text())
    del doc["channels"]["tradeExecuted"]
    broken = tmp_path / "asyncapi.yaml"
    broken.write_text(yaml.safe_dump(doc, sort_keys=False))

    code, diagnostics = validate(broken)

    assert code == 1
    assert any(
        d["severity"] == ERROR and "tradeExecuted" in d["message"] + d["path"] for d in diagnostics
    ), diagnostics
