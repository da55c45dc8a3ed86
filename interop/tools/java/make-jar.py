#!/usr/bin/python3
"""Writes an unsigned jar holding one text file: make-jar.py OUT.jar

A jar is a zip; jarsigner adds META-INF/MANIFEST.MF itself. Python instead of `jar` saves a JVM
start per cell. Entries get fixed permissions so jarsigner has no POSIX attributes to warn about.
"""
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as jar:
    entry = zipfile.ZipInfo("readme.txt", date_time=(2026, 1, 1, 0, 0, 0))
    entry.compress_type = zipfile.ZIP_DEFLATED
    jar.writestr(entry, "Signum Harness interop matrix\n")
