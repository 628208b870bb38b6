#!/usr/bin/python3
"""Puts txn_bench's 2pc and early points beside pg2pc_bench's (PostgreSQL's
native 2PC driven by hand) at the same client counts: one JSON with both
runs and their ratios, and a markdown table with a verdict per target, a
row per client count and txcoord mode.

  bench/against_pg.py TXN_BENCH.json PG2PC_BENCH.json OUT.json OUT.md [--splice DOC.md]

--splice also replaces the table in DOC.md between the lines
"<!-- against-pg: begin -->" and "<!-- against-pg: end -->".
scripts/bench --against-pg runs both benchmarks and then this.
"""
import json
import sys

BEGIN = "<!-- against-pg: begin -->"
END = "<!-- against-pg: end -->"


def figures(p, cpu_parts):
    """The figures compared, from one point of either JSON; cpu_parts: the
    processes whose CPU per transfer adds up to the whole."""
    return {
        "tx_per_s": p["tx_per_s"],
        "txn_p50_ms": p["txn_ms"]["p50"],
        "txn_p99_ms": p["txn_ms"]["p99"],
        "commit_p50_ms": p["commit_ms"]["p50"],
        "cpu_ms_per_tx": sum(p["cpu_ms_per_tx"][part] for part in cpu_parts),
        "cpu_busy": p["cpu_busy"],
        "machine_cpu_busy": p["machine_cpu_busy"],
        "failed": p["failed"],
    }


def txcoord_figures(p):
    return figures(p, ("client", "coordinator", "agents"))


def peer_figures(p):
    return figures(p, ("client", "servers"))


def ratio(a, b):
    return a / b if b else None


def verdict(clients, r):
    """The targets (docs/benchmarks.md): at 1 client the whole transfer's p50 no slower
    than the peer's; at 16 and 64 clients at least its throughput with a
    p99 no worse."""
    if r["txn_p50"] is None or r["tx_per_s"] is None:
        return "", "no figures"
    if clients == 1:
        target = "p50 ≤ peer's"
        if r["txn_p50"] <= 1:
            return target, "**met**"
        return target, f"**missed**: p50 {r['txn_p50']:.1f}× the peer's"
    if clients in (16, 64):
        target = "tx/s ≥ peer's, p99 ≤ peer's"
        misses = []
        if r["tx_per_s"] < 1:
            misses.append(f"{r['tx_per_s']:.2f}× the peer's tx/s")
        if r["txn_p99"] > 1:
            misses.append(f"p99 {r['txn_p99']:.1f}× the peer's")
        return target, "**met**" if not misses else "**missed**: " + ", ".join(misses)
    return "—", "—"


# txn_bench's modes compared, in table order: plain two-phase commit, and
# early prepare (each branch prepares in its Execute, as the peer's client
# sends PREPARE TRANSACTION right after its UPDATE).
MODES = ("2pc", "early")


def compare(txcoord, peer):
    branches = peer["points"][0]["branches"] if peer["points"] else 3
    ours = {(p["clients"], p["mode"]): p for p in txcoord["points"]
            if p["mode"] in MODES and p["branches"] == branches}
    rows = []
    for p, mode in ((p, mode) for p in peer["points"] for mode in MODES):
        if (p["clients"], mode) not in ours:
            continue
        t, q = txcoord_figures(ours[(p["clients"], mode)]), peer_figures(p)
        r = {
            "tx_per_s": ratio(t["tx_per_s"], q["tx_per_s"]),
            "txn_p50": ratio(t["txn_p50_ms"], q["txn_p50_ms"]),
            "txn_p99": ratio(t["txn_p99_ms"], q["txn_p99_ms"]),
            "cpu_ms_per_tx": ratio(t["cpu_ms_per_tx"], q["cpu_ms_per_tx"]),
        }
        target, result = verdict(p["clients"], r)
        rows.append({"clients": p["clients"], "mode": mode, "branches": branches,
                     "txcoord": t, "peer": q,
                     "ratio_txcoord_to_peer": r, "target": target, "verdict": result})
    return rows


