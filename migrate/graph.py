"""Dependency graph algorithms on system codes: strongly connected components and chains."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def strongly_connected(nodes: Iterable[str], edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's components, iteratively (no recursion limit at 10,000 systems).

    Nodes and successors are visited in sorted order, and each component is returned sorted, so
    the result depends only on the graph, never on insertion order.
    """
    successors = {node: sorted(set(edges.get(node, ()))) for node in sorted(set(nodes))}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in successors:
        if root in index:
            continue
        # Each frame: the node and the position of the next successor to look at.
        work: list[tuple[str, int]] = [(root, 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, position = work[-1]
            nexts = successors.get(node, [])
            if position < len(nexts):
                work[-1] = (node, position + 1)
                child = nexts[position]
                if child not in successors:
                    continue  # an edge to a node outside the graph
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def topological_order(nodes: Iterable[str], predecessors: Mapping[str, Iterable[str]]) -> list[str]:
    """Nodes with every predecessor first (Kahn's algorithm, ties by name); needs a DAG."""
    import heapq

    members = set(nodes)
    remaining = {n: {p for p in predecessors.get(n, ()) if p in members} for n in members}
    dependents: dict[str, list[str]] = {n: [] for n in members}
    for node, preds in remaining.items():
        for pred in preds:
            dependents[pred].append(node)
    ready = [n for n, preds in remaining.items() if not preds]
    heapq.heapify(ready)
    order: list[str] = []
    counts = {n: len(p) for n, p in remaining.items()}
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for dependent in dependents[node]:
            counts[dependent] -= 1
            if counts[dependent] == 0:
                heapq.heappush(ready, dependent)
    if len(order) != len(members):
        raise ValueError("the graph has a cycle")
    return order


def longest_chain(nodes: Iterable[str], predecessors: Mapping[str, Iterable[str]]) -> int:
    """Number of nodes on the longest dependency chain of a DAG (0 for no nodes)."""
    order = topological_order(nodes, predecessors)
    members = set(order)
    depth: dict[str, int] = {}
    for node in order:
        depth[node] = 1 + max(
            (depth[p] for p in predecessors.get(node, ()) if p in members), default=0
        )
    return max(depth.values(), default=0)
