"""matrix.yaml: loading, validation and expansion into cells (row x algorithm x column).

The schema is documented in docs/matrix.md. Loading is strict: an unknown field or a bad value is
an error naming the row, because a typo in an expectation would otherwise silently turn an
expected failure into a real one (or hide a real one).
"""

from __future__ import annotations

import dataclasses
import platform as _platform
import re
import shutil
import os
from pathlib import Path
from typing import Optional

import yaml

PLATFORMS = ("linux", "windows", "macos")
INTERFACES = ("pkcs11", "ksp", "csp", "ctk")
COLUMNS = ("signum", "direct")
EXPECTED_STATUSES = ("skip", "xfail", "flaky")
SHELLS = ("bash", "pwsh", "cmd")
TOP_LEVEL_FIELDS = {"version", "algorithms", "rows", "expected_min_cells"}
ROW_FIELDS = {
    "id", "tool", "artifact", "interface", "platform", "algorithms", "columns", "hash", "requires",
    "install", "prepare", "sign", "verify", "expect", "timeout", "shell", "notes",
}
EXPECT_FIELDS = {"algorithms", "columns", "status", "reason", "bug"}
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class MatrixError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Algorithm:
    name: str      # e.g. rsa-2048; also the key's label in the demo deployment
    key_type: str  # rsa | ec
    bits: int      # modulus bits or curve size


@dataclasses.dataclass(frozen=True)
class Expectation:
    status: str
    reason: str
    bug: str = ""
    algorithms: tuple = ()
    columns: tuple = ()

    def applies(self, algorithm: str, column: str) -> bool:
        return ((not self.algorithms or algorithm in self.algorithms)
                and (not self.columns or column in self.columns))


@dataclasses.dataclass(frozen=True)
class Row:
    id: str
    tool: str
    artifact: str
    interface: str
    platform: str
    algorithms: tuple
    columns: tuple
    hashes: dict
    required_commands: tuple
    required_env: tuple
    install: dict
    prepare: str
    sign: str
    verify: str
    expectations: tuple
    timeout: int
    shell: str
    notes: str

    def hash_for(self, algorithm: str) -> str:
        return self.hashes.get(algorithm, self.hashes.get("default", "sha256"))

    def expectation_for(self, algorithm: str, column: str) -> Optional[Expectation]:
        for expectation in self.expectations:
            if expectation.applies(algorithm, column):
                return expectation
        return None

    def missing_requirements(self, environ=os.environ) -> list:
        """What is not installed here (commands not on PATH, variables not set)."""
        # The row's shell too: a pwsh row on a machine without PowerShell is a skip, not a failure.
        commands = self.required_commands + ((self.shell,) if self.shell not in
                                             self.required_commands else ())
        missing = [f"command `{c}`" for c in commands if shutil.which(c) is None]
        missing += [f"variable ${v}" for v in self.required_env if not environ.get(v)]
        return missing


@dataclasses.dataclass(frozen=True)
class Cell:
    row: Row
    algorithm: Algorithm
    column: str

    @property
    def id(self) -> str:
        return f"{self.row.id}.{self.algorithm.name}.{self.column}"

    @property
    def hash(self) -> str:
        return self.row.hash_for(self.algorithm.name)

    @property
    def expectation(self) -> Optional[Expectation]:
        return self.row.expectation_for(self.algorithm.name, self.column)


@dataclasses.dataclass(frozen=True)
class Matrix:
    path: Path
    algorithms: dict  # name -> Algorithm
    rows: tuple
    # platform -> the fewest cells a run of its whole matrix must execute (interop/harness/minimum.py)
    expected_min_cells: dict = dataclasses.field(default_factory=dict)

    def row(self, row_id: str) -> Row:
        for row in self.rows:
            if row.id == row_id:
                return row
        raise MatrixError(f"{self.path}: no row `{row_id}`")

    def cells(self, platform: str, rows: Optional[set] = None) -> list:
        """Every cell of the rows for `platform`, in file order."""
        result = []
        for row in self.rows:
            if row.platform != platform or (rows and row.id not in rows):
                continue
            for name in row.algorithms:
                for column in row.columns:
                    result.append(Cell(row, self.algorithms[name], column))
        return result

    def other_platform_rows(self, platform: str) -> list:
        return [row for row in self.rows if row.platform != platform]


def current_platform() -> str:
    system = _platform.system().lower()
    return {"darwin": "macos"}.get(system, system)


def shard(cells: list, spec: str) -> list:
    """`i/N` (1-based): every N-th cell starting at i, so each shard gets a mix of slow and fast rows."""
    match = re.fullmatch(r"(\d+)/(\d+)", spec or "")
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise MatrixError(f"--shard wants i/N with 1 <= i <= N, got `{spec}`")
    index, count = int(match.group(1)) - 1, int(match.group(2))
    return [cell for n, cell in enumerate(cells) if n % count == index]


def _fail(where: str, message: str):
    raise MatrixError(f"{where}: {message}")


def _string_list(where: str, value, field: str) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        _fail(where, f"`{field}` must be a list of strings")
    return tuple(value)


