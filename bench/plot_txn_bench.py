#!/usr/bin/python3
"""Plots txn_bench's JSON: Commit latency percentiles and throughput against
clients, and Commit latency against branches at one client, each next to its
floor (RTT and fsync measured in the same run). Given the JSON of
bench/against_pg.py instead, plots txcoord beside the PostgreSQL native-2PC
peer: whole-transaction latency, throughput and CPU per transfer against
clients.

  bench/plot_txn_bench.py RESULTS.json OUT.png

Uses Debian's python3-matplotlib (hence /usr/bin/python3, not whatever
python3 comes first in PATH). Exits 77 when matplotlib is missing, which
CTest reports as skipped.
"""
import json
import sys

try:
    import matplotlib

    matplotlib.use("Agg")  # no display: write files only
    import matplotlib.pyplot as plt
    import matplotlib.ticker
except ImportError:
    print("plot_txn_bench: python3-matplotlib is not installed (scripts/install-deps)", file=sys.stderr)
    sys.exit(77)

MODE_LABEL = {"2pc": "plain 2PC", "early": "early prepare", "1pc": "one-phase"}
MODE_COLOR = {"2pc": "tab:blue", "early": "tab:orange", "1pc": "tab:green"}


def series(points, key, fixed):
    """Groups points by (mode, fixed) and sorts each group by key."""
    groups = {}
    for p in points:
        groups.setdefault((p["mode"], p[fixed]), []).append(p)
    return {k: sorted(v, key=lambda p: p[key]) for k, v in sorted(groups.items())}


