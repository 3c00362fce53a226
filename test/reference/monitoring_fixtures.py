#!/usr/bin/env python3
"""Reference values for the monitoring check (activities/monitoring/drift-check.ts).

Writes test/fixtures/reference/monitoring.json, which test/unit/monitoring-drift.test.ts
compares the TypeScript against. Regenerate from the repository root with a Python that has
numpy, scipy and scikit-learn (Debian's python3-numpy python3-scipy python3-sklearn):

    /usr/bin/python3 test/reference/monitoring_fixtures.py

Deterministic for a given numpy/scipy/sklearn: seeded Generators, values rounded to 6
decimals (3 for distances), so the JSON holds exactly the inputs used. Missing values are
null. References, written independently of the TypeScript:
  * baseline edges: np.unique(np.quantile(train, k/10)) on the training values (numpy 'linear');
  * histograms: np.searchsorted(edges, x, side='left') -> bins (e[k-1], e[k]], missing skipped;
  * PSI: sum((a - e) * ln(a / e)) over proportions floored at 1e-4;
  * JS: scipy.spatial.distance.jensenshannon(p, q, base=2);
  * KS: scipy.stats.ks_2samp(train, window, method='asymp') on the non-missing values;
  * categorical: counts over the training categories with >= 1% of the rows (at most the 30
    most frequent), everything else (rare or unseen) in one bucket; '' is missing; unseen fraction = window rows whose category training never had / all window rows;
  * performance: sklearn roc_auc_score, log_loss, accuracy_score at 0.5.
"""

import json
import os
import sys

import numpy as np
import scipy
import sklearn
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn import metrics as skm

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "test", "fixtures", "reference", "monitoring.json")
PSI_EPS = 1e-4
# Categories under 1% of the training rows, and past the 30 most frequent, are one bucket.
MIN_SHARE = 0.01
MAX_BINS = 30
OTHER = "\u0000other"


