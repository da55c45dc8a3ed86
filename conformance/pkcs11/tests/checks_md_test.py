#!/usr/bin/python3
"""CHECKS.md agrees with the suite: every check the binary runs has a grade and a CHECKS.md row,
and each row's level equals the grade's (src/grades.cc is the one definition).

usage: checks_md_test.py SUITE_BINARY CHECKS_MD
"""
import json
import re
import subprocess
import sys


def main():
    suite, checks_md = sys.argv[1], sys.argv[2]
    grades = {g["check"]: g for g in json.loads(
        subprocess.run([suite, "--grades"], check=True, capture_output=True, text=True).stdout)}
    listed = subprocess.run([suite, "--module", "/nonexistent", "--profile", "hsm",
                             "--gtest_list_tests"], check=True, capture_output=True,
                            text=True).stdout
    tests, area = set(), None
    for line in listed.splitlines():
        if not line.startswith(" ") and line.endswith("."):
            area = line[:-1]
        elif line.startswith("  ") and area:
            tests.add(f"{area}.{line.strip().split()[0]}")
    rows = {}
    for line in open(checks_md):
        m = re.match(r"\| ([A-Z][A-Za-z]+\.[A-Za-z0-9 /.]+?) \|\s*x?\s*\|\s*x?\s*\| (required|spec) \|", line)
        if not m:
            continue
        names = [n.strip() for n in m.group(1).split("/")]
        prefix = names[0].split(".")[0]
        for n in names:
            rows[n if "." in n else f"{prefix}.{n}"] = m.group(2)
    problems = []
    problems += [f"{t}: runs but has no grade in grades.cc" for t in sorted(tests - set(grades))]
    problems += [f"{g}: graded but no such check" for g in sorted(set(grades) - tests)]
    problems += [f"{t}: no CHECKS.md row" for t in sorted(tests - set(rows))]
    problems += [f"{n}: CHECKS.md says {lvl}, grades.cc says {grades[n]['level']}"
                 for n, lvl in sorted(rows.items()) if n in grades and grades[n]["level"] != lvl]
    for p in problems:
        print("checks_md_test:", p)
    required = sum(g["level"] == "required" for g in grades.values())
    print(f"checks_md_test: {len(tests)} checks, {required} required, "
          f"{len(grades) - required} spec, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
