"""pytest plumbing for the signing matrix: options, one deployment per worker, progress lines and
the reports. The tests themselves are in test_matrix.py."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from interop.harness import matrix as matrix_mod  # noqa: E402
from interop.harness import minimum  # noqa: E402
from interop.harness import reports  # noqa: E402
from interop.harness.site import Site, VendorHsm, described_site_from_environment  # noqa: E402,E501

REPO = Path(__file__).resolve().parents[1]


def pytest_addoption(parser):
    group = parser.getgroup("signum matrix")
    group.addoption("--matrix", default=str(REPO / "matrix.yaml"), help="the matrix file")
    group.addoption("--platform", default=matrix_mod.current_platform(),
                    choices=matrix_mod.PLATFORMS, help="run the rows of this platform")
    group.addoption("--rows", default="", help="comma-separated row ids (default: all)")
    group.addoption("--columns", default="", help="signum,direct (default: both)")
    group.addoption("--shard", default="", help="i/N: run every N-th cell starting at the i-th")
    group.addoption("--reports", default=str(REPO / "reports"), help="where reports go")
    group.addoption("--vendor-module", default="", help="a vendor PKCS#11 module replacing SoftHSM2")
    group.addoption("--vendor-token", default="", help="the vendor token's label")
    group.addoption("--vendor-pin-file", default="", help="file holding the vendor token's PIN")
    group.addoption("--vendor-env", action="append", default=[],
                    help="NAME=VALUE the vendor module needs (repeatable)")


def _selected_cells(config):
    matrix = matrix_mod.load(config.getoption("matrix"))
    rows = {r for r in config.getoption("rows").split(",") if r}
    unknown = rows - {row.id for row in matrix.rows}
    if unknown:
        raise pytest.UsageError(f"--rows: no such row(s) {sorted(unknown)}")
    cells = matrix.cells(config.getoption("platform"), rows or None)
    columns = {c for c in config.getoption("columns").split(",") if c}
    if columns:
        cells = [cell for cell in cells if cell.column in columns]
    if config.getoption("shard"):
        cells = matrix_mod.shard(cells, config.getoption("shard"))
    return matrix, cells


def pytest_configure(config):
    try:
        config._signum_matrix, config._signum_cells = _selected_cells(config)
    except matrix_mod.MatrixError as error:
        raise pytest.UsageError(str(error)) from error
    workers = getattr(config.option, "numprocesses", None) or 0
    if config.getoption("vendor_module") and isinstance(workers, int) and workers > 1:
        raise pytest.UsageError(
            "a vendor token can hold one deployment's keys at a time (the direct column finds "
            "them by label): run vendor matrices with -n 1")
    if not hasattr(config, "workerinput"):  # the controller, or the only process
        config.pluginmanager.register(MatrixProgress(config), "signum-matrix-progress")


def pytest_generate_tests(metafunc):
    if "cell" in metafunc.fixturenames:
        cells = metafunc.config._signum_cells
        metafunc.parametrize("cell", cells, ids=[cell.id for cell in cells])


def _vendor(config):
    module = config.getoption("vendor_module")
    if not module:
        return None
    if not config.getoption("vendor_token") or not config.getoption("vendor_pin_file"):
        raise pytest.UsageError("--vendor-module needs --vendor-token and --vendor-pin-file")
    env = {}
    for item in config.getoption("vendor_env"):
        name, _, value = item.partition("=")
        env[name] = value
    return VendorHsm(module, config.getoption("vendor_token"),
                     config.getoption("vendor_pin_file"), env)


@pytest.fixture(scope="session")
def scratch_root():
    # Short on purpose: gpg-agent puts its sockets under the cells' GNUPGHOME.
    root = Path(tempfile.mkdtemp(prefix="sgi-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def site(request, scratch_root):
    """A freshly provisioned deployment for this worker, taken down at the end (or the running
    one $SIGNUM_MATRIX_SITE describes: the Windows job's, in WSL)."""
    described = described_site_from_environment()
    if described is not None:
        yield described
        return
    config = request.config
    algorithms = sorted({cell.algorithm.name for cell in config._signum_cells})
    deployment = Site(scratch_root / "deployment", keys=algorithms, vendor=_vendor(config))
    yield deployment
    deployment.close()


@pytest.fixture(scope="session")
def log_root(request):
    root = Path(request.config.getoption("reports")) / "logs"
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    record = getattr(item, "_signum_record", None)
    if record is not None and report.when == "call":
        report.user_properties.append(("signum_cell", json.dumps(record)))


class MatrixProgress:
    """Progress lines and reports, on the controller (or the only process without xdist)."""

    def __init__(self, config):
        self.config = config
        self.records = []
        self.total = len(config._signum_cells)
        self.start = time.monotonic()
        self.counts = None
        self.verdict = None
        self.scheduled = None
        self.seconds = 0.0

    def pytest_report_teststatus(self, report, config):
        """No progress dots for cells: each has its own progress line."""
        if report.when == "call" and "test_matrix.py::test_cell" in report.nodeid:
            if hasattr(report, "wasxfail"):
                return "xfailed", "", ""
            return report.outcome, "", ""
        return None

    def _scheduled(self, node_ids):
        """Cells this run schedules after -k/--deselect; None when it collected no matrix test
        (the unit tests under interop/tests share this conftest). An empty parameter set still
        collects one (skipped) test_cell item, so a run given no cells is judged too."""
        cells = [n for n in node_ids if "test_matrix.py::test_cell" in n]
        return min(len(cells), len(self.config._signum_cells)) if cells else None

    def pytest_xdist_node_collection_finished(self, node, ids):
        self.total = len(ids)
        self.scheduled = self._scheduled(ids)

    def pytest_collection_finish(self, session):
        """Without xdist (with it, the controller collects nothing and the workers report)."""
        if getattr(self.config.option, "dist", "no") == "no":
            self.scheduled = self._scheduled([item.nodeid for item in session.items])

    def pytest_runtest_logreport(self, report):
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name != "signum_cell":
                continue
            record = json.loads(value)
            self.records.append(record)
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reason = (record["reason"].splitlines() or [""])[0][:90]
                reporter.write_line(
                    f"[{len(self.records)}/{self.total}] {record['row']} {record['algorithm']} "
                    f"{record['column']}: {record['status'].upper()} {record['seconds']:.1f}s"
                    + (f"  {reason}" if reason else ""))

    def pytest_sessionfinish(self, session, exitstatus):
        """Reports, and the run's verdict on its minimum (interop/harness/minimum.py): a run that
        executed no cell, or fewer than its minimum, fails, whatever pytest thought of it."""
        if self.scheduled is None and not self.records:
            return  # not a matrix run
        order = {cell.id: n for n, cell in enumerate(self.config._signum_cells)}
        records = sorted(self.records, key=lambda r: order.get(r["id"], 1 << 30))
        self.seconds = time.monotonic() - self.start
        platform = self.config.getoption("platform")
        scheduled = self.scheduled if self.scheduled is not None else self.total
        self.verdict = minimum.judge(self.config._signum_matrix, platform, records, scheduled)
        self.counts = reports.write_all(records, self.config._signum_matrix, platform,
                                        self.seconds, Path(self.config.getoption("reports")),
                                        verdict=self.verdict)
        if not self.verdict.ok and session.exitstatus in (pytest.ExitCode.OK,
                                                          pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        if self.counts is None:
            return
        out = config.getoption("reports")
        terminalreporter.write_line(
            f"signum matrix: {sum(self.counts.values())} cells in {self.seconds:.0f}s — " +
            ", ".join(f"{n} {s}" for s, n in self.counts.items()) +
            f"; reports in {out}/matrix.{{md,html,json}}" +
            (f"; repro scripts in {out}/repro/" if self.counts["fail"] else ""))
        terminalreporter.write_line(f"signum matrix: {self.verdict.line()}")
        if not self.verdict.ok:
            terminalreporter.write_line(f"signum matrix: FAIL: {self.verdict.reason}", red=True,
                                        bold=True)
