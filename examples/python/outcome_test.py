#!/usr/bin/env python3
"""A Python client written from docs/protocol.md always learns its outcome.

Starts a txcoord and three txagents of the build tree in a temporary
directory and runs transfers through txcoord_client from four threads (2PC
across three agents, the same with early prepare, and one-phase commits at
one agent) while the coordinator is killed with SIGKILL at random moments
and restarted on the same data directory and port. Then every outcome the
client reports must be definite (COMMITTED or ABORTED) and agree with the
agents' database files, money must be conserved, and no branch may be left
prepared.

    PYTHONPATH=build/examples/python/gen examples/python/outcome_test.py \\
        --txcoord=build/coordinator/txcoord --txagent=build/agent/txagent

Exit status: 0 passed, 1 failed (the directory with the daemons' logs and
databases is kept), 77 skipped (no grpc module or generated stubs).
"""

import argparse
import collections
import os
import random
import re
import selectors
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback

try:
    import txcoord_client as tc  # grpc, protobuf and the generated stubs
except ModuleNotFoundError as e:
    print(f"skipped: {e} (needs python3-grpcio, python3-protobuf and the "
          "generated stubs on PYTHONPATH)")
    sys.exit(77)
import transfer as bank

ACCOUNTS = 200  # per agent
BALANCE = 1000
LISTENING = re.compile(rb"^(\S+) listening on (\S+)$")
START_TIMEOUT_S = 20
STOP_TIMEOUT_S = 15


class Daemon:
    """One daemon process. Its stdout's "<name> listening on HOST:PORT" line
    gives its address; stderr and the rest of stdout go to `log_path`."""

    def __init__(self, argv, log_path):
        self._log = open(log_path, "ab", buffering=0)
        self._log.write(f"==== test: {' '.join(argv)}\n".encode())
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=self._log)
        self._drain = None
        try:
            self.address = self._await_listening(os.path.basename(argv[0]))
        except Exception:
            self.kill()
            raise

    def _await_listening(self, name):
        deadline = time.monotonic() + START_TIMEOUT_S
        fd = self.process.stdout.fileno()
        pending = b""
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    self._log.write(line + b"\n")
                    match = LISTENING.match(line)
                    if match:
                        self._drain = threading.Thread(
                            target=self._copy_stdout, args=(pending,), daemon=True)
                        self._drain.start()
                        return match.group(2).decode()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"{name} printed no 'listening on' line "
                                       f"within {START_TIMEOUT_S} s")
                if not selector.select(left):
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise RuntimeError(f"{name} exited ({self.process.wait()}) "
                                       "before listening")
                pending += chunk

    def _copy_stdout(self, pending):
        # Keeps the pipe drained: a daemon blocked on a full stdout would hang.
        self._log.write(pending)
        while chunk := os.read(self.process.stdout.fileno(), 4096):
            self._log.write(chunk)

    def _reap(self):
        if self._drain is not None:
            self._drain.join()
        self.process.stdout.close()
        self._log.close()

    def kill(self):
        """SIGKILL, and wait for the process to be gone."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reap()

    def stop(self):
        """SIGTERM; SIGKILL past STOP_TIMEOUT_S. Returns an error or None."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            return f"pid {self.process.pid} ignored SIGTERM for {STOP_TIMEOUT_S} s"
        self._reap()
        return None if code == 0 else f"pid {self.process.pid} ended with {code}"


