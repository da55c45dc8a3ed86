#!/usr/bin/python3
"""Describes a running Linux deployment (ci/demo up DIR) for the Windows side of the matrix, which
has no native harness module: writes OUT/site.json (read by interop/harness/site.DescribedSite
through $SIGNUM_MATRIX_SITE) plus the files it names, with Windows paths.

Run inside WSL, from the repository root, with the Linux build that runs the deployment:
  SIGNUM_BUILD_DIR=build /usr/bin/python3 interop/tools/windows/export-site.py \\
      --deployment ~/signum-demo --out /mnt/d/a/repo/repo/site

OUT: root.pem, root.cer (DER, for Import-Certificate), chain.pem, agent.secret (copied: the agent
rewrites its secret at every start, so the copy is valid while this agent runs), server.token (the
demo user's API token, for the native Windows agent: Invoke-NativeAgent.ps1), site.json.
Only the `signum` column is described: the direct column's module is a Linux library. Keys and
certificates are read from the Signum token through the PKCS#11 provider, exactly as the Linux
runner reads them. The agent's loopback TCP port is reachable from Windows as 127.0.0.1 (WSL
forwards localhost; docs/windows.md).
"""

import argparse
import json
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from interop.harness.site import Site  # noqa: E402

# What a Windows process needs to reach the agent: SharedProviderContext and signum-util read these.
AGENT_VARIABLES = ("SIGNUM_AGENT_TCP",)


def windows_path(path: Path) -> str:
    """wslpath -w: /mnt/d/x -> D:\\x (and \\\\wsl.localhost\\... for files inside the distribution)."""
    return subprocess.run(["wslpath", "-w", str(path)], check=True, capture_output=True,
                          text=True).stdout.strip()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deployment", required=True, help="a running deployment (ci/demo up)")
    parser.add_argument("--out", required=True, help="a directory Windows can read (/mnt/<drive>/...)")
    parser.add_argument("--pkcs11-module", default="signumpkcs11.dll",
                        help="what PKCS#11 rows load on Windows (default: found on PATH)")
    parser.add_argument("--path-style", choices=("windows", "posix"), default="windows",
                        help="posix: keep Linux paths (to test this script outside WSL)")
    args = parser.parse_args(argv)

    site = Site(Path(args.deployment).expanduser(), owned=False)
    if site.env.get("SIGNUM_AGENT_TCP", "off") == "off":
        print("export-site: the agent has no loopback TCP endpoint (SIGNUM_AGENT_TCP=off)",
              file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root_pem = Path(site.root_ca).read_text()
    (out / "root.pem").write_text(root_pem)
    (out / "root.cer").write_bytes(ssl.PEM_cert_to_DER_cert(root_pem))
    shutil.copyfile(site.chain, out / "chain.pem")
    shutil.copyfile(site.env["SIGNUM_AGENT_SECRET_FILE"], out / "agent.secret")
    # The credential of the user the deployment's own agent serves (ci/demo: "release"), so the
    # native agent sees the same keys and policies.
    token = Path(args.deployment).expanduser() / "credentials" / "release.token"
    if not token.is_file():
        print(f"export-site: no API token {token}", file=sys.stderr)
        return 1
    shutil.copyfile(token, out / "server.token")
    convert = windows_path if args.path_style == "windows" else str

    signum = site.columns["signum"]
    keys = site.keys("signum")
    document = {
        "comment": "written by interop/tools/windows/export-site.py; docs/windows.md",
        "env": dict({name: site.env[name] for name in AGENT_VARIABLES},
                    SIGNUM_AGENT_SECRET_FILE=convert(out / "agent.secret")),
        "root_ca": convert(out / "root.pem"),
        # signum-agent.exe on Windows in front of the same server (Invoke-NativeAgent.ps1)
        "native_agent": {"server_url": site.env["SIGNUM_SERVER_URL"],
                         "ca_file": convert(out / "root.pem"),
                         "token_file": convert(out / "server.token")},
        "root_ca_der": convert(out / "root.cer"),
        "chain": convert(out / "chain.pem"),
        "columns": {"signum": {"module": args.pkcs11_module, "token_label": signum.token_label,
                               "pin": signum.pin}},
        "keys": {"signum": {label: {"id_hex": key.id_hex, "certificate_pem": key.certificate_pem,
                                    "sha1": key.sha1_thumbprint.lower()}
                            for label, key in sorted(keys.items())}},
    }
    (out / "site.json").write_text(json.dumps(document, indent=2) + "\n")
    print(f"export-site: {out / 'site.json'}: agent {site.env['SIGNUM_AGENT_TCP']}, keys "
          + ", ".join(f"{label}={key.sha1_thumbprint.lower()}" for label, key in sorted(keys.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
