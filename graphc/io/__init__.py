"""Interchange and views: Graphviz DOT, the graphc JSON format, a SymPy bridge, text listings.

(``Graph.to_networkx`` gives a networkx MultiDiGraph.)
"""
from .dot import render, to_dot
from .json_format import from_json, load, save, schema, to_json
from .sympy_bridge import from_sympy, to_sympy
from .text import show, to_text

__all__ = ["to_dot", "render", "to_json", "from_json", "save", "load", "schema", "to_sympy",
           "from_sympy", "to_text", "show"]
