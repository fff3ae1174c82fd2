"""The DAG a pipeline function builds: nodes (step calls), lazy outputs, and its exports.

Calling a step while a pipeline function runs under :func:`building` adds a :class:`Node` and
returns :class:`Output` handles; an argument that holds handles (also inside lists, tuples and
dicts) is an edge. Nodes are added in call order, which is already a topological order: a step
can only be given outputs that exist.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mloop.errors import PipelineError

if TYPE_CHECKING:
    from mloop.pipelines._step import Step

__all__ = ["Graph", "Node", "Output", "building", "current_graph", "replace_outputs"]

_current: contextvars.ContextVar[Graph | None] = contextvars.ContextVar(
    "mloop_pipeline_graph", default=None
)


def current_graph() -> Graph | None:
    """The graph being built in this context, if a pipeline function is running."""
    return _current.get()


@contextlib.contextmanager
def building(graph: Graph) -> Iterator[Graph]:
    """Run a pipeline function's body with step calls going into ``graph``."""
    token = _current.set(graph)
    try:
        yield graph
    finally:
        _current.reset(token)


class Output:
    """A lazy handle to one output of a step call; pass it to other steps."""

    __slots__ = ("graph", "index", "name", "node")

    def __init__(self, graph: Graph, node: str, index: int, name: str) -> None:
        self.graph = graph
        self.node = node
        self.index = index
        self.name = name

    def __repr__(self) -> str:
        return f"<Output {self.node}.{self.name}>"

    def _refuse(self, what: str) -> PipelineError:
        return PipelineError(
            f"{what} on the output of step {self.node!r}: while the pipeline is built, a step's "
            "result is a placeholder, not its value; do this inside a step that takes it"
        )

    def __bool__(self) -> bool:
        raise self._refuse("'if' or 'and'/'or'")

    def __iter__(self) -> Iterator[Any]:
        raise PipelineError(
            f"step {self.node!r} has one output, which cannot be unpacked; declare "
            "@step(outputs=2) or a tuple[...] return annotation for several outputs"
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise self._refuse(f"attribute .{name}")

    def __getitem__(self, key: Any) -> Any:
        raise self._refuse("indexing")


@dataclass
class Node:
    """One call of a step: its arguments (literals and Outputs) and the nodes it waits for."""

    key: str
    step: Step
    arguments: dict[str, Any]
    upstream: list[str]
    outputs: tuple[Output, ...]
    inputs: list[tuple[str, Output]] = field(default_factory=list)


def walk_outputs(value: Any, path: str, found: list[tuple[str, Output]]) -> None:
    """Collect the Outputs in ``value`` (a literal, list, tuple or dict) with their paths."""
    if isinstance(value, Output):
        found.append((path, value))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            walk_outputs(item, f"{path}/{index}", found)
    elif isinstance(value, dict):
        for key, item in value.items():
            walk_outputs(item, f"{path}/{key}", found)


def replace_outputs(value: Any, resolve: Callable[[Output], Any]) -> Any:
    """``value`` with every Output in it (inside lists, tuples, dicts) replaced by resolve()."""
    if isinstance(value, Output):
        return resolve(value)
    if isinstance(value, list):
        return [replace_outputs(item, resolve) for item in value]
    if isinstance(value, tuple):
        return tuple(replace_outputs(item, resolve) for item in value)
    if isinstance(value, dict):
        return {key: replace_outputs(item, resolve) for key, item in value.items()}
    return value


def _json_problem(value: Any, path: str) -> str | None:
    """Why a literal argument cannot be part of a cache key (not plain JSON), or None."""
    if value is None or isinstance(value, bool | int | str | Output):
        return None
    if isinstance(value, float):
        return None if value == value and abs(value) != float("inf") else f"{path} is {value}"
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = _json_problem(item, f"{path}[{index}]")
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path} has a key that is not a string: {key!r}"
            problem = _json_problem(item, f"{path}[{key!r}]")
            if problem:
                return problem
        return None
    return f"{path} is a {type(value).__name__}"


