#!/usr/bin/env python3
"""A plain Python reading of the same kernel CNA records, deciding the same question with the same
per-branch semantics as watertight (the peer for benches/kernel/compare.sh).

usage: python_reader.py RECORDS_DIR VERSION [VERSION ...]
prints: load=<seconds> then one line per version: <version> <affected count> <seconds>
"""
import glob
import json
import os
import sys
import time


def parse(text):
    return tuple(int(p) for p in text.split("."))


def pad(v):
    return v + (0,) * (4 - len(v))


def branch(v):
    return pad(v[:3] if v[0] < 3 else v[:2])


def load(directory):
    records = []
    for path in glob.glob(os.path.join(directory, "**", "*.json"), recursive=True):
        with open(path, "rb") as f:
            doc = json.load(f)
        cna = doc["containers"]["cna"]
        rec = {"default": False, "ranges": [], "unaffected": [], "branch_fixes": [], "mainline": []}
        for entry in cna.get("affected", []):
            rec["default"] |= entry.get("defaultStatus") == "affected"
            for s in entry.get("versions", []):
                kind = s.get("versionType")
                if kind == "git":
                    continue
                if s["status"] == "affected" and kind == "semver" and "lessThan" in s:
                    rec["ranges"].append((pad(parse(s["version"])), pad(parse(s["lessThan"]))))
                elif s["status"] == "unaffected" and kind == "semver" and "lessThan" in s:
                    rec["unaffected"].append((pad(parse(s["version"])), pad(parse(s["lessThan"]))))
                elif s["status"] == "unaffected" and kind == "semver" and s.get("lessThanOrEqual", "").endswith(".*"):
                    rec["branch_fixes"].append((parse(s["lessThanOrEqual"][:-2]), pad(parse(s["version"]))))
                elif s["status"] == "unaffected" and kind == "original_commit_for_fix":
                    rec["mainline"].append(pad(parse(s["version"])))
        records.append(rec)
    return records


def affected(rec, v):
    if any(lo <= v < hi for lo, hi in rec["ranges"]):
        return True
    if not rec["default"]:
        return False
    if any(lo <= v < hi for lo, hi in rec["unaffected"]):
        return False
    for prefix, fixed in rec["branch_fixes"]:
        if v[: len(prefix)] == prefix and branch(v) == branch(fixed) and v >= fixed:
            return False
    return not any(v >= m for m in rec["mainline"])


def main():
    directory, versions = sys.argv[1], sys.argv[2:]
    t = time.perf_counter()
    records = load(directory)
    print(f"load={time.perf_counter() - t:.3f}")
    for text in versions:
        v = pad(parse(text))
        t = time.perf_counter()
        n = sum(affected(r, v) for r in records)
        print(f"{text} {n} {time.perf_counter() - t:.3f}")


if __name__ == "__main__":
    main()
