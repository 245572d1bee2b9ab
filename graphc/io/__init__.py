"""Interchange: Graphviz DOT, the graphc JSON format, and a SymPy bridge.

(``Graph.to_networkx`` gives a networkx MultiDiGraph.)
"""
from .dot import render, to_dot
from .json_format import from_json, load, save, schema, to_json
from .sympy_bridge import from_sympy, to_sympy

__all__ = ["to_dot", "render", "to_json", "from_json", "save", "load", "schema", "to_sympy",
           "from_sympy"]