def psi(expected, actual):
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    e = np.maximum(e / e.sum(), PSI_EPS)
    a = np.maximum(a / a.sum(), PSI_EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def hist(values, edges):
    idx = np.searchsorted(np.asarray(edges, dtype=float), values, side="left")
    return [int(c) for c in np.bincount(idx, minlength=len(edges) + 1)]


def edges_of(values):
    return [float(e) for e in np.unique(np.quantile(values, np.arange(1, 10) / 10))]


def with_missing(rng, values, fraction, digits):
    out = [round(float(v), digits) for v in values]
    for i in np.flatnonzero(rng.random(len(out)) < fraction):
        out[int(i)] = None
    return out


def present(values):
    return np.array([v for v in values if v is not None], dtype=float)


def numeric_case(name, note, train, window):
    t, w = present(train), present(window)
    edges = edges_of(t)
    ks = stats.ks_2samp(t, w, method="asymp")
    return {
        "name": name,
        "note": note,
        "train": train,
        "window": window,
        "edges": edges,
        "trainHist": hist(t, edges),
        "windowHist": hist(w, edges),
        "psi": psi(hist(t, edges), hist(w, edges)),
        "js": float(jensenshannon(hist(t, edges), hist(w, edges), base=2)),
        "ks": float(ks.statistic),
        "ksPValue": float(ks.pvalue),
        "missingFraction": (len(window) - len(w)) / len(window),
        "baselineMissingFraction": (len(train) - len(t)) / len(train),
    }


def counts(values):
    out = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def bucket(c, kept):
    out = {}
    for k, n in c.items():
        if k == "":
            continue
        key = k if k in kept else OTHER
        out[key] = out.get(key, 0) + n
    return out


def categorical_case(name, note, train, window):
    tc, wc = counts(train), counts(window)
    nonmissing = {k: n for k, n in tc.items() if k != ""}
    total = sum(nonmissing.values())
    ranked = sorted((k for k, n in nonmissing.items() if n >= MIN_SHARE * total), key=lambda k: (-nonmissing[k], k))
    kept = set(ranked[:MAX_BINS])
    bt, bw = bucket(tc, kept), bucket(wc, kept)
    keys = sorted(set(bt) | set(bw))
    p = np.array([bt.get(k, 0) for k in keys], dtype=float)
    q = np.array([bw.get(k, 0) for k in keys], dtype=float)
    unseen = sum(n for k, n in wc.items() if k != "" and k not in tc)
    return {
        "name": name,
        "note": note,
        "trainCounts": tc,
        "windowCounts": wc,
        "keys": keys,
        "psi": psi(p, q),
        "js": float(jensenshannon(p, q, base=2)),
        "unseenFraction": unseen / len(window),
        "missingFraction": wc.get("", 0) / len(window),
        "baselineMissingFraction": tc.get("", 0) / len(train),
    }


def fixtures():
    rng = np.random.default_rng(20261123)
    airports = ["ATL", "BOS", "DEN", "DFW", "JFK", "LAX", "ORD", "SEA", "SFO"]
    weights = np.array([14, 6, 9, 12, 7, 13, 16, 5, 8], dtype=float)
    weights /= weights.sum()
    shifted = np.roll(weights, 3)

    dist_train = with_missing(rng, np.abs(rng.lognormal(6.4, 0.6, 3000)), 0.01, 3)
    numeric = [
        numeric_case("distance-matched", "same distribution as training: PSI, JS, KS small",
                     dist_train, with_missing(rng, np.abs(rng.lognormal(6.4, 0.6, 2000)), 0.01, 3)),
        numeric_case("distance-times-3", "every distance tripled: PSI, JS and KS far past the act thresholds",
                     dist_train, with_missing(rng, 3 * np.abs(rng.lognormal(6.4, 0.6, 2000)), 0.01, 3)),
        numeric_case("hour-integers-missing", "integer hours with heavy ties; 12% missing in the window",
                     with_missing(rng, rng.integers(5, 23, 2500), 0.0, 0), with_missing(rng, rng.integers(6, 23, 1800), 0.12, 0)),
    ]

    def draw(n, w, missing):
        vals = list(rng.choice(airports, n, p=w))
        for i in np.flatnonzero(rng.random(n) < missing):
            vals[int(i)] = ""
        return [str(v) for v in vals]

    origin_train = draw(3000, weights, 0.002)
    categorical = [
        categorical_case("origin-matched", "same shares as training", origin_train, draw(2000, weights, 0.002)),
        categorical_case("origin-shifted-unseen", "shares rotated, 10% of rows a new airport XYZ, 1% missing",
                         origin_train, draw(1800, shifted, 0.01) + ["XYZ"] * 200),
    ]
    # A long tail like real airports: 250 categories with Zipf shares, the window only 500 rows.
    tail = [f"A{i:03d}" for i in range(250)]
    zipf = 1 / np.arange(1, 251) ** 1.1
    zipf /= zipf.sum()
    long_train = [str(v) for v in rng.choice(tail, 20000, p=zipf)]
    categorical.append(categorical_case("long-tail-matched", "250 categories, 500 window rows from the same shares: the rare ones share one bucket",
                                        long_train, [str(v) for v in rng.choice(tail, 500, p=zipf)]))
    categorical.append(categorical_case("long-tail-shifted", "the same 250 categories, tail-heavy window",
                                        long_train, [str(v) for v in rng.choice(tail, 500, p=np.roll(zipf, 120))]))

    score_train = [round(float(v), 6) for v in 1 / (1 + np.exp(-rng.normal(-1.5, 0.9, 3000)))]
    score_window = [round(float(v), 6) for v in 1 / (1 + np.exp(-rng.normal(-1.1, 0.9, 2000)))]
    pe = edges_of(score_train)
    prediction = {
        "baseline": score_train,
        "window": score_window,
        "edges": pe,
        "psi": psi(hist(score_train, pe), hist(score_window, pe)),
        "js": float(jensenshannon(hist(score_train, pe), hist(score_window, pe), base=2)),
        "ks": float(stats.ks_2samp(score_train, score_window, method="asymp").statistic),
        "mean": float(np.mean(score_window)),
        "baselineMean": float(np.mean(score_train)),
    }

    y = (rng.random(1200) < 0.22).astype(int)
    p = 1 / (1 + np.exp(-(-1.4 + 1.2 * (y - 0.22) + rng.normal(0, 1, 1200))))
    p = [round(float(v), 6) for v in p]
    performance = {
        "probs": p,
        "labels": [int(v) for v in y],
        "auc": float(skm.roc_auc_score(y, p)),
        "logLoss": float(skm.log_loss(y, p, labels=[0, 1])),
        "accuracy": float(skm.accuracy_score(y, (np.asarray(p) >= 0.5).astype(int))),
        "positiveRate": float(np.mean(y)),
        "meanPrediction": float(np.mean(p)),
    }
    return {
        "generator": "test/reference/monitoring_fixtures.py",
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__},
        "numeric": numeric,
        "categorical": categorical,
        "prediction": prediction,
        "performance": performance,
    }


if __name__ == "__main__":
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(fixtures(), f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({os.path.getsize(OUT)} bytes)", file=sys.stderr)
