"""The corpus's entries, its traces, and replaying them (used by `python3 -m interop.corpus` and
by interop/corpus/tests)."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import time
from pathlib import Path

import yaml

from interop.harness import native
from interop.harness import replay as replay_mod

CORPUS_DIR = Path(__file__).resolve().parent
TRACES_DIR = CORPUS_DIR / "traces"
# The key labels the recording token held (union over the corpus): a replay provisions the same
# ones, so a tool that listed every object finds them again.
TOKEN_KEYS_FILE = TRACES_DIR / "token-keys.txt"


@dataclasses.dataclass(frozen=True)
class Entry:
    cell: str    # row.algorithm.column of matrix.yaml
    caller: str  # which real caller the trace stands for

    @property
    def trace(self) -> Path:
        return TRACES_DIR / f"{self.cell}.jsonl"


def entries() -> list:
    raw = yaml.safe_load((CORPUS_DIR / "corpus.yaml").read_text())
    return [Entry(item["cell"], item["caller"]) for item in raw["cells"]]


def token_keys() -> list:
    return TOKEN_KEYS_FILE.read_text().split() if TOKEN_KEYS_FILE.exists() else []


def defect_shim() -> Path:
    """The conformance suite's defect shim for a PKCS#11 3.0 module (libsignumpkcs11.so)."""
    return native.build_dir() / "conformance/pkcs11/shim/libsignum-defect-shim.so"


@dataclasses.dataclass
class Outcome:
    entry: Entry
    returncode: int  # signum-replay's: 0 matched, 1 diverged, 2 unusable
    output: str
    seconds: float

    @property
    def first_divergence(self) -> str:
        """"#15 C_Sign (trace line 16): why", or "" when none."""
        match = re.search(r"^first divergence: (.*)$", self.output, re.MULTILINE)
        return match.group(1) if match else ""

    @property
    def summary(self) -> str:
        match = re.search(r"^summary: (.*)$", self.output, re.MULTILINE)
        return match.group(1) if match else self.output.strip().splitlines()[-1:][0] \
            if self.output.strip() else "(no output)"

    @property
    def calls(self) -> int:
        match = re.search(r"^summary: (\d+) calls replayed", self.output, re.MULTILINE)
        return int(match.group(1)) if match else 0


def replay(entry: Entry, site, scratch: Path, module: str = "", defect: str = "",
           notes: bool = False) -> Outcome:
    """One trace against the signum column's module on `site` (or `module` standing in for it),
    across modules: the corpus was recorded against SoftHSM2 on another deployment. With
    `defect`, the defect shim is put in front with that catalogue entry switched on."""
    column = site.columns["signum"]
    target_module = module or column.module
    environment = dict(os.environ, **site.module_environment())
    # The provider checks the PIN itself, as the recording token (SoftHSM2) did: its token then
    # says CKF_LOGIN_REQUIRED, which callers follow.
    environment["SIGNUM_PKCS11_PIN"] = site.env["SIGNUM_PKCS11_PIN"]
    if defect:
        environment.update(SIGNUM_SHIM_TARGET=target_module, SIGNUM_SHIM_DEFECT=defect)
        target_module = str(defect_shim())
    target = replay_mod.Target(target_module, column.token_label, column.pin, "the signum column")
    pin_file = Path(scratch) / "pin"
    if not pin_file.exists():
        pin_file = replay_mod.write_pin_file(Path(scratch), column.pin)
    arguments = replay_mod.command(replay_mod.replayer_path(), entry.trace, target, pin_file,
                                   cross_module=True) + (["--notes"] if notes else [])
    start = time.monotonic()
    result = subprocess.run(arguments, env=environment, capture_output=True, text=True,
                            errors="replace", timeout=300, check=False)
    return Outcome(entry, result.returncode, result.stdout + result.stderr,
                   time.monotonic() - start)
