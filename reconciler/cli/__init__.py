"""The command line: click commands that parse options, build the parts, call once, render.

`main.py` holds the group and the one place errors become exit codes; `options.py` the
shared options; `build.py` the `build_*` functions; one module per command family.
"""
