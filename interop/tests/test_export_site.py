"""export-site.py (run in WSL by the Windows job) against a real deployment: what Windows is told
about the agent, the keys and, for the native Windows agent, the server and its credential
(issue 17 item 3). Paths stay POSIX here (--path-style posix); the Windows job converts them."""

import json
import os
import subprocess
from pathlib import Path

from interop.harness.site import Site

REPO = Path(__file__).resolve().parents[2]


def test_export_site_tells_the_native_windows_agent_the_server_ca_and_the_agents_own_token(
        tmp_path):
    site = Site(tmp_path / "demo", keys=["rsa-2048"])
    try:
        out = tmp_path / "site"
        done = subprocess.run(
            ["/usr/bin/python3", str(REPO / "interop/tools/windows/export-site.py"),
             "--deployment", str(site.directory), "--out", str(out), "--path-style", "posix"],
            cwd=REPO, capture_output=True, text=True, timeout=120, env=dict(os.environ))
        assert done.returncode == 0, done.stderr
        document = json.loads((out / "site.json").read_text())
        native = document["native_agent"]
        assert native["server_url"] == site.env["SIGNUM_SERVER_URL"]
        assert native["server_url"].startswith("https://127.0.0.1:")
        assert Path(native["ca_file"]).read_text() == Path(site.root_ca).read_text()
        # The credential of the user the deployment's own agent serves, so both agents see the
        # same keys and policies.
        token = (site.directory / "credentials" / "release.token").read_text()
        assert Path(native["token_file"]).read_text() == token
        assert token.startswith("sgn_")
        # What the providers need for the WSL agent is still there.
        assert document["env"]["SIGNUM_AGENT_TCP"].startswith("127.0.0.1:")
        assert Path(document["env"]["SIGNUM_AGENT_SECRET_FILE"]).is_file()
        assert set(document["keys"]["signum"]) == {"rsa-2048"}
    finally:
        site.close()
