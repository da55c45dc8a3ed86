#!/usr/bin/python3
"""The defect test: proves that signum-conformance-pkcs11 notices each catalogued defect, and only it.

Runs the suite through libsignum-defect-shim.so in front of SoftHSM2 on a fresh demo token
(`signum-server init-demo`): once with no defect (the baseline must have zero failures), then once
per defect in the catalogue (`signum-defect-catalogue`). For every defect the set of failing checks
(status fail or xpass in the suite's --summary JSON) must equal the catalogue's list for the
profile, exactly: the suite lists keys in a fixed order and covers one key of every type where a
check is about "a key", so there is no tolerance for order-dependent results. Writes
DIR/defects-<profile>.json and prints one line per defect.

usage: defects_test.py --server BIN --suite BIN --shim LIB --catalogue BIN --out DIR
                       [--profile provider|hsm] [--expect FILE] [--defect NAME]... [--keys SPECS]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
RUN_TIMEOUT_SECONDS = 900

def failing_checks(summary):
    return sorted(c["name"] for c in summary["checks"] if c["status"] in ("fail", "xpass"))


def run_suite(args, demo, defect, out_dir):
    """One suite run through the shim; returns (summary or None, exit code, log path)."""
    tag = defect or "baseline"
    summary_path = os.path.join(out_dir, f"{tag}.summary.json")
    log_path = os.path.join(out_dir, f"{tag}.log")
    env = dict(os.environ)
    env["SOFTHSM2_CONF"] = os.path.join(demo, "hsm", "softhsm2.conf")
    env["SIGNUM_SHIM_TARGET"] = SOFTHSM_MODULE
    env["SIGNUM_SHIM_DEFECT"] = defect or "none"
    command = [args.suite, "--module", args.shim, "--token", "signum-demo",
               "--pin-file", os.path.join(demo, "secrets", "hsm.pin"),
               "--profile", args.profile, "--strict", "--summary", summary_path,
               "--junit", os.path.join(out_dir, f"{tag}.junit.xml")]
    if args.expect and os.path.exists(args.expect):
        command += ["--expect", args.expect]
    if os.path.exists(summary_path):
        os.unlink(summary_path)
    with open(log_path, "w") as log:
        try:
            rc = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                timeout=RUN_TIMEOUT_SECONDS).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    summary = None
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            summary = json.load(f)
    return summary, rc, log_path


def main():
    parser = argparse.ArgumentParser()
    for name in ("--server", "--suite", "--shim", "--catalogue", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--profile", default="provider", choices=("provider", "hsm"))
    parser.add_argument("--expect", help="the suite's expectations file for SoftHSM2")
    parser.add_argument("--defect", action="append", help="only these defects (default: all)")
    parser.add_argument("--keys", default="rsa-2048,ec-p256,ec-p384",
                        help="demo keys (init-demo --keys)")
    args = parser.parse_args()

    catalogue = json.loads(subprocess.run([args.catalogue], check=True, capture_output=True,
                                          text=True).stdout)["defects"]
    if args.defect:
        unknown = set(args.defect) - {d["name"] for d in catalogue}
        if unknown:
            sys.exit(f"unknown defects: {sorted(unknown)}")
        catalogue = [d for d in catalogue if d["name"] in args.defect]

    out_dir = os.path.join(args.out, f"defects-{args.profile}")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    work = tempfile.mkdtemp(prefix="signum-defects-")
    results = []
    problems = []
    try:
        demo = os.path.join(work, "demo")
        init = subprocess.run([args.server, "init-demo", demo, "--keys", args.keys],
                              capture_output=True, text=True)
        if init.returncode != 0:
            sys.exit(f"init-demo failed:\n{init.stdout}{init.stderr}")

        started = time.monotonic()
        summary, rc, log = run_suite(args, demo, None, out_dir)
        if summary is None:
            sys.exit(f"baseline: the suite wrote no summary (exit {rc}); see {log}")
        baseline = failing_checks(summary)
        print(f"baseline (no defect): {summary['counts']} in {time.monotonic() - started:.0f}s")
        if baseline:
            problems.append(f"baseline through the shim has failures: {baseline} (see {log})")
        results.append({"defect": "none", "expected": [], "failed": baseline,
                        "counts": summary["counts"]})

        for defect in catalogue:
            name = defect["name"]
            expected = sorted(defect["failing_checks"][args.profile])
            started = time.monotonic()
            summary, rc, log = run_suite(args, demo, name, out_dir)
            if summary is None:
                problems.append(f"{name}: the suite wrote no summary (exit {rc}): a crash "
                                f"killed the run instead of failing checks; see {log}")
                results.append({"defect": name, "expected": expected, "failed": None})
                print(f"{name:40s} NO SUMMARY (exit {rc})")
                continue
            failed = failing_checks(summary)
            missed = sorted(set(expected) - set(failed))
            extra = sorted(set(failed) - set(expected))
            ok = not missed and not extra
            # An empty list says the profile cannot see this defect (e.g. the hsm profile does
            # not require certificates): then no check at all may fail.
            note = "" if expected else f" (invisible to the {args.profile} profile)"
            print(f"{name:40s} {'ok  ' if ok else 'FAIL'} {len(failed)} failing checks "
                  f"({time.monotonic() - started:.0f}s){note}")
            if missed:
                problems.append(f"{name}: expected to fail but passed or skipped: {missed}")
            if extra:
                problems.append(f"{name}: failed but not in the catalogue: {extra}")
            results.append({"defect": name, "expected": expected, "failed": failed,
                            "missed": missed, "unexpected": extra, "counts": summary["counts"]})
    finally:
        shutil.rmtree(work, ignore_errors=True)

    with open(os.path.join(args.out, f"defects-{args.profile}.json"), "w") as f:
        json.dump({"profile": args.profile, "results": results, "problems": problems}, f,
                  indent=2)
    for p in problems:
        print("PROBLEM:", p)
    print(f"{len(catalogue)} defects, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