def markdown(txcoord, peer, rows):
    tc, pc = txcoord["conditions"], peer["conditions"]
    smoke = " **(smoke run: the numbers mean nothing)**" if tc["smoke"] or pc["smoke"] else ""
    lines = [
        f"txcoord `txn_bench` with {rows[0]['branches'] if rows else 3} branches against "
        f"PostgreSQL's "
        f"native 2PC (`pg2pc_bench`, {pc['servers']} servers), back to back on {tc['host']} "
        f"({tc['cpus']} CPUs): the peer from {pc['started_utc']}, txcoord from "
        f"{tc['started_utc']}, commit {tc['commit']}"
        f"{', its branches executed at once' if tc.get('branches_at_once') else ''}"
        f"{' and named in Commit' if tc.get('name_branches') else ''}"
        f"{', txids reserved ' + str(tc['reserve_txids']) + ' at a time' if tc.get('reserve_txids') else ''}, "
        f"{pc['warmup_seconds']:g} s warm-up + "
        f"{pc['point_seconds']:g} s measured per point; load average {pc['load_before']} → "
        f"{tc['load_after']}.{smoke}",
        "",
        "| clients | txcoord mode | tx/s: txcoord / peer | ratio | whole txn p50 ms: txcoord / peer | ratio "
        "| whole txn p99 ms: txcoord / peer | ratio | CPU ms/transfer: txcoord / peer "
        "| CPU busy, own/all: txcoord; peer | target | verdict |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]

    def busy(figures):
        return f"{100 * figures['cpu_busy']:.0f}/{100 * figures['machine_cpu_busy']:.0f} %"

    def fmt(x, digits):
        return "—" if x is None else f"{x:,.{digits}f}"

    for row in rows:
        t, q, r = row["txcoord"], row["peer"], row["ratio_txcoord_to_peer"]
        lines.append(
            f"| {row['clients']} | {row.get('mode', '2pc')} | "
            f"{t['tx_per_s']:,.0f} / {q['tx_per_s']:,.0f} | "
            f"{fmt(r['tx_per_s'], 2)}× | {t['txn_p50_ms']:.2f} / {q['txn_p50_ms']:.2f} | "
            f"{fmt(r['txn_p50'], 2)}× | {t['txn_p99_ms']:.2f} / {q['txn_p99_ms']:.2f} | "
            f"{fmt(r['txn_p99'], 2)}× | {t['cpu_ms_per_tx']:.2f} / {q['cpu_ms_per_tx']:.2f} | "
            f"{busy(t)}; {busy(q)} | {row['target']} | {row['verdict']} |")
    failed = sum(row["txcoord"]["failed"] + row["peer"]["failed"] for row in rows)
    lines += [
        "",
        "Modes: 2pc, the coordinator's Commit sends Prepare to each branch; early, each "
        "branch prepares at the end of its Execute (the peer's client sends `PREPARE "
        "TRANSACTION` in a round of its own). "
        "Ratios are txcoord ÷ peer (tx/s: higher is better for txcoord; latency and CPU: lower "
        "is). Whole txn: txcoord's Begin (with reserved txids, taking the next one: no call) to "
        "the end of Commit; the peer's first `BEGIN` sent to "
        "the last `COMMIT PREPARED` answered. CPU per transfer: txcoord's client, coordinator "
        "and agents; the peer's client and servers. CPU busy: the share of all CPUs the "
        "benchmark and its processes used / everything on the machine used (the gap is other "
        "work competing). "
        f"Peer's check: {peer.get('check', '?')}."
        + (f" **{failed} transfers failed.**" if failed else ""),
    ]
    return "\n".join(lines) + "\n"


# The targets on txcoord's own Commit call, against its floor measured in
# the same point (docs/benchmarks.md): plain 2PC 2 RTT + 2 fsync, early
# prepare RTT + fsync.
FLOOR_TARGET = {"2pc": ("2 RTT + 2 fsync", 1.3), "early": ("RTT + fsync", 1.3)}


def floor_rows(txcoord):
    """The targets hold for a lone transaction (1 client): under load the
    Commit call also waits its turn behind the others."""
    rows = []
    for p in sorted(txcoord["points"], key=lambda p: (MODES.index(p["mode"])
                                                      if p["mode"] in MODES else 9,
                                                      p["clients"])):
        if p["mode"] not in FLOOR_TARGET or p["clients"] != 1:
            continue
        floor, most = FLOOR_TARGET[p["mode"]]
        x = p["commit_x_floor"]["p50"]
        rows.append({"mode": p["mode"], "clients": p["clients"], "floor": floor,
                     "floor_ms": p["commit_floor_ms"], "commit_p50_ms": p["commit_ms"]["p50"],
                     "x_floor": x, "target": f"≤ {most:g} × ({floor})",
                     "verdict": "**met**" if x <= most else f"**missed**: {x:.1f}×"})
    return rows


def floor_markdown(rows):
    lines = [
        "",
        "txcoord's Commit call at 1 client against its floor in the same points (fsync "
        "sampled while each point ran, RTT between points):",
        "",
        "| txcoord mode | clients | Commit p50 ms | floor ms | × floor | target | verdict |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['clients']} | {r['commit_p50_ms']:.2f} | "
                     f"{r['floor_ms']:.2f} | {r['x_floor']:.2f}× | {r['target']} | "
                     f"{r['verdict']} |")
    return "\n".join(lines) + "\n"


def splice(path, table):
    with open(path) as f:
        text = f.read()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"against_pg: no '{BEGIN}' ... '{END}' in {path}")
    text = text[:start + len(BEGIN)] + "\n" + table + text[end:]
    with open(path, "w") as f:
        f.write(text)


def main(argv):
    args = argv[1:]
    doc = None
    if "--splice" in args:
        i = args.index("--splice")
        if i + 1 >= len(args):
            print(__doc__, file=sys.stderr)
            return 2
        doc = args[i + 1]
        del args[i:i + 2]
    if len(args) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    with open(args[0]) as f:
        txcoord = json.load(f)
    with open(args[1]) as f:
        peer = json.load(f)
    rows = compare(txcoord, peer)
    if not rows:
        print("against_pg: no client count measured by both benchmarks", file=sys.stderr)
        return 1
    floors = floor_rows(txcoord)
    with open(args[2], "w") as f:
        json.dump({"benchmark": "against_pg", "format": 1, "comparison": rows,
                   "commit_floor": floors, "txcoord": txcoord, "peer": peer}, f, indent=1)
        f.write("\n")
    table = markdown(txcoord, peer, rows) + floor_markdown(floors)
    with open(args[3], "w") as f:
        f.write(table)
    if doc:
        splice(doc, table)
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
