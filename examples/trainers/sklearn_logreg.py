#!/usr/bin/env python3
"""Example external trainer for temporal-mlops: scikit-learn logistic regression → ONNX.

Follows the command-trainer contract (examples/trainers/README.md): CSV in, JSON lines on
stdout, model.onnx out, checkpoints it can resume from, SIGTERM stops it. Needs Debian's
python3-sklearn, python3-onnx, python3-pandas (run by /usr/bin/python3 or MLOPS_PYTHON).
"""
import json
import os
import signal
import sys
import warnings


def emit(event: dict) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def on_sigterm(_signum, _frame):
    print("trainer: SIGTERM, stopping", file=sys.stderr)
    sys.exit(143)


def main() -> int:
    signal.signal(signal.SIGTERM, on_sigterm)
    import numpy as np
    import pandas as pd
    import onnx
    from onnx import TensorProto, helper
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    env = os.environ
    features = json.loads(env["MLOPS_FEATURES"])
    label = env.get("MLOPS_LABEL", "label")
    hp = json.loads(env.get("MLOPS_HYPERPARAMETERS") or "{}")
    C = float(hp.get("C", 1.0))
    max_iter = int(hp.get("maxIter", 200))
    epochs = max(1, int(hp.get("epochs", 5)))
    seed = int(env.get("MLOPS_SEED", "42"))
    out_dir = env["MLOPS_OUTPUT_DIR"]
    ckpt_dir = env.get("MLOPS_CHECKPOINT_DIR", out_dir)

    dtypes = {f["name"]: (str if f["kind"] == "categorical" else np.float64) for f in features}
    train = pd.read_csv(env["MLOPS_TRAIN_DATA"], dtype=dtypes, keep_default_na=True)
    y = train[label].to_numpy(dtype=np.float64)
    if len(np.unique(y)) < 2:
        print("trainer: the training data holds a single class", file=sys.stderr)
        return 2

    # Preprocessing, all of it exported into the graph: smoothed target-mean encoding for
    # categories (unseen → prior), mean imputation and standardisation for numbers.
    prior = float(y.mean())
    smoothing = 20.0
    encoders, means, stds = {}, {}, {}
    state = None
    resume = env.get("MLOPS_RESUME_CHECKPOINT")
    if resume and os.path.exists(resume):
        with open(resume) as fh:
            state = json.load(fh)
        encoders, means, stds = state["encoders"], state["means"], state["stds"]
        print(f"trainer: resuming from epoch {state['epoch']}", file=sys.stderr)
    else:
        for f in features:
            col = train[f["name"]]
            if f["kind"] == "categorical":
                stats = pd.DataFrame({"k": col.fillna(""), "y": y}).groupby("k")["y"].agg(["sum", "count"])
                enc = (stats["sum"] + smoothing * prior) / (stats["count"] + smoothing)
                encoders[f["name"]] = {str(k): float(v) for k, v in enc.items()}
            else:
                m = float(col.mean()) if col.notna().any() else 0.0
                s = float(col.std(ddof=0)) if col.notna().sum() > 1 else 1.0
                means[f["name"]] = m
                stds[f["name"]] = s if s > 0 else 1.0

    def matrix(frame):
        cols = []
        for f in features:
            col = frame[f["name"]]
            if f["kind"] == "categorical":
                enc = encoders[f["name"]]
                cols.append(col.fillna("").map(lambda k: enc.get(str(k), prior)).to_numpy(dtype=np.float64))
            else:
                v = col.to_numpy(dtype=np.float64)
                v = np.where(np.isnan(v), means[f["name"]], v)
                cols.append((v - means[f["name"]]) / stds[f["name"]])
        return np.stack(cols, axis=1)

    X = matrix(train)
    model = LogisticRegression(C=C, max_iter=max(1, max_iter // epochs), warm_start=True, random_state=seed)
    start = 0
    if state:
        model.coef_ = np.array(state["coef"])
        model.intercept_ = np.array(state["intercept"])
        model.classes_ = np.array([0.0, 1.0])
        start = int(state["epoch"])
    for epoch in range(start, epochs):
        model.fit(X, y)
        step = epoch + 1
        emit({"event": "progress", "step": step, "total": epochs, "message": f"epoch {step}/{epochs}"})
        ckpt = os.path.join(ckpt_dir, f"checkpoint-{step}.json")
        with open(ckpt + ".tmp", "w") as fh:
            json.dump({"epoch": step, "coef": model.coef_.tolist(), "intercept": model.intercept_.tolist(), "encoders": encoders, "means": means, "stds": stds}, fh)
        os.replace(ckpt + ".tmp", ckpt)
        emit({"event": "checkpoint", "path": os.path.basename(ckpt), "step": step})

    # The ONNX graph: raw features in, probability out.
    inputs, nodes, columns, inits = [], [], [], []
    for f in features:
        name = f["name"]
        if f["kind"] == "categorical":
            inputs.append(helper.make_tensor_value_info(name, TensorProto.STRING, ["batch", 1]))
            keys = list(encoders[name].keys())
            nodes.append(helper.make_node("LabelEncoder", [name], [f"{name}__enc"], domain="ai.onnx.ml",
                                          keys_strings=keys, values_floats=[encoders[name][k] for k in keys], default_float=prior))
            columns.append(f"{name}__enc")
        else:
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", 1]))
            nodes.append(helper.make_node("Imputer", [name], [f"{name}__imp"], domain="ai.onnx.ml",
                                          imputed_value_floats=[means[name]], replaced_value_float=float("nan")))
            inits.append(helper.make_tensor(f"{name}__mean", TensorProto.FLOAT, [1], [means[name]]))
            inits.append(helper.make_tensor(f"{name}__std", TensorProto.FLOAT, [1], [stds[name]]))
            nodes.append(helper.make_node("Sub", [f"{name}__imp", f"{name}__mean"], [f"{name}__ctr"]))
            nodes.append(helper.make_node("Div", [f"{name}__ctr", f"{name}__std"], [f"{name}__std_out"]))
            columns.append(f"{name}__std_out")
    nodes.append(helper.make_node("Concat", columns, ["features"], axis=1))
    inits.append(helper.make_tensor("coef", TensorProto.FLOAT, [len(features), 1], model.coef_[0].astype(np.float32).tolist()))
    inits.append(helper.make_tensor("intercept", TensorProto.FLOAT, [1], [float(model.intercept_[0])]))
    nodes.append(helper.make_node("MatMul", ["features", "coef"], ["logit_raw"]))
    nodes.append(helper.make_node("Add", ["logit_raw", "intercept"], ["logit"]))
    nodes.append(helper.make_node("Sigmoid", ["logit"], ["probability"]))
    graph = helper.make_graph(nodes, "sklearn_logreg", inputs,
                              [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch", 1])], inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
                                   producer_name="temporal-mlops-example")
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model)
    tmp = os.path.join(out_dir, "model.onnx.tmp")
    onnx.save(onnx_model, tmp)
    os.replace(tmp, os.path.join(out_dir, "model.onnx"))

    metrics = {"trainRows": int(len(y))}
    valid_path = env.get("MLOPS_VALID_DATA")
    if valid_path and os.path.exists(valid_path):
        valid = pd.read_csv(valid_path, dtype=dtypes)
        vy = valid[label].to_numpy(dtype=np.float64)
        if len(np.unique(vy)) == 2:
            metrics["validAuc"] = float(roc_auc_score(vy, model.predict_proba(matrix(valid))[:, 1]))
    emit({"event": "metrics", "metrics": metrics})
    return 0


if __name__ == "__main__":
    sys.exit(main())
