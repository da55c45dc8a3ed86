"""The generated CI workflow (ci/workflows.py -> .github/workflows/signum.yml), read as GitHub would
run it: no job can pass by testing nothing, and the Windows job has what a hosted windows-2025
runner needs (issue 17)."""

import re
import subprocess
from pathlib import Path

import yaml

from interop.harness import matrix as matrix_mod

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "signum.yml"


def jobs() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"]


def runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def step_named(job: dict, words: str) -> dict:
    found = [step for step in job["steps"] if words in step.get("name", "")]
    assert len(found) == 1, f"no single step named like `{words}`"
    return found[0]


def test_every_platform_job_runs_the_harness_that_fails_on_too_few_executed_cells():
    matrix = matrix_mod.load(REPO / "matrix.yaml")
    for platform in matrix_mod.PLATFORMS:
        platform_jobs = [job for name, job in jobs().items()
                         if name.startswith(f"matrix-{platform}")]
        assert platform_jobs, platform
        for job in platform_jobs:
            # the runner (interop/conftest.py; ci/matrix runs it) judges the run on matrix.yaml's
            # minimum
            assert re.search(rf"(-m interop\.harness run|ci/matrix) --platform={platform}\b",
                             runs(job))
            # and nothing downgrades its exit status
            assert "continue-on-error" not in job and "|| true" not in runs(job)
        assert platform in matrix.expected_min_cells, platform


def test_ci_matrix_passes_the_runners_exit_status_on():
    script = (REPO / "ci" / "matrix").read_text()
    assert "-m interop.harness run \"$@\"\nrc=$?" in script and script.rstrip().endswith("exit $rc")


def test_the_linux_shards_are_checked_together():
    all_jobs = jobs()
    shards = sorted(name for name in all_jobs if re.fullmatch(r"matrix-linux-\d+", name))
    totals = all_jobs["totals-linux"]
    assert sorted(totals["needs"]) == shards and totals["if"] == "always()"
    command = step_named(totals, "expected_min_cells")
    assert command["shell"] == "bash"  # -eo pipefail: tee keeps the exit status
    assert "-m interop.harness --platform=linux totals" in command["run"]
    for name in shards:
        assert f"shards/{name}/matrix.json" in command["run"]
        upload = [s for s in all_jobs[name]["steps"] if "upload-artifact" in s.get("uses", "")]
        assert upload[0]["with"]["name"] == name and upload[0]["with"]["path"] == "reports/"


def test_the_workflow_is_current():
    check = subprocess.run(["/usr/bin/python3", str(REPO / "ci" / "workflows.py"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
