#!/usr/bin/python3
"""Generates .github/workflows/signum.yml from matrix.yaml: one test job, the Linux matrix in
shards, and one matrix job per other platform that has rows. The workflow is generated so its job
list cannot drift from the matrix; `ci/workflows.py --check` fails when the file is stale (run by
the interop tests).

  ci/workflows.py           rewrite the workflow
  ci/workflows.py --check   exit 1 if the workflow does not match matrix.yaml
"""

import sys
import textwrap
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from interop.harness import matrix as matrix_mod  # noqa: E402

WORKFLOW = REPO / ".github" / "workflows" / "signum.yml"
LINUX_SHARDS = 2
# Windows and macOS images are pinned (not *-latest aliases, which move under the job): the
# reasons are written into the workflow above each runs-on line (RUNNER_REASONS).
RUNNERS = {"linux": "ubuntu-latest", "windows": "windows-2025", "macos": "macos-15"}
RUNNER_REASONS = {
    "windows": "pinned: WSL 2 (the reference deployment) exists only on the windows-2025 image "
               "(runner-images PR #11242; refused for windows-2022, #11804); windows-latest is an "
               "alias that moves",
    "macos": "pinned: the Xcode and Homebrew the macOS rows run are those of this image; "
             "macos-latest is an alias that moves",
}

# Until a platform's providers build there, its job runs the harness without a deployment: every
# row is reported as skipped with the missing provider named, and the job fails on matrix.yaml's
# expected_min_cells (interop/harness/minimum.py) instead of passing with nothing tested.
NOT_YET_BUILT = {
    "windows": "a Windows build of the PKCS#11 provider (signumpkcs11.dll; the KSP and CSP are "
               "built by the Windows job)",
    "macos": "per-cell PKCS#11 traces (the recorder runs in the Linux matrix only; the macOS "
             "PKCS#11 rows run against libsignumpkcs11.dylib without one)",
}

# The Windows job (docs/windows.md). The providers and conformance programs are built natively
# with MSYS2's MINGW64 toolchain (the same mingw-w64 GCC the Linux tree cross-compiles with);
# signum-server and signum-agent are Linux programs, so the reference deployment runs in WSL 2 and the
# agent's loopback TCP port is reached from Windows as 127.0.0.1: directly when WSL 2 forwards
# localhost, else through a relay (interop/tools/windows/Connect-WslAgent.ps1).
MSYS2_PACKAGES = ("mingw-w64-x86_64-gcc mingw-w64-x86_64-cmake mingw-w64-x86_64-ninja "
                  "mingw-w64-x86_64-nlohmann-json mingw-w64-x86_64-nss")
# Debian builds GoogleTest from /usr/src/googletest; MSYS2 has no source package, so a tagged
# checkout takes its place (SIGNUM_GTEST_SOURCE_DIR).
GTEST_REF = "v1.15.2"
WSL_DISTRIBUTION = "Debian-12"  # what ci/setup installs from
WINDOWS_BUILD = "build-windows"
SITE_DIR = "site"          # written in WSL by interop/tools/windows/export-site.py; holds the PIN
CNG_OUT = "cng-out"        # conformance/cng signatures + manifests, verified by OpenSSL in WSL
WINDOWS_CMAKE = " \\\n  ".join([
    f"cmake -S . -B {WINDOWS_BUILD} -G Ninja -DSIGNUM_WINDOWS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo",
    "-DSIGNUM_GTEST_SOURCE_DIR=third_party/googletest",
    "-DSIGNUM_NLOHMANN_INCLUDE_DIR=/mingw64/include/nlohmann",
    "-DSIGNUM_NSS_PKCS11_INCLUDE=/mingw64/include/nss3 -DSIGNUM_NSPR_INCLUDE=/mingw64/include/nspr",
    "-DCMAKE_EXE_LINKER_FLAGS=-static -DCMAKE_SHARED_LINKER_FLAGS=-static",
    "-DSIGNUM_WERROR=OFF",
])
# Written into the workflow above the build step.
MSYS2_WERROR_REASON = (
    "SIGNUM_WERROR=OFF: MSYS2 ships a newer GCC (16.x) than Debian's mingw-w64 (12), which no one "
    "can run before pushing; its new warnings are printed here and stay errors (-Werror) in the "
    "Linux build and the Debian mingw cross-build (ci/build-windows), where the code is checked")
