"""One department's scorecard: its figure, its systems and what it must do next."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

from exporters.reports.content import PRIVATE_NETWORK, ReportContent, SystemLine
from exporters.reports.findings import finding_reasons, finding_text
from exporters.reports.fonts import FONT_FACE_SLOT, embed_font
from exporters.reports.html import aside, blocker_list, environment, percent, ranked, stamp
from inventory.adoption import (
    CLASSIFIED_EXCLUDED,
    EXEMPT,
    NO_EVIDENCE,
    OFF_CLOUD,
    ON_CLOUD,
    PARTIAL,
    RETIRED_EXCLUDED,
    STATUSES,
)
from inventory.i18n import (
    STATE_ORDER,
    readiness_label,
    state_label,
    status_label,
    text,
    zone_label,
)
from inventory.output import jsonable, md_cell
from inventory.violations import PlacementViolation

# The main migration sequence (DOMAIN.md): the order `STATE_ORDER` lists it in.
SEQUENCE = STATE_ORDER[:10]
DONE_STATES = frozenset({"accepted", "decommissioned", "cancelled", "exempted"})
PAUSED_STATES = frozenset({"on_hold", "rolled_back"})
# Pending systems first, in the order a department head should look at them.
# Classified systems are listed (last) only when the report was asked to include them.
STATUS_ORDER = (
    OFF_CLOUD,
    PARTIAL,
    NO_EVIDENCE,
    EXEMPT,
    ON_CLOUD,
    RETIRED_EXCLUDED,
    CLASSIFIED_EXCLUDED,
)


class UnknownDepartment(LookupError):
    """No department with that code; `suggestions` are the closest codes."""

    def __init__(self, code: str, suggestions: list[str]) -> None:
        super().__init__(code)
        self.code = code
        self.suggestions = suggestions


@dataclass(frozen=True)
class Step:
    """One thing to do: `kind` is the stable key, `text` the wording in the report's language."""

    system_code: str
    kind: str
    text: str


@dataclass
class Scorecard:
    code: str
    name: str
    group: dict[str, Any]
    rank: int | None
    ranked_departments: int
    systems: list[SystemLine]
    steps: list[Step] = field(default_factory=list)

    @property
    def classified_count(self) -> int:
        return int(self.group["counts"]["classified_excluded"])

    @property
    def findings(self) -> list[PlacementViolation]:
        """Its systems placed on the unified cloud against R1–R6 (合规问题)."""
        return [finding for line in self.systems for finding in line.findings]


