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


# ---- the Windows job (issue 17, item 2) --------------------------------------------------------

SHELL_SHEBANG = re.compile(rb"^#!\s*(/usr/bin/env\s+)?(/usr)?(/bin/)?(ba)?sh\b")


def repository_files() -> list:
    """Tracked files and new ones not ignored: what a commit of this tree would hold."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, check=True, capture_output=True).stdout
    return sorted({name for name in listed.decode().split("\0") if name and (REPO / name).is_file()})


def eol_of(paths) -> dict:
    """path -> the eol attribute git applies on checkout ('lf', 'crlf', 'unspecified', ...)."""
    done = subprocess.run(["git", "check-attr", "-z", "--stdin", "eol"], cwd=REPO, check=True,
                          capture_output=True, input="\0".join(paths).encode() + b"\0").stdout
    fields = done.decode().split("\0")
    return {fields[i]: fields[i + 2] for i in range(0, len(fields) - 2, 3)}


def test_gitattributes_keep_every_shell_script_lf():
    assert (REPO / ".gitattributes").is_file()
    scripts = [path for path in repository_files()
               if path.endswith(".sh") or SHELL_SHEBANG.match((REPO / path).read_bytes()[:64])]
    # the scripts bash runs in WSL, in the container jobs and in ci/ must all be among them
    for expected in ("interop/tools/windows/wsl-deployment.sh", "ci/setup", "ci/matrix", ".ci/run",
                     "conformance/cng/verify-manifest.sh"):
        assert expected in scripts, expected
    eol = eol_of(scripts)
    assert {path: value for path, value in eol.items() if value != "lf"} == {}


def test_gitattributes_line_endings_for_python_yaml_and_windows_scripts():
    files = repository_files()
    eol = eol_of(files)
    for path in files:
        if path.endswith((".py", ".yaml", ".yml")):
            assert eol[path] == "lf", path
        if path.endswith((".ps1", ".bat", ".cmd")):
            assert eol[path] == "crlf", path
    # HTTP requests in the fuzz corpus keep their CRLF byte for byte
    corpus = [p for p in files if p.startswith("reference/server/tests/fuzz-corpus/")]
    assert corpus
    text = subprocess.run(["git", "check-attr", "text", "--"] + corpus, cwd=REPO, check=True,
                          capture_output=True, text=True).stdout
    assert all(line.endswith(": text: unset") for line in text.splitlines())


def comment_above(line: str) -> str:
    """The comment lines right above the one workflow line that reads `line`."""
    lines = WORKFLOW.read_text().splitlines()
    found = [n for n, text in enumerate(lines) if text.strip() == line]
    assert len(found) == 1, line
    comment, n = [], found[0] - 1
    while n >= 0 and lines[n].strip().startswith("#"):
        comment.insert(0, lines[n].strip().lstrip("# "))
        n -= 1
    return " ".join(comment)


def windows_job() -> dict:
    return jobs()["matrix-windows"]


def index_of(job: dict, predicate) -> int:
    found = [n for n, step in enumerate(job["steps"]) if predicate(step)]
    assert len(found) == 1
    return found[0]


def test_every_script_the_windows_job_runs_from_the_checkout_has_its_line_endings():
    job = windows_job()
    paths = set()
    for step in job["steps"]:
        paths |= set(re.findall(r"[\w./~-]+\.(?:sh|ps1|py)\b", step.get("run", "")))
    # ./x from the checkout; ~/signum/x from WSL's clone of the same commit
    paths = {re.sub(r"^(\./|~/signum/)", "", p) for p in paths}
    assert "conformance/cng/verify-manifest.sh" in paths
    paths |= {"interop/tools/windows/export-site.py"}  # run by wsl-deployment.sh
    for path in paths:
        assert (REPO / path).is_file(), path
    eol = eol_of(sorted(paths))
    for path, value in eol.items():
        assert value == ("crlf" if path.endswith(".ps1") else "lf"), path


def test_windows_and_macos_runners_are_pinned_with_the_reason():
    text = WORKFLOW.read_text()
    assert windows_job()["runs-on"] == "windows-2025"
    assert jobs()["matrix-macos"]["runs-on"] == "macos-15"
    assert "windows-latest" not in re.sub(r"#.*", "", text)
    assert "macos-latest" not in re.sub(r"#.*", "", text)
    assert "WSL 2" in comment_above("runs-on: windows-2025")
    assert "#11242" in comment_above("runs-on: windows-2025")
    assert "alias that moves" in comment_above("runs-on: macos-15")


def test_wsl_is_configured_before_it_starts_and_checked_to_be_wsl_2():
    job = windows_job()
    setup_wsl = index_of(job, lambda s: s.get("uses", "").startswith("Vampire/setup-wsl@"))
    wslconfig = index_of(job, lambda s: ".wslconfig" in s.get("name", ""))
    preflight = index_of(job, lambda s: "Test-Wsl2.ps1" in s.get("run", ""))
    deployment = index_of(job, lambda s: "wsl-deployment.sh" in s.get("run", ""))
    assert wslconfig < setup_wsl < preflight < deployment
    assert "vmIdleTimeout=-1" in job["steps"][wslconfig]["run"]
    assert "USERPROFILE" in job["steps"][wslconfig]["run"]
    assert job["steps"][setup_wsl]["with"]["wsl-version"] == 2
    script = (REPO / "interop/tools/windows/Test-Wsl2.ps1").read_text()
    assert "wsl.exe --status" in script and "wsl.exe --list --verbose" in script
    assert "$entry.Version -ne '2'" in script and "throw" in script
    assert "/etc/os-release" in script  # prints the distribution


def test_the_agent_is_reached_on_loopback_first_then_through_the_documented_relay():
    job = windows_job()
    deployment = index_of(job, lambda s: "wsl-deployment.sh" in s.get("run", ""))
    connect = index_of(job, lambda s: "Connect-WslAgent.ps1" in s.get("run", ""))
    providers = index_of(job, lambda s: s.get("id") == "providers")
    assert deployment < connect < providers
    script = (REPO / "interop/tools/windows/Connect-WslAgent.ps1").read_text()
    direct = script.index('"127.0.0.1:$port reachable directly')
    fallback = script.index("netsh interface portproxy add v4tov4 listenaddress=127.0.0.1 "
                            "listenport=$port")
    assert direct < fallback and "socat" in script[direct:]
    # socat must be in the distribution for the fallback
    setup_wsl = [s for s in job["steps"] if s.get("uses", "").startswith("Vampire/setup-wsl@")][0]
    assert "socat" in setup_wsl["with"]["additional-packages"].split()


def setup_packages(*options) -> set:
    done = subprocess.run([str(REPO / "ci" / "setup"), "--list", *options], check=True,
                          capture_output=True, text=True)
    return set(done.stdout.split())


def test_the_wsl_side_installs_and_builds_only_the_deployment():
    deployment, everything = setup_packages("--deployment"), setup_packages()
    assert deployment < everything
    assert {"softhsm2", "libssl-dev", "nlohmann-json3-dev", "libboost-filesystem-dev",
            "pybind11-dev", "cmake"} <= deployment
    for unwanted in ("wine", "wine64", "openjdk-17-jdk-headless", "gcc-mingw-w64-x86-64",
                     "libgtest-dev", "osslsigncode", "opencryptoki"):
        assert unwanted not in deployment, unwanted
    script = (REPO / "interop/tools/windows/wsl-deployment.sh").read_text()
    assert "ci/setup --deployment" in script
    assert "ci/build-matrix-parts" not in script and "-DSIGNUM_BUILD_TESTS=OFF" in script
    targets = re.search(r"--target ([^\n]*\\\n[^\n]*)", script).group(1).replace("\\", " ")
    assert set(targets.split()) == {"signum-server", "signum-agent", "signum-demo",
                                    "signumpkcs11", "signum_harness"}


def test_the_msys2_build_does_not_fail_on_a_newer_gccs_warnings_and_says_why():
    job = windows_job()
    build = step_named(job, "MSYS2 MINGW64")
    assert "-DSIGNUM_WERROR=OFF" in build["run"]
    reason = comment_above("- name: Build the Windows parts (MSYS2 MINGW64)")
    assert "SIGNUM_WERROR=OFF" in reason and "GCC" in reason
    # everywhere else warnings stay errors
    cmake = (REPO / "CMakeLists.txt").read_text()
    assert 'option(SIGNUM_WERROR "' in cmake and '(-Werror)" ON)' in cmake
    assert "SIGNUM_WERROR" not in (REPO / "ci" / "build-windows").read_text()
    assert sum("SIGNUM_WERROR=OFF" in runs(j) for j in jobs().values()) == 1


def test_the_macos_job_builds_the_client_side_and_runs_its_unit_tests():
    """Issue 17 item 4: the agent, signum-util and libsignumpkcs11.dylib build on macOS (through
    the platform layer: posix_platform_macos.cc, peer_macos.cc) and their unit tests run there,
    before any row; the dylib exports the C_* entry points and nothing else."""
    job = jobs()["matrix-macos"]
    build = step_named(job, "Build the client side")["run"]
    for target in ("signum-agent", "signum-util", "signumpkcs11", "signum_agent_test",
                   "signum_pkcs11_provider_unit_test"):
        assert f" {target}" in build, target
    assert "libsignumpkcs11.dylib" in build and "_C_" in build
    tests = step_named(job, "Client-side unit tests")["run"]
    for binary in ("signum_core_test", "signum_provider_core_test",
                   "signum_pkcs11_provider_unit_test", "signum_agent_test"):
        assert binary in tests, binary
    names = [step.get("name", "") for step in job["steps"]]
    assert names.index(step_named(job, "Client-side unit tests")["name"]) < \
        names.index(next(n for n in names if n.startswith("Run the macos rows")))
    # The macOS halves exist and CMake picks exactly one half per system.
    for path in ("reference/core/src/posix_platform_macos.cc", "reference/agent/src/peer_macos.cc"):
        assert (REPO / path).is_file(), path
    core = (REPO / "reference/core/CMakeLists.txt").read_text()
    assert "if(APPLE)\n  target_sources(signum_core_portable PRIVATE src/posix_platform_macos.cc)" \
        in core


def test_the_windows_job_runs_the_native_agent_in_front_of_the_wsl_server():
    """Issue 17 item 3: signum-agent.exe (TCP only, Schannel) is built by the MSYS2 step with the
    rest of the tree, runs natively against the WSL deployment's server, and the KSP and CSP
    programs sign through it before the OpenSSL step verifies every manifest."""
    job = windows_job()
    build = index_of(job, lambda s: "MSYS2 MINGW64" in s.get("name", ""))
    deployment = index_of(job, lambda s: "wsl-deployment.sh" in s.get("run", ""))
    native = index_of(job, lambda s: "Invoke-NativeAgent.ps1" in s.get("run", ""))
    verify = index_of(job, lambda s: "verify-manifest.sh" in s.get("run", ""))
    assert build < deployment < native < verify
    assert "-OutDir" in job["steps"][native]["run"]
    script = (REPO / "interop/tools/windows/Invoke-NativeAgent.ps1").read_text()
    # the server's port through the same loopback-first path as the agent's
    assert "Connect-WslAgent.ps1') -SiteFile $SiteFile -Port $serverPort" in script
    assert "$env:SIGNUM_AGENT_SOCKET = 'off'" in script
    assert "$env:SIGNUM_AGENT_TCP = '127.0.0.1:0'" in script
    for program in ("signum_cng_ksp_table_test", "signum_cng_csp_test"):
        assert program in script
    assert 'native-agent-$name' in script and "manifest.tsv" in script
    assert "'signed with'" in script  # the agent's own log proves the programs went through it
    connect = (REPO / "interop/tools/windows/Connect-WslAgent.ps1").read_text()
    assert "[int]$Port = 0" in connect
    export = (REPO / "interop/tools/windows/export-site.py").read_text()
    assert '"native_agent"' in export and "server.token" in export
    # The daemon is no longer Linux/macOS only: the Windows tree builds it and its unit tests.
    agent = (REPO / "reference/agent/CMakeLists.txt").read_text()
    assert "src/agent_socket_windows.cc" in agent and "signum_agent_windows_test" in agent
    assert "Windows gets the client library alone" not in agent


def test_the_macos_keychain_tier_runs_the_rows_own_scripts_with_a_throwaway_identity():
    """Issue 17 item 5(b): a temporary keychain set up the way a CI machine must be (create,
    unlock, import -T /usr/bin/codesign, set-key-partition-list), the certifying root trusted, and
    the codesign / productsign / pkgbuild rows' prepare, sign and verify run unchanged."""
    job = jobs()["matrix-macos"]
    names = [step.get("name", "") for step in job["steps"]]
    tier = names.index(step_named(job, "Keychain tier")["name"])
    assert names.index("Runner dependencies") < tier  # row_script.py reads matrix.yaml (PyYAML)
    assert tier < names.index(next(n for n in names if n.startswith("Run the macos rows")))
    script = (REPO / "interop/tools/macos/keychain-tier.sh").read_text()
    for command in ("security create-keychain", "security unlock-keychain",
                    "-T /usr/bin/codesign", "security set-key-partition-list",
                    "security add-trusted-cert -d -r trustRoot",
                    "security list-keychains -d user -s \"$KEYCHAIN\"",
                    "security delete-keychain", "security remove-trusted-cert"):
        assert command in script, command
    assert "codesign-macos productsign-macos pkgbuild-sign-macos" in script
    for part in ("prepare", "sign", "verify"):
        assert part in script
    assert "declare -A" not in script  # macOS's /bin/bash is 3.2
    done = subprocess.run(["/usr/bin/python3", str(REPO / "interop/tools/macos/row_script.py"),
                           "codesign-macos", "sign"], capture_output=True, text=True, check=True)
    assert '--sign "$CERT_SHA1"' in done.stdout
    eol = eol_of(["interop/tools/macos/keychain-tier.sh", "interop/tools/macos/row_script.py"])
    assert set(eol.values()) == {"lf"}


