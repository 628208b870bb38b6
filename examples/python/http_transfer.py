#!/usr/bin/env python3
"""Transfers across three services over txcoord's HTTP/JSON API, with
Python's standard library only (urllib, json): what a service in any
language does, following docs/http.md and docs/protocol.md ("Writing a
client").

Against running daemons:
  http_transfer.py --coordinator=http://127.0.0.1:8070 \\
      --agents=http://127.0.0.1:8171,http://127.0.0.1:8172,http://127.0.0.1:8173 --setup

Or let it start a coordinator and three agents itself (what `make test`
runs), and check the result with plain SQL at the end:
  http_transfer.py --txcoord=build/coordinator/txcoord \
      --txagent=build/agent/txagent --transfers=200
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ACCOUNTS = 50
INITIAL = 1000

# Statuses whose outcome (for a Commit) or effect is unknown: ask again.
RETRY_CODES = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "UNKNOWN", "INTERNAL"}


class ApiError(Exception):
    def __init__(self, http_status, code, message):
        super().__init__(f"{code} (HTTP {http_status}): {message}")
        self.http_status = http_status
        self.code = code
        self.message = message


def call(base, method, path, body=None, timeout=30):
    """One HTTP call; the answer's JSON, or ApiError with the daemon's code.
    A broken connection is an ApiError with code UNAVAILABLE."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    elif method == "POST":
        request.add_header("Content-Length", "0")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        try:
            error = json.loads(e.read())
            raise ApiError(e.code, error["code"], error["message"]) from None
        except (ValueError, KeyError):
            raise ApiError(e.code, "UNKNOWN", f"HTTP {e.code} without an error body") from None
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        raise ApiError(0, "UNAVAILABLE", str(e)) from None


def execute(agent, txid, sql, params=()):
    return call(agent, "POST", "/v1/execute",
                {"txid": txid, "statements": [{"sql": sql, "params": list(params)}]})


def commit(coordinator, txid, settle_seconds=60):
    """COMMITTED or ABORTED. A Commit whose answer is lost is asked again
    (it is idempotent) until it answers: the outcome is never guessed."""
    give_up = time.monotonic() + settle_seconds
    delay = 0.05
    while True:
        try:
            return call(coordinator, "POST", f"/v1/transactions/{txid}/commit")["outcome"]
        except ApiError as e:
            if e.code not in RETRY_CODES or time.monotonic() > give_up:
                raise
        time.sleep(delay * random.uniform(0.5, 1.0))
        delay = min(delay * 2, 2.0)


def abort(coordinator, agents, txid):
    """Aborts, then releases the branch at every agent used (the coordinator
    does not know branches that never wrote). Best effort: an unreachable
    daemon aborts the transaction at its deadline anyway."""
    for attempt in range(3):
        try:
            call(coordinator, "POST", f"/v1/transactions/{txid}/abort")
            break
        except ApiError as e:
            if e.code not in RETRY_CODES:
                break
    for agent in agents:
        try:
            call(agent, "POST", "/v1/release", {"txid": txid})
        except ApiError:
            pass


