"""reconcile: campaigns-as-code for the Twin24 voice-robot platform."""

__version__ = "0.1.0"
