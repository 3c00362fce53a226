#!/usr/bin/env python3
"""Example external trainer for temporal-mlops: scikit-learn logistic regression → ONNX.

It follows the command-trainer contract in examples/trainers/README.md: CSV files and settings in
environment variables, JSON lines on stdout (progress, checkpoints, metrics), `model.onnx` in
MLOPS_OUTPUT_DIR, a checkpoint after every training chunk that a retry resumes from
(MLOPS_RESUME_CHECKPOINT), and a prompt non-zero exit on SIGTERM.

The model: smoothed target-mean encoding for categorical features (cross-fitted on the training
rows, so a row's own label never feeds its encoding), mean imputation and standardisation for
numeric ones, LogisticRegression (L-BFGS, warm-started chunk after chunk). The exported graph
takes the raw features and does all of that itself (ONNX-ML LabelEncoder and Imputer, Sub, Div,
Concat, MatMul, Add, Sigmoid), so a model server can feed it request values as they come.

Needs numpy, pandas, scikit-learn and onnx (Debian: python3-sklearn python3-pandas python3-onnx).
With MLOPS_TEST_SCORES set, it writes sklearn's own predict_proba for the MLOPS_VALID_DATA rows
there (CSV, one `probability` column, in row order): evaluation checks the ONNX graph against it.
"""
import json
import math
import os
import sys

from mlops_contract import (
    OUTPUTS,
    InputError,
    checkpoint_step,
    numeric_front,
    onnx_model,
    emit,
    integer_hyperparameter,
    log,
    positive_hyperparameter,
    read_config,
    read_csv,
    read_training_rows,
    report_metrics,
    run,
    write_atomically,
    write_test_scores,
)

NAME = "sklearn_logreg"
CHECKPOINT_FORMAT = "temporal-mlops/sklearn-logreg-checkpoint"
CHECKPOINT_VERSION = 1
OUTPUT = OUTPUTS["binary"]
HYPERPARAMETERS = {"C": 1.0, "maxIter": 200, "epochs": 5, "smoothing": 20.0, "encodingFolds": 5}


def configure(env):
    cfg = read_config(env, ("binary",), HYPERPARAMETERS)
    hp = cfg["hp"]
    positive_hyperparameter(hp, "C")
    for key, low in (("maxIter", 1), ("epochs", 1), ("encodingFolds", 0)):
        integer_hyperparameter(hp, key, low)
    if hp["encodingFolds"] == 1:
        raise InputError("hyperparameter encodingFolds must be 0 (no cross-fitting) or >= 2")
    positive_hyperparameter(hp, "smoothing", allow_zero=True)
    return cfg


# --- data ------------------------------------------------------------------------------------


class Preprocessing:
    """Category → standardised target mean; number → mean-imputed, standardised. Mirrors the ONNX graph."""

    def __init__(self, features, encoders, numeric):
        self.features = features
        self.encoders = encoders  # name → {"keys": [...], "values": [...] (standardised), "default": float}
        self.numeric = numeric  # name → {"mean": float, "std": float}

    def to_json(self):
        return {"encoders": self.encoders, "numeric": self.numeric}

    @staticmethod
    def categories(frame, name):
        return frame[name].fillna("").astype(str)

    def column(self, frame, name, np, pd):
        f = next(f for f in self.features if f["name"] == name)
        if f["kind"] == "categorical":
            enc = self.encoders[name]
            lookup = pd.Series(enc["values"], index=pd.Index(enc["keys"], dtype=object), dtype=np.float64)
            return self.categories(frame, name).map(lookup).fillna(enc["default"]).to_numpy(dtype=np.float64)
        stats = self.numeric[name]
        v = frame[name].to_numpy(dtype=np.float64)
        # The graph's Imputer replaces NaN only; ±inf passes through, here as there.
        return (np.where(np.isnan(v), stats["mean"], v) - stats["mean"]) / stats["std"]

    def matrix(self, frame, np, pd):
        return np.stack([self.column(frame, f["name"], np, pd) for f in self.features], axis=1)


