"""lightning-zoo's built-in plugins, installed as ``zoo.plugins``.

Each module is an ordinary plugin: it uses only the public API (``zoo.hookimpl`` and the
``register`` callback), exactly as a third-party package would.
"""
