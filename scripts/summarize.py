"""Sums test results into one line "N passed, N failed" (the line CI reads).

Reads, from the results dir given as argv[1]: meson testlog JSON files (*-unit.json; each cmocka
binary prints TAP, whose "ok"/"not ok" lines are counted one by one; a binary that crashed or
printed no TAP counts as one failure) and JUnit XML files (*.xml from pytest and the fuzz runs).
Exits 1 when anything failed or nothing ran.
"""
import glob
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

out = sys.argv[1]
passed = failed = 0

for path in glob.glob(os.path.join(out, "*-unit.json")):
    with open(path) as f:
        for line in f:
            t = json.loads(line)
            oks = len(re.findall(r"^ok \d+", t.get("stdout", ""), re.M))
            bad = len(re.findall(r"^not ok \d+", t.get("stdout", ""), re.M))
            if t.get("result") not in ("OK", "EXPECTEDFAIL") and bad == 0:
                bad = 1
            passed += oks
            failed += bad

for path in glob.glob(os.path.join(out, "*.xml")):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        failed += 1
        continue
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for s in suites:
        n = int(s.get("tests", 0))
        bad = int(s.get("failures", 0)) + int(s.get("errors", 0))
        skipped = int(s.get("skipped", 0))
        passed += n - bad - skipped
        failed += bad

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed or passed == 0 else 0)
