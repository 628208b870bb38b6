#!/usr/bin/python3
"""Puts txn_bench's 2pc and early points beside pg2pc_bench's (PostgreSQL's
native 2PC driven by hand) at the same client counts: one JSON with every
run and the ratios, and a markdown table with a verdict per target, a row
per client count and txcoord mode.

  bench/against_pg.py OUT.json OUT.md --pair TXN_BENCH.json PG2PC_BENCH.json
                      [--pair ...] [--splice DOC.md]

Each --pair is a txn_bench run and a pg2pc_bench run made back to back;
a client count measured in several pairs (rounds) gets each round's ratio,
and the table shows the figures' medians, the median of the rounds' ratios
(on which the verdicts stand) and their range.

--splice also replaces the table in DOC.md between the lines
"<!-- against-pg: begin -->" and "<!-- against-pg: end -->".
scripts/bench --against-pg runs both benchmarks and then this.
"""
import json
import sys

BEGIN = "<!-- against-pg: begin -->"
END = "<!-- against-pg: end -->"


# What txn_bench --framed_ports sends on the daemons' framed ports.
FRAMED_PORTS = (", every call on the framed ports of the daemons (Execute, Commit, "
                "the coordinator's Participant calls, the agents' Enlists)")

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


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


RATIOS = ("tx_per_s", "txn_p50", "txn_p99", "cpu_ms_per_tx")


def spread(values):
    """[lowest, highest] of the rounds' values, or None without any."""
    values = [v for v in values if v is not None]
    return [min(values), max(values)] if values else None


def bracketed(range_, rounds):
    """ (lowest–highest), shown only over several rounds."""
    return f" ({range_[0]:.2f}–{range_[1]:.2f})" if rounds > 1 and range_ is not None else ""


def compare_pair(txcoord, peer):
    """One round: the rows of a txn_bench run and the peer's run beside it."""
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
        rows.append({"clients": p["clients"], "mode": mode, "branches": branches,
                     "txcoord": t, "peer": q, "ratio_txcoord_to_peer": r})
    return rows


def combine(rounds):
    """One row from the same client count and mode in every round: each
    figure's median, the median of the rounds' ratios, their range."""
    first = rounds[0]

    def medians(side):
        return {k: median(r[side][k] for r in rounds) for k in first[side]}

    each = {k: [row["ratio_txcoord_to_peer"][k] for row in rounds] for k in RATIOS}
    r = {k: median(values) for k, values in each.items()}
    target, result = verdict(first["clients"], r)
    return {"clients": first["clients"], "mode": first["mode"], "branches": first["branches"],
            "rounds": len(rounds), "txcoord": medians("txcoord"), "peer": medians("peer"),
            "ratio_txcoord_to_peer": r,
            "ratio_range": {k: spread(values) for k, values in each.items()}, "target": target,
            "verdict": result, "each_round": rounds}


def compare(pairs):
    by_point = {}
    for txcoord, peer in pairs:
        for row in compare_pair(txcoord, peer):
            by_point.setdefault((row["clients"], MODES.index(row["mode"])), []).append(row)
    return [combine(by_point[key]) for key in sorted(by_point)]


def conditions(runs):
    """The conditions of a side's runs: the first run's, with its load
    average after the last one."""
    first = dict(runs[0]["conditions"])
    first["load_after"] = runs[-1]["conditions"]["load_after"]
    return first


def markdown(pairs, rows):
    tc = conditions([t for t, _ in pairs])
    pc = conditions([q for _, q in pairs])
    rounds = max((row["rounds"] for row in rows), default=1)
    smoke = " **(smoke run: the numbers mean nothing)**" if tc["smoke"] or pc["smoke"] else ""
    runs = sorted((run for pair in pairs for run in pair),
                  key=lambda run: run["conditions"]["started_utc"])
    started = runs[0]["conditions"]["started_utc"]
    last = runs[-1]["conditions"]["started_utc"]
    how = ("back to back" if rounds == 1 else
           f"in {rounds} rounds, each taking every client count in turn with the peer and "
           f"txcoord back to back (the peer first in odd rounds, txcoord in even ones); the "
           f"figures are the rounds' medians, and each ratio the median of the rounds' "
           f"ratios, their range in brackets")
    lines = [
        f"txcoord `txn_bench` with {rows[0]['branches'] if rows else 3} branches against "
        f"PostgreSQL's "
        f"native 2PC (`pg2pc_bench`, {pc['servers']} servers) on {tc['host']} "
        f"({tc['cpus']} CPUs), {how}: runs started from {started} to {last}, commit {tc['commit']}"
        f"{', its branches executed at once' if tc.get('branches_at_once') else ''}"
        f"{' and named in Commit' if tc.get('name_branches') else ''}"
        f"{', txids reserved ' + str(tc['reserve_txids']) + ' at a time' if tc.get('reserve_txids') else ''}"
        f"{FRAMED_PORTS if tc.get('framed_ports') else ''}, "
        f"{pc['warmup_seconds']:g} s warm-up + "
        f"{pc['point_seconds']:g} s measured per point; load average "
        f"{runs[0]['conditions']['load_before']} → {runs[-1]['conditions']['load_after']}.{smoke}",
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

    def times(row, key):
        return (fmt(row["ratio_txcoord_to_peer"][key], 2) + "×"
                + bracketed(row["ratio_range"][key], row["rounds"]))

    for row in rows:
        t, q = row["txcoord"], row["peer"]
        lines.append(
            f"| {row['clients']} | {row.get('mode', '2pc')} | "
            f"{t['tx_per_s']:,.0f} / {q['tx_per_s']:,.0f} | "
            f"{times(row, 'tx_per_s')} | {t['txn_p50_ms']:.2f} / {q['txn_p50_ms']:.2f} | "
            f"{times(row, 'txn_p50')} | {t['txn_p99_ms']:.2f} / {q['txn_p99_ms']:.2f} | "
            f"{times(row, 'txn_p99')} | {t['cpu_ms_per_tx']:.2f} / {q['cpu_ms_per_tx']:.2f} | "
            f"{busy(t)}; {busy(q)} | {row['target']} | {row['verdict']} |")
    # Each peer point stands beside both txcoord modes: count it once.
    failed = (sum(r["txcoord"]["failed"] for row in rows for r in row["each_round"])
              + sum(p["failed"] for _, q in pairs for p in q["points"]))
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
        "Peer's check: "
        + " | ".join(sorted({q.get("check", "?") for _, q in pairs})) + "."
        + (f" **{failed} transfers failed.**" if failed else ""),
    ]
    return "\n".join(lines) + "\n"


