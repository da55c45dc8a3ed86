"""One test per matrix cell (row x algorithm x column), generated from matrix.yaml by conftest.py.

A cell passes only when the real tool signed through the column's PKCS#11 module and the row's
verify step (the tool's own verifier or OpenSSL, anchored at the deployment's root CA) accepted
the result. Expected failures and skips come from the row's `expect` entries, with their reasons.
"""

import pytest

from interop.harness.cell import run_cell, static_skip_reason
from interop.harness.replay import command_line as replay_command_line


def test_cell(cell, request, log_root, scratch_root):
    # Cells that cannot run here are reported without bringing a deployment up for them.
    site = None if static_skip_reason(cell) else request.getfixturevalue("site")
    result = run_cell(cell, site, log_root, scratch_root)
    request.node._signum_record = result.record()
    if result.status == "skip":
        pytest.skip(result.reason)
    if result.status == "xfail":
        pytest.xfail(result.reason)
    if result.status == "fail":
        trace = result.record()["trace"]
        replay = (f"\nPKCS#11 trace: {trace}\nreplay it without the tool: "
                  f"{replay_command_line(cell.id, log_root.parent)}" if trace else "")
        pytest.fail(f"{cell.id}: {result.reason}\nlogs: {result.log_dir}{replay}", pytrace=False)