def transfer(coordinator, agents, rng):
    """Debits one service's account and credits the two others'; returns
    COMMITTED, ABORTED or a reason it was abandoned."""
    txid = call(coordinator, "POST", "/v1/transactions", {"timeout_ms": 10000})["txid"]
    source = rng.randrange(len(agents))
    amount = rng.randint(2, 900)  # large enough that some fail the balance check
    used = []
    try:
        used.append(agents[source])
        debit = execute(agents[source], txid,
                        "UPDATE accounts SET balance = balance - ?1 WHERE id = ?2 AND balance >= ?1",
                        (amount, rng.randint(1, ACCOUNTS)))
        if debit["results"][0]["changes"] == 0:
            abort(coordinator, used, txid)
            return "balance check"
        others = [a for i, a in enumerate(agents) if i != source]
        shares = [amount // len(others)] * len(others)
        shares[0] += amount - sum(shares)
        for agent, share in zip(others, shares):
            used.append(agent)
            execute(agent, txid, "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2",
                    (share, rng.randint(1, ACCOUNTS)))
    except ApiError as e:
        # Never resend an Execute: it may have run. Abort and retry whole.
        abort(coordinator, used, txid)
        return f"aborted before commit: {e.code}"
    return commit(coordinator, txid)


def setup(agents):
    for agent in agents:
        statements = [{"sql": "CREATE TABLE accounts (id INTEGER PRIMARY KEY, "
                              "balance INTEGER NOT NULL)"}]
        statements += [{"sql": "INSERT INTO accounts VALUES (?1, ?2)", "params": [i, INITIAL]}
                       for i in range(1, ACCOUNTS + 1)]
        call(agent, "POST", "/v1/execute", {"statements": statements})


def settle(agents, seconds=30):
    """Waits until no branch is prepared at any agent: phase 2 runs after
    Commit answers, so a read right after it may not see the last commit
    yet. (The in-doubt list is an admin endpoint: loopback only.)"""
    give_up = time.monotonic() + seconds
    while any(call(agent, "GET", "/v1/admin/in-doubt")["branches"] for agent in agents):
        if time.monotonic() > give_up:
            raise RuntimeError(f"branches still prepared after {seconds} s")
        time.sleep(0.05)


def total(agents):
    result = 0
    for agent in agents:
        rows = call(agent, "POST", "/v1/execute",
                    {"statements": [{"sql": "SELECT SUM(balance) FROM accounts"}]})
        result += rows["results"][0]["rows"][0][0]
    return result


class Daemons:
    """A coordinator and three agents on free loopback ports, in a
    temporary directory; stopped with SIGTERM at the end."""

    def __init__(self, coordinator, agent):
        self.dir = tempfile.mkdtemp(prefix="txcoord-http-example-")
        self.processes = []
        grpc, self.coordinator = self.start(
            "txcoord", [coordinator, f"--data-dir={self.dir}/coordinator"])
        self.agents = []
        for name in ("payments", "ledger", "audit"):
            _, http = self.start(name, [agent, f"--db={self.dir}/{name}.db", f"--name={name}",
                                        f"--coordinator={grpc}"])
            self.agents.append(http)

    def start(self, name, argv):
        log = open(os.path.join(self.dir, f"{name}.log"), "w")
        process = subprocess.Popen(argv + ["--listen=127.0.0.1:0", "--http_listen=127.0.0.1:0"],
                                   stdout=subprocess.PIPE, stderr=log, text=True)
        self.processes.append(process)
        grpc = http = None
        deadline = time.monotonic() + 30
        while (grpc is None or http is None) and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            match = re.search(r"http listening on (\S+)", line)
            if match:
                http = "http://" + match.group(1)
                continue
            match = re.search(r"listening on (\S+)", line)
            if match:
                grpc = match.group(1)
        if grpc is None or http is None:
            raise RuntimeError(f"{name} did not start; see {self.dir}/{name}.log")
        return grpc, http

    def stop(self, keep):
        for process in reversed(self.processes):
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if keep:
            print(f"daemon logs kept in {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coordinator", help="the coordinator's HTTP base URL")
    parser.add_argument("--agents", help="three agents' HTTP base URLs, comma-separated")
    parser.add_argument("--txcoord", metavar="PATH",
                        help="start this txcoord and three agents (with --txagent) in a temp dir")
    parser.add_argument("--txagent", metavar="PATH", help="the txagent binary, with --txcoord")
    parser.add_argument("--setup", action="store_true", help="create and fill the accounts")
    parser.add_argument("--transfers", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    daemons = None
    if args.txcoord and args.txagent:
        daemons = Daemons(args.txcoord, args.txagent)
        coordinator, agents = daemons.coordinator, daemons.agents
        args.setup = True
    elif args.coordinator and args.agents:
        coordinator, agents = args.coordinator, args.agents.split(",")
    else:
        parser.error("give --txcoord and --txagent, or --coordinator and --agents")

    ok = False
    try:
        if args.setup:
            setup(agents)
        before = total(agents)
        rng = random.Random(args.seed)
        counts = {}
        for _ in range(args.transfers):
            outcome = transfer(coordinator, agents, rng)
            counts[outcome] = counts.get(outcome, 0) + 1
        settle(agents)
        after = total(agents)
        print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
        print(f"total balance {before} before, {after} after: "
              f"{'conserved' if before == after else 'NOT CONSERVED'}")
        ok = before == after and counts.get("COMMITTED", 0) > 0
        return 0 if ok else 1
    finally:
        if daemons:
            daemons.stop(keep=not ok)


if __name__ == "__main__":
    sys.exit(main())