def plot_against_peer(run, out):
    """txcoord and the peer, side by side, at the client counts both ran."""
    rows = sorted(run["comparison"], key=lambda r: r["clients"])
    modes = sorted({r.get("mode", "2pc") for r in rows})
    clients = sorted({r["clients"] for r in rows})
    fig, (ax_lat, ax_tput, ax_cpu) = plt.subplots(1, 3, figsize=(17, 5.2))
    # One line per txcoord mode; the peer's figures are the same in each
    # mode's rows, so its line comes from the first mode's.
    series = [("txcoord", mode, f"txcoord, {MODE_LABEL[mode]}", MODE_COLOR[mode])
              for mode in modes]
    series.append(("peer", modes[0], "PostgreSQL native 2PC by hand", "tab:purple"))
    for key, mode, label, color in series:
        line = [r for r in rows if r.get("mode", "2pc") == mode]
        xs = [r["clients"] for r in line]
        ax_lat.plot(xs, [r[key]["txn_p50_ms"] for r in line], "o-", color=color,
                    label=f"{label} p50")
        ax_lat.plot(xs, [r[key]["txn_p99_ms"] for r in line], "s--", color=color,
                    alpha=0.7, label=f"{label} p99")
        ax_tput.plot(xs, [r[key]["tx_per_s"] for r in line], "o-", color=color, label=label)
        ax_cpu.plot(xs, [r[key]["cpu_ms_per_tx"] for r in line], "o-", color=color,
                    label=label)
    for ax, ylabel, title in (
            (ax_lat, "whole transaction latency, ms", "Whole 3-service transfer, latency"),
            (ax_tput, "committed transfers per second", "Throughput"),
            (ax_cpu, "CPU ms per transfer (all processes)", "CPU per transfer")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(clients, [str(c) for c in clients])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    ax_lat.set_yscale("log")
    ax_tput.set_ylim(bottom=0)
    ax_cpu.set_ylim(bottom=0)
    tc, pc = run["txcoord"]["conditions"], run["peer"]["conditions"]
    smoke = " (SMOKE: numbers mean nothing)" if tc["smoke"] or pc["smoke"] else ""
    fig.suptitle(
        f"txcoord {tc['commit']} against PostgreSQL native 2PC ({pc['servers']} servers), "
        f"{'back to back' if run.get('rounds', 1) == 1 else 'medians of %d interleaved rounds' % run['rounds']}, "
        f"{tc['cpus']} CPUs, {pc['point_seconds']:g} s per point, "
        f"{pc['started_utc']}{smoke}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"plot: {out}")
    return 0


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        run = json.load(f)
    if run.get("benchmark") == "against_pg":
        return plot_against_peer(run, sys.argv[2])
    points = run["points"]
    floor = run["floor"]
    cond = run["conditions"]

    fig, (ax_lat, ax_tput, ax_br) = plt.subplots(1, 3, figsize=(17, 5.2))

    by_clients = series(points, "clients", "branches")
    for (mode, branches), group in by_clients.items():
        # A single-client point of a branches sweep is not a clients series.
        if len(group) < 2 and len(by_clients) > 3:
            continue
        xs = [p["clients"] for p in group]
        label = f"{MODE_LABEL[mode]}, {branches} br."
        color = MODE_COLOR[mode]
        ax_lat.plot(xs, [p["commit_ms"]["p50"] for p in group], "o-", color=color, label=f"{label} p50")
        ax_lat.plot(xs, [p["commit_ms"]["p99"] for p in group], "s--", color=color, alpha=0.7,
                    label=f"{label} p99")
        ax_lat.plot(xs, [p["commit_floor_ms"] for p in group], ":", color=color, linewidth=1,
                    label=f"{label} floor")
        ax_tput.plot(xs, [p["tx_per_s"] for p in group], "o-", color=color, label=label)
    ax_lat.set_xscale("log", base=2)
    clients = sorted({p["clients"] for p in points})
    ax_lat.set_xticks(clients, [str(c) for c in clients])
    ax_lat.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax_lat.set_yscale("log")
    ax_lat.set_xlabel("concurrent clients")
    ax_lat.set_ylabel("Commit call latency, ms")
    ax_lat.set_title("Commit latency against clients (floor: 2 RTT + 2 fsync\n"
                     "for plain 2PC, RTT + fsync otherwise, fsync sampled during each point)",
                     fontsize=10)
    ax_lat.legend(fontsize=7)
    ax_lat.grid(True, which="both", alpha=0.3)

    ax_tput.axhline(2000, color="red", linestyle=":", linewidth=1, label="target 2,000 tx/s")
    ax_tput.set_xscale("log", base=2)
    ax_tput.set_xticks(clients, [str(c) for c in clients])
    ax_tput.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax_tput.set_xlabel("concurrent clients")
    ax_tput.set_ylabel("committed transactions per second")
    ax_tput.set_title("Throughput against clients")
    ax_tput.legend(fontsize=7)
    ax_tput.grid(True, which="both", alpha=0.3)

    one_client = [p for p in points if p["clients"] == 1]
    for (mode, _), group in series(one_client, "branches", "clients").items():
        xs = [p["branches"] for p in group]
        color = MODE_COLOR[mode]
        ax_br.plot(xs, [p["commit_ms"]["p50"] for p in group], "o-", color=color,
                   label=f"{MODE_LABEL[mode]} p50")
        ax_br.plot(xs, [p["commit_ms"]["p99"] for p in group], "s--", color=color, alpha=0.7,
                   label=f"{MODE_LABEL[mode]} p99")
        ax_br.plot(xs, [p["commit_floor_ms"] for p in group], ":", color=color, linewidth=1,
                   label=f"{MODE_LABEL[mode]} floor")
    ax_br.set_xticks(sorted({p["branches"] for p in one_client}) or [1])
    ax_br.set_xlabel("branches (services) per transaction, 1 client")
    ax_br.set_ylabel("Commit call latency, ms")
    ax_br.set_title("Commit latency against branches")
    ax_br.set_ylim(bottom=0)
    ax_br.legend(fontsize=7)
    ax_br.grid(True, alpha=0.3)

    fig.suptitle(
        f"txn_bench {cond['started_utc']}, commit {cond['commit']}, {cond['cpus']} CPUs"
        f"{' (SMOKE: numbers mean nothing)' if cond['smoke'] else ''} - floor between points, "
        f"daemons idle: fsync p50 {floor['fsync_ms']['p50']:.3f} ms, gRPC RTT p50 "
        f"{floor['rtt_ms']['p50']:.3f} ms",
        fontsize=10)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=100)
    print(f"plot: {sys.argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
