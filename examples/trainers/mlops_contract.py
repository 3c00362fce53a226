"""The command-trainer contract of examples/trainers/README.md, shared by the example trainers.

Standard library only, so a trainer can import it (and take over SIGTERM) before its slow imports:
signals, JSON-line events on stdout, atomic writes, the MLOPS_* settings, the split CSVs with the
label of each task, and the trainer's own test scores.
"""
import json
import math
import os
import signal
import sys

TASKS = ("binary", "multiclass", "regression")
# The model's output per task; a multiclass model also gives MULTICLASS_LABEL, the class itself.
OUTPUTS = {"binary": "probability", "multiclass": "probabilities", "regression": "prediction"}
MULTICLASS_LABEL = "label"

_name = "trainer"
# Files this process is writing (temporary names): removed if it is stopped half-way.
_partial_files = set()
_events = None


class InputError(Exception):
    """Bad configuration or data: reported on stderr, exit code 2."""


def log(message):
    sys.stderr.write(f"{_name}: {message}\n")
    sys.stderr.flush()


def _on_signal(signum, _frame):
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


def _take_stdout():
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


def run(name, train):
    """The process: SIGTERM/SIGINT handled from here on, train(os.environ), exit code 0, 2 (InputError) or 1."""
    global _name
    _name = name
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    _take_stdout()
    try:
        train(os.environ)
        return 0
    except InputError as err:
        log(f"error: {err}")
        return 2
    except Exception as err:  # noqa: BLE001 — the last stderr line becomes the step's error message
        import traceback

        traceback.print_exc(file=sys.stderr)
        log(f"error: {type(err).__name__}: {err}")
        return 1


# --- configuration ---------------------------------------------------------------------------


def read_config(env, tasks, hyperparameters):
    """The MLOPS_* settings; hyperparameters are numbers, defaulted from `hyperparameters` (unknown ones are reported and ignored)."""

    def required(name):
        value = env.get(name)
        if not value:
            raise InputError(f"{name} is not set")
        return value

    task = env.get("MLOPS_TASK") or "binary"
    if task not in TASKS:
        raise InputError(f"MLOPS_TASK is {task!r}; one of {', '.join(TASKS)}")
    if task not in tasks:
        raise InputError(f"MLOPS_TASK is {task!r}: {_name} fits {' and '.join(tasks)} tasks only")
    reserved = {OUTPUTS[task]} | ({MULTICLASS_LABEL} if task == "multiclass" else set())

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
        if f["name"] in reserved:
            raise InputError(f"MLOPS_FEATURES: {f['name']!r} is the model's output name and cannot be a feature")
        names.add(f["name"])
    features = [{"name": f["name"], "kind": f["kind"]} for f in features]
    label = env.get("MLOPS_LABEL") or "label"
    if label in names:
        raise InputError(f"the label {label!r} is also listed as a feature")

    classes = None
    if task == "multiclass":
        try:
            classes = json.loads(required("MLOPS_CLASSES"))
        except json.JSONDecodeError as err:
            raise InputError(f"MLOPS_CLASSES is not JSON: {err}") from None
        ok = isinstance(classes, list) and len(classes) >= 2 and (
            all(isinstance(c, str) for c in classes) or all(isinstance(c, int) and not isinstance(c, bool) for c in classes)
        )
        if not ok or len(set(classes)) != len(classes):
            raise InputError("MLOPS_CLASSES must be a JSON array of at least two distinct classes, all strings or all integers")

    try:
        given = json.loads(env.get("MLOPS_HYPERPARAMETERS") or "{}")
    except json.JSONDecodeError as err:
        raise InputError(f"MLOPS_HYPERPARAMETERS is not JSON: {err}") from None
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise InputError("MLOPS_HYPERPARAMETERS must be a JSON object")
    unknown = sorted(set(given) - set(hyperparameters))
    if unknown:
        log(f"ignoring hyperparameters this trainer does not know: {', '.join(unknown)} (known: {', '.join(hyperparameters)})")
    hp = {}
    for key, default in hyperparameters.items():
        value = given.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"hyperparameter {key} must be a number, got {json.dumps(value)}")
        hp[key] = value

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
        "task": task,
        "classes": classes,
        "features": features,
        "hp": hp,
        "seed": seed,
        "out_dir": out_dir,
        "checkpoint_dir": checkpoint_dir,
        "resume": env.get("MLOPS_RESUME_CHECKPOINT") or None,
        "test_scores": env.get("MLOPS_TEST_SCORES") or None,
    }


def integer_hyperparameter(hp, key, low):
    if hp[key] != int(hp[key]) or hp[key] < low:
        raise InputError(f"hyperparameter {key} must be an integer >= {low}, got {hp[key]}")
    hp[key] = int(hp[key])


def positive_hyperparameter(hp, key, allow_zero=False):
    if hp[key] < 0 or (hp[key] == 0 and not allow_zero):
        raise InputError(f"hyperparameter {key} must be {'>= 0' if allow_zero else '> 0'}, got {hp[key]}")
    hp[key] = float(hp[key])


# --- data ------------------------------------------------------------------------------------