# Before WSL first starts: keep the WSL 2 VM (and the agent in it) up for the whole job instead of
# stopping it when no wsl.exe has been attached for a while.
WSLCONFIG = "[wsl2]\nvmIdleTimeout=-1\n"


# The CryptoTokenKit token on macOS (docs/ctk.md), in the macOS job before its matrix rows: the
# whole tree built natively with Homebrew's clang-compatible toolchain and libraries, the token
# extension ad-hoc signed with its sandbox entitlements and registered, the demo deployment
# (signum-server on Homebrew's SoftHSM2 + signum-agent) run natively on the runner (hosted macOS
# runners have no container runtime, and the extension must reach the agent on loopback), the
# token configured from the agent's list, shown by the system's own tools, driven by the macOS
# conformance/ctk driver through Security.framework (every signature judged by OpenSSL), and used
# by codesign, whose signature codesign --verify and OpenSSL (chain to the demo root) check.
HOMEBREW_PACKAGES = "cmake ninja openssl@3 boost nlohmann-json googletest softhsm nss jq pybind11"
CTK_APP = "build/reference/providers/ctk/macos/signum-token-host.app"
CTK_APPEX = f"{CTK_APP}/Contents/PlugIns/SignumToken.appex"
CTK_HOST = f"{CTK_APP}/Contents/MacOS/signum-token-host"
CTK_DEMO = "$RUNNER_TEMP/demo"
MACOS_CMAKE = " \\\n  ".join([
    "cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo",
    "-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_OBJCXX_COMPILER=clang++",
    '-DOPENSSL_ROOT_DIR="$(brew --prefix openssl@3)"',
    '-DSIGNUM_NSS_PKCS11_INCLUDE="$(brew --prefix nss)/include/nss"',
    '-DSIGNUM_NSPR_INCLUDE="$(brew --prefix nspr)/include/nspr"',
    # The harness's native module (interop/native) for the Python that runs the rows.
    '-DPython_EXECUTABLE="$(command -v python3)"',
])
CTK_TARGETS = ("signum-server signum-agent signum-demo signum_ctk_core_test signum-token-host "
               "signum-conformance-ctk-macos")
# The macOS client side (issue 17 item 4): the agent, signum-util, libsignumpkcs11.dylib, the
# recorder and the replayer, and the unit tests that run without a deployment. The agent suite's
# unit half only (its e2e half drives setpriv and Linux users).
MACOS_CLIENT_TARGETS = ("signum-agent signum-util signumpkcs11 signum-pkcs11-recorder signum-replay "
                        "signum_harness signum_core_test signum_provider_core_test "
                        "signum_pkcs11_provider_unit_test signum_agent_test")
MACOS_CLIENT_TESTS = [
    "build/reference/core/signum_core_test",
    "build/reference/providers/core/signum_provider_core_test",
    "build/reference/providers/pkcs11/signum_pkcs11_provider_unit_test",
    "build/reference/agent/signum_agent_test "
    "--gtest_filter='AgentClient*:AgentConfig*:PeerTest*:ServerClient*'",
]


