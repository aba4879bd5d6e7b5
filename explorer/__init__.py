"""Multiscale Physics Explorer.

``explorer.core`` holds the science (numpy / scipy / pywavelets only); ``explorer.ui`` the Panel
components; ``explorer.app`` the served page; ``explorer.cli`` the command line.
"""

__version__ = "0.1.0"
