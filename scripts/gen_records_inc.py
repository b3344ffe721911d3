#!/usr/bin/env python3
"""tests/data/torch211_decoded_records.json -> a C initialiser for tests/check_sig.c:
{op, demangled, "G .. B .. S ..", "P off:size=hex ..."} per recorded launch (PyTorch 2.11,
H200, from ../shared/data/pytorch-2.11-cu130)."""
import json, sys

recs = json.load(open(sys.argv[1]))
out = open(sys.argv[2], "w")
def c(s):
    return "NULL" if s is None else json.dumps(s)
for op, mangled, dem, launch, params in recs:
    out.write("{ %s, %s, %s, %s, %s },\n" % (c(op), c(mangled), c(dem), c(launch), c(params)))
