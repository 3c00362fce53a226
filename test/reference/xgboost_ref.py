#!/usr/bin/env python3
"""Reference GBDT: xgboost `hist` on the same matrix and parameters as our trainer.

Reads a JSON job on stdin:
  {"train": "/path/train.csv", "test": "/path/test.csv", "label": "label",
   "params": {"rounds": 100, "maxDepth": 6, "learningRate": 0.1, "maxBins": 255, "lambda": 1, "minChildWeight": 1},
   "threads": 2, "task": "binary" | "regression" | "multiclass", "classes": <k, multiclass>}
The CSVs have a header, numeric float feature columns (already encoded; empty = missing) and the
label column: 0/1, the target, or the class index. Trains objective binary:logistic (base_score =
the train positive rate), reg:squarederror (base_score = the train mean) or multi:softprob, and
prints one JSON line: {"auc" | "rmse" | "macroF1" and "logLoss": <on the test split>,
"trainSeconds": <fit only>, "rows": <train rows>, "xgboostVersion": "..."}. Errors go to stderr,
exit code 1.

Needs Debian's python3-xgboost and python3-sklearn (numpy comes with them); run it with the
system interpreter (/usr/bin/python3): a pyenv or virtualenv python3 does not see them.
"""
import csv
import json
import math
import sys
import time

INSTALL = "apt-get install python3-xgboost python3-sklearn"
DEFAULTS = {"rounds": 100, "maxDepth": 6, "learningRate": 0.1, "maxBins": 255, "lambda": 1.0, "minChildWeight": 1.0}


def read_csv(path, label, np):
    """Features as a float32 matrix (empty cell = NaN) and the label column, from a headed CSV."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file")
        if label not in header:
            raise ValueError(f"{path}: no column {label!r} in the header {header}")
        li = header.index(label)
        xs, ys = [], []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f"{path}:{line}: {len(row)} fields, the header has {len(header)}")
            try:
                ys.append(float(row[li]))
                xs.append([float(v) if v != "" else math.nan for k, v in enumerate(row) if k != li])
            except ValueError as err:
                raise ValueError(f"{path}:{line}: {err}") from None
    if not ys:
        raise ValueError(f"{path}: no rows")
    return np.asarray(xs, dtype=np.float32), np.asarray(ys, dtype=np.float32)


def main():
    try:
        import numpy as np
        import xgboost as xgb
        from sklearn.metrics import f1_score, log_loss, roc_auc_score
    except ImportError as err:
        print(f"xgboost_ref.py: missing Python package ({err}) for {sys.executable}: {INSTALL}", file=sys.stderr)
        return 1
    try:
        job = json.load(sys.stdin)
        p = {**DEFAULTS, **job.get("params", {})}
        label = job.get("label", "label")
        x_train, y_train = read_csv(job["train"], label, np)
        x_test, y_test = read_csv(job["test"], label, np)
        if x_train.shape[1] != x_test.shape[1]:
            raise ValueError(f"train has {x_train.shape[1]} feature columns, test {x_test.shape[1]}")
        task = job.get("task", "binary")
        params = {
            "objective": {"binary": "binary:logistic", "regression": "reg:squarederror", "multiclass": "multi:softprob"}[task],
            "tree_method": "hist",
            "max_depth": int(p["maxDepth"]),
            "eta": float(p["learningRate"]),
            "max_bin": int(p["maxBins"]),
            "lambda": float(p["lambda"]),
            "min_child_weight": float(p["minChildWeight"]),
            "nthread": int(job.get("threads", 2)),
        }
        if task == "multiclass":
            params["num_class"] = int(job["classes"])
        else:
            params["base_score"] = float(y_train.mean())
        dtrain = xgb.DMatrix(x_train, label=y_train, missing=np.nan, nthread=params["nthread"])
        dtest = xgb.DMatrix(x_test, missing=np.nan, nthread=params["nthread"])
        started = time.perf_counter()
        booster = xgb.train(params, dtrain, num_boost_round=int(p["rounds"]))
        seconds = time.perf_counter() - started
        predicted = booster.predict(dtest)
        if task == "regression":
            figures = {"rmse": float(np.sqrt(np.mean((predicted.astype(np.float64) - y_test) ** 2)))}
        elif task == "multiclass":
            y = y_test.astype(int)
            figures = {
                "macroF1": float(f1_score(y, predicted.argmax(axis=1), average="macro")),
                "logLoss": float(log_loss(y, predicted, labels=list(range(params["num_class"])))),
            }
        else:
            figures = {"auc": float(roc_auc_score(y_test, predicted))}
    except Exception as err:  # noqa: BLE001 - any failure is reported the same way
        print(f"xgboost_ref.py: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print(json.dumps({**figures, "trainSeconds": seconds, "rows": int(len(y_train)), "xgboostVersion": xgb.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
