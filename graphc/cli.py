"""The ``graphc`` command: inspect, draw, run and differentiate graphs saved as graphc JSON.

    graphc info FILE.json
    graphc dot FILE.json [-o out.svg|out.png|out.pdf|out.dot] [--node NAME ...]
    graphc run FILE.json [--feed NAME=VALUE ...] --fetch NAME [--fetch NAME ...] [-o out.npy]
    graphc grad FILE.json --of NAME --wrt NAME [--wrt NAME ...] [-o out.json]

Every error is one line on stderr and exit status 1 (2 for a bad command line).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import zipfile
from collections import Counter
from io import BytesIO
from typing import Optional, Sequence

import numpy as np

from . import __version__
from .autodiff import gradients
from .errors import GraphcError
from .graph import Graph, Node
from .io import load, render, save, to_dot
from .io.atomic import write_atomic
from .shapes import fmt


class CommandError(GraphcError):
    """A mistake on the command line that argparse cannot see (unknown node, bad feed)."""


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command; returns the exit status (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.command(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except KeyboardInterrupt:
        print("graphc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `graphc ... | head`: the reader left, which is not an error to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return 1
    except Exception as exc:  # every failure, ours or not, is one line
        kind = "" if isinstance(exc, (GraphcError, OSError)) else f"{type(exc).__name__}: "
        print(f"graphc: error: {kind}{_one_line(exc)}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one subcommand per command, each with its function as ``command``."""
    parser = argparse.ArgumentParser(
        prog="graphc",
        description="Inspect, draw, run and differentiate graphc graphs saved as JSON "
                    "(gc.save(graph, 'FILE.json')).",
        epilog="Run 'graphc COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"graphc {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    info = commands.add_parser("info", help="summarize a graph: ops, placeholders, variables",
                               description="Print the nodes by op, the placeholders with "
                                           "their shapes, the variables with their sizes, "
                                           "and the outputs (nodes nothing else uses).")
    info.add_argument("file", metavar="FILE.json")
    info.set_defaults(command=cmd_info)

    dot = commands.add_parser("dot", help="draw a graph (Graphviz DOT, SVG, PNG, PDF)",
                              description="Write the graph as Graphviz DOT text to stdout, or "
                                          "to -o: a .dot file, or a picture (.svg/.png/.pdf, "
                                          "needs the Graphviz 'dot' program).")
    dot.add_argument("file", metavar="FILE.json")
    dot.add_argument("-o", "--output", metavar="OUT", help="out.dot, out.svg, out.png or "
                                                           "out.pdf (default: DOT to stdout)")
    dot.add_argument("--node", action="append", default=[], metavar="NAME",
                     help="draw only this node and its ancestors (repeatable)")
    dot.set_defaults(command=cmd_dot)

    run = commands.add_parser("run", help="compute nodes from fed values",
                              description="Compute the fetched nodes. A feed value is a .npy "
                                          "file or a JSON number or list (x=2.5, x=[1,2]).")
    run.add_argument("file", metavar="FILE.json")
    run.add_argument("--feed", action="append", default=[], metavar="NAME=VALUE",
                     help="value of a placeholder (or any node): a .npy path or a JSON "
                          "number/list (repeatable)")
    run.add_argument("--fetch", action="append", required=True, metavar="NAME",
                     help="node to compute (repeatable)")
    run.add_argument("-o", "--output", metavar="OUT",
                     help="save to out.npy (one fetch) or out.npz (by name) instead of printing")
    run.set_defaults(command=cmd_run)

    grad = commands.add_parser("grad", help="append gradient nodes and save",
                               description="Append the gradient of a scalar node with respect "
                                           "to others, save the graph (in place unless -o), "
                                           "and print the names of the gradient nodes.")
    grad.add_argument("file", metavar="FILE.json")
    grad.add_argument("--of", required=True, metavar="NAME", help="the scalar to differentiate")
    grad.add_argument("--wrt", action="append", required=True, metavar="NAME",
                      help="a node to differentiate with respect to (repeatable)")
    grad.add_argument("-o", "--output", metavar="OUT.json",
                      help="where to save (default: overwrite FILE.json)")
    grad.set_defaults(command=cmd_grad)
    return parser


# -- commands --------------------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> None:
    """Print a summary of the graph in ``args.file``."""
    graph = load(args.file)
    nodes = graph.nodes
    derivative = [n for n in nodes if n.derivative]
    line = f"{args.file}: {len(nodes)} nodes"
    if derivative:
        line += (f" ({len(derivative)} derivative nodes, up to order "
                 f"{max(n.derivative for n in derivative)})")
    print(line)
    print("ops:")
    for op, count in sorted(Counter(n.op for n in nodes).items(), key=lambda p: (-p[1], p[0])):
        print(f"  {op:<24} {count}")
    _table("placeholders", [(n.name, f"{fmt(n.shape)} {n.dtype}") for n in graph.placeholders])
    _table("variables", [(n.name, f"{fmt(n.shape)} {n.dtype}  {n.value.size} elements, "
                                  f"{n.value.nbytes} bytes") for n in graph.variables])
    total = sum(n.value.nbytes for n in graph.variables)
    if graph.variables:
        print(f"  total: {total} bytes")
    outputs = [n for n in nodes if not n.consumers and n.op not in ("placeholder", "variable",
                                                                     "constant")]
    _table("outputs", [(n.name, f"{n.op} {fmt(n.shape)} {n.dtype}") for n in outputs])


def cmd_dot(args: argparse.Namespace) -> None:
    """Write the graph (or the ``--node`` nodes and their ancestors) as DOT or a picture."""
    graph = load(args.file)
    target = [_node(graph, name, args.file) for name in args.node] or graph
    if args.output:
        render(target, args.output)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(to_dot(target))


def cmd_run(args: argparse.Namespace) -> None:
    """Compute the ``--fetch`` nodes from the ``--feed`` values; print or save them."""
    graph = load(args.file)
    feed = {}
    for item in args.feed:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CommandError(f"--feed {item!r}: write NAME=VALUE (a .npy path or a number)")
        node = _node(graph, name, args.file)
        if node in feed:
            raise CommandError(f"--feed {name}: given more than once")
        feed[node] = _feed_value(name, value)
    fetches = [_node(graph, name, args.file) for name in args.fetch]
    values = graph.run(fetches, feed)
    if args.output:
        _save_arrays(args.output, fetches, values)
        print(f"wrote {args.output}")
        return
    for node, value in zip(fetches, values):
        value = np.asarray(value)
        if value.ndim == 0:
            print(f"{node.name} = {value.item()!r}")
        else:
            print(f"{node.name} = ({fmt(value.shape)} {value.dtype})")
            print(np.array2string(value, threshold=1000))


def cmd_grad(args: argparse.Namespace) -> None:
    """Append the gradient nodes of ``--of`` with respect to each ``--wrt``; save."""
    graph = load(args.file)
    y = _node(graph, args.of, args.file)
    xs = [_node(graph, name, args.file) for name in args.wrt]
    before = len(graph)
    results = gradients(y, xs)
    out = args.output or args.file
    save(graph, out)
    print(f"appended {len(graph) - before} nodes; wrote {out}")
    for x, g in zip(xs, results):
        print(f"gradient of {y.name!r} with respect to {x.name!r}: node {g.name!r} "
              f"{fmt(g.shape)} {g.dtype}")


# -- helpers ---------------------------------------------------------------------------------------
def _node(graph: Graph, name: str, file: str) -> Node:
    if name not in graph:
        raise CommandError(f"{file} has no node named {name!r}")
    return graph[name]


def _feed_value(name: str, text: str) -> np.ndarray:
    """A .npy file (never pickled objects) or a JSON number/list."""
    if text.endswith(".npy") or os.path.isfile(text):
        try:
            array = np.load(text, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CommandError(f"--feed {name}: cannot read {text!r}: {_one_line(exc)}") from None
        if not isinstance(array, np.ndarray):  # np.load opens an .npz archive as a mapping
            array.close()
            raise CommandError(f"--feed {name}: {text!r} is not a .npy file (one array)")
        return array
    try:
        value = json.loads(text)
        array = np.asarray(value)
    except (ValueError, RecursionError):
        array = None
    if array is None or array.dtype.kind not in "biuf":
        raise CommandError(f"--feed {name}={text:.60}: not a .npy file, a number or a JSON list "
                           "of numbers")
    return array


def _save_arrays(path: str, fetches: list, values: list) -> None:
    """One fetch to .npy, or every fetch by node name to .npz; written atomically."""
    buffer = BytesIO()
    if path.endswith(".npz"):
        # the zip np.savez writes, built by hand: np.savez(path, **arrays) breaks on a node
        # named "file" or "allow_pickle"
        arrays = {n.name: np.asarray(v) for n, v in zip(fetches, values)}
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
    elif path.endswith(".npy"):
        if len(fetches) != 1:
            raise CommandError(f"-o {path}: a .npy file holds one array; use .npz for "
                               f"{len(fetches)} fetches")
        np.save(buffer, np.asarray(values[0]), allow_pickle=False)
    else:
        raise CommandError(f"-o {path}: use a .npy or .npz path")
    write_atomic(path, buffer.getvalue())


def _table(title: str, rows: list) -> None:
    print(f"{title}:" if rows else f"{title}: none")
    width = max((len(name) for name, _ in rows), default=0)
    for name, text in rows:
        print(f"  {name:<{width}}  {text}")


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(part.strip() for part in text.splitlines() if part.strip())

