#!/usr/bin/env python3
"""Example external trainer for temporal-mlops: a PyTorch MLP → ONNX, on CUDA when there is one.

It follows the command-trainer contract in examples/trainers/README.md (mlops_contract.py) for
every task: binary (`probability`), multiclass (`probabilities` and `label`) and regression
(`prediction`). Numeric features are mean-imputed and standardised, categorical ones looked up
in the training categories (index 0 = a category never seen) and embedded; an MLP (ReLU) on the
concatenation, trained with Adam. Every epoch ends with a checkpoint (weights, Adam's state, the
preprocessing and a fingerprint of the data and settings); a retry given it continues with the
next epoch and ends with the same model, byte for byte, as an uninterrupted run on the CPU
(each epoch's shuffle is seeded by the seed and the epoch alone).

The exported graph takes the raw features: ONNX-ML Imputer and LabelEncoder, Sub, Div, Concat
in front of the network torch.onnx.export writes, and the task's outputs behind it.

Needs numpy, pandas, torch and onnx (Debian: python3-torch python3-pandas python3-onnx).
"""
import io
import json
import os
import sys

from mlops_contract import (
    MULTICLASS_LABEL,
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

NAME = "torch_mlp"
CHECKPOINT_FORMAT = "temporal-mlops/torch-mlp-checkpoint"
CHECKPOINT_VERSION = 1
HYPERPARAMETERS = {"epochs": 20, "hidden": 64, "layers": 2, "learningRate": 0.003, "batchSize": 256, "weightDecay": 0.0, "embeddingDim": 0}
PREFIX = "__mlp_"


def configure(env):
    cfg = read_config(env, ("binary", "multiclass", "regression"), HYPERPARAMETERS)
    hp = cfg["hp"]
    for key, low in (("epochs", 1), ("hidden", 1), ("layers", 1), ("batchSize", 1), ("embeddingDim", 0)):
        integer_hyperparameter(hp, key, low)
    positive_hyperparameter(hp, "learningRate")
    positive_hyperparameter(hp, "weightDecay", allow_zero=True)
    for f in cfg["features"]:
        if f["name"].startswith(PREFIX):
            raise InputError(f"feature names may not start with {PREFIX!r}: {f['name']!r}")
    return cfg


# --- preprocessing ---------------------------------------------------------------------------


def fit_preprocessing(frame, cfg, y, np, pd):
    """Per numeric feature its mean and scale, per categorical one its sorted training categories; the target's scale for a regression."""
    numeric, categories = {}, {}
    for f in cfg["features"]:
        name = f["name"]
        if f["kind"] == "numeric":
            v = frame[name].to_numpy(dtype=np.float64)
            finite = v[np.isfinite(v)]
            mean = float(finite.mean()) if len(finite) else 0.0
            std = float(finite.std()) if len(finite) > 1 else 0.0
            numeric[name] = {"mean": mean, "std": std if std > 0 else 1.0}
        else:
            categories[name] = sorted(set(frame[name].fillna("").astype(str)))
    target = None
    if cfg["task"] == "regression":
        std = float(y.std())
        target = {"mean": float(y.mean()), "std": std if std > 0 else 1.0}
    return {"numeric": numeric, "categories": categories, "target": target}


def tensors(frame, cfg, prep, np, pd, torch):
    """(numeric [n, a] float32 standardised as the graph does it, categorical [n, b] int64 indices); None for an empty group."""
    num_cols, cat_cols = [], []
    for f in cfg["features"]:
        name = f["name"]
        if f["kind"] == "numeric":
            s = prep["numeric"][name]
            # float32 throughout, as in the graph: Imputer (NaN only; ±inf passes), Sub, Div.
            v = frame[name].to_numpy(dtype=np.float32)
            v = np.where(np.isnan(v), np.float32(s["mean"]), v)
            num_cols.append((v - np.float32(s["mean"])) / np.float32(s["std"]))
        else:
            keys = prep["categories"][name]
            lookup = pd.Series(np.arange(1, len(keys) + 1, dtype=np.int64), index=pd.Index(keys, dtype=object))
            cat_cols.append(frame[name].fillna("").astype(str).map(lookup).fillna(0).to_numpy(dtype=np.int64))
    num = torch.from_numpy(np.stack(num_cols, axis=1).astype(np.float32)) if num_cols else None
    cat = torch.from_numpy(np.stack(cat_cols, axis=1)) if cat_cols else None
    return num, cat


# --- the network -----------------------------------------------------------------------------


def network(cfg, prep, torch):
    nn = torch.nn
    hp = cfg["hp"]
    cards = [len(prep["categories"][f["name"]]) + 1 for f in cfg["features"] if f["kind"] == "categorical"]
    n_num = sum(1 for f in cfg["features"] if f["kind"] == "numeric")
    out_dim = len(cfg["classes"]) if cfg["task"] == "multiclass" else 1

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            dims = [hp["embeddingDim"] or min(16, max(2, round(1.6 * card**0.56))) for card in cards]
            self.embeddings = nn.ModuleList(nn.Embedding(card, d) for card, d in zip(cards, dims))
            width = n_num + sum(dims)
            layers = []
            for _ in range(hp["layers"]):
                layers += [nn.Linear(width, hp["hidden"]), nn.ReLU()]
                width = hp["hidden"]
            layers.append(nn.Linear(width, out_dim))
            self.net = nn.Sequential(*layers)

        def forward(self, *inputs):
            num = inputs[0] if n_num else None
            cat = inputs[-1] if cards else None
            parts = ([num] if num is not None else []) + [emb(cat[:, j]) for j, emb in enumerate(self.embeddings)]
            return self.net(torch.cat(parts, dim=1))

    return MLP()


def inputs_of(num, cat):
    return tuple(t for t in (num, cat) if t is not None)


def scores_of(cfg, prep, out, torch):
    """The model's scores from the network's output, float32 as the graph computes them."""
    if cfg["task"] == "binary":
        return torch.sigmoid(out)
    if cfg["task"] == "multiclass":
        return torch.softmax(out, dim=1)
    t = prep["target"]
    return out * torch.tensor(t["std"], dtype=torch.float32) + torch.tensor(t["mean"], dtype=torch.float32)


def loss_of(cfg, out, y, torch):
    F = torch.nn.functional
    if cfg["task"] == "binary":
        return F.binary_cross_entropy_with_logits(out[:, 0], y)
    if cfg["task"] == "multiclass":
        return F.cross_entropy(out, y)
    return F.mse_loss(out[:, 0], y)


def targets(cfg, prep, y, torch):
    if cfg["task"] == "multiclass":
        return torch.from_numpy(y.astype("int64"))
    if cfg["task"] == "regression":
        t = prep["target"]
        y = (y - t["mean"]) / t["std"]  # the network fits the standardised target; the graph scales back
    return torch.from_numpy(y.astype("float32"))


# --- checkpoints -----------------------------------------------------------------------------


def fingerprint(cfg, y):
    return {
        "task": cfg["task"],
        "classes": cfg["classes"],
        "features": cfg["features"],
        "hyperparameters": cfg["hp"],
        "seed": cfg["seed"],
        "trainRows": int(len(y)),
        "labelSum": float(y.sum()),
    }


def write_checkpoint(cfg, epoch, fp, prep, model, optimizer, torch):
    # Tensors and one JSON string: what torch.load(weights_only=True) reads back without unpickling code.
    state = {f"param.{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()}
    for i, s in optimizer.state_dict()["state"].items():
        for k, v in s.items():
            state[f"adam.{i}.{k}"] = (v if torch.is_tensor(v) else torch.tensor(v)).detach().cpu().clone()
    meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "epoch": epoch, "fingerprint": fp, "preprocessing": prep}
    state["meta"] = json.dumps(meta, allow_nan=False)
    buf = io.BytesIO()
    torch.save(state, buf)
    path = os.path.join(cfg["checkpoint_dir"], f"checkpoint-{epoch}.pt")
    write_atomically(path, lambda fh: fh.write(buf.getvalue()))
    # Never deleted or rewritten while running: the caller may still be uploading an earlier one.
    emit({"event": "checkpoint", "path": path, "step": epoch})


def load_checkpoint(path, fp, prep, model, optimizer, total, torch):
    """The epoch the checkpoint ends, with its weights and Adam state loaded; None (reason on stderr) when it cannot continue this run."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(state["meta"])
    except Exception as err:  # noqa: BLE001 — any unreadable file means: start over
        log(f"checkpoint {path} unreadable ({type(err).__name__}: {err}); training from the start")
        return None
    expected = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "fingerprint": fp, "preprocessing": prep}
    epoch = checkpoint_step(path, meta, expected, total, step_key="epoch")
    if epoch is None:
        return None
    # load_state_dict copies what fits before it raises: keep the fresh weights to fall back to.
    fresh = {k: v.detach().clone() for k, v in model.state_dict().items()}
    try:
        model.load_state_dict({k[len("param."):]: v for k, v in state.items() if k.startswith("param.")})
        opt_state = optimizer.state_dict()
        opt_state["state"] = {}
        for k, v in state.items():
            if k.startswith("adam."):
                _, i, name = k.split(".", 2)
                opt_state["state"].setdefault(int(i), {})[name] = v
        optimizer.load_state_dict(opt_state)
    except (RuntimeError, KeyError, ValueError) as err:
        model.load_state_dict(fresh)
        optimizer.state.clear()
        log(f"checkpoint {path} does not fit this network ({err}); training from the start")
        return None
    return epoch


# --- the ONNX graph --------------------------------------------------------------------------


def build_onnx(cfg, prep, model, onnx, np, torch):
    from onnx import TensorProto, compose, helper

    p = PREFIX
    features = cfg["features"]
    numeric = [f["name"] for f in features if f["kind"] == "numeric"]
    categorical = [f["name"] for f in features if f["kind"] == "categorical"]
    example_inputs = inputs_of(
        torch.zeros((2, len(numeric)), dtype=torch.float32) if numeric else None,
        torch.zeros((2, len(categorical)), dtype=torch.int64) if categorical else None,
    )
    input_names = (["num"] if numeric else []) + (["cat"] if categorical else [])
    buf = io.BytesIO()
    torch.onnx.export(
        model, example_inputs, buf, input_names=input_names, output_names=["out"],
        dynamic_axes={**{n: {0: "batch"} for n in input_names}, "out": {0: "batch"}}, opset_version=17,
    )
    net = compose.add_prefix(onnx.load_from_string(buf.getvalue()), p)

    inputs, nodes, inits = [], [], []
    num_cols, cat_cols = [], []
    for i, f in enumerate(features):
        name = f["name"]
        if f["kind"] == "numeric":
            s = prep["numeric"][name]
            value_info, front, front_inits, scaled = numeric_front(name, i, p, s["mean"], s["std"])
            inputs.append(value_info)
            nodes += front
            inits += front_inits
            num_cols.append(scaled)
        else:
            keys = prep["categories"][name]
            inputs.append(helper.make_tensor_value_info(name, TensorProto.STRING, ["batch", 1]))
            nodes.append(helper.make_node("LabelEncoder", [name], [f"{p}{i}_index"], name=f"{p}{i}_encode", domain="ai.onnx.ml", keys_strings=keys, values_int64s=list(range(1, len(keys) + 1)), default_int64=0))
            cat_cols.append(f"{p}{i}_index")
    for cols, into in ((num_cols, f"{p}num"), (cat_cols, f"{p}cat")):
        if cols:
            nodes.append(helper.make_node("Concat", cols, [into], name=f"{into}_concat", axis=1))
    nodes += list(net.graph.node)
    inits += list(net.graph.initializer)

    out, task = f"{p}out", cfg["task"]
    if task == "binary":
        nodes.append(helper.make_node("Sigmoid", [out], [OUTPUTS[task]], name=f"{p}sigmoid"))
        outputs = [helper.make_tensor_value_info(OUTPUTS[task], TensorProto.FLOAT, ["batch", 1])]
    elif task == "regression":
        t = prep["target"]
        inits += [helper.make_tensor(f"{p}target_std", TensorProto.FLOAT, [1], [t["std"]]), helper.make_tensor(f"{p}target_mean", TensorProto.FLOAT, [1], [t["mean"]])]
        nodes.append(helper.make_node("Mul", [out, f"{p}target_std"], [f"{p}scaled_out"], name=f"{p}unscale"))
        nodes.append(helper.make_node("Add", [f"{p}scaled_out", f"{p}target_mean"], [OUTPUTS[task]], name=f"{p}uncentre"))
        outputs = [helper.make_tensor_value_info(OUTPUTS[task], TensorProto.FLOAT, ["batch", 1])]
    else:
        classes = cfg["classes"]
        integer = isinstance(classes[0], int)
        inits.append(helper.make_tensor(f"{p}classes", TensorProto.INT64 if integer else TensorProto.STRING, [len(classes)], classes if integer else [c.encode("utf-8") for c in classes]))
        nodes.append(helper.make_node("Softmax", [out], [OUTPUTS[task]], name=f"{p}softmax", axis=1))
        # On the probabilities, as the built-in trainers do: the first of equal ones wins.
        nodes.append(helper.make_node("ArgMax", [OUTPUTS[task]], [f"{p}class_index"], name=f"{p}argmax", axis=1, keepdims=1))
        nodes.append(helper.make_node("Gather", [f"{p}classes", f"{p}class_index"], [MULTICLASS_LABEL], name=f"{p}class_label", axis=0))
        outputs = [
            helper.make_tensor_value_info(OUTPUTS[task], TensorProto.FLOAT, ["batch", len(classes)]),
            helper.make_tensor_value_info(MULTICLASS_LABEL, TensorProto.INT64 if integer else TensorProto.STRING, ["batch", 1]),
        ]
    return onnx_model(NAME, nodes, inputs, outputs, inits, "temporal-mlops/examples/trainers/torch_mlp.py")


# --- main ------------------------------------------------------------------------------------


def train(cfg):
    import numpy as np
    import onnx
    import pandas as pd
    import torch

    threads = os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(int(threads) if threads and threads.isdigit() and int(threads) > 0 else 1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    log(f"training on {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    hp, task = cfg["hp"], cfg["task"]
    total = hp["epochs"]

    frame, y = read_training_rows(cfg, np, pd)
    if len(y) < 2:
        raise InputError(f"the training data has {len(y)} labelled rows; at least 2 are needed")
    if task != "regression" and len(np.unique(y)) < 2:
        raise InputError("the training data needs rows of at least two classes")
    prep = fit_preprocessing(frame, cfg, y, np, pd)
    fp = fingerprint(cfg, y)
    num, cat = tensors(frame, cfg, prep, np, pd, torch)
    target = targets(cfg, prep, y, torch)
    del frame

    torch.manual_seed(cfg["seed"] % (1 << 63))
    model = network(cfg, prep, torch).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=hp["learningRate"], weight_decay=hp["weightDecay"])
    start = load_checkpoint(cfg["resume"], fp, prep, model, optimizer, total, torch) if cfg["resume"] else None
    if start:
        log(f"resuming from the checkpoint at epoch {start}/{total}")
        emit({"event": "progress", "step": start, "total": total, "message": f"resumed from the checkpoint at epoch {start}"})
        # torch.load leaves Adam's moments on the CPU; the next step needs them beside the weights.
        for s in optimizer.state.values():
            for k, v in s.items():
                if torch.is_tensor(v) and k != "step":
                    s[k] = v.to(device)
    else:
        start = 0
        emit({"event": "progress", "step": 0, "total": total, "message": f"{len(y)} training rows, {len(cfg['features'])} features, on {device}"})

    inputs_d = tuple(t.to(device) for t in inputs_of(num, cat))
    target_d = target.to(device)
    n = len(y)
    loss = float("nan")
    for epoch in range(start + 1, total + 1):
        model.train()
        # Seeded by the seed and the epoch alone: a resumed run shuffles as an uninterrupted one.
        order = torch.randperm(n, generator=torch.Generator().manual_seed((cfg["seed"] * 1000003 + epoch) % (1 << 63))).to(device)
        summed = 0.0
        for batch in order.split(hp["batchSize"]):
            optimizer.zero_grad()
            out = model(*(t[batch] for t in inputs_d))
            step_loss = loss_of(cfg, out, target_d[batch], torch)
            step_loss.backward()
            optimizer.step()
            summed += float(step_loss.detach()) * len(batch)
        loss = summed / n
        emit({"event": "progress", "step": epoch, "total": total, "message": f"epoch {epoch}/{total}: train loss {loss:.6f}"})
        if cfg["checkpoint_dir"]:
            write_checkpoint(cfg, epoch, fp, prep, model, optimizer, torch)

    cpu_model = network(cfg, prep, torch)
    cpu_model.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
    cpu_model.eval()
    exported = build_onnx(cfg, prep, cpu_model, onnx, np, torch)
    data = exported.SerializeToString()
    write_atomically(os.path.join(cfg["out_dir"], "model.onnx"), lambda fh: fh.write(data))
    log(f"wrote {os.path.join(cfg['out_dir'], 'model.onnx')} ({len(data)} bytes)")

    metrics = {"trainRows": n, "trainLoss": loss, "epochs": total, "cuda": 1 if device.type == "cuda" else 0}
    if cfg["valid"] and os.path.isfile(cfg["valid"]):
        vframe, vy = read_csv(cfg["valid"], cfg, np, pd)
        with torch.no_grad():
            scores = scores_of(cfg, prep, cpu_model(*inputs_of(*tensors(vframe, cfg, prep, np, pd, torch))), torch).numpy().astype(np.float64)
        write_test_scores(cfg, scores, np)
        known = ~np.isnan(vy)
        metrics["validRows"] = int(known.sum())
        if known.any():
            s, t = scores[known], vy[known]
            if task == "regression":
                metrics["validRmse"] = float(np.sqrt(np.mean((s[:, 0] - t) ** 2)))
                metrics["validMae"] = float(np.mean(np.abs(s[:, 0] - t)))
            else:
                probs = np.concatenate([1 - s, s], axis=1) if task == "binary" else s
                true = probs[np.arange(len(t)), t.astype(np.int64)]
                metrics["validLogLoss"] = float(-np.mean(np.log(np.clip(true, 1e-15, 1.0))))
                metrics["validAccuracy"] = float(np.mean(probs.argmax(axis=1) == t))
    elif cfg["valid"]:
        log(f"MLOPS_VALID_DATA {cfg['valid']} does not exist; no validation metrics")
    report_metrics(metrics)


if __name__ == "__main__":
    sys.exit(run(NAME, lambda env: train(configure(env))))
