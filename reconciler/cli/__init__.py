"""The command line: click commands that parse options, build the parts, call once, render.

`main.py` holds the group and the one place errors become exit codes; `options.py` the
shared options; `build.py` the `build_*` functions; one module per command family. `run` is
the console script: it sets the signal exit codes (`interrupt.py`) before anything else is
imported, so a signal even during start-up exits 130 or 143 without a traceback, and blocks
them once the exit code is decided, so a signal during shutdown cannot change it.
"""


def run() -> None:
    """The `reconcile` console script."""
    from reconciler.cli.interrupt import Interrupted, hold, install

    install()  # first: nothing heavy is imported before the handlers are in place
    try:
        try:
            from reconciler.cli.main import main
        except Interrupted as exc:
            import sys

            sys.stderr.write(f"\n{exc.name} received: stopped.\n")
            raise
        main()
    finally:
        hold()  # the exit code is decided: a signal during shutdown must not change it
