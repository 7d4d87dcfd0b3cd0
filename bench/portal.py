"""Time the portal's pages at province scale under 20 sessions, beside the matching API calls."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.api import (  # noqa: E402
    API,
    PG_DEFAULT,
    YIYUN,
    Call,
    Estate,
    Phase,
    drive,
    figures,
    prepare_estate,
    province_ledger,
    start,
    stop,
)
from bench.exporter import CITIES, free_port, rss_mib  # noqa: E402
from bench.provenance import provenance  # noqa: E402
from inventory.db import make_engine, mask_url  # noqa: E402

# The target: every page's p99 under 300 ms with 20 sessions.
TARGET_P99_MS = 300.0
Pick = Callable[[random.Random], str]


@dataclass(frozen=True)
class Pair:
    """A page and the API call that reads the same thing, measured the same way."""

    name: str
    page: Pick
    api: Pick
    who: str  # whose session and token: "viewer" (province), "admin", or "department_it"


def sessions(url: str, count: int, who: dict[str, tuple[str, str]]) -> dict[str, list[str]]:
    """`count` portal sessions per kind of person, started as a login would start them."""
    from sqlmodel import Session

    from inventory.sessions import start_session

    engine = make_engine(url)
    cookies: dict[str, list[str]] = {}
    with Session(engine) as session:
        for name, (role, scope) in who.items():
            cookies[name] = [
                "yiyun_session="
                + start_session(
                    session=session,
                    principal=f"bench-{name}-{n}",
                    kind="demo",
                    name=None,
                    claim_grants=[f"{role}:{scope}"],
                    now=datetime.now(tz=UTC),
                )
                for n in range(count)
            ]
        session.commit()
    engine.dispose()
    return cookies


def sample(url: str, estate: Estate) -> dict[str, list[str]]:
    """Codes the clients draw from: departments, the department's systems, scan runs."""
    engine = make_engine(url)
    with engine.connect() as connection:

        def codes(sql: str, **params: Any) -> list[str]:
            return [str(v) for v in connection.execute(sa.text(sql), params).scalars()]

        found = {
            "departments": codes("SELECT code FROM department ORDER BY code LIMIT 200"),
            "systems": codes(
                "SELECT code FROM system WHERE NOT classified AND department_code = :d "
                "ORDER BY code",
                d=estate.department,
            ),
            "any_systems": codes(
                "SELECT code FROM system WHERE NOT classified ORDER BY code LIMIT 500"
            ),
            "runs": codes("SELECT id FROM scanrun ORDER BY id DESC LIMIT 20"),
        }
    engine.dispose()
    return found


def pairs(estate: Estate, codes: dict[str, list[str]]) -> list[Pair]:
    department = estate.department

    def pick(values: list[str], pattern: str) -> Pick:
        return lambda rng: pattern.format(rng.choice(values))

    def fixed(path: str) -> Pick:
        return lambda _rng: path

    runs = codes["runs"] or ["1"]
    return [
        Pair("dashboard", fixed("/dashboard"), fixed(f"{API}/adoption?by=city"), "viewer"),
        Pair(
            "dashboard city",
            pick(CITIES, "/dashboard?city={}"),
            pick(CITIES, f"{API}/systems?city={{}}&limit=50"),
            "viewer",
        ),
        Pair(
            "department",
            fixed(f"/departments/{department}"),
            fixed(f"{API}/systems?department={department}&limit=50"),
            "department_it",
        ),
        Pair(
            "system",
            pick(codes["systems"], "/systems/{}"),
            pick(codes["systems"], f"{API}/systems/{{}}"),
            "department_it",
        ),
        # A system waiting for a wave: its next step needs the planner's trial waves, which
        # the page leaves to this fragment (kept once worked out).
        Pair(
            "system step",
            pick(codes["systems"], "/systems/{}/step"),
            pick(codes["systems"], f"{API}/systems/{{}}"),
            "department_it",
        ),
        Pair("nodes", fixed("/platform/nodes"), fixed(f"{API}/nodes"), "viewer"),
        Pair("scans", fixed("/platform/scans"), fixed(f"{API}/scans?limit=50"), "viewer"),
        Pair(
            "scan run",
            pick(runs, "/platform/scans/{}"),
            pick(runs, f"{API}/scans/{{}}"),
            "viewer",
        ),
        Pair("access", fixed("/admin/access"), fixed(f"{API}/access"), "admin"),
    ]


def phase_of(
    name: str, port: int, pid: int, path: Pick, *, token: str | None, cookies: list[str] | None
) -> Phase:
    def next_call(worker: int, rng: random.Random) -> Call:
        cookie = cookies[worker % len(cookies)] if cookies else None
        return Call("GET", path(rng), token=token, cookie=cookie)

    return Phase(name, port, pid, next_call)


