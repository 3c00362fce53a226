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
import signal
import sys

NAME = "sklearn_logreg"
CHECKPOINT_FORMAT = "temporal-mlops/sklearn-logreg-checkpoint"
CHECKPOINT_VERSION = 1
OUTPUT = "probability"
HYPERPARAMETERS = {"C": 1.0, "maxIter": 200, "epochs": 5, "smoothing": 20.0, "encodingFolds": 5}

# Files this process is writing (temporary names): removed if it is stopped half-way.
_partial_files = set()
_events = None


class InputError(Exception):
    """Bad configuration or data: reported on stderr, exit code 2."""


def log(message):
    sys.stderr.write(f"{NAME}: {message}\n")
    sys.stderr.flush()


def on_signal(signum, _frame):
    # os._exit, not sys.exit: nothing (an except clause, a finally, a library) can delay it.
    for path in list(_partial_files):
        try:
            os.unlink(path)
        except OSError:
            pass
    try:
        log(f"{signal.Signals(signum).name}: stopping")
    finally:
        os._exit(128 + signum)


def take_stdout():
    """Keep stdout for events alone: anything else that prints (a library, a C extension) goes to stderr."""
    global _events
    _events = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def emit(event):
    _events.write(json.dumps(event, allow_nan=False, separators=(",", ":")) + "\n")
    _events.flush()


def write_atomically(path, write):
    """write(fh) into a temporary name beside `path`, fsync, then rename: `path` never holds a partial file."""
    tmp = f"{path}.tmp-{os.getpid()}"
    _partial_files.add(tmp)
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        _partial_files.discard(tmp)
        if os.path.exists(tmp):
            os.unlink(tmp)


# --- configuration ---------------------------------------------------------------------------


def read_config(env):
    def required(name):
        value = env.get(name)
        if not value:
            raise InputError(f"{name} is not set")
        return value

    try:
        features = json.loads(required("MLOPS_FEATURES"))
    except json.JSONDecodeError as err:
        raise InputError(f"MLOPS_FEATURES is not JSON: {err}") from None
    if not isinstance(features, list) or not features:
        raise InputError("MLOPS_FEATURES must be a non-empty JSON array of {name, kind}")
    names = set()
    for f in features:
        if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not f["name"]:
            raise InputError(f"MLOPS_FEATURES: every feature needs a name: {json.dumps(f)}")
        if f.get("kind") not in ("numeric", "categorical"):
            raise InputError(f"MLOPS_FEATURES: feature {f['name']!r} has kind {f.get('kind')!r}; numeric or categorical")
        if f["name"] in names:
            raise InputError(f"MLOPS_FEATURES: feature {f['name']!r} appears twice")
        if f["name"] == OUTPUT:
            raise InputError(f"MLOPS_FEATURES: {OUTPUT!r} is the model's output name and cannot be a feature")
        names.add(f["name"])
    features = [{"name": f["name"], "kind": f["kind"]} for f in features]
    label = env.get("MLOPS_LABEL") or "label"
    task = env.get("MLOPS_TASK") or "binary"
    if task != "binary":
        raise InputError(f"MLOPS_TASK is {task!r}: this example fits a logistic regression, for binary tasks only")
    if label in names:
        raise InputError(f"the label {label!r} is also listed as a feature")

    try:
        given = json.loads(env.get("MLOPS_HYPERPARAMETERS") or "{}")
    except json.JSONDecodeError as err:
        raise InputError(f"MLOPS_HYPERPARAMETERS is not JSON: {err}") from None
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise InputError("MLOPS_HYPERPARAMETERS must be a JSON object")
    unknown = sorted(set(given) - set(HYPERPARAMETERS))
    if unknown:
        log(f"ignoring hyperparameters this trainer does not know: {', '.join(unknown)} (known: {', '.join(HYPERPARAMETERS)})")
    hp = {}
    for key, default in HYPERPARAMETERS.items():
        value = given.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"hyperparameter {key} must be a number, got {json.dumps(value)}")
        hp[key] = value
    if hp["C"] <= 0:
        raise InputError(f"hyperparameter C must be > 0, got {hp['C']}")
    for key, low in (("maxIter", 1), ("epochs", 1), ("encodingFolds", 0)):
        if hp[key] != int(hp[key]) or hp[key] < low:
            raise InputError(f"hyperparameter {key} must be an integer >= {low}, got {hp[key]}")
        hp[key] = int(hp[key])
    if hp["encodingFolds"] == 1:
        raise InputError("hyperparameter encodingFolds must be 0 (no cross-fitting) or >= 2")
    if hp["smoothing"] < 0:
        raise InputError(f"hyperparameter smoothing must be >= 0, got {hp['smoothing']}")
    hp["C"] = float(hp["C"])
    hp["smoothing"] = float(hp["smoothing"])

    seed_text = env.get("MLOPS_SEED") or "0"
    try:
        seed = int(seed_text)
    except ValueError:
        raise InputError(f"MLOPS_SEED must be an integer, got {seed_text!r}") from None

    out_dir = required("MLOPS_OUTPUT_DIR")
    if not os.path.isdir(out_dir):
        raise InputError(f"MLOPS_OUTPUT_DIR {out_dir} is not a directory")
    checkpoint_dir = env.get("MLOPS_CHECKPOINT_DIR") or None
    if checkpoint_dir:
        if not os.path.isdir(checkpoint_dir):
            raise InputError(f"MLOPS_CHECKPOINT_DIR {checkpoint_dir} is not a directory")
        checkpoint_dir = os.path.abspath(checkpoint_dir)
    return {
        "rng_seed": seed % (1 << 32),  # numpy and scikit-learn take 0 … 2**32 - 1
        "train": required("MLOPS_TRAIN_DATA"),
        "valid": env.get("MLOPS_VALID_DATA") or None,
        "label": label,
        "features": features,
        "hp": hp,
        "seed": seed,
        "out_dir": out_dir,
        "checkpoint_dir": checkpoint_dir,
        "resume": env.get("MLOPS_RESUME_CHECKPOINT") or None,
        "test_scores": env.get("MLOPS_TEST_SCORES") or None,
    }