def test_the_ctk_rows_run_only_with_a_signing_identity_and_say_so_otherwise():
    """Issue 17 item 5(c): the CTK rows need a token extension signed by a real identity; the
    macOS job takes it from repository secrets, and without it the rows are skipped naming the
    variable (never a silent pass) and the signing step says so as a workflow notice."""
    matrix = matrix_mod.load(REPO / "matrix.yaml")
    ctk = [row for row in matrix.rows if row.interface == "ctk"]
    assert {row.id for row in ctk} >= {"codesign-macos", "productsign-macos", "pkgbuild-sign-macos"}
    for row in ctk:
        assert "SIGNUM_CTK_SIGNING_IDENTITY" in row.required_env, row.id
        assert "variable $SIGNUM_CTK_SIGNING_IDENTITY" in row.missing_requirements({})
    job = jobs()["matrix-macos"]
    assert job["env"]["SIGNUM_CTK_SIGNING_IDENTITY"] == "${{ secrets.SIGNUM_CTK_SIGNING_IDENTITY }}"
    sign = step_named(job, "Sign the token extension")
    assert "sign-token-extension.sh" in sign["run"]
    assert sign["env"]["SIGNUM_CTK_SIGNING_P12"] == "${{ secrets.SIGNUM_CTK_SIGNING_P12 }}"
    script = (REPO / "interop/tools/macos/sign-token-extension.sh").read_text()
    assert "::notice title=CTK rows skipped::" in script
    assert "codesign --force --sign -" in script  # ad hoc without the secret
    assert 'codesign --force --options runtime --sign "$identity"' in script