def read_csv(path, cfg, np, pd):
    """Feature and label columns of a split CSV; an empty cell is missing (NaN).

    The label as float64, NaN where missing: 0/1 for a binary task, the number for a regression,
    the class's index in MLOPS_CLASSES for a multiclass task (what the split files hold).
    """
    features, label, task = cfg["features"], cfg["label"], cfg["task"]
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
        raise InputError(f"{path}: {_describe_bad_number(path, features, na_values, pd) or err}") from None
    raw = frame[label]
    if task == "binary":
        labels = raw.map({"0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0, "false": 0.0, "true": 1.0}, na_action="ignore")
        expected = "0 or 1"
    else:
        labels = pd.to_numeric(raw, errors="coerce")
        expected = "a number"
        if task == "multiclass":
            k = len(cfg["classes"])
            labels = labels.where((labels == labels.round()) & (labels >= 0) & (labels < k))
            expected = f"a class index 0 … {k - 1} (MLOPS_CLASSES order)"
    bad = raw.notna() & labels.isna()
    if bad.any():
        examples = ", ".join(map(repr, raw[bad].unique()[:5]))
        raise InputError(f"{path}: label column {label!r} must hold {expected}; found {examples}")
    y = labels.to_numpy(dtype=np.float64)
    if task == "regression" and not np.isfinite(y[~np.isnan(y)]).all():
        raise InputError(f"{path}: label column {label!r} holds an infinite value")
    return frame, y


def read_training_rows(cfg, np, pd):
    """MLOPS_TRAIN_DATA's labelled rows (a row without a label cannot be learned from: dropped, and said so)."""
    frame, y = read_csv(cfg["train"], cfg, np, pd)
    unlabelled = np.isnan(y)
    if unlabelled.any():
        log(f"{int(unlabelled.sum())} training rows without a label dropped")
        frame, y = frame[~unlabelled].reset_index(drop=True), y[~unlabelled]
    return frame, y


def _describe_bad_number(path, features, na_values, pd):
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


def write_test_scores(cfg, scores, np):
    """The trainer's own scores for the MLOPS_VALID_DATA rows, in row order: one column, or one per class (MLOPS_CLASSES order)."""
    if not cfg["test_scores"]:
        return
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    header = OUTPUTS[cfg["task"]] if scores.shape[1] == 1 else ",".join(f"p{c}" for c in range(scores.shape[1]))
    # repr: the shortest text that reads back as the same float64.
    text = header + "\n" + "".join(",".join(repr(v) for v in row) + "\n" for row in scores.tolist())
    write_atomically(cfg["test_scores"], lambda fh: fh.write(text.encode("utf-8")))


def report_metrics(metrics):
    """The closing `metrics` event (finite numbers only) and a one-line summary on stderr."""
    emit({"event": "metrics", "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}})
    log("done: " + ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))


# --- checkpoints -----------------------------------------------------------------------------


def same_values(a, b):
    """Equal JSON values, floats to within rounding: a checkpoint's record against what this run computes."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_values(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_values(p, q) for p, q in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def checkpoint_step(path, state, expected, total, step_key="step"):
    """The step a checkpoint's record ends, when it can continue this run; else None, the reason on stderr.

    `expected`: format, version, fingerprint and preprocessing as this run has them.
    """
    if not isinstance(state, dict) or state.get("format") != expected["format"] or state.get("version") != expected["version"]:
        log(f"checkpoint {path} is not a {expected['format']} v{expected['version']} file; training from the start")
        return None
    if not same_values(state.get("fingerprint"), expected["fingerprint"]):
        log(f"checkpoint {path} belongs to other data, features or hyperparameters; training from the start")
        return None
    if not same_values(state.get("preprocessing"), expected["preprocessing"]):
        log(f"checkpoint {path} was made from other training data (its preprocessing differs); training from the start")
        return None
    step = state.get(step_key)
    if not isinstance(step, int) or isinstance(step, bool) or not 0 < step <= total:
        log(f"checkpoint {path} is malformed ({step_key} {step!r}); training from the start")
        return None
    return step


# --- the ONNX graph --------------------------------------------------------------------------


def numeric_front(name, i, prefix, mean, std):
    """A numeric feature's FLOAT [batch, 1] input, imputed (NaN → mean; ±inf passes) and standardised: (input, nodes, initializers, output)."""
    from onnx import TensorProto, helper

    p = f"{prefix}{i}"
    nodes = [
        helper.make_node("Imputer", [name], [f"{p}_imputed"], name=f"{p}_impute", domain="ai.onnx.ml", imputed_value_floats=[mean], replaced_value_float=float("nan")),
        helper.make_node("Sub", [f"{p}_imputed", f"{p}_mean"], [f"{p}_centred"], name=f"{p}_centre"),
        helper.make_node("Div", [f"{p}_centred", f"{p}_std"], [f"{p}_scaled"], name=f"{p}_scale"),
    ]
    inits = [helper.make_tensor(f"{p}_mean", TensorProto.FLOAT, [1], [mean]), helper.make_tensor(f"{p}_std", TensorProto.FLOAT, [1], [std])]
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", 1]), nodes, inits, f"{p}_scaled"


def onnx_model(name, nodes, inputs, outputs, initializers, producer):
    """The graph as a checked model: opsets "" 17 and ai.onnx.ml 3, IR version 8 (what onnxruntime-node runs)."""
    import onnx
    from onnx import helper

    model = helper.make_model(
        helper.make_graph(nodes, name, inputs, outputs, initializers),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
        producer_name=producer,
        ir_version=8,
    )
    onnx.checker.check_model(model)
    return model