# --- data ------------------------------------------------------------------------------------


def read_csv(path, features, label, np, pd):
    """Feature and label columns of a CSV; an empty cell is missing (NaN). Labels → float 0/1 or NaN."""
    if not os.path.isfile(path):
        raise InputError(f"no such data file: {path}")
    header = pd.read_csv(path, nrows=0).columns
    wanted = [f["name"] for f in features] + [label]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise InputError(f"{path} lacks the column(s) {', '.join(map(repr, missing))} (it has {', '.join(map(repr, header))})")
    dtype, na_values = {label: str}, {label: [""]}
    for f in features:
        if f["kind"] == "categorical":
            dtype[f["name"]], na_values[f["name"]] = str, [""]
        else:
            dtype[f["name"]], na_values[f["name"]] = np.float64, ["", "nan", "NaN", "NAN"]
    try:
        # In chunks: a SIGTERM is handled between them rather than after the whole file.
        chunks = pd.read_csv(path, usecols=wanted, dtype=dtype, keep_default_na=False, na_values=na_values, chunksize=1 << 18)
        frame = pd.concat(list(chunks), ignore_index=True)
    except ValueError as err:
        raise InputError(f"{path}: {describe_bad_number(path, features, na_values, pd) or err}") from None
    raw = frame[label]
    labels = raw.map({"0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0, "false": 0.0, "true": 1.0}, na_action="ignore")
    bad = raw.notna() & labels.isna()
    if bad.any():
        examples = ", ".join(map(repr, raw[bad].unique()[:5]))
        raise InputError(f"{path}: label column {label!r} must hold 0 or 1; found {examples}")
    return frame, labels.to_numpy(dtype=np.float64)


def describe_bad_number(path, features, na_values, pd):
    """Which numeric column holds text, and where (read_csv's own message names neither)."""
    for f in features:
        if f["kind"] != "numeric":
            continue
        text = pd.read_csv(path, usecols=[f["name"]], dtype=str, keep_default_na=False, na_values=na_values[f["name"]])[f["name"]]
        bad = text.notna() & pd.to_numeric(text, errors="coerce").isna()
        if bad.any():
            row = int(bad.idxmax())
            return f"numeric feature {f['name']!r} holds {text[row]!r} (data row {row + 1}); a missing value is an empty cell"
    return None


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


def same_preprocessing(a, b):
    def close(x, y):
        if isinstance(x, dict) and isinstance(y, dict):
            return x.keys() == y.keys() and all(close(x[k], y[k]) for k in x)
        if isinstance(x, list) and isinstance(y, list):
            return len(x) == len(y) and all(close(p, q) for p, q in zip(x, y))
        if isinstance(x, float) or isinstance(y, float):
            return isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
        return x == y

    return close(a, b)


def load_checkpoint(path, expected_fingerprint, preprocessing, n_features, total):
    """The checkpoint's state, or None (with the reason on stderr) when it cannot continue this run."""
    try:
        with open(path, encoding="utf-8") as fh:
            state = json.load(fh)
    except (OSError, ValueError) as err:
        log(f"checkpoint {path} unreadable ({err}); training from the start")
        return None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or state.get("version") != CHECKPOINT_VERSION:
        log(f"checkpoint {path} is not a {CHECKPOINT_FORMAT} v{CHECKPOINT_VERSION} file; training from the start")
        return None
    if state.get("fingerprint") != expected_fingerprint:
        log(f"checkpoint {path} belongs to other data, features or hyperparameters; training from the start")
        return None
    if not same_preprocessing(state.get("preprocessing"), preprocessing.to_json()):
        log(f"checkpoint {path} was made from other training data (its encodings differ); training from the start")
        return None
    step, coef, intercept = state.get("step"), state.get("coef"), state.get("intercept")
    if not (isinstance(step, int) and 0 < step <= total and isinstance(coef, list) and len(coef) == n_features and isinstance(intercept, (int, float))):
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
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", 1]))
            nodes.append(
                helper.make_node(
                    "Imputer", [name], [f"{p}{i}_imputed"], name=f"{p}{i}_impute", domain="ai.onnx.ml",
                    imputed_value_floats=[stats["mean"]], replaced_value_float=float("nan"),
                )
            )
            inits.append(helper.make_tensor(f"{p}{i}_mean", TensorProto.FLOAT, [1], [stats["mean"]]))
            inits.append(helper.make_tensor(f"{p}{i}_std", TensorProto.FLOAT, [1], [stats["std"]]))
            nodes.append(helper.make_node("Sub", [f"{p}{i}_imputed", f"{p}{i}_mean"], [f"{p}{i}_centred"], name=f"{p}{i}_centre"))
            nodes.append(helper.make_node("Div", [f"{p}{i}_centred", f"{p}{i}_std"], [f"{p}{i}_scaled"], name=f"{p}{i}_scale"))
            columns.append(f"{p}{i}_scaled")
    nodes.append(helper.make_node("Concat", columns, [f"{p}features"], name=f"{p}concat", axis=1))
    inits.append(helper.make_tensor(f"{p}coef", TensorProto.FLOAT, [len(features), 1], np.asarray(coef, dtype=np.float32).tolist()))
    inits.append(helper.make_tensor(f"{p}intercept", TensorProto.FLOAT, [1], [float(intercept)]))
    nodes.append(helper.make_node("MatMul", [f"{p}features", f"{p}coef"], [f"{p}dot"], name=f"{p}matmul"))
    nodes.append(helper.make_node("Add", [f"{p}dot", f"{p}intercept"], [f"{p}logit"], name=f"{p}add_intercept"))
    nodes.append(helper.make_node("Sigmoid", [f"{p}logit"], [OUTPUT], name=f"{p}sigmoid"))
    graph = helper.make_graph(
        nodes, "sklearn_logreg", inputs, [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", 1])], inits
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
        producer_name="temporal-mlops/examples/trainers/sklearn_logreg.py",
        ir_version=8,
    )
    onnx.checker.check_model(model)
    return model


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
    features, label, hp = cfg["features"], cfg["label"], cfg["hp"]
    total = hp["epochs"]

    frame, y = read_csv(cfg["train"], features, label, np, pd)
    unlabelled = np.isnan(y)
    if unlabelled.any():
        log(f"{int(unlabelled.sum())} training rows without a label dropped")
        frame, y = frame[~unlabelled].reset_index(drop=True), y[~unlabelled]
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

    onnx_model = build_onnx(features, preprocessing, model.coef_[0], model.intercept_[0], onnx, np)
    data = onnx_model.SerializeToString()
    write_atomically(os.path.join(cfg["out_dir"], "model.onnx"), lambda fh: fh.write(data))
    log(f"wrote {os.path.join(cfg['out_dir'], 'model.onnx')} ({len(data)} bytes)")

    metrics = {"trainRows": int(len(y)), "trainLogLoss": float(loss), "iterations": iterations}
    # Train AUC with the exported encodings (not the cross-fitted ones), on at most 500k rows: a
    # sort of millions of rows would hold off a SIGTERM for seconds.
    sample = np.random.default_rng(cfg["rng_seed"]).choice(len(y), 500_000, replace=False) if len(y) > 500_000 else slice(None)
    if len(np.unique(y[sample])) == 2:
        metrics["trainAuc"] = float(roc_auc_score(y[sample], model.predict_proba(preprocessing.matrix(frame.iloc[sample], np, pd))[:, 1]))
    if cfg["valid"] and os.path.isfile(cfg["valid"]):
        vframe, vy = read_csv(cfg["valid"], features, label, np, pd)
        p = model.predict_proba(preprocessing.matrix(vframe, np, pd))[:, 1]
        if cfg["test_scores"]:
            text = "probability\n" + "".join(f"{v!r}\n" for v in p.tolist())
            write_atomically(cfg["test_scores"], lambda fh: fh.write(text.encode("utf-8")))
        known = ~np.isnan(vy)
        metrics["validRows"] = int(known.sum())
        if known.any():
            metrics["validLogLoss"] = float(log_loss(vy[known], p[known], labels=[0.0, 1.0]))
            metrics["validAccuracy"] = float(((p[known] >= 0.5) == (vy[known] == 1)).mean())
            if len(np.unique(vy[known])) == 2:
                metrics["validAuc"] = float(roc_auc_score(vy[known], p[known]))
    elif cfg["valid"]:
        log(f"MLOPS_VALID_DATA {cfg['valid']} does not exist; no validation metrics")
    emit({"event": "metrics", "metrics": {k: v for k, v in metrics.items() if math.isfinite(v)}})
    log("done: " + ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))


def main():
    # First of all, before the slow imports: SIGTERM (and ^C) stop the trainer at once.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    take_stdout()
    try:
        train(read_config(os.environ))
        return 0
    except InputError as err:
        log(f"error: {err}")
        return 2
    except Exception as err:  # noqa: BLE001 — the last stderr line becomes the step's error message
        import traceback

        traceback.print_exc(file=sys.stderr)
        log(f"error: {type(err).__name__}: {err}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
