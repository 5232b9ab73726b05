"""reconcile: campaigns-as-code for the Twin24 voice-robot platform."""

__version__ = "0.1.0"

# The name to `pip install`: `reconcile` on the public index is an unrelated project. The
# command stays `reconcile` and the import package `reconciler`.
DISTRIBUTION = "twin24-reconcile"