def next_steps(line: SystemLine, *, today: date, tag: str, lang: str) -> list[Step]:
    """What the department must do next for one system, from its status and migration."""
    t = partial(text, lang=lang)
    steps: list[tuple[str, str]] = []
    placement = line.placement
    state = placement.state if placement else None
    if line.status in (RETIRED_EXCLUDED, CLASSIFIED_EXCLUDED):
        return []
    if line.next_step is not None:
        # The migration's own step (migrate/next_step.py), the one `migrate advance` prints:
        # always one its state allows.
        if line.status == EXEMPT:
            steps.append(("exempt", t("step_exempt", until=line.exemption_valid_until)))
        if line.status == NO_EVIDENCE:
            steps.append(("no_evidence", t("step_no_evidence", tag=tag, code=line.code)))
        if line.status == PARTIAL:
            steps.append(("partial", t("step_partial")))
        steps += _overdue(line, today=today, lang=lang)
        # "Not seen off the cloud" is the no_evidence step already.
        if not line.next_step.quiet and line.next_step.kind != "no_source":
            steps.append((line.next_step.kind, line.next_step.render(lang)))
    # Without a migration ledger: what the status alone says.
    elif line.status == ON_CLOUD:
        if state is not None and state not in DONE_STATES:
            steps.append(("accept", t("step_accept")))
    elif line.status == EXEMPT:
        steps.append(("exempt", t("step_exempt", until=line.exemption_valid_until)))
    else:
        if line.status == NO_EVIDENCE:
            steps.append(("no_evidence", t("step_no_evidence", tag=tag, code=line.code)))
        if line.status == PARTIAL:
            steps.append(("partial", t("step_partial")))
        if line.blockers:
            steps.append(("blocked", t("step_blocked", blockers=blocker_list(line.blockers, lang))))
        if placement is None:
            if line.status != NO_EVIDENCE:
                steps.append(("plan", t("step_plan")))
        elif state in PAUSED_STATES:
            steps.append(("on_hold", t("step_on_hold", state=state_label(state, lang))))
        elif state not in DONE_STATES:
            if placement.wave_end is not None and placement.wave_end < today:
                steps.append(
                    (
                        "overdue",
                        t(
                            "step_overdue",
                            wave=placement.wave,
                            end=placement.wave_end,
                            state=state_label(state, lang),
                        ),
                    )
                )
            if state in SEQUENCE and state != SEQUENCE[-1]:
                following = SEQUENCE[SEQUENCE.index(state) + 1]
                steps.append(
                    (
                        "advance",
                        t(
                            "step_advance",
                            state=state_label(state, lang),
                            next=state_label(following, lang),
                        ),
                    )
                )
    for finding in line.findings:
        # A compliance finding: the system is where it may not be, whatever its migration.
        steps.append(("placement", t("pl_step", findings=finding_text(finding, lang))))
    if line.network_zone == PRIVATE_NETWORK:
        steps.append(("network", t("step_network")))
    return [Step(line.code, kind, wording) for kind, wording in steps]


def _overdue(line: SystemLine, *, today: date, lang: str) -> list[tuple[str, str]]:
    """The wave's end has passed and the system is still moving."""
    placement = line.placement
    if placement is None or placement.state in DONE_STATES | PAUSED_STATES:
        return []
    if placement.wave_end is None or placement.wave_end >= today:
        return []
    wording = text(
        "step_overdue",
        lang,
        wave=placement.wave,
        end=placement.wave_end,
        state=state_label(placement.state, lang),
    )
    return [("overdue", wording)]


def department_scorecard(content: ReportContent, code: str, lang: str) -> Scorecard:
    groups = {g["key"]: g for g in content.department_report["groups"]}
    known = set(groups) | set(content.department_names)
    if code not in known:
        raise UnknownDepartment(code, difflib.get_close_matches(code, sorted(known), n=3))
    empty = {"key": code, "numerator": 0, "denominator": 0, "rate": None}
    group = groups.get(code) or {**empty, "counts": dict.fromkeys(STATUSES, 0)}
    order = [g["key"] for g in ranked(list(groups.values())) if g["rate"] is not None]
    systems = sorted(
        (s for s in content.systems if s.department_code == code),
        key=lambda s: (STATUS_ORDER.index(s.status), s.code),
    )
    card = Scorecard(
        code=code,
        name=content.department_names.get(code, code),
        group=group,
        rank=order.index(code) + 1 if code in order else None,
        ranked_departments=len(order),
        systems=systems,
    )
    for line in systems:
        card.steps += next_steps(line, today=content.today, tag=content.system_tag, lang=lang)
    return card


def scorecard_json(card: Scorecard, content: ReportContent) -> dict[str, Any]:
    """English keys and stored values, like every machine format of yiyun."""
    return jsonable(
        {
            "department": card.code,
            "name": card.name,
            "policy": content.policy,
            "as_of": content.province_report["as_of"],
            "numerator": card.group["numerator"],
            "denominator": card.group["denominator"],
            "rate": card.group["rate"],
            "counts": card.group["counts"],
            "rank": card.rank,
            "ranked_departments": card.ranked_departments,
            "systems": [
                {
                    "code": s.code,
                    "name": s.name,
                    "status": s.status,
                    "network_zone": s.network_zone,
                    "plan": s.placement.plan if s.placement else None,
                    "wave": s.placement.wave if s.placement else None,
                    "wave_start": s.placement.wave_start if s.placement else None,
                    "wave_end": s.placement.wave_end if s.placement else None,
                    "migration_state": s.placement.state if s.placement else None,
                    "readiness": s.readiness,
                    "blockers": list(s.blockers),
                    "findings": [
                        {"node": f.node_id, "rules": list(f.rules), "reasons": finding_reasons(f)}
                        for f in s.findings
                    ],
                    "exemption_valid_until": s.exemption_valid_until,
                }
                for s in card.systems
            ],
            "next_steps": [
                {"system": step.system_code, "kind": step.kind, "text": step.text}
                for step in card.steps
            ],
            "migration_ledger": content.migration_ledger,
        }
    )


