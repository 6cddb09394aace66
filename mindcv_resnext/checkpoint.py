"""Loading MindSpore checkpoints into a network, strictly.

MindSpore's `load_param_into_net` skips a parameter that the file lacks without an error, even with
`strict_load=True`, so a typo'd or foreign checkpoint leaves random weights behind in silence. Here every parameter of
the network must be in the file with the same shape, or nothing is loaded and the error names what does not fit.
"""
import glob
import json
import os
import tempfile

import mindspore as ms


# What save_checkpoint writes before its rename (.latest.ckpt.<pid>.tmp.ckpt), and what MindSpore writes before its
# own (the same name with .ckpt turned into .tmp): what a killed save can leave behind.
TEMPORARY_SUFFIXES = (".tmp.ckpt", ".tmp.tmp")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or does not fit the network."""
    exit_code = 1


def _shape(value):
    return tuple(value.shape)


def read_checkpoint(path):
    """The checkpoint's name -> Parameter dict; a missing or unreadable file raises CheckpointError."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path} is a folder: give the path of a .ckpt file in it")
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path} (give the path of an existing .ckpt file)")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes; an interrupted copy?): use another file")
    try:
        state = ms.load_checkpoint(path)
    except Exception as err:  # MindSpore raises ValueError/RuntimeError/TypeError for damaged files
        raise CheckpointError(f"cannot read checkpoint {path}: it is damaged or not a MindSpore checkpoint (a "
                              "truncated copy or download?); use another file") from err
    # Files written at amp_level O2 before the names were fixed hold cell paths (bn1._backbone.gamma): the name is
    # the path without MindSpore's BatchNorm wrapper.
    return {name.replace("._backbone.", "."): value for name, value in state.items()}


def check_fit(network, state):
    """Names of network parameters absent from `state`, names whose shapes differ, and names the network lacks."""
    wanted = network.parameters_dict()
    state = {name: value for name, value in state.items() if hasattr(value, "shape")}
    missing = [name for name in wanted if name not in state]
    mismatched = [(name, _shape(state[name]), _shape(param)) for name, param in wanted.items()
                  if name in state and _shape(state[name]) != _shape(param)]
    unexpected = [name for name in state if name not in wanted]
    return missing, mismatched, unexpected


def _misfit_message(path, missing, mismatched, meta, network):
    problems = []
    if missing:
        problems.append(f"{len(missing)} parameter(s) missing from the file (first: {', '.join(missing[:3])})")
    if mismatched:
        name, got, want = mismatched[0]
        problems.append(f"{len(mismatched)} parameter(s) with the wrong shape (first: {name} is {got} in the "
                        f"file, {want} in the network)")
    card = getattr(network, "card", None)
    if meta.get("model") and card is not None:  # the file says what it holds: name both
        return (f"checkpoint {path} holds {meta['model']} with {meta.get('num_classes')} classes, the network is "
                f"{card.name} with {network.num_classes}: {'; '.join(problems)}. Set the model (and num_classes) to "
                "the file's, or give a checkpoint of this model.")
    return (f"checkpoint {path} does not fit the network: {'; '.join(problems)}. "
            "Check the model name and its options (num_classes, in_channels) against the file.")


def load_weights(network, path, log=print, state=None):
    """Load every parameter of `network` from the checkpoint at `path` (or its `state`, already read), or raise
    CheckpointError and load none.

    Entries of the file that the network does not have (optimizer state, a classifier when the network is a
    feature extractor) are left out and counted in one line. Returns the names that were left out.
    """
    unexpected = load_state(network, read_checkpoint(path) if state is None else state, path)
    if unexpected:
        log(f"checkpoint {path}: left out {len(unexpected)} entries the network does not have "
            f"(first: {', '.join(unexpected[:3])})")
    return unexpected


# --- self-describing training checkpoints -----------------------------------------------------------------------

FORMAT = "mindcv_resnext/1"
HEAD_PREFIX = "classifier."


