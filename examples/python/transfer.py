#!/usr/bin/env python3
"""Moves money between accounts kept by two or three txagents, atomically.

Each transfer debits one account at one agent and credits accounts at the
others in one global transaction, through txcoord_client. Every branch also
writes a ledger row (the txid and its agent's net change), so the databases
tell afterwards which transactions committed.

    PYTHONPATH=build/examples/python/gen examples/python/transfer.py \\
        --coordinator=127.0.0.1:7070 \\
        --agents=127.0.0.1:7171,127.0.0.1:7172 --create --transfers=100
"""

import argparse
import dataclasses
import random
import sys
import threading

import txcoord_client as tc

CREATE_ACCOUNTS = ("CREATE TABLE IF NOT EXISTS accounts (id INTEGER PRIMARY KEY,"
                   " balance INTEGER NOT NULL CHECK (balance >= 0))")
# The txid as Begin returned it (a BLOB): no decoding anywhere.
CREATE_LEDGER = ("CREATE TABLE IF NOT EXISTS ledger (txid BLOB PRIMARY KEY,"
                 " delta INTEGER NOT NULL)")
# ?1 twice: the balance check and the debit are one statement, so no other
# transfer slips in between.
DEBIT = "UPDATE accounts SET balance = balance - ?1 WHERE id = ?2 AND balance >= ?1"
CREDIT = "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2"
LEDGER = "INSERT INTO ledger (txid, delta) VALUES (?1, ?2)"
ROWS_PER_INSERT = 1000  # keeps each statement far below the 64 KiB limit


@dataclasses.dataclass
class TransferResult:
    """What the client knows of one transfer.

    outcome: "committed", "aborted" (definite, with the reason), "unknown"
    (Commit gave no answer in time), "expired" (OUT_OF_RANGE), or "error"
    (Begin failed, or Commit was refused: no transaction ran).
    """
    txid: bytes = b""
    outcome: str = "error"
    reason: str = ""
    agents: tuple = ()  # indices of the agents the transfer wrote at
    commit_attempts: int = 0  # Commit calls made; more than 1: answers lost


def create_accounts(agents, accounts, balance):
    """Creates the tables and `accounts` accounts holding `balance` at each
    agent, in local transactions (empty txid). Existing rows are kept."""
    statements = [tc.statement(CREATE_ACCOUNTS), tc.statement(CREATE_LEDGER)]
    for first in range(1, accounts + 1, ROWS_PER_INSERT):
        last = min(accounts, first + ROWS_PER_INSERT - 1)
        rows = ",".join(f"({i},{balance})" for i in range(first, last + 1))
        statements.append(tc.statement(
            f"INSERT OR IGNORE INTO accounts (id, balance) VALUES {rows}"))
    for agent in agents:
        agent.execute(b"", statements)


def _abort(tx, result, reason):
    # A transaction whose Commit was never called cannot commit: if Abort
    # is lost too, it aborts at its deadline (presumed abort).
    try:
        tx.abort()
    except tc.TxcoordError as e:
        reason += f" (and {e})"
    result.outcome = "aborted"
    result.reason = reason
    return result


def transfer(coordinator, agents, rng, accounts, max_amount=50,
             prepare=False, lock_timeout_ms=500, timeout_s=10):
    """One transfer from an account at a random agent to accounts at every
    other agent (with one agent: to another account there). prepare: early
    prepare on each branch's last Execute."""
    result = TransferResult()
    try:
        tx = coordinator.begin_transaction(timeout_s)
    except tc.TxcoordError as e:
        result.reason = str(e)
        return result
    result.txid = tx.txid

    source = rng.randrange(len(agents))
    # Squared: mostly small amounts; the tail fails the balance check once
    # balances spread out.
    amount = 2 + int((max_amount - 2) * rng.random() ** 2)
    others = [i for i in range(len(agents)) if i != source] or [source]
    credits, left = [], amount - len(others)
    for n, i in enumerate(others):
        extra = left if n == len(others) - 1 else rng.randint(0, left)
        left -= extra
        credits.append((i, 1 + extra))
    net = {i: 0 for i in range(len(agents))}
    net[source] -= amount
    for i, x in credits:
        net[i] += x
    result.agents = tuple(sorted({source, *others}))

    try:
        debit = tx.execute_many(
            agents[source],
            [tc.statement(DEBIT, amount, rng.randint(1, accounts)),
             tc.statement(LEDGER, tx.txid, net[source])],
            prepare=prepare and source not in others,
            lock_timeout_ms=lock_timeout_ms)
    except tc.TxcoordError as e:
        return _abort(tx, result, f"debit: {e}")
    if debit.results[0].changes == 0:
        return _abort(tx, result, "balance check")
    for i, x in credits:
        statements = [tc.statement(CREDIT, x, rng.randint(1, accounts))]
        if i != source:
            statements.append(tc.statement(LEDGER, tx.txid, net[i]))
        try:
            credit = tx.execute_many(agents[i], statements, prepare=prepare,
                                     lock_timeout_ms=lock_timeout_ms)
        except tc.TxcoordError as e:
            return _abort(tx, result, f"credit: {e}")
        if credit.results[0].changes != 1:
            return _abort(tx, result, "credit: no such account")

    try:
        committed = tx.commit()
    except tc.OutcomeUnknown as e:
        result.outcome, result.reason = "unknown", str(e)
    except tc.OutcomeExpired as e:
        result.outcome, result.reason = "expired", str(e)
    except tc.TxcoordError as e:
        result.reason = str(e)
    else:
        result.outcome = "committed" if committed.committed else "aborted"
        result.reason = committed.reason
        result.commit_attempts = committed.attempts
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coordinator", required=True, help="host:port")
    parser.add_argument("--agents", required=True,
                        help="two or three agents' host:port, comma-separated")
    parser.add_argument("--transfers", type=int, default=100)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--accounts", type=int, default=100,
                        help="accounts per agent")
    parser.add_argument("--create", action="store_true",
                        help="first create the tables, and accounts holding 1,000")
    parser.add_argument("--prepare", action="store_true", help="early prepare")
    args = parser.parse_args()
    targets = args.agents.split(",")
    if not 2 <= len(targets) <= 3:
        parser.error("--agents: two or three addresses")

    coordinator = tc.Coordinator(args.coordinator)
    agents = [tc.Agent(t) for t in targets]
    if args.create:
        create_accounts(agents, args.accounts, 1000)

    counts, mu = {}, threading.Lock()
    remaining = [args.transfers]

    def run():
        rng = random.Random()
        while True:
            with mu:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            r = transfer(coordinator, agents, rng, args.accounts,
                         prepare=args.prepare)
            with mu:
                counts[r.outcome] = counts.get(r.outcome, 0) + 1
                if r.outcome not in ("committed", "aborted"):
                    print(f"{r.txid.decode(errors='replace')}: {r.outcome}: "
                          f"{r.reason}", file=sys.stderr)

    threads = [threading.Thread(target=run) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(" ".join(f"{k}={counts.get(k, 0)}" for k in
                   ("committed", "aborted", "unknown", "expired", "error")))
    return 0 if counts.get("unknown", 0) + counts.get("expired", 0) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