def _md_cell(value: object) -> str:
    # Markdown viewers render inline HTML and links: names from the register must stay text.
    return md_cell(value)


def _readiness(line: SystemLine, lang: str) -> str:
    """Its readiness to move, and "部署不合规" beside it when it is placed against the rules."""
    label = readiness_label(line.readiness, lang)
    return f"{label} · {text('pl_rule', lang)}" if line.findings else label


def scorecard_markdown(card: Scorecard, content: ReportContent, lang: str) -> str:
    t = partial(text, lang=lang)
    group = card.group
    figures = f"{group['numerator']}/{group['denominator']}"
    lines = [
        f"# {t('scorecard_title', name=_md_cell(card.name))}",
        "",
        stamp(content, lang),
        "",
        f"**{t('kpi_name')}**{t('term_colon')}{percent(group['rate'])}{aside(figures, lang)}",
    ]
    if card.rank is not None:
        lines.append(t("scorecard_rank", rank=card.rank, total=card.ranked_departments))
    if card.classified_count:
        lines.append(t("classified_note", count=card.classified_count))
    headers = [
        t("system_code"),
        t("system_name"),
        t("status"),
        t("network_zone"),
        t("plan"),
        t("wave"),
        t("migration_state"),
        t("readiness"),
        t("blockers"),
    ]
    lines += ["", f"## {t('scorecard_systems')}", ""]
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("|" + "---|" * len(headers))
    for s in card.systems:
        p = s.placement
        cells = [
            s.code,
            s.name,
            status_label(s.status, lang),
            zone_label(s.network_zone, lang),
            p.plan if p else "—",
            p.wave if p and p.wave is not None else "—",
            state_label(p.state if p else None, lang),
            _readiness(s, lang),
            blocker_list(s.blockers, lang) or "—",
        ]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    if card.findings:
        lines += ["", f"## {t('pl_section')}", "", t("pl_note"), ""]
        lines += [
            f"- **{_md_cell(f.system_code)}**{t('term_node_aside', node=_md_cell(f.node_id))}"
            f"{_md_cell(finding_text(f, lang))}"
            for f in card.findings
        ]
    lines += ["", f"## {t('scorecard_next')}", ""]
    if card.steps:
        lines += [
            f"- **{_md_cell(step.system_code)}**{t('term_colon')}{_md_cell(step.text)}"
            for step in card.steps
        ]
    else:
        lines.append(t("scorecard_nothing"))
    return "\n".join(lines) + "\n"


def scorecard_html(card: Scorecard, content: ReportContent, lang: str) -> str:
    template = environment().get_template("scorecard.html.j2")
    page = template.render(
        card=card,
        c=content,
        html_lang="zh-CN" if lang == "zh" else "en",
        t=partial(text, lang=lang),
        status_label=partial(status_label, lang=lang),
        state_label=partial(state_label, lang=lang),
        zone_label=partial(zone_label, lang=lang),
        readiness_label=partial(readiness_label, lang=lang),
        readiness=partial(_readiness, lang=lang),
        blocker_list=partial(blocker_list, lang=lang),
        aside=partial(aside, lang=lang),
        finding_text=partial(finding_text, lang=lang),
        stamp=stamp(content, lang),
        font_face=FONT_FACE_SLOT,  # fonts.embed_font puts the @font-face there
    )
    return embed_font(str(page))