def _parse_row(raw: dict, algorithms: dict, where: str) -> Row:
    if not isinstance(raw, dict):
        _fail(where, "a row must be a mapping")
    unknown = set(raw) - ROW_FIELDS
    if unknown:
        _fail(where, f"unknown field(s) {sorted(unknown)}")
    for field in ("id", "tool", "interface", "platform", "algorithms", "sign", "verify"):
        if field not in raw:
            _fail(where, f"missing `{field}`")
    row_id = raw["id"]
    if not isinstance(row_id, str) or not ID_PATTERN.match(row_id):
        _fail(where, f"bad id `{row_id}` (lower-case letters, digits and '-')")
    where = f"{where} ({row_id})"
    if raw["interface"] not in INTERFACES:
        _fail(where, f"interface must be one of {INTERFACES}")
    if raw["platform"] not in PLATFORMS:
        _fail(where, f"platform must be one of {PLATFORMS}")
    row_algorithms = _string_list(where, raw["algorithms"], "algorithms")
    for name in row_algorithms:
        if name not in algorithms:
            _fail(where, f"unknown algorithm `{name}` (known: {sorted(algorithms)})")
    default_columns = COLUMNS if raw["interface"] == "pkcs11" else ("signum",)
    columns = _string_list(where, raw.get("columns"), "columns") or default_columns
    for column in columns:
        if column not in COLUMNS:
            _fail(where, f"unknown column `{column}`")
        if column == "direct" and raw["interface"] != "pkcs11":
            _fail(where, "only PKCS#11 rows have a `direct` column")
    hashes = raw.get("hash") or {}
    if isinstance(hashes, str):
        hashes = {"default": hashes}
    if not isinstance(hashes, dict):
        _fail(where, "`hash` must be a name or a mapping algorithm -> hash")
    requires = raw.get("requires") or {}
    if not isinstance(requires, dict) or set(requires) - {"commands", "env"}:
        _fail(where, "`requires` takes `commands` and `env`")
    install = raw.get("install") or {}
    if not isinstance(install, dict) or set(install) - set(PLATFORMS):
        _fail(where, f"`install` maps a platform {PLATFORMS} to a hint")
    expectations = []
    for n, item in enumerate(raw.get("expect") or []):
        ewhere = f"{where} expect[{n}]"
        if not isinstance(item, dict) or set(item) - EXPECT_FIELDS:
            _fail(ewhere, f"fields are {sorted(EXPECT_FIELDS)}")
        if item.get("status") not in EXPECTED_STATUSES:
            _fail(ewhere, f"status must be one of {EXPECTED_STATUSES}")
        if not item.get("reason"):
            _fail(ewhere, "an expectation needs a `reason`")
        expect_algorithms = _string_list(ewhere, item.get("algorithms"), "algorithms")
        for name in expect_algorithms:
            if name not in row_algorithms:
                _fail(ewhere, f"algorithm `{name}` is not one of the row's")
        expect_columns = _string_list(ewhere, item.get("columns"), "columns")
        for column in expect_columns:
            if column not in columns:
                _fail(ewhere, f"column `{column}` is not one of the row's")
        expectations.append(Expectation(item["status"], str(item["reason"]).strip(),
                                        str(item.get("bug", "")), expect_algorithms,
                                        expect_columns))
    shell = raw.get("shell", "bash")
    if shell not in SHELLS:
        _fail(where, f"shell must be one of {SHELLS}")
    timeout = raw.get("timeout", 120)
    if not isinstance(timeout, int) or not 1 <= timeout <= 1800:
        _fail(where, "timeout must be 1..1800 seconds")
    return Row(
        id=row_id, tool=str(raw["tool"]), artifact=str(raw.get("artifact", "")),
        interface=raw["interface"], platform=raw["platform"], algorithms=row_algorithms,
        columns=columns, hashes=dict(hashes),
        required_commands=_string_list(where, requires.get("commands"), "requires.commands"),
        required_env=_string_list(where, requires.get("env"), "requires.env"),
        install=dict(install), prepare=str(raw.get("prepare", "")), sign=str(raw["sign"]),
        verify=str(raw["verify"]), expectations=tuple(expectations), timeout=timeout,
        shell=shell, notes=str(raw.get("notes", "")).strip())


def load(path) -> Matrix:
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise MatrixError(f"{path}: {error}") from error
    if not isinstance(document, dict) or document.get("version") != 1:
        raise MatrixError(f"{path}: expected a mapping with `version: 1`")
    unknown = set(document) - TOP_LEVEL_FIELDS
    if unknown:
        raise MatrixError(f"{path}: unknown top-level field(s) {sorted(unknown)}")
    algorithms = {}
    for name, spec in (document.get("algorithms") or {}).items():
        if not isinstance(spec, dict) or spec.get("type") not in ("rsa", "ec") or not isinstance(
                spec.get("bits"), int):
            raise MatrixError(f"{path}: algorithm `{name}` needs type rsa|ec and bits")
        algorithms[name] = Algorithm(name, spec["type"], spec["bits"])
    rows, seen = [], set()
    for n, raw in enumerate(document.get("rows") or []):
        row = _parse_row(raw, algorithms, f"{path}: rows[{n}]")
        if row.id in seen:
            raise MatrixError(f"{path}: duplicate row id `{row.id}`")
        seen.add(row.id)
        rows.append(row)
    if not rows:
        raise MatrixError(f"{path}: no rows")
    minimums = document.get("expected_min_cells") or {}
    if not isinstance(minimums, dict):
        raise MatrixError(f"{path}: `expected_min_cells` maps a platform to a number of cells")
    for platform, minimum in minimums.items():
        if platform not in PLATFORMS:
            raise MatrixError(f"{path}: expected_min_cells: unknown platform `{platform}`")
        cells = sum(len(r.algorithms) * len(r.columns) for r in rows if r.platform == platform)
        # bool is an int in Python; `true` is a typo, not a count
        if isinstance(minimum, bool) or not isinstance(minimum, int) or not 1 <= minimum <= cells:
            raise MatrixError(f"{path}: expected_min_cells.{platform} must be 1..{cells} (the "
                              f"platform's cells), got `{minimum}`")
    return Matrix(path, algorithms, tuple(rows), dict(minimums))
