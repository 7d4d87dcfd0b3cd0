"""The confidentiality rule: a classified (涉密) system is counted, never named, unless asked.

One rule, applied where rows leave the ledger. A classified system's code and name, and the
name, native id, namespace or tag value of anything attributed to it, reach no output unless
the reader passes `--include-classified`. Every read function that hands names to a command
takes a `Disclosure`: it either drops a classified row (a list of systems, an import file)
or, where the row must still be counted (a freeze-rule violation, a scope's scan result),
replaces what identifies it with `REDACTED`. The disclosure tallies what it withheld, so the
command can say so on stderr. The exporter names nothing at all and never needs one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from sqlmodel import Session, col, select

from inventory.models import Resource, System

# What stands where an identifying value was withheld: plain ASCII, so it is the same in a
# terminal, Markdown, CSV and JSON and never read as markup.
REDACTED = "(classified)"


@dataclass(frozen=True)
class ClassifiedLedger:
    """What the ledger holds that belongs to a classified system."""

    codes: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    # (node, namespace) of namespaces labelled with a classified system: their name, and
    # everything in them, identifies the system whatever the workload's own label says.
    namespaces: frozenset[tuple[str, str]] = frozenset()

    @cached_property
    def _in_text(self) -> re.Pattern[str] | None:
        """Any classified code, namespace or name in free text."""

        def either(words: Iterable[str]) -> str:
            # Longest first, so a longer word is never cut short by its own prefix.
            return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))

        parts = []
        identifiers = [*self.codes, *(namespace for _, namespace in self.namespaces)]
        if identifiers:
            # Standing on their own: JS-EDU-1 must not eat into JS-EDU-12.
            parts.append(rf"(?<![\w-])(?:{either(identifiers)})(?![\w-])")
        if self.names:
            # Anywhere: Chinese text has no spaces around a name.
            parts.append(f"(?:{either(self.names)})")
        return re.compile("|".join(parts)) if parts else None

    def redact_text(self, value: str) -> tuple[str, int]:
        """`value` with every classified code, name and namespace replaced; and how many."""
        pattern = self._in_text
        if pattern is None:
            return value, 0
        return pattern.subn(REDACTED, value)

    def owns_system(self, code: str | None) -> bool:
        return code is not None and code in self.codes

    def owns_namespace(self, node_id: str, namespace: str | None) -> bool:
        return namespace is not None and (node_id, namespace) in self.namespaces

    def owns_resource(self, resource: Resource) -> bool:
        """By its own label (or the one it inherited), or by the namespace it is, or is in."""
        if self.owns_system(resource.system_code):
            return True
        namespace = resource.name if resource.kind == "namespace" else resource.namespace
        return self.owns_namespace(resource.node_id, namespace)


def read_classified(*, session: Session) -> ClassifiedLedger:
    """Classified system codes and the namespaces labelled with one (live or tombstoned: a
    deleted namespace's name still names the system)."""
    systems = list(session.exec(select(System.code, System.name).where(col(System.classified))))
    if not systems:
        return ClassifiedLedger()
    codes = frozenset(code for code, _ in systems)
    query = select(Resource.node_id, Resource.name).where(
        col(Resource.kind) == "namespace", col(Resource.system_code).in_(sorted(codes))
    )
    namespaces = frozenset((node, name) for node, name in session.exec(query) if name)
    return ClassifiedLedger(codes, frozenset(name for _, name in systems if name), namespaces)


ResourceKey = tuple[str, str, str]  # (node, kind, native_id)


@dataclass
class Disclosure:
    """Who reads the output: by default anyone, from whom classified systems are withheld;
    with `include_classified`, someone entitled to see them. Tallies what it withheld."""

    include_classified: bool = False
    withheld_systems: set[str] = field(default_factory=set)
    withheld_resources: set[ResourceKey] = field(default_factory=set)
    # Scopes (node/source/kind/scope) whose namespace names a classified system.
    withheld_scopes: set[str] = field(default_factory=set)
    # Mentions redacted inside free text.
    redacted_mentions: int = 0
    _ledger: ClassifiedLedger | None = field(default=None, repr=False)

    def classified(self, session: Session | None) -> ClassifiedLedger:
        """The ledger's classified codes and namespaces, read once per disclosure (a long run,
        like a scan, reads them up front and passes no session afterwards)."""
        if self._ledger is None:
            if session is None:
                raise RuntimeError("the classified ledger was never read: pass a session once")
            self._ledger = read_classified(session=session)
        return self._ledger

    def shows_system(self, session: Session, code: str, *, classified: bool | None = None) -> bool:
        """May this system be named? `classified` saves a read when the caller has the row."""
        if self.include_classified:
            return True
        if classified is None:
            classified = self.classified(session).owns_system(code)
        if classified:
            self.withheld_systems.add(code)
        return not classified

    def answers_about(self, session: Session, code: str, *, classified: bool | None = None) -> bool:
        """May a command asked about this system by its code answer? Unlike shows_system
        nothing is tallied: a note that something was withheld would confirm that it exists."""
        if self.include_classified:
            return True
        if classified is None:
            classified = self.classified(session).owns_system(code)
        return not classified

    def shows_resource(self, session: Session, resource: Resource) -> bool:
        """May this resource be named? One of a classified system (by its own label or its
        namespace's) may not, unless the reader asked."""
        if self.include_classified:
            return True
        ledger = self.classified(session)
        owned = ledger.owns_resource(resource)
        if owned:
            self.withheld_resources.add((resource.node_id, resource.kind, resource.native_id))
            if resource.system_code and ledger.owns_system(resource.system_code):
                self.withheld_systems.add(resource.system_code)
        return not owned

    def scope(
        self, session: Session | None, *, node_id: str, source: str, kind: str, scope: str
    ) -> str:
        """A scan scope (a region or a namespace) as output may name it: REDACTED when it is a
        namespace labelled with a classified system, unless the disclosure includes it."""
        if self.include_classified or not scope:
            return scope
        if not self.classified(session).owns_namespace(node_id, scope):
            return scope
        self.withheld_scopes.add(f"{node_id}/{source}/{kind}/{scope}")
        return REDACTED

    def scope_label(self, session: Session | None, label: str) -> str:
        """A "node/source/kind/scope" label (evidence.scope_label), its scope redacted when it
        names a classified system's namespace."""
        parts = label.split("/", 3)
        if len(parts) != 4:
            return label
        node_id, source, kind, scope = parts
        shown = self.scope(session, node_id=node_id, source=source, kind=kind, scope=scope)
        return label if shown == scope else f"{node_id}/{source}/{kind}/{shown}"

    def text(self, session: Session | None, value: str | None) -> str | None:
        """Free text (a plan's explanation, a note in the migration log) with every classified
        system's code, name and namespace in it redacted, unless the disclosure includes them."""
        if self.include_classified or not value:
            return value
        shown, replaced = self.classified(session).redact_text(value)
        self.redacted_mentions += replaced
        return shown

    @property
    def withheld(self) -> bool:
        return bool(
            self.withheld_systems
            or self.withheld_resources
            or self.withheld_scopes
            or self.redacted_mentions
        )