def fit_preprocessing(frame, y, features, hp, seed, np, pd):
    """The preprocessing (from all training rows) and the training matrix (categories cross-fitted)."""
    n = len(y)
    prior = float(y.mean())
    m = hp["smoothing"]
    folds = hp["encodingFolds"]
    fold_of = np.random.default_rng(seed).permutation(n) % folds if folds >= 2 else None
    encoders, numeric, columns = {}, {}, []
    for f in features:
        name = f["name"]
        if f["kind"] == "numeric":
            v = frame[name].to_numpy(dtype=np.float64)
            finite = v[np.isfinite(v)]
            if len(finite) < len(v[~np.isnan(v)]):
                log(f"feature {name!r}: {len(v[~np.isnan(v)]) - len(finite)} infinite training values ignored for its mean and scale")
            mean = float(finite.mean()) if len(finite) else 0.0
            std = float(finite.std()) if len(finite) > 1 else 0.0
            numeric[name] = {"mean": mean, "std": std if std > 0 else 1.0}
            v = np.where(np.isfinite(v), v, mean)  # for fitting only; the graph (and prediction) impute NaN alone
            columns.append((v - mean) / numeric[name]["std"])
            continue
        codes, keys = pd.factorize(Preprocessing.categories(frame, name), sort=True)
        k = len(keys)
        total_pos = np.bincount(codes, weights=y, minlength=k)
        total_n = np.bincount(codes, minlength=k).astype(np.float64)
        full = (total_pos + m * prior) / (total_n + m) if m > 0 else total_pos / total_n
        if fold_of is None:
            encoded = full[codes]
        else:
            encoded = np.empty(n)
            for i in range(folds):
                inside = fold_of == i
                out_pos = total_pos - np.bincount(codes[inside], weights=y[inside], minlength=k)
                out_n = total_n - np.bincount(codes[inside], minlength=k)
                out_prior = float(y[~inside].mean())
                # A category only seen inside this fold gets what an unseen category gets: the prior.
                with np.errstate(invalid="ignore", divide="ignore"):
                    enc = (out_pos + m * out_prior) / (out_n + m) if m > 0 else np.where(out_n > 0, out_pos / out_n, out_prior)
                enc = np.where(out_n > 0, enc, out_prior)
                encoded[inside] = enc[codes[inside]]
        # Standardise with the statistics of what training sees; the graph's codes are pre-scaled.
        mu = float(encoded.mean())
        sd = float(encoded.std())
        sd = sd if sd > 0 else 1.0
        columns.append((encoded - mu) / sd)
        encoders[name] = {
            "keys": [str(key) for key in keys],
            "values": ((full - mu) / sd).tolist(),
            "default": (prior - mu) / sd,
            "targetMean": {"mean": mu, "std": sd, "prior": prior},
        }
    return Preprocessing(features, encoders, numeric), np.stack(columns, axis=1)


# --- checkpoints -----------------------------------------------------------------------------


def fingerprint(cfg, y):
    return {
        "features": cfg["features"],
        "hyperparameters": cfg["hp"],
        "seed": cfg["seed"],
        "trainRows": int(len(y)),
        "trainPositives": int(y.sum()),
    }


def load_checkpoint(path, expected_fingerprint, preprocessing, n_features, total):
    """The checkpoint's state, or None (with the reason on stderr) when it cannot continue this run."""
    try:
        with open(path, encoding="utf-8") as fh:
            state = json.load(fh)
    except (OSError, ValueError) as err:
        log(f"checkpoint {path} unreadable ({err}); training from the start")
        return None
    expected = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "fingerprint": expected_fingerprint, "preprocessing": preprocessing.to_json()}
    if checkpoint_step(path, state, expected, total) is None:
        return None
    coef, intercept = state.get("coef"), state.get("intercept")
    if not (isinstance(coef, list) and len(coef) == n_features and isinstance(intercept, (int, float))):
        log(f"checkpoint {path} is malformed; training from the start")
        return None
    return state


def write_checkpoint(cfg, step, total, fp, preprocessing, model, iterations):
    path = os.path.join(cfg["checkpoint_dir"], f"checkpoint-{step}.json")
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "step": step,
        "total": total,
        "fingerprint": fp,
        "coef": model.coef_[0].tolist(),  # JSON floats round-trip exactly: a resumed run continues bit for bit
        "intercept": float(model.intercept_[0]),
        "iterations": iterations,
        "preprocessing": preprocessing.to_json(),
    }
    data = json.dumps(state, allow_nan=False).encode("utf-8")
    write_atomically(path, lambda fh: fh.write(data))
    # Never deleted or rewritten while running: the caller may still be uploading an earlier one.
    emit({"event": "checkpoint", "path": path, "step": step})


# --- the ONNX graph --------------------------------------------------------------------------


