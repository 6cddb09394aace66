"""One command-line grammar for every entry point: --help everywhere, the schema as the single source of settings,
one-line errors (a traceback only with --debug), and the exit codes."""
import glob
import os
import re
import subprocess
import sys
import tokenize

import pytest

from mindcv_resnext.cli import run_guarded
from mindcv_resnext.config import SCHEMA, SCHEMA_BY_NAME, ConfigError, resolve_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, GLOG_v="3")
ENTRY_POINTS = ["train.py", "validate.py", "infer.py", "export.py", *sorted(os.path.relpath(p, ROOT)
                                                    for p in glob.glob(os.path.join(ROOT, "scripts", "*.py")))]


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_every_entry_point_has_help(entry_point):
    result = subprocess.run([sys.executable, entry_point, "--help"], cwd=ROOT, env=ENV, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.startswith(f"usage: {os.path.basename(entry_point)} [-h]") and "--debug" in result.stdout
    if entry_point in ("train.py", "validate.py"):  # every setting, by group, with its default and choices
        for group in ("system", "data", "augmentation", "model", "optimizer", "scheduler", "loss",
                      "mixed precision and loss scaling"):
            assert f"\n{group} settings:\n" in result.stdout
        assert "--interpolation {bilinear,bicubic,nearest,area}" in result.stdout
        assert "--scale X X" in result.stdout and "(default: [0.08, 1])" in result.stdout
        assert "-c RECIPE.yaml, --config RECIPE.yaml" in result.stdout and "--filter_bias_and_bn" in result.stdout


def test_the_grammar_lists_booleans_none_and_equals(tmp_path):
    config = resolve_config(["--scale", "0.2", "1", "--ratio=0.5,2", "--ema", "--zero_init_last", "no",
                             "--num_samples", "none", "--mean", "-1e-3", "0", "-1", "--batch-size", "4",
                             "--data_dir=-odd-name"])
    assert (config.scale, config.ratio, config.ema, config.zero_init_last) == ((0.2, 1.0), (0.5, 2.0), True, False)
    assert (config.num_samples, config.batch_size, config.mean) == (None, 4, (-0.001, 0.0, -1.0))
    assert config.data_dir == "-odd-name"


@pytest.mark.parametrize("argv, message", [
    (["--batch", "8"], "unknown flag --batch; did you mean 'batch_size'"),   # no abbreviations
    (["--drop_path", "0.1"], "unknown flag --drop_path; did you mean 'drop_path_rate'"),
    (["-c"], "-c/--config needs a value"),
    (["--ema", "true", "false"], "unexpected argument 'false'"),
])
def test_command_line_mistakes_are_one_line(argv, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve_config(argv)


def test_inputs_that_ended_in_a_traceback_are_errors_or_values(tmp_path):
    assert resolve_config(["--drop_rate", "none"]).drop_rate == 0.0  # MindCV's None: no dropout
    binary = tmp_path / "recipe.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(ConfigError, match="is not a text file"):
        resolve_config(["-c", str(binary)])
    with pytest.raises(ConfigError, match="is a folder"):
        resolve_config(["-c", str(tmp_path)])


def command_failing_with(error):
    def command(argv):
        raise error
    return command


@pytest.mark.parametrize("error, code, line", [
    (ConfigError("lr must be a number"), 2, "error: lr must be a number"),
    (KeyboardInterrupt("the last checkpoint written is intact"), 130, "interrupted: the last checkpoint written is "
                                                                    "intact"),
    (RuntimeError("boom\nsecond line"), 1, "error: RuntimeError: boom (run again with --debug for the traceback)"),
])
def test_errors_are_one_line_with_an_exit_code_and_debug_shows_the_traceback(error, code, line, capsys):
    assert run_guarded(command_failing_with(error), ["--lr", "x"]) == code
    assert capsys.readouterr().err == line + "\n"
    for debug in (["--debug"], ["--debug", "yes"], ["--debug=1"]):
        with pytest.raises(type(error)):
            run_guarded(command_failing_with(error), debug)


def code_reads():
    """Every config key the package's code reads: config.NAME, config["NAME"], and the key lists it reads by."""
    from mindcv_resnext.commands import DATA_LOCATION_KEYS
    from mindcv_resnext.builders import EVAL_TRANSFORM_KEYS, MODEL_OPTIONS, TRANSFORM_KEYS
    names = set(MODEL_OPTIONS) | set(TRANSFORM_KEYS) | set(DATA_LOCATION_KEYS) | set(EVAL_TRANSFORM_KEYS)
    for path in glob.glob(os.path.join(ROOT, "mindcv_resnext", "**", "*.py"), recursive=True):
        with open(path) as f:  # code only: names in strings and comments are not reads
            tokens = [t for t in tokenize.generate_tokens(f.readline) if t.type in (tokenize.NAME, tokenize.OP,
                                                                                     tokenize.STRING)]
        for before, name, op, key in zip([None] + tokens, tokens, tokens[1:], tokens[2:]):
            if name.string != "config" or (before is not None and before.string == "."):
                continue
            if op.string == "." and key.type == tokenize.NAME:
                names.add(key.string)
            elif op.string == "[" and key.type == tokenize.STRING:
                names.add(key.string.strip("\"'"))
    return names - set(dir(dict)) - {"to_yaml"}


def test_every_key_the_code_reads_is_in_the_schema_and_every_schema_key_is_read():
    reads = code_reads()
    assert reads - set(SCHEMA_BY_NAME) == {"config"}  # the recipe's own path
    inert = {key.name for key in SCHEMA if key.inert or key.only is not None}
    assert {key.name for key in SCHEMA} - inert - reads == set()
    assert not inert & reads, "an inert key is read"


def test_lists_of_choices_are_the_schemas():
    from mindcv_resnext.data.transforms import INTERPOLATIONS  # the one list that maps names to MindSpore's
    assert tuple(INTERPOLATIONS) == SCHEMA_BY_NAME["interpolation"].choices


def test_transform_settings_take_the_schemas_defaults_and_rules():
    from mindcv_resnext.data import TransformSettings
    settings = TransformSettings()
    for name in ("scale", "color_jitter", "mean", "crop_pct", "re_max_attempts"):
        assert getattr(settings, name) == SCHEMA_BY_NAME[name].default
    with pytest.raises(ConfigError, match=r"hflip must be in \[0, 1\], got 1.5"):
        TransformSettings(hflip=1.5)


def test_positional_words_and_bare_boolean_flags_mix():
    from mindcv_resnext.commands import INFER_OPTIONS
    from mindcv_resnext.config import parse_command_line
    config, own = parse_command_line(["--json", "a.jpg", "--topk", "3", "b.jpg", "--debug", "c.jpg", "--ema", "no"],
                                     INFER_OPTIONS, positional=("IMAGE", "images"))
    assert (own.image, own.json, own.topk, config.ema) == (["a.jpg", "b.jpg", "c.jpg"], True, 3, False)