def save_checkpoint(path, network, meta, extra_state=None):
    """Write network parameters, `extra_state` (name -> Parameter: optimizer, EMA, loss scaler) and `meta` (a JSON
    string: model, classes, eval transform, epoch, ...) to `path` atomically: a temporary file in the same folder,
    then a rename, so a kill at any moment leaves the previous file intact."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # Parameter names, not cell paths: mixed precision wraps cells (O2: `bn1._backbone.gamma`) but keeps the names
    # (`bn1.gamma`) that the plain network, validate.py and MindCV load by.
    entries = [{"name": param.name, "data": param} for param in network.get_parameters()]
    entries += [{"name": name, "data": param} for name, param in (extra_state or {}).items()]
    temporaries = [os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}{suffix}")
                   for suffix in TEMPORARY_SUFFIXES]
    temporary = temporaries[0]
    try:
        ms.save_checkpoint(entries, temporary, append_dict={"meta": json.dumps(dict(meta, format=FORMAT))})
        with open(temporary, "rb") as written:  # on the disk before the rename, so that a power cut cannot empty it
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except (OSError, RuntimeError) as err:  # a full disk, a quota, a file-size limit (MindSpore may wrap the OSError)
        kept = "the previous file there is unchanged" if os.path.isfile(path) else "no file was written"
        raise CheckpointError(f"cannot write checkpoint {path}: {_first_line(err)}; {kept}. Free space there or "
                              "choose another ckpt_save_dir, then resume with --resume auto") from err
    finally:
        for leftover in temporaries:
            if os.path.exists(leftover):
                os.remove(leftover)


def remove_stale_temporaries(folder):
    """The half-written files of a process killed while it saved into `folder` (its checkpoints are whole)."""
    for suffix in TEMPORARY_SUFFIXES:
        for leftover in glob.glob(os.path.join(glob.escape(folder), ".*" + suffix)):
            os.remove(leftover)


def _first_line(err):
    text = (getattr(err, "strerror", None) or str(err)).strip().splitlines()
    return text[0] if text else type(err).__name__


def check_writable_folder(folder):
    """Raise CheckpointError unless `folder` exists as a writable folder or can be created: checked before a run
    reads data or compiles anything, and without leaving anything behind (a folder not there yet is not made)."""
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise CheckpointError(f"cannot create the output folder {folder}: {existing} is a file, not a folder "
                              "(choose another ckpt_save_dir)")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise CheckpointError(f"cannot write to the output folder {folder} ({existing}: {_first_line(err)}): choose "
                              "another ckpt_save_dir") from None


def checkpoint_meta(state):
    """The metadata dict of a checkpoint read by read_checkpoint ({} for a plain MindSpore/MindCV checkpoint)."""
    meta = state.get("meta")
    return json.loads(meta) if isinstance(meta, str) else {}


def stem_pool_pad_of(state, path, log=print):
    """How the stem max-pool of a checkpoint's network pads: what our metadata records; a file without it is read as
    MindCV's, whose max-pool pads bottom/right only ("same"), and says so in one line."""
    options = checkpoint_meta(state).get("model_options") or {}
    if "stem_pool_pad" in options:
        return options["stem_pool_pad"]
    log(f"checkpoint {path} does not say how its stem max-pool pads: read as MindCV's (stem_pool_pad 'same'; "
        "for torchvision-trained weights, convert the file with scripts/convert_weights.py --source torchvision)")
    return "same"


def load_weights_for_finetuning(network, path, log=print, state=None):
    """Load every parameter but a head of another size; any other missing or mis-shaped parameter is an error.

    Returns the names of the head parameters that were skipped (and so keep their fresh initialisation).
    """
    state = read_checkpoint(path) if state is None else state
    missing, mismatched, _ = check_fit(network, state)
    head = [name for name in missing if name.startswith(HEAD_PREFIX)]
    head += [name for name, _, _ in mismatched if name.startswith(HEAD_PREFIX)]
    if head:
        for name, got, want in mismatched:
            if name.startswith(HEAD_PREFIX):
                log(f"fine-tuning: skipped {name} from {path}: shape {got} in the file, {want} in the network "
                    "(a new head for this number of classes is trained from scratch)")
        for name in missing:
            if name.startswith(HEAD_PREFIX):
                log(f"fine-tuning: {name} is not in {path} (a feature extractor's checkpoint?): trained from scratch")
        state = {name: value for name, value in state.items() if name not in head}
        fresh = {name: param for name, param in network.parameters_dict().items() if name in head}
        state.update(fresh)  # the network's own freshly initialised head stands in for the skipped one
    load_state(network, state, path)
    return head


def load_state(network, state, path):
    """Load the network's parameters from `state` after checking that every one is there with its shape.
    Returns the names of the file's tensors that the network does not have."""
    missing, mismatched, unexpected = check_fit(network, state)
    if missing or mismatched:
        raise CheckpointError(_misfit_message(path, missing, mismatched, checkpoint_meta(state), network))
    wanted = network.parameters_dict()
    ms.load_param_into_net(network, {name: state[name] if state[name].dtype == param.dtype else  # fp16 files
                                     ms.Parameter(ms.Tensor(state[name].asnumpy(), param.dtype), name=name)
                                     for name, param in wanted.items()}, strict_load=True)
    return unexpected


def load_training_state(path, network, extra_state):
    """Resume: network parameters, then every training-state parameter (optimizer, EMA, loss scaler) the run has.

    Returns the checkpoint's metadata. A training-state entry missing from the file is an error: resuming without
    it would silently change the run (for example restart the learning-rate schedule).
    """
    state = read_checkpoint(path)
    meta = checkpoint_meta(state)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a training checkpoint of this project (no resume state); "
                              "use --ckpt_path to start from its weights instead")
    load_state(network, state, path)
    missing = [name for name in extra_state if name not in state]
    if missing:
        raise CheckpointError(f"{path} lacks training state this run needs ({', '.join(missing[:3])}): "
                              "was it saved with other optimizer, EMA or loss-scale settings?")
    for name, param in extra_state.items():
        if tuple(state[name].shape) != tuple(param.shape):
            raise CheckpointError(f"{path}: {name} is {tuple(state[name].shape)} in the file, {tuple(param.shape)} "
                                  "in this run")
        param.set_data(ms.Tensor(state[name].asnumpy(), param.dtype))
    return meta
