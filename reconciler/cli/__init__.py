"""The command line: click commands that parse options, build the parts, call once, render.

`main.py` holds the group and the one place errors become exit codes; `options.py` the
shared options; `build.py` the `build_*` functions; one module per command family. `run` is
the console script: it sets the signal exit codes (`interrupt.py`) before anything else is
imported, so a signal even during start-up exits 130 or 143 without a traceback.
"""


def run() -> None:
    """The `reconcile` console script."""
    import sys

    from reconciler.cli.interrupt import Interrupted, install

    install()
    try:
        from reconciler.cli.main import main
    except Interrupted as exc:
        sys.stderr.write(f"\n{exc.name} received: stopped.\n")
        raise
    main()