class Cluster:
    """A coordinator and `agents` agents with their files under `root`."""

    def __init__(self, root, txcoord, txagent, agents):
        self.root = root
        self._txcoord = txcoord
        self._txagent = txagent
        self.coordinator = None
        self.coordinator_address = None
        self.agent_names = [f"agent{i}" for i in range(agents)]
        self.agents = []

    def db(self, i):
        return os.path.join(self.root, f"{self.agent_names[i]}.db")

    def start_coordinator(self):
        # The first start picks a free port; a restart must come back on it,
        # the only address agents and clients know.
        listen = self.coordinator_address or "127.0.0.1:0"
        self.coordinator = Daemon(
            [self._txcoord, f"--listen={listen}",
             f"--data-dir={os.path.join(self.root, 'coordinator')}",
             "--cluster-id=pyoutcome", "--phase2_retry_max=200ms",
             "--prepare_timeout=2s"],
            os.path.join(self.root, "coordinator.log"))
        self.coordinator_address = self.coordinator.address

    def kill_coordinator(self):
        self.coordinator.kill()
        self.coordinator = None

    def start_agents(self):
        for i, name in enumerate(self.agent_names):
            self.agents.append(Daemon(
                [self._txagent, f"--db={self.db(i)}", "--listen=127.0.0.1:0",
                 f"--coordinator={self.coordinator_address}", f"--name={name}",
                 "--lock_timeout=500ms", "--branch_idle_timeout=2s"],
                os.path.join(self.root, f"{name}.log")))

    def stop_all(self):
        """Stops every daemon still running, agents first; returns errors."""
        daemons = self.agents + ([self.coordinator] if self.coordinator else [])
        self.agents, self.coordinator = [], None
        for d in daemons:
            if d.process.poll() is None:
                d.process.send_signal(signal.SIGTERM)
        return [e for e in (d.stop() for d in daemons) if e]


class Tally:
    """Finished transfers, shared by the client threads and the killer."""

    def __init__(self):
        self._cond = threading.Condition()
        self.results = []  # (kind, TransferResult)

    def add(self, kind, result):
        with self._cond:
            self.results.append((kind, result))
            self._cond.notify_all()

    def await_count(self, count, deadline):
        with self._cond:
            return self._cond.wait_for(
                lambda: len(self.results) >= count,
                max(0.0, deadline - time.monotonic()))