class Graph:
    """The nodes and edges of one pipeline, in the order the steps were called."""

    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        self.nodes: dict[str, Node] = {}
        self._counts: dict[str, int] = {}

    def add(self, step: Step, bound: inspect.BoundArguments) -> Output | tuple[Output, ...]:
        """Add a call of ``step`` with these arguments; return its lazy output(s)."""
        count = self._counts.get(step.name, 0) + 1
        self._counts[step.name] = count
        key = step.name if count == 1 else f"{step.name}_{count}"
        while key in self.nodes:  # a step literally named like another's second call
            count += 1
            key = f"{step.name}_{count}"
        inputs: list[tuple[str, Output]] = []
        for name, value in bound.arguments.items():
            problem = _json_problem(value, name)
            if problem is not None:
                raise PipelineError(
                    f"step {key!r}: argument {problem}; a step takes JSON values (numbers, "
                    "strings, lists, dicts) or outputs of other steps - produce it in a step"
                )
            walk_outputs(value, name, inputs)
        upstream: list[str] = []
        for _, output in inputs:
            if output.graph is not self:
                raise PipelineError(
                    f"step {key!r} was given an output of step {output.node!r} from another "
                    "pipeline; outputs can only be passed within the pipeline that made them"
                )
            if output.node not in upstream:
                upstream.append(output.node)
        outputs = tuple(
            Output(self, key, index, name) for index, name in enumerate(step.options.outputs)
        )
        self.nodes[key] = Node(key, step, dict(bound.arguments), upstream, outputs, inputs)
        return outputs[0] if len(outputs) == 1 else outputs

    def downstream(self) -> dict[str, list[str]]:
        """For each node, the nodes that take one of its outputs."""
        found: dict[str, list[str]] = {key: [] for key in self.nodes}
        for node in self.nodes.values():
            for up in node.upstream:
                found[up].append(node.key)
        return found

    def descendants(self, key: str) -> list[str]:
        """Every node that depends on ``key``, directly or not, in graph order."""
        below = self.downstream()
        seen: set[str] = set()
        stack = [key]
        while stack:
            for child in below[stack.pop()]:
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return [k for k in self.nodes if k in seen]

    def edges(self) -> list[tuple[str, str, str]]:
        """(upstream node, downstream node, "output → argument") for every connection."""
        found = []
        for node in self.nodes.values():
            for path, output in node.inputs:
                found.append((output.node, node.key, f"{output.name} → {path}"))
        return found

    # -- exports ------------------------------------------------------------------------

    def to_text(self) -> str:
        """One line per step: its name, the function it calls, and what it waits for."""
        lines = [f"pipeline {self.pipeline} ({len(self.nodes)} steps)"]
        for node in self.nodes.values():
            after = f"  <- {', '.join(node.upstream)}" if node.upstream else ""
            lines.append(f"  {node.key} [{node.step.name}]{after}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self) -> str:
        """A Mermaid flowchart (``flowchart TD``) of the DAG."""
        ids = {key: f"n{index}" for index, key in enumerate(self.nodes)}
        lines = ["flowchart TD"]
        for key in self.nodes:
            lines.append(f'    {ids[key]}["{_mermaid_text(key)}"]')
        for source, target, label in self.edges():
            lines.append(f'    {ids[source]} -->|"{_mermaid_text(label)}"| {ids[target]}')
        return "\n".join(lines) + "\n"

    def to_dot(self) -> str:
        """A Graphviz DOT digraph of the DAG."""
        lines = [f"digraph {_dot_id(self.pipeline)} {{", "    rankdir=TB;"]
        for key in self.nodes:
            lines.append(f"    {_dot_id(key)} [shape=box];")
        for source, target, label in self.edges():
            lines.append(f"    {_dot_id(source)} -> {_dot_id(target)} [label={_dot_id(label)}];")
        lines.append("}")
        return "\n".join(lines) + "\n"


def _dot_id(text: str) -> str:
    """A DOT quoted string (JSON's escaping of quotes and backslashes is DOT's too)."""
    return json.dumps(text, ensure_ascii=False)


_MERMAID_UNSAFE = re.compile(r'["<>`#]')


def _mermaid_text(text: str) -> str:
    return _MERMAID_UNSAFE.sub(lambda m: f"#{ord(m.group())};", text)