# The targets on txcoord's own Commit call, against its floor measured in
# the same point (docs/benchmarks.md): plain 2PC 2 RTT + 2 fsync, early
# prepare RTT + fsync.
FLOOR_TARGET = {"2pc": ("2 RTT + 2 fsync", 1.3), "early": ("RTT + fsync", 1.3)}


def floor_rows(runs):
    """The targets hold for a lone transaction (1 client): under load the
    Commit call also waits its turn behind the others. Over several
    rounds, each figure's median."""
    by_mode = {}
    for run in runs:
        for p in run["points"]:
            if p["mode"] in FLOOR_TARGET and p["clients"] == 1:
                by_mode.setdefault(p["mode"], []).append(p)
    rows = []
    for mode in sorted(by_mode, key=MODES.index):
        points = by_mode[mode]
        floor, most = FLOOR_TARGET[mode]
        x = median(p["commit_x_floor"]["p50"] for p in points)
        rows.append({"mode": mode, "clients": 1, "floor": floor, "rounds": len(points),
                     "floor_ms": median(p["commit_floor_ms"] for p in points),
                     "commit_p50_ms": median(p["commit_ms"]["p50"] for p in points),
                     "x_floor": x, "x_floor_each_round": [p["commit_x_floor"]["p50"] for p in points],
                     "target": f"≤ {most:g} × ({floor})",
                     "verdict": "**met**" if x <= most else f"**missed**: {x:.1f}×"})
    return rows


def floor_markdown(rows):
    rounds = max((r["rounds"] for r in rows), default=1)
    lines = [
        "",
        "txcoord's Commit call at 1 client against its floor in the same points (fsync "
        "sampled while each point ran, RTT between points"
        + ("; the rounds' medians, × floor the median of the rounds' multiples, their range "
           "in brackets" if rounds > 1 else "") + "):",
        "",
        "| txcoord mode | clients | Commit p50 ms | floor ms | × floor | target | verdict |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['clients']} | {r['commit_p50_ms']:.2f} | "
                     f"{r['floor_ms']:.2f} | {r['x_floor']:.2f}×"
                     f"{bracketed(spread(r['x_floor_each_round']), r['rounds'])} | {r['target']} | "
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
    pairs = []
    rest = []
    i = 0
    while i < len(args):
        if args[i] == "--splice" and i + 1 < len(args):
            doc = args[i + 1]
            i += 2
        elif args[i] == "--pair" and i + 2 < len(args):
            runs = []
            for path in args[i + 1:i + 3]:
                with open(path) as f:
                    runs.append(json.load(f))
            pairs.append(tuple(runs))
            i += 3
        else:
            rest.append(args[i])
            i += 1
    if len(rest) != 2 or not pairs:
        print(__doc__, file=sys.stderr)
        return 2
    rows = compare(pairs)
    if not rows:
        print("against_pg: no client count measured by both benchmarks", file=sys.stderr)
        return 1
    ours, peers = [t for t, _ in pairs], [q for _, q in pairs]
    floors = floor_rows(ours)
    with open(rest[0], "w") as f:
        json.dump({"benchmark": "against_pg", "format": 2,
                   "rounds": max(row["rounds"] for row in rows), "comparison": rows,
                   "commit_floor": floors,
                   "txcoord": {"conditions": conditions(ours), "runs": ours},
                   "peer": {"conditions": conditions(peers), "runs": peers}}, f, indent=1)
        f.write("\n")
    table = markdown(pairs, rows) + floor_markdown(floors)
    with open(rest[1], "w") as f:
        f.write(table)
    if doc:
        splice(doc, table)
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