def ctk_macos_steps() -> list:
    env = f'source "{CTK_DEMO}/env.sh"'
    return [
        {"name": "Homebrew dependencies", "shell": "bash",
         "run": f"brew install {HOMEBREW_PACKAGES}"},
        {"name": "Build the CryptoTokenKit token, its suite and the deployment (CMake + clang)",
         "shell": "bash",
         "run": f"{MACOS_CMAKE}\ncmake --build build --target {CTK_TARGETS}"},
        {"name": "CTK core unit tests", "shell": "bash",
         "run": "build/reference/providers/ctk/signum_ctk_core_test"},
        {"name": "Build the client side: signum-agent, signum-util, libsignumpkcs11.dylib, the "
                 "recorder, signum-replay and their unit tests", "shell": "bash",
         "run": f"cmake --build build --target {MACOS_CLIENT_TARGETS}\n"
                "nm -gU build/reference/providers/pkcs11/libsignumpkcs11.dylib | "
                "awk '{print $3}' | grep -v '^_C_' | (! grep .)  # only the C_* entry points"},
        {"name": "Client-side unit tests (platform layer: LOCAL_PEERCRED, libproc, F_FULLFSYNC)",
         "shell": "bash", "run": "\n".join(MACOS_CLIENT_TESTS)},
        # A real identity (repository secrets) lets the CTK rows run; without it they are skipped
        # saying so (matrix.yaml requires SIGNUM_CTK_SIGNING_IDENTITY; issue 17 item 5c).
        {"name": "Sign the token extension and its app (the secret identity, else ad hoc)",
         "shell": "bash",
         "env": {"SIGNUM_CTK_SIGNING_P12": "${{ secrets.SIGNUM_CTK_SIGNING_P12 }}",
                 "SIGNUM_CTK_SIGNING_P12_PASSWORD": "${{ secrets.SIGNUM_CTK_SIGNING_P12_PASSWORD }}"},
         "run": f"interop/tools/macos/sign-token-extension.sh {CTK_APPEX} {CTK_APP} "
                "reference/providers/ctk/macos/extension/SignumToken.entitlements"},
        {"name": "Register the token extension (pluginkit)", "shell": "bash",
         "run": f"pluginkit -a {CTK_APPEX}\n"
                "pluginkit -m -v -p com.apple.ctk-tokens | tee /dev/stderr | "
                "grep -q org.signum-harness.token.extension"},
        {"name": "Start the demo deployment (signum-server on SoftHSM2 + signum-agent)",
         "shell": "bash", "run": f'ci/demo up "{CTK_DEMO}"'},
        {"name": "signum-util keychain --add (the token's configuration from the agent's list)",
         "shell": "bash",
         "run": f"{env}\n{CTK_HOST} keychain --add\n{CTK_HOST} keychain --list"},
        {"name": "The token as macOS shows it (security list-smartcards, sc_auth identities)",
         "shell": "bash",
         "run": "security list-smartcards | tee /dev/stderr | grep -q org.signum-harness.token\n"
                "sc_auth identities\n"
                "system_profiler SPSmartCardsDataType\n"
                "security find-identity -v -p codesigning"},
        {"name": "codesign with a Signum identity, verified by codesign and by OpenSSL",
         "shell": "bash",
         "run": f"{env}\n"
                f'SHA1=$({CTK_HOST} keychain --list | awk \'$1 == "key" {{print $2; exit}}\')\n'
                'printf \'int main(void) { return 0; }\\n\' | clang -x c - -o "$RUNNER_TEMP/hello"\n'
                'codesign --force --timestamp=none --sign "$SHA1" "$RUNNER_TEMP/hello"\n'
                'codesign --verify --strict --verbose=2 "$RUNNER_TEMP/hello"\n'
                'codesign -d --verbose=4 "$RUNNER_TEMP/hello"\n'
                'mkdir -p "$RUNNER_TEMP/certs" && cd "$RUNNER_TEMP/certs"\n'
                # codesign0 is the leaf, codesign1 the issuing CA (DER), as the signature embeds them
                'codesign -d --extract-certificates "$RUNNER_TEMP/hello"\n'
                'OPENSSL="$(brew --prefix openssl@3)/bin/openssl"\n'
                '"$OPENSSL" x509 -inform DER -in codesign0 -out leaf.pem\n'
                '"$OPENSSL" x509 -inform DER -in codesign1 -out issuing.pem\n'
                f'"$OPENSSL" verify -CAfile "{CTK_DEMO}/ca/root.pem" -untrusted issuing.pem '
                '-purpose any leaf.pem\n'
                '"$OPENSSL" x509 -in leaf.pem -noout -fingerprint -sha1 | tr -d : | grep -qi "$SHA1"'},
        {"name": "conformance/ctk through Security.framework (agent.down stops the deployment)",
         "shell": "bash",
         "run": f"{env}\nmkdir -p build/test-results\n"
                "build/conformance/ctk/macos/signum-conformance-ctk-macos "
                "--junit build/test-results/signum_conformance_ctk_macos.xml "
                f'--stop-agent-command "ci/demo down {CTK_DEMO}"'},
        {"name": "Remove the token configuration and stop the deployment", "if": "always()",
         "shell": "bash",
         "run": f"set +e\n{CTK_HOST} keychain --remove\nci/demo down \"{CTK_DEMO}\"\n"
                f"pluginkit -r {CTK_APPEX}\nexit 0"},
        {"name": "Upload the CTK results", "if": "always()", "uses": "actions/upload-artifact@v4",
         "with": {"name": "ctk-macos", "path": "build/test-results/",
                  "if-no-files-found": "warn"}},
    ]