def build_onnx(features, preprocessing, coef, intercept, onnx, np):
    from onnx import TensorProto, helper

    # Internal names carry a prefix no feature name is likely to have; collisions are checked.
    p = "__lr_"
    for f in features:
        if f["name"].startswith(p):
            raise InputError(f"feature names may not start with {p!r}: {f['name']!r}")
    inputs, nodes, inits, columns = [], [], [], []
    for i, f in enumerate(features):
        name = f["name"]
        if f["kind"] == "categorical":
            enc = preprocessing.encoders[name]
            inputs.append(helper.make_tensor_value_info(name, TensorProto.STRING, ["batch", 1]))
            nodes.append(
                helper.make_node(
                    "LabelEncoder", [name], [f"{p}{i}_encoded"], name=f"{p}{i}_encode", domain="ai.onnx.ml",
                    keys_strings=enc["keys"], values_floats=[float(v) for v in enc["values"]], default_float=float(enc["default"]),
                )
            )
            columns.append(f"{p}{i}_encoded")
        else:
            stats = preprocessing.numeric[name]
            value_info, front, front_inits, scaled = numeric_front(name, i, p, stats["mean"], stats["std"])
            inputs.append(value_info)
            nodes += front
            inits += front_inits
            columns.append(scaled)
    nodes.append(helper.make_node("Concat", columns, [f"{p}features"], name=f"{p}concat", axis=1))
    inits.append(helper.make_tensor(f"{p}coef", TensorProto.FLOAT, [len(features), 1], np.asarray(coef, dtype=np.float32).tolist()))
    inits.append(helper.make_tensor(f"{p}intercept", TensorProto.FLOAT, [1], [float(intercept)]))
    nodes.append(helper.make_node("MatMul", [f"{p}features", f"{p}coef"], [f"{p}dot"], name=f"{p}matmul"))
    nodes.append(helper.make_node("Add", [f"{p}dot", f"{p}intercept"], [f"{p}logit"], name=f"{p}add_intercept"))
    nodes.append(helper.make_node("Sigmoid", [f"{p}logit"], [OUTPUT], name=f"{p}sigmoid"))
    outputs = [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", 1])]
    return onnx_model(NAME, nodes, inputs, outputs, inits, "temporal-mlops/examples/trainers/sklearn_logreg.py")


# --- main ------------------------------------------------------------------------------------


def train(cfg):
    import warnings

    import numpy as np
    import onnx
    import pandas as pd
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    features, hp = cfg["features"], cfg["hp"]
    total = hp["epochs"]

    frame, y = read_training_rows(cfg, np, pd)
    if len(y) == 0 or y.min() == y.max():
        raise InputError("the training data needs rows of both classes (label 0 and 1)")
    preprocessing, X = fit_preprocessing(frame, y, features, hp, cfg["rng_seed"], np, pd)
    fp = fingerprint(cfg, y)

    chunk_iter = max(1, math.ceil(hp["maxIter"] / total))
    model = LogisticRegression(C=hp["C"], solver="lbfgs", max_iter=chunk_iter, warm_start=True, random_state=cfg["rng_seed"])
    start, iterations = 0, 0
    state = load_checkpoint(cfg["resume"], fp, preprocessing, len(features), total) if cfg["resume"] else None
    if state:
        model.coef_ = np.asarray([state["coef"]], dtype=np.float64)
        model.intercept_ = np.asarray([state["intercept"]], dtype=np.float64)
        model.classes_ = np.asarray([0.0, 1.0])
        start, iterations = state["step"], int(state.get("iterations", 0))
        log(f"resuming from the checkpoint at step {start}/{total}")
        emit({"event": "progress", "step": start, "total": total, "message": f"resumed from the checkpoint at step {start}"})
    else:
        emit({"event": "progress", "step": 0, "total": total, "message": f"{len(y)} training rows, {len(features)} features"})

    for step in range(start + 1, total + 1):
        model.fit(X, y)
        n_iter = int(model.n_iter_[0])
        iterations += n_iter
        loss = log_loss(y, model.predict_proba(X)[:, 1], labels=[0.0, 1.0])
        emit({"event": "progress", "step": step, "total": total, "message": f"chunk {step}/{total}: {n_iter} L-BFGS iterations, train log-loss {loss:.6f}"})
        if cfg["checkpoint_dir"]:
            write_checkpoint(cfg, step, total, fp, preprocessing, model, iterations)
    if not hasattr(model, "n_iter_"):
        # Resumed from the last checkpoint: nothing left to fit.
        loss = log_loss(y, model.predict_proba(X)[:, 1], labels=[0.0, 1.0])

    exported = build_onnx(features, preprocessing, model.coef_[0], model.intercept_[0], onnx, np)
    data = exported.SerializeToString()
    write_atomically(os.path.join(cfg["out_dir"], "model.onnx"), lambda fh: fh.write(data))
    log(f"wrote {os.path.join(cfg['out_dir'], 'model.onnx')} ({len(data)} bytes)")

    metrics = {"trainRows": int(len(y)), "trainLogLoss": float(loss), "iterations": iterations}
    # Train AUC with the exported encodings (not the cross-fitted ones), on at most 500k rows: a
    # sort of millions of rows would hold off a SIGTERM for seconds.
    sample = np.random.default_rng(cfg["rng_seed"]).choice(len(y), 500_000, replace=False) if len(y) > 500_000 else slice(None)
    if len(np.unique(y[sample])) == 2:
        metrics["trainAuc"] = float(roc_auc_score(y[sample], model.predict_proba(preprocessing.matrix(frame.iloc[sample], np, pd))[:, 1]))
    if cfg["valid"] and os.path.isfile(cfg["valid"]):
        vframe, vy = read_csv(cfg["valid"], cfg, np, pd)
        p = model.predict_proba(preprocessing.matrix(vframe, np, pd))[:, 1]
        write_test_scores(cfg, p, np)
        known = ~np.isnan(vy)
        metrics["validRows"] = int(known.sum())
        if known.any():
            metrics["validLogLoss"] = float(log_loss(vy[known], p[known], labels=[0.0, 1.0]))
            metrics["validAccuracy"] = float(((p[known] >= 0.5) == (vy[known] == 1)).mean())
            if len(np.unique(vy[known])) == 2:
                metrics["validAuc"] = float(roc_auc_score(vy[known], p[known]))
    elif cfg["valid"]:
        log(f"MLOPS_VALID_DATA {cfg['valid']} does not exist; no validation metrics")
    report_metrics(metrics)


if __name__ == "__main__":
    sys.exit(run(NAME, lambda env: train(configure(env))))
