"""Parsing the workflow costs no torch import: a dry run on the test configuration leaves torch out of
``sys.modules`` (every dry run and every job start would pay for it)."""

import subprocess
import sys

import pytest
from workflow_helpers import REPOSITORY, SNAKEFILE, snakemake_environment

pytestmark = pytest.mark.workflow

# Runs Snakemake's command line in this interpreter, records where torch was first imported from (an
# audit hook sees every first import), and reports it after the dry run.
PROBE = """
import sys, traceback
first = []

def record(event, arguments):
    if event == "import" and arguments[0] == "torch" and not first:
        ours = [frame for frame in traceback.format_stack() if "/sie/" in frame or ".smk" in frame]
        first.append("".join(ours))

sys.addaudithook(record)
from snakemake.cli import main
try:
    main(sys.argv[1:])
    code = 0
except SystemExit as exit:
    code = exit.code or 0
if "torch" in sys.modules:
    print("torch imported by:\\n" + (first[0] if first else "(unknown)"), file=sys.stderr)
    sys.exit(3)
sys.exit(code)
"""


def test_dry_run_imports_no_torch(tmp_path):
    arguments = ["--snakefile", str(SNAKEFILE), "--directory", str(tmp_path), "-n", "--cores", "1"]
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *arguments, "--configfile", str(REPOSITORY / "configs/test.yaml")],
        capture_output=True,
        text=True,
        env=snakemake_environment(),
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-6000:]
    assert "This was a dry-run" in result.stdout
