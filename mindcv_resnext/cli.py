"""How every entry point runs (train.py, validate.py, scripts/*.py): its command line is parsed by the one grammar
of config.parse_command_line, and an input error is one line on stderr with a non-zero exit code, never a traceback.

    if __name__ == "__main__":
        run_main(command)          # command(argv) -> exit code; argv is sys.argv[1:]

Exit codes: 0 done (and --help), 2 a recipe, flag or model name that cannot be used, 1 data or a checkpoint that
cannot be used (the error classes carry their `exit_code`), 75 a training run stopped by SIGTERM or Ctrl-C after
writing where it was (engine/stopping.py), 130 Ctrl-C anywhere else (or twice). --debug shows the traceback.
"""
import sys

from .config import TRUE_WORDS, ShowHelp


def debug_requested(argv):
    """--debug, --debug true, --debug=yes, ... anywhere on the command line."""
    for i, token in enumerate(argv):
        if token == "--debug":
            return i + 1 == len(argv) or argv[i + 1].startswith("-") or argv[i + 1].lower() in TRUE_WORDS
        if token.startswith("--debug="):
            return token.split("=", 1)[1].lower() in TRUE_WORDS
    return False


def run_guarded(command, argv):
    """`command(argv)`'s exit code, with --help, input errors and Ctrl-C turned into what a user should see."""
    debug = debug_requested(list(argv))
    try:
        return command(list(argv))
    except ShowHelp as shown:
        print(shown.args[0], end="")
        return 0
    except KeyboardInterrupt as interrupt:
        if debug:
            raise
        print("interrupted" + (f": {interrupt}" if str(interrupt) else ""), file=sys.stderr)
        return 130
    except Exception as err:
        if debug:
            raise
        if hasattr(err, "exit_code"):  # ConfigError, DataError, CheckpointError, UnknownModelError, TrainingStopped
            print(f"{getattr(err, 'label', 'error')}: {err}", file=sys.stderr)
            return err.exit_code
        text = str(err).strip().splitlines()  # nothing recognised it: still one line, the traceback on request
        print(f"error: {type(err).__name__}: {text[0] if text else 'no message'} (run again with --debug for the "
              "traceback)", file=sys.stderr)
        return 1


def run_main(command):
    sys.exit(run_guarded(command, sys.argv[1:]))
