"""Tools for plugin authors: the package scaffold and its templates, pip in zoo's interpreter."""