def _upload(name: str) -> dict:
    return {"name": "Upload reports", "if": "always()", "uses": "actions/upload-artifact@v4",
            "with": {"name": name, "path": "reports/", "if-no-files-found": "warn"}}


def _summary_step(shell: str) -> dict:
    command = ("cat reports/matrix.md >> $GITHUB_STEP_SUMMARY" if shell == "bash" else
               "Get-Content reports/matrix.md | Add-Content $env:GITHUB_STEP_SUMMARY")
    return {"name": "Summary", "if": "always()", "shell": shell, "run": command}


def jobs_for(matrix) -> dict:
    jobs = {
        "test-linux": {
            "name": "ci/test (Debian 12)",
            "runs-on": RUNNERS["linux"], "container": "debian:12", "timeout-minutes": 90,
            "steps": [{"uses": "actions/checkout@v4"},
                      {"name": "Build and test", "run": "bash .ci/run"},
                      {"name": "Upload test results", "if": "always()",
                       "uses": "actions/upload-artifact@v4",
                       "with": {"name": "test-results", "path": "build/test-results/"}}],
        }
    }
    linux_cells = matrix.cells("linux")
    for index in range(1, LINUX_SHARDS + 1):
        spec = f"{index}/{LINUX_SHARDS}"
        rows = sorted({c.row.id for c in matrix_mod.shard(linux_cells, spec)})
        jobs[f"matrix-linux-{index}"] = {
            "name": f"matrix linux shard {spec} ({len(matrix_mod.shard(linux_cells, spec))} "
                    "cells)",
            "runs-on": RUNNERS["linux"], "container": "debian:12", "timeout-minutes": 60,
            "env": {"SIGNUM_MATRIX_ROWS": " ".join(rows)},
            "steps": [{"uses": "actions/checkout@v4"},
                      {"name": "Run the matrix shard",
                       "run": f"ci/matrix --platform=linux --shard={spec}"},
                      _summary_step("bash"), _upload(f"matrix-linux-{index}")],
        }
    # Each shard is held to its share of the minimum (interop/harness/minimum.py); the whole Linux
    # run is held to matrix.yaml's expected_min_cells here, from every shard's report.
    shard_names = [f"matrix-linux-{index}" for index in range(1, LINUX_SHARDS + 1)]
    jobs["totals-linux"] = {
        "name": "matrix linux: every shard together",
        "needs": shard_names, "if": "always()",
        "runs-on": RUNNERS["linux"], "container": "debian:12", "timeout-minutes": 15,
        "steps": [{"uses": "actions/checkout@v4"},
                  {"uses": "actions/download-artifact@v4",
                   "with": {"pattern": "matrix-linux-*", "path": "shards"}},
                  {"name": "Dependencies",
                   "run": "apt-get update -q && apt-get install -y -q --no-install-recommends "
                          "python3-yaml"},
                  # shell: bash is `bash -eo pipefail`: tee keeps the check's exit status
                  {"name": "Every Linux cell reported once, expected_min_cells met",
                   "shell": "bash", "run": "python3 -m interop.harness --platform=linux totals "
                          + " ".join(f"shards/{name}/matrix.json" for name in shard_names)
                          + " | tee -a $GITHUB_STEP_SUMMARY"}],
    }
    windows_rows = [row.id for row in matrix.rows if row.platform == "windows"]
    if windows_rows:
        jobs["matrix-windows"] = windows_job(windows_rows)
    for platform in ("macos",):
        rows = [row.id for row in matrix.rows if row.platform == platform]
        if not rows:
            continue
        shell = "pwsh" if platform == "windows" else "bash"
        python = "python" if platform == "windows" else "python3"
        jobs[f"matrix-{platform}"] = {
            "name": f"matrix {platform} ({len(rows)} rows)",
            "runs-on": RUNNERS[platform], "timeout-minutes": 90,
            "env": {"SIGNUM_MATRIX_ROWS": " ".join(rows),
                    **({"SIGNUM_CTK_SIGNING_IDENTITY": "${{ secrets.SIGNUM_CTK_SIGNING_IDENTITY }}"}
                       if platform == "macos" else {})},
            "steps": [
                {"uses": "actions/checkout@v4"},
                # Before the build: the harness's native module is built for this Python.
                {"uses": "actions/setup-python@v5", "with": {"python-version": "3.11"}},
                *(ctk_macos_steps() if platform == "macos" else []),
                {"name": "Runner dependencies", "shell": shell,
                 "run": f"{python} -m pip install pytest pytest-xdist pyyaml"},
                *(keychain_tier_steps() if platform == "macos" else []),
                {"name": f"Run the {platform} rows", "shell": shell,
                 # Not built here yet: NOT_YET_BUILT[platform]; the harness names it per row.
                 "run": f"{python} -m interop.harness run --platform={platform} -n 0"},
                _summary_step(shell), _upload(f"matrix-{platform}"),
            ],
        }
    return jobs


