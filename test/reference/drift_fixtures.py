#!/usr/bin/env python3
"""Reference values for activities/data/drift.ts and activities/training/metrics.ts.

Writes test/fixtures/reference/drift.json and test/fixtures/reference/metrics.json, which
test/unit/drift.test.ts and test/unit/metrics.test.ts compare the TypeScript against.

Regenerate (from the repository root, with a Python that has numpy, scipy and scikit-learn,
e.g. Debian's python3-numpy python3-scipy python3-sklearn):

    python3 test/reference/drift_fixtures.py

(If `python3` is a pyenv/venv interpreter without them, run /usr/bin/python3 instead.)
The output is deterministic for a given numpy/scipy/sklearn: samples come from seeded
numpy Generators and are rounded to 6 decimals, so the JSON holds exactly the inputs used.

References, written independently of the TypeScript:
  * KS: scipy.stats.ks_2samp(a, b, method='asymp') and scipy.stats.kstwo.sf on a grid.
  * Jensen-Shannon: scipy.spatial.distance.jensenshannon(p, q, base=2).
  * PSI: numpy, sum((a - e) * ln(a / e)) over proportions floored at 1e-4.
  * L-infinity: numpy, max |p/sum(p) - q/sum(q)| over the union of categories.
  * Histograms: np.searchsorted(edges, x, side='left') -> bins (e[k-1], e[k]].
  * Quantile edges: np.unique(np.quantile(x, k/bins)) (numpy's default 'linear' method).
  * Metrics: sklearn roc_auc_score, log_loss (eps=1e-15, as metrics.ts), accuracy_score,
    precision_score / recall_score / f1_score (zero_division=0), brier_score_loss; ECE by hand.
"""

import json
import os
import sys

import numpy as np
import sklearn
import scipy
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn import metrics as skm

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "test", "fixtures", "reference")
PSI_EPS = 1e-4
BINS = 10


def r6(x):
    return [round(float(v), 6) for v in np.asarray(x).ravel()]


def fl(x):
    return float(x)


# ----------------------------------------------------------------------------- drift

def np_psi(expected, actual):
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    e = np.maximum(e / e.sum(), PSI_EPS)
    a = np.maximum(a / a.sum(), PSI_EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def np_hist(values, edges):
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    idx = np.searchsorted(np.asarray(edges, dtype=float), v, side="left")
    return [int(c) for c in np.bincount(idx, minlength=len(edges) + 1)]


def np_edges(values, bins):
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    return [float(e) for e in np.unique(np.quantile(v, np.arange(1, bins) / bins))]


def numeric_case(name, a, b, note):
    a = r6(a)
    b = r6(b)
    edges = np_edges(a, BINS)
    ha = np_hist(a, edges)
    hb = np_hist(b, edges)
    ks = stats.ks_2samp(a, b, method="asymp")
    return {
        "name": name,
        "note": note,
        "a": a,
        "b": b,
        "bins": BINS,
        "edges": edges,
        "histA": ha,
        "histB": hb,
        "psi": np_psi(ha, hb),
        "jensenShannon": fl(jensenshannon(ha, hb, base=2)),
        "ks": {"statistic": fl(ks.statistic), "pValue": fl(ks.pvalue)},
    }


def categorical_case(name, p, q, note):
    keys = sorted(set(p) | set(q))
    pv = np.array([p.get(k, 0) for k in keys], dtype=float)
    qv = np.array([q.get(k, 0) for k in keys], dtype=float)
    linf = float(np.max(np.abs(pv / pv.sum() - qv / qv.sum())))
    return {
        "name": name,
        "note": note,
        "p": p,
        "q": q,
        "keys": keys,
        "pCounts": [int(x) for x in pv],
        "qCounts": [int(x) for x in qv],
        "psi": np_psi(pv, qv),
        "jensenShannon": fl(jensenshannon(pv, qv, base=2)),
        "lInfinity": linf,
    }


def counts_case(name, p, q):
    return {"name": name, "p": p, "q": q, "psi": np_psi(p, q), "jensenShannon": fl(jensenshannon(p, q, base=2))}


def kstwo_grid():
    """scipy.stats.kstwo.sf(d, n) across every branch of scipy's _kolmogn."""
    rows = []
    for n in [1, 2, 3, 5, 10, 20, 50, 100, 140, 141, 500, 857, 5000, 100000, 100001, 300000, 1500000]:
        ds = {0.75 / n, 1.0 / n, 1.5 / n, 0.6, 0.9, 1 - 1.0 / n, (n - 0.5) / n}
        ds |= {c / np.sqrt(n) for c in (0.3, 0.6, 0.8, 0.868, 1.0, 1.2, 1.5, 1.8, 2.5, 4.0, 10.0, 19.2)}
        ds |= {(c / n) ** (2 / 3) for c in (0.5, 1.39, 1.41)}
        for d in sorted(ds):
            if 0 < d < 1:
                rows.append({"n": n, "d": float(d), "sf": fl(stats.kstwo.sf(d, n))})
    return rows


def drift_fixtures():
    rng = np.random.default_rng(20240611)
    same = rng.normal(10.0, 2.0, 600)
    numeric = [
        numeric_case("normal-mean-shift", rng.normal(0.0, 1.0, 1000), rng.normal(0.35, 1.0, 800),
                     "N(0,1) vs N(0.35,1): moderate PSI, tiny KS p-value (exact Smirnov tail branch)"),
        numeric_case("normal-slight-shift", rng.normal(0.0, 1.0, 1500), rng.normal(0.05, 1.0, 1200),
                     "N(0,1) vs N(0.05,1): small D, n = 667 (Pelz-Good branch)"),
        numeric_case("identical", same, same, "the same sample twice: PSI 0, JS 0, D 0, p 1"),
        numeric_case("disjoint", rng.uniform(0.0, 1.0, 300), rng.uniform(2.0, 3.0, 250),
                     "disjoint supports: D 1, p 0; all of b in the top bin of a's deciles, PSI large but finite"),
        numeric_case("small-ties", rng.integers(0, 5, 12), rng.integers(1, 7, 9),
                     "small integer samples with many ties (n = 5)"),
        numeric_case("small-normal", rng.normal(0.0, 1.0, 30), rng.normal(0.4, 1.3, 40),
                     "30 vs 40 values (n = 17)"),
        numeric_case("medium-scale", rng.normal(0.0, 1.0, 400), rng.normal(0.0, 1.15, 350),
                     "equal means, different spread (n = 187)"),
        numeric_case("uniform-vs-beta", rng.uniform(0, 1, 900), rng.beta(2.0, 2.0, 700),
                     "U(0,1) vs Beta(2,2)"),
    ]
    categorical = [
        categorical_case("unseen-both-sides",
                         {"red": 500, "green": 300, "blue": 200},
                         {"red": 450, "green": 250, "blue": 180, "purple": 120},
                         "a category new in q (purple)"),
        categorical_case("dropped-and-new",
                         {"a": 40, "b": 30, "c": 20, "d": 10},
                         {"a": 25, "b": 25, "e": 50},
                         "categories lost (c, d) and gained (e)"),
        categorical_case("identical-shares",
                         {"x": 10, "y": 30, "z": 60},
                         {"x": 100, "y": 300, "z": 600},
                         "same proportions at different totals: all measures 0"),
        categorical_case("disjoint",
                         {"a": 5, "b": 5},
                         {"c": 7},
                         "no category in common: L-inf 1, JS 1"),
    ]
    counts = [
        counts_case("zero-bins", [0, 10, 20, 30, 0], [5, 0, 20, 30, 45]),
        counts_case("proportions", [0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]),
        counts_case("tiny-shares", [1, 100000, 100000], [0, 100000, 100001]),
    ]
    return {
        "generator": "test/reference/drift_fixtures.py",
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__},
        "psiEpsilon": PSI_EPS,
        "numeric": numeric,
        "categorical": categorical,
        "counts": counts,
        "kstwo": kstwo_grid(),
    }