def print_table(results: dict[str, dict[str, Any]], clients: int, think: float) -> None:
    print()
    print(f"  {clients} sessions, keep-alive, {think:g} s think time; p in ms")
    print(
        f"  {'page':<16} {'p50':>7} {'p99':>8} {'req/s':>7} │ {'API p50':>7} {'API p99':>8} "
        f"{'req/s':>7} │ {'×p99':>6}  verdict (p99 < {TARGET_P99_MS:.0f} ms)  statuses"
    )
    for name, both in results.items():
        page, api = both["page"], both["api"]
        verdict = "PASS" if page["p99_ms"] < TARGET_P99_MS else "MISS"
        statuses = " ".join(f"{c}:{n}" for c, n in page["statuses"].items())
        print(
            f"  {name:<16} {page['p50_ms']:>7.1f} {page['p99_ms']:>8.1f} "
            f"{page['per_second']:>7.1f} │ {api['p50_ms']:>7.1f} {api['p99_ms']:>8.1f} "
            f"{api['per_second']:>7.1f} │ {page['p99_ms'] / api['p99_ms']:>5.1f}×  {verdict:<27} "
            f"{statuses}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg", default=PG_DEFAULT, help="PostgreSQL URL (a schema is made in it)")
    parser.add_argument("--systems", type=int, default=10_000)
    parser.add_argument("--departments", type=int, default=1_000)
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--rebuild", action="store_true", help="build the ledger even if kept")
    parser.add_argument("--clients", type=int, default=20, help="concurrent sessions")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured, per page")
    parser.add_argument("--warmup", type=float, default=3.0, help="not measured, per page")
    parser.add_argument("--think", type=float, default=1.0,
                        help="seconds a person reads between pages (0: back to back)")  # fmt: skip
    parser.add_argument("--only", nargs="*", help="page names to measure")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--yiyun", type=Path, default=YIYUN)
    args = parser.parse_args()

    print(
        f"portal bench: {args.systems:,} systems, {args.departments:,} departments, "
        f"{args.resources:,} resources on {mask_url(args.pg)}; {args.clients} sessions, "
        f"{args.seconds:g} s per page after {args.warmup:g} s of warm-up"
    )
    url = province_ledger(args.pg, systems=args.systems, departments=args.departments,
                          resources=args.resources, rebuild=args.rebuild)  # fmt: skip
    # A ledger kept from an older run may be a migration or two behind (login sessions).
    subprocess.run([str(args.yiyun), "--db", url, "db", "upgrade"], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    estate = prepare_estate(url)
    people = {
        "viewer": ("viewer", "province"),
        "admin": ("admin", "province"),
        "department_it": ("department_it", f"department:{estate.department}"),
    }
    cookies = sessions(url, args.clients, people)
    codes = sample(url, estate)

    logs = Path(tempfile.mkdtemp(prefix="yiyun-bench-portal-"))
    port = free_port()
    service = start([str(args.yiyun), "--db", url, "serve", "--port", str(port)],
                    f"http://127.0.0.1:{port}/readyz", logs / "serve.log")  # fmt: skip
    results: dict[str, dict[str, Any]] = {}
    try:
        for pair in pairs(estate, codes):
            if args.only and pair.name not in args.only:
                continue
            measured = {}
            for side in ("api", "page"):
                path = pair.api if side == "api" else pair.page
                phase = phase_of(
                    f"{pair.name} {side}",
                    port,
                    service.pid,
                    path,
                    token=estate.tokens[pair.who] if side == "api" else None,
                    cookies=cookies[pair.who] if side == "page" else None,
                )
                print(f"  measuring {phase.name} …", flush=True)
                asyncio.run(drive(phase, clients=args.clients, seconds=args.seconds,
                                  warmup=args.warmup, think=args.think))  # fmt: skip
                measured[side] = figures(phase)
            results[pair.name] = measured
        rss = rss_mib(service.pid)
    finally:
        stop(service)

    print_table(results, args.clients, args.think)
    print(f"\n  yiyun serve RSS {rss[0]:.0f} MiB, peak {rss[1]:.0f} MiB")
    bad = {
        name: both["page"]["statuses"]
        for name, both in results.items()
        if any(code != 200 for code in both["page"]["statuses"])
    }
    if bad:
        print(f"  pages that answered other than 200: {bad}; the server's stderr is in {logs}")
    else:
        shutil.rmtree(logs, ignore_errors=True)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    **provenance(),
                    "size": {"systems": args.systems, "departments": args.departments,
                             "resources": args.resources},
                    "sessions": args.clients,
                    "seconds": args.seconds,
                    "think_seconds": args.think,
                    "pages": results,
                    "rss_mib": {"current": rss[0], "peak": rss[1]},
                },
                indent=2,
                ensure_ascii=False,
            )
            + "\n",
            encoding="utf-8",
        )  # fmt: skip


if __name__ == "__main__":
    main()