def keychain_tier_steps() -> list:
    """Issue 17 item 5(b): the codesign / productsign / pkgbuild rows' own commands against a
    throwaway identity in a temporary keychain (keychain-tier.sh), independent of the token: a
    failure here is the row scripts', not the CTK extension's."""
    return [{"name": "Keychain tier: codesign, productsign, pkgbuild rows with a throwaway "
                     "identity in a temporary keychain", "shell": "bash",
             "run": f'interop/tools/macos/keychain-tier.sh "{CTK_DEMO}" reports/keychain-tier'}]


def windows_job(rows: list) -> dict:
    """Build (MSYS2), deployment (WSL), providers registered, conformance/cng natively, every
    conformance signature checked by OpenSSL, then the Windows rows through the harness. A failed
    prerequisite fails its step; the matrix step still runs and reports what it could not run as
    skips naming the reason (a provider not built, a tool not installed)."""
    site_file = f"{SITE_DIR}\\site.json"
    tools = "interop/tools/windows"
    return {
        "name": f"windows: providers, conformance/cng, matrix ({len(rows)} rows)",
        "runs-on": RUNNERS["windows"], "timeout-minutes": 90,
        "env": {"SIGNUM_MATRIX_ROWS": " ".join(rows),
                "SIGNUM_BUILD_DIR": "${{ github.workspace }}\\" + WINDOWS_BUILD},
        "steps": [
            {"uses": "actions/checkout@v4"},
            {"name": "GoogleTest sources", "uses": "actions/checkout@v4",
             "with": {"repository": "google/googletest", "ref": GTEST_REF,
                      "path": "third_party/googletest"}},
            {"uses": "msys2/setup-msys2@v2",
             "with": {"msystem": "MINGW64", "update": True, "install": MSYS2_PACKAGES}},
            {"name": "Build the Windows parts (MSYS2 MINGW64)", "shell": "msys2 {0}",
             "run": f"{WINDOWS_CMAKE}\ncmake --build {WINDOWS_BUILD}\nls {WINDOWS_BUILD}/bin\n"},
            {"name": ".wslconfig before WSL starts (vmIdleTimeout=-1)", "shell": "pwsh",
             "run": "Set-Content -NoNewline -Path (Join-Path $env:USERPROFILE .wslconfig) "
                    f"-Value \"{WSLCONFIG.replace(chr(10), '`n')}\"\n"
                    "Get-Content (Join-Path $env:USERPROFILE .wslconfig)\n"},
            # git clones the checkout in WSL; socat relays the agent if localhost forwarding fails
            {"uses": "Vampire/setup-wsl@v7",
             "with": {"distribution": WSL_DISTRIBUTION, "wsl-version": 2,
                      "additional-packages": "git sudo socat"}},
            {"name": "Preflight: WSL 2 and its distribution", "shell": "pwsh",
             "run": f"./{tools}/Test-Wsl2.ps1"},
            {"name": "Keep WSL running for the rest of the job", "shell": "pwsh",
             # the distribution stops once no wsl.exe is left, and the agent with it
             "run": "Start-Process -WindowStyle Hidden wsl.exe -ArgumentList '--exec', 'sleep', "
                    "'infinity'"},
            {"name": "Reference deployment in WSL (server, agent, SoftHSM2)",
             "shell": "wsl-bash {0}",
             "run": f'{tools}/wsl-deployment.sh "$PWD" "$PWD/{SITE_DIR}"'},
            {"name": "The agent is reachable from Windows on 127.0.0.1", "shell": "pwsh",
             "run": f"./{tools}/Connect-WslAgent.ps1 -SiteFile {site_file}"},
            {"uses": "actions/setup-java@v4",
             "with": {"distribution": "temurin", "java-version": "17"}},
            {"name": "Signing tools on PATH (signtool, mage)", "shell": "pwsh",
             "run": f"& ./{tools}/Find-SignTool.ps1 | Add-Content $env:GITHUB_PATH\n"
                    "dotnet tool install --global microsoft.dotnet.mage\n"
                    "Join-Path $env:USERPROFILE .dotnet\\tools | Add-Content $env:GITHUB_PATH\n"},
            {"name": "Register the providers, configure them, install the certificates",
             "id": "providers", "shell": "pwsh",
             "run": f"./{tools}/Install-SignumWindows.ps1 -BuildDir {WINDOWS_BUILD} "
                    f"-SiteFile {site_file}"},
            {"name": "conformance/cng natively", "shell": "pwsh",
             "run": f"./{tools}/Invoke-CngSuites.ps1 -BuildDir {WINDOWS_BUILD} "
                    f"-SiteFile {site_file} -OutDir {CNG_OUT}"},
            # Issue 17 item 3: signum-agent.exe, natively, in front of the WSL server; the KSP and
            # CSP programs through it (their manifests are verified by the next step).
            {"name": "The native Windows agent against the WSL server", "shell": "pwsh",
             "run": f"./{tools}/Invoke-NativeAgent.ps1 -BuildDir {WINDOWS_BUILD} "
                    f"-SiteFile {site_file} -OutDir {CNG_OUT}"},
            {"name": "Every conformance signature verified by OpenSSL (in WSL)",
             "shell": "wsl-bash {0}",
             # conformance/cng's own verifier (the one run-wine-suite.sh uses), same checks
             "run": "verified=0\n"
                    "for out in " + CNG_OUT + "/*/; do\n"
                    "  [[ -f ${out}manifest.tsv ]] || continue\n"
                    '  ~/signum/conformance/cng/verify-manifest.sh "$out" "$(basename "$out")" '
                    '"$HOME/signum-demo/ca/root.pem" "$HOME/signum-demo/ca/issuing.pem" || exit 1\n'
                    "  verified=$((verified + 1))\n"
                    "done\n"
                    f'(( verified > 0 )) || {{ echo "no manifest.tsv under {CNG_OUT}/"; exit 1; }}\n'},
            # The suites register into HKLM themselves (as in their Wine prefix); the rows need
            # exactly the state Install-SignumWindows.ps1 sets up, so it is asserted again.
            {"name": "Providers as the matrix rows expect them",
             "if": "always() && steps.providers.outcome == 'success'", "shell": "pwsh",
             "run": f"./{tools}/Install-SignumWindows.ps1 -BuildDir {WINDOWS_BUILD} "
                    f"-SiteFile {site_file}"},
            {"uses": "actions/setup-python@v5", "if": "always()",
             "with": {"python-version": "3.11"}},
            {"name": "Runner dependencies", "if": "always()", "shell": "pwsh",
             "run": "python -m pip install pytest pytest-xdist pyyaml"},
            {"name": "Run the windows rows", "if": "always()", "shell": "pwsh",
             "run": f"if (Test-Path {site_file}) {{ $env:SIGNUM_MATRIX_SITE = (Resolve-Path "
                    f"{site_file}).Path }}\n"
                    "python -m interop.harness run --platform=windows -n 0\n"},
            _summary_step("pwsh"),
            # reports/ and the conformance outputs; never site/ (it holds the token PIN and the
            # agent secret)
            {"name": "Upload reports", "if": "always()", "uses": "actions/upload-artifact@v4",
             "with": {"name": "matrix-windows", "path": f"reports/\n{CNG_OUT}/",
                      "if-no-files-found": "warn"}},
        ],
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line scripts as literal blocks, so the workflow reads like the scripts it runs."""


_Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def _with_comments(body: str) -> str:
    """The reasons for pinned choices, as comments above the lines they explain."""
    comments = {f"runs-on: {RUNNERS[p]}": reason for p, reason in RUNNER_REASONS.items()}
    comments["- name: Build the Windows parts (MSYS2 MINGW64)"] = MSYS2_WERROR_REASON
    lines = body.split("\n")
    for target, reason in comments.items():
        found = [n for n, line in enumerate(lines) if line.strip() == target]
        assert len(found) == 1, f"comment target `{target}` found {len(found)} times"
        indent = lines[found[0]][:len(lines[found[0]]) - len(lines[found[0]].lstrip())]
        wrapped = textwrap.wrap(reason, width=98 - len(indent))
        lines[found[0]:found[0]] = [f"{indent}# {text}" for text in wrapped]
    return "\n".join(lines)


def render(matrix) -> str:
    document = {"name": "signum", "on": {"push": None, "pull_request": None,
                                         "workflow_dispatch": None},
                "jobs": jobs_for(matrix)}
    notes = "".join(f"#   {platform}: not built yet: {what}\n"
                    for platform, what in NOT_YET_BUILT.items())
    header = ("# Generated by ci/workflows.py from matrix.yaml; do not edit. After changing\n"
              "# matrix.yaml run ci/workflows.py (the interop tests check it is current).\n"
              f"{notes}")
    body = _with_comments(yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=100))
    return header + body.replace("push: null", "push:").replace(
        "pull_request: null", "pull_request:").replace("workflow_dispatch: null",
                                                       "workflow_dispatch:")


def main(argv) -> int:
    matrix = matrix_mod.load(REPO / "matrix.yaml")
    text = render(matrix)
    if "--check" in argv:
        current = WORKFLOW.read_text() if WORKFLOW.exists() else ""
        if current != text:
            print(f"{WORKFLOW} is out of date with matrix.yaml: run ci/workflows.py",
                  file=sys.stderr)
            return 1
        return 0
    WORKFLOW.parent.mkdir(parents=True, exist_ok=True)
    WORKFLOW.write_text(text)
    print(f"wrote {WORKFLOW} ({len(matrix.rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
