"""test_docs.py - docs/CONFIG.md stays generated from the config table: every setting that
`nimbus serve --help` lists is documented with the same default."""
import os
import re
import subprocess

from conftest import NIMBUS, ROOT


def test_config_doc_matches_table(nimbus_bin):
    out = subprocess.run([NIMBUS, "serve", "--help"], capture_output=True, text=True).stdout
    flags = re.findall(r"^  (--[a-z-]+ \S+ \(default [^)]*\))", out, re.M)
    assert len(flags) >= 10
    with open(os.path.join(ROOT, "docs", "CONFIG.md")) as f:
        doc = f.read()
    missing = [f for f in flags if f not in doc]
    assert not missing, "docs/CONFIG.md is stale; regenerate it from `nimbus serve --help`: %s" % missing