# ----------------------------------------------------------------------------- metrics

def np_ece(p, y, bins):
    p = np.asarray(p, dtype=float)
    y = np.asarray(y, dtype=float)
    idx = np.minimum(np.floor(p * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.sum() / len(p) * abs(y[m].mean() - p[m].mean())
    return float(ece)


def metrics_case(name, probs, labels, threshold, note):
    probs = r6(probs)
    labels = [int(v) for v in labels]
    pred = (np.asarray(probs) >= threshold).astype(int)
    return {
        "name": name,
        "note": note,
        "probs": probs,
        "labels": labels,
        "threshold": threshold,
        "expected": {
            "rows": len(labels),
            "positives": int(sum(labels)),
            "auc": fl(skm.roc_auc_score(labels, probs)),
            "logLoss": fl(skm.log_loss(labels, probs, eps=1e-15, labels=[0, 1])),
            "accuracy": fl(skm.accuracy_score(labels, pred)),
            "precision": fl(skm.precision_score(labels, pred, zero_division=0)),
            "recall": fl(skm.recall_score(labels, pred, zero_division=0)),
            "f1": fl(skm.f1_score(labels, pred, zero_division=0)),
            "threshold": threshold,
            "expectedCalibrationError": np_ece(probs, labels, 10),
            "brier": fl(skm.brier_score_loss(labels, probs)),
        },
        "ece15": np_ece(probs, labels, 15),
    }


def metrics_fixtures():
    rng = np.random.default_rng(7)

    def scored(n, signal, bias=0.0):
        y = rng.random(n) < 0.3
        logit = bias + signal * (y - 0.3) + rng.normal(0, 1, n)
        return 1 / (1 + np.exp(-logit)), y.astype(int)

    p1, y1 = scored(2000, 1.5)
    p2, y2 = scored(600, 1.0)
    p3, y3 = scored(300, 1.0, bias=-3.0)
    p4 = np.concatenate([[0.0, 1.0, 0.0, 1.0, 0.5, 0.5], rng.random(94)])
    y4 = np.concatenate([[0, 1, 1, 0, 1, 0], (rng.random(94) < 0.5).astype(int)])
    cases = [
        metrics_case("random-2000", p1, y1, 0.5, "2000 rows, 30% positives"),
        metrics_case("random-2000-threshold-0.3", p1, y1, 0.3, "same rows, threshold 0.3"),
        metrics_case("heavy-ties", np.round(p2, 1), y2, 0.5, "scores rounded to 0.1: AUC tie handling, ECE bin edges"),
        metrics_case("no-predicted-positives", np.minimum(p3, 0.49), y3, 0.5, "precision 0 by zero_division=0"),
        metrics_case("extremes", p4, y4, 0.5, "probabilities exactly 0 and 1 (log loss clipped at 1e-15)"),
    ]
    return {
        "generator": "test/reference/drift_fixtures.py",
        "versions": {"numpy": np.__version__, "sklearn": sklearn.__version__},
        "cases": cases,
    }


def write(name, obj):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    write("drift.json", drift_fixtures())
    write("metrics.json", metrics_fixtures())