def read_db(path):
    """(ledger {txid: delta}, sum of balances, prepared branches) of a file."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        ledger = dict(db.execute("SELECT txid, delta FROM ledger"))
        money = db.execute("SELECT sum(balance) FROM accounts").fetchone()[0]
        prepared = db.execute("SELECT count(*) FROM _txcoord_prepared").fetchone()[0]
    return ledger, money, prepared


def await_no_prepared(cluster, deadline):
    """Waits until phase 2 has reached every branch (polling the files)."""
    while True:
        left = [cluster.db(i) for i in range(len(cluster.agent_names))
                if read_db(cluster.db(i))[2] > 0]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)  # polling other processes' files


def check(cluster, results, failures):
    """Compares what the client was told with the database files."""
    ledgers, total = [], 0
    for i, name in enumerate(cluster.agent_names):
        ledger, money, prepared = read_db(cluster.db(i))
        ledgers.append(ledger)
        total += money
        if prepared:
            failures.append(f"{name}: {prepared} branch(es) left prepared")
        # Each committed branch's ledger row holds what it moved here.
        if money - ACCOUNTS * BALANCE != sum(ledger.values()):
            failures.append(f"{name}: balances moved by {money - ACCOUNTS * BALANCE}, "
                            f"its ledger by {sum(ledger.values())}")
    if total != len(ledgers) * ACCOUNTS * BALANCE:
        failures.append(f"money {total}, expected {len(ledgers) * ACCOUNTS * BALANCE}")

    told = {}
    for kind, r in results:
        if not r.txid:
            failures.append(f"{kind}: no transaction: {r.reason}")
            continue
        told[r.txid] = r
        at = [i for i in r.agents if r.txid in ledgers[i]]
        if r.outcome == "committed" and len(at) != len(r.agents):
            failures.append(f"{r.txid}: told COMMITTED, ledger rows only at "
                            f"agents {at} of {list(r.agents)}")
        elif r.outcome == "aborted" and at:
            failures.append(f"{r.txid}: told ABORTED ({r.reason}), "
                            f"ledger rows at agents {at}")
        elif r.outcome not in ("committed", "aborted"):
            failures.append(f"{r.txid}: outcome {r.outcome}: {r.reason}")
    for i, ledger in enumerate(ledgers):
        for txid in ledger:
            if txid not in told or told[txid].outcome != "committed":
                failures.append(f"{txid} committed at {cluster.agent_names[i]}, "
                                "the client was not told so")


def run(cluster, args, failures):
    started = time.monotonic()
    cluster.start_coordinator()
    cluster.start_agents()
    coordinator = tc.Coordinator(cluster.coordinator_address,
                                 settle_timeout_s=args.settle_timeout)
    agents = [tc.Agent(d.address) for d in cluster.agents]
    bank.create_accounts(agents, ACCOUNTS, BALANCE)

    tally = Tally()
    stop = threading.Event()
    # (kind, agents, early prepare): two plain 2PC clients, one with early
    # prepare, one whose transfers stay at one agent (one-phase commit).
    clients = [("2pc", agents, False), ("2pc", agents, False),
               ("early-prepare", agents, True), ("one-phase", agents[:1], False)]

    def client(kind, used, prepare):
        rng = random.Random()
        try:
            while not stop.is_set():
                tally.add(kind, bank.transfer(coordinator, used, rng, ACCOUNTS,
                                              prepare=prepare))
        except Exception:
            failures.append(f"{kind} client: {traceback.format_exc()}")
            stop.set()

    threads = [threading.Thread(target=client, args=c) for c in clients]
    for t in threads:
        t.start()

    # Each kill lands after a random number of finished transfers plus a
    # random fraction of one, so that kills cut Commit calls at every step.
    rng = random.Random(args.seed)
    deadline = started + args.time_limit
    spacing = max(1, args.transfers // args.kills)
    kills = 0
    try:
        for k in range(args.kills):
            if not tally.await_count(k * spacing + rng.randrange(spacing), deadline):
                failures.append(f"too slow: {len(tally.results)} transfers by the "
                                f"time limit, {kills} kills")
                break
            time.sleep(rng.uniform(0, 0.005))
            cluster.kill_coordinator()
            cluster.start_coordinator()
            kills += 1
        if not failures and not tally.await_count(args.transfers, deadline):
            failures.append(f"too slow: {len(tally.results)} of {args.transfers} "
                            "transfers by the time limit")
    finally:
        stop.set()
        for t in threads:
            t.join()

    left = await_no_prepared(cluster, time.monotonic() + 30)
    if left:
        failures.append(f"phase 2 not done after 30 s at {left}")
    coordinator.close()
    for a in agents:
        a.close()
    failures.extend(cluster.stop_all())
    check(cluster, tally.results, failures)

    outcomes = collections.Counter(r.outcome for _, r in tally.results)
    kinds = collections.Counter(kind for kind, _ in tally.results)
    balance = sum(r.reason == "balance check" for _, r in tally.results)
    execute = sum(r.outcome == "aborted" and r.commit_attempts == 0 and
                  r.reason != "balance check" for _, r in tally.results)
    retried = [r.commit_attempts for _, r in tally.results if r.commit_attempts > 1]
    print(f"python outcome: {len(tally.results)} transfers "
          f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}), "
          f"{kills} coordinator kills in {time.monotonic() - started:.1f} s | "
          f"committed {outcomes['committed']}, aborted {outcomes['aborted']} "
          f"(balance check {balance}, Execute failed {execute}, "
          f"Commit said ABORTED {outcomes['aborted'] - balance - execute}), "
          f"unknown {outcomes['unknown']}, expired {outcomes['expired']}, "
          f"error {outcomes['error']} | {len(retried)} Commit answers lost and "
          f"settled (up to {max(retried, default=0)} calls)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--txcoord", required=True)
    parser.add_argument("--txagent", required=True)
    parser.add_argument("--transfers", type=int, default=600)
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--time-limit", type=float, default=60,
                        help="seconds for the transfers and kills")
    parser.add_argument("--settle-timeout", type=float, default=30,
                        help="how long the client keeps asking Commit")
    args = parser.parse_args()

    root = tempfile.mkdtemp(prefix="txcoord-python-outcome-")
    cluster = Cluster(root, args.txcoord, args.txagent, agents=3)
    failures = []
    try:
        run(cluster, args, failures)
    except Exception:
        failures.append(traceback.format_exc())
    finally:
        failures.extend(cluster.stop_all())
    if failures:
        for f in failures[:20]:
            print(f"FAIL: {f}")
        if len(failures) > 20:
            print(f"... and {len(failures) - 20} more")
        print(f"daemon logs and databases kept in {root}")
        return 1
    shutil.rmtree(root)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
