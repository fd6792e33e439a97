#!/usr/bin/python3
"""eval_sklearn.py - checks guard eval --scores against scikit-learn on fixed synthetic scores
(ties included): precision, recall, F1, FPR, average precision (AUPRC), the threshold for a
target FPR. Usage: eval_sklearn.py GUARD TMPDIR CASE. Exit 0 when every number agrees."""
import json
import subprocess
import sys

import numpy as np
from sklearn.metrics import (average_precision_score, confusion_matrix, f1_score,
                             precision_score, recall_score, roc_curve)


def case(name):
    rs = np.random.RandomState(20261201)
    if name == "ties":  # scores on a 0.1 grid: every threshold is shared by many items
        y = rs.randint(0, 2, 200)
        s = np.round(np.clip(0.35 * y + rs.uniform(0, 0.65, 200), 0, 1), 1)
    elif name == "all-tied":
        y = rs.randint(0, 2, 50)
        s = np.full(50, 0.5)
    elif name == "binary":  # a rigged model's scores: near 0 or near 1
        y = rs.randint(0, 2, 120)
        s = np.where(rs.uniform(0, 1, 120) < 0.2, 1 - y, y).astype(float)
    elif name == "fine":  # few ties, some exact duplicates
        y = (rs.uniform(0, 1, 300) < 0.3).astype(int)
        s = np.round(rs.beta(2 + 3 * y, 4 - 2 * y), 3)
        s[:20] = s[20:40]
    elif name == "rare":  # 3 positives among 97 negatives
        y = np.zeros(100, dtype=int)
        y[[5, 50, 95]] = 1
        s = np.round(rs.uniform(0, 1, 100), 2)
        s[50] = s[49]
    else:
        raise SystemExit("unknown case " + name)
    return y, s


def reference(y, s, target):
    pred = (s >= 0.5).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    # thr[0] is sklearn's "above every score" point; the most recall within the target
    within = [i for i in range(1, len(thr)) if fpr[i] <= target]
    t = None
    if within:
        i = max(within)
        t = {"threshold": thr[i], "fpr": fpr[i], "recall": tpr[i]}
    return {
        "precision": precision_score(y, pred, zero_division=0),
        "recall": recall_score(y, pred, zero_division=0),
        "f1": f1_score(y, pred, zero_division=0),
        "fpr": fp / (fp + tn),
        "auprc": average_precision_score(y, s),
        "counts": {"tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn)},
        "t": t,
    }


def main():
    guard, tmp, name = sys.argv[1:4]
    y, s = case(name)
    path = "%s/%s.scores" % (tmp, name)
    with open(path, "w") as f:
        for a, b in zip(y, s):
            f.write("%d %s\n" % (a, repr(float(b))))
    bad = 0
    for target in (0.0, 0.05, 0.1, 0.3):
        out = subprocess.run([guard, "eval", "--scores", path, "--json", "--fpr", str(target)],
                             check=True, capture_output=True, text=True).stdout
        got = json.loads(out)
        want = reference(y, s, target)
        for k in ("precision", "recall", "f1", "fpr", "auprc"):
            if abs(got[k] - want[k]) > 1e-12:
                print("# %s fpr %s: %s got %r want %r" % (name, target, k, got[k], want[k]))
                bad += 1
        if got["counts"] != want["counts"]:
            print("# %s: counts got %r want %r" % (name, got["counts"], want["counts"]))
            bad += 1
        gt, wt = got["threshold_at_fpr"], want["t"]
        if (gt["threshold"] is None) != (wt is None):
            print("# %s fpr %s: threshold got %r want %r" % (name, target, gt, wt))
            bad += 1
        elif wt is not None:
            for k in ("threshold", "fpr", "recall"):
                if abs(gt[k] - wt[k]) > 1e-12:
                    print("# %s fpr %s: threshold_at_fpr.%s got %r want %r" % (name, target, k, gt[k], wt[k]))
                    bad += 1
    sys.exit(1 if bad else 0)


main()
