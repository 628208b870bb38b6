"""A small txcoord client for Python services, following docs/protocol.md.

It does what the "Writing a client" section asks of every client: each call
has a deadline and waits for a restarting daemon (wait_for_ready), txids stay
the bytes Begin returned, a failed Execute is never resent, Commit is asked
again until it gives a definite answer, and a transaction ends with Release
at the agents the coordinator does not know of.

    coordinator = Coordinator("127.0.0.1:7070")
    payments = Agent("127.0.0.1:7171")
    tx = coordinator.begin_transaction(timeout_s=10)
    try:
        tx.execute(payments, "UPDATE accounts SET balance = balance - ?1 "
                             "WHERE id = ?2", 100, 1)
    except TxcoordError:
        tx.abort()          # and retry the whole transaction with a new txid
        raise
    result = tx.commit()    # CommitResult(committed=..., reason=...)

The generated modules (txcoord/v1/txcoord_pb2*.py, made by the build in
build/examples/python/gen) must be on sys.path. Coordinator, Agent and
their methods may be used from several threads at once; a Transaction
belongs to one thread.
"""

import dataclasses
import random
import time

import grpc

from txcoord.v1 import txcoord_pb2 as pb
from txcoord.v1 import txcoord_pb2_grpc as pb_grpc

# Commit answers none of these when it decided: the call was cut (the
# coordinator was killed, the connection broke, the deadline passed) and the
# outcome is unknown, so Commit is asked again.
_COMMIT_RETRY = frozenset({
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
})
# Begin, Abort, GetTransaction and Release are repeated on these; any other
# code is an answer.
_CALL_RETRY = frozenset({
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
})


class TxcoordError(Exception):
    """A call failed with a definite gRPC status (or gave up retrying)."""

    def __init__(self, what, code, details):
        super().__init__(f"{what}: {code.name}: {details}")
        self.code = code
        self.details = details


class OutcomeUnknown(TxcoordError):
    """Commit gave no definite answer before the settle deadline.

    The transaction may have committed or not; Commit is idempotent, so ask
    again later (Coordinator.commit or get_transaction with the same txid).
    """


class OutcomeExpired(TxcoordError):
    """OUT_OF_RANGE: the transaction ended longer ago than the coordinator
    keeps outcomes (--outcome_retention); only the databases can tell."""


@dataclasses.dataclass(frozen=True)
class CommitResult:
    committed: bool
    reason: str = ""  # why it aborted
    attempts: int = 1  # Commit calls it took: more than 1 when answers were lost


class Backoff:
    """Capped exponential backoff with full jitter: 50 ms doubling to 2 s."""

    def __init__(self, initial_s=0.05, cap_s=2.0):
        self._ceiling = initial_s
        self._cap = cap_s

    def next_delay(self):
        delay = random.uniform(0, self._ceiling)
        self._ceiling = min(self._cap, self._ceiling * 2)
        return delay


def _error(what, rpc_error):
    return TxcoordError(what, rpc_error.code(), rpc_error.details())


def _to_value(python_value):
    """A Python value as a txcoord Value (None, bool/int, float, str, bytes)."""
    if python_value is None:
        return pb.Value(null_value=True)
    if isinstance(python_value, int):  # bool too: SQLite stores it as 0/1
        return pb.Value(int_value=int(python_value))
    if isinstance(python_value, float):
        return pb.Value(real_value=python_value)
    if isinstance(python_value, str):
        return pb.Value(text_value=python_value.encode())
    if isinstance(python_value, (bytes, bytearray)):
        return pb.Value(blob_value=bytes(python_value))
    raise TypeError(f"no SQL type for {type(python_value).__name__}")


def from_value(value):
    """A txcoord Value as Python: TEXT as str (bytes if ill-formed)."""
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind == "text_value":
        try:
            return value.text_value.decode()
        except UnicodeDecodeError:
            return value.text_value
    return getattr(value, kind)


def statement(sql, *params):
    """One statement for Agent.execute: SQL text and positional parameters."""
    return pb.Statement(sql=sql.encode(), params=[_to_value(p) for p in params])


class Coordinator:
    """The Coordinator service at `target` ("host:port"), over one channel.

    call_timeout_s bounds each call; Commit calls get commit_timeout_s (a
    Commit waits for every vote). commit() keeps asking for up to
    settle_timeout_s in all: choose it well inside the coordinator's
    --outcome_retention.
    """

    def __init__(self, target, call_timeout_s=3.0, commit_timeout_s=5.0,
                 settle_timeout_s=30.0, channel=None):
        self._channel = channel or grpc.insecure_channel(target)
        self._stub = pb_grpc.CoordinatorStub(self._channel)
        self._call_timeout = call_timeout_s
        self._commit_timeout = commit_timeout_s
        self._settle_timeout = settle_timeout_s

    def close(self):
        self._channel.close()

    def _call(self, what, method, request, retry_for_s):
        """Calls `method`, repeating it on UNAVAILABLE/DEADLINE_EXCEEDED for
        up to retry_for_s (0: once)."""
        give_up = time.monotonic() + retry_for_s
        backoff = Backoff()
        while True:
            try:
                return method(request, timeout=self._call_timeout,
                              wait_for_ready=True)
            except grpc.RpcError as e:
                if e.code() not in _CALL_RETRY or time.monotonic() >= give_up:
                    raise _error(what, e) from None
            time.sleep(min(backoff.next_delay(),
                           max(0.0, give_up - time.monotonic())))

    def begin(self, timeout_s=0):
        """Starts a transaction; returns its txid (bytes, pass back as is).

        timeout_s: the transaction's deadline (0: the coordinator's
        --tx_timeout). Begin is repeated on a lost answer: a txid never used
        aborts at its deadline.
        """
        response = self._call(
            "Begin", self._stub.Begin,
            pb.BeginRequest(timeout_ms=int(timeout_s * 1000)),
            self._settle_timeout)
        return response.txid

    def begin_transaction(self, timeout_s=0):
        """begin(), wrapped in a Transaction that ends it at every agent."""
        return Transaction(self, self.begin(timeout_s))

    def commit(self, txid):
        """Commits `txid` and returns its outcome, settling a lost answer.

        While the answer is lost (the coordinator was killed, the connection
        broke, a deadline passed) Commit is asked again with backoff: it
        starts, waits for or repeats the one decision, also after a restart.
        Raises OutcomeUnknown past the settle deadline, OutcomeExpired on
        OUT_OF_RANGE, TxcoordError on NOT_FOUND (never issued here),
        FAILED_PRECONDITION (another coordinator's txid) or a bad request.
        """
        give_up = time.monotonic() + self._settle_timeout
        backoff = Backoff()
        last = None
        attempts = 0
        while True:
            left = give_up - time.monotonic()
            if left <= 0:
                raise OutcomeUnknown("Commit", last[0], last[1])
            attempts += 1
            try:
                response = self._stub.Commit(
                    pb.CommitRequest(txid=txid),
                    timeout=min(self._commit_timeout, left), wait_for_ready=True)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.OUT_OF_RANGE:
                    raise OutcomeExpired("Commit", e.code(), e.details()) from None
                if e.code() not in _COMMIT_RETRY:
                    raise _error("Commit", e) from None
                last = (e.code(), e.details())
            else:
                if response.outcome == pb.OUTCOME_COMMITTED:
                    return CommitResult(committed=True, attempts=attempts)
                if response.outcome == pb.OUTCOME_ABORTED:
                    return CommitResult(committed=False, reason=response.reason,
                                        attempts=attempts)
                # Never answered by Commit: not an outcome, so ask again.
                last = (grpc.StatusCode.UNKNOWN,
                        f"Commit answered {pb.Outcome.Name(response.outcome)}")
            time.sleep(min(backoff.next_delay(),
                           max(0.0, give_up - time.monotonic())))

    def abort(self, txid):
        """Aborts `txid` (OK also when it was aborted already).

        Raises TxcoordError with FAILED_PRECONDITION when it was decided
        COMMIT, OutcomeExpired on OUT_OF_RANGE.
        """
        try:
            self._call("Abort", self._stub.Abort, pb.AbortRequest(txid=txid),
                       self._settle_timeout)
        except TxcoordError as e:
            if e.code == grpc.StatusCode.OUT_OF_RANGE:
                raise OutcomeExpired("Abort", e.code, e.details) from None
            raise

    def get_transaction(self, txid):
        """The coordinator's pb.Transaction for `txid` (state, branches)."""
        try:
            return self._call("GetTransaction", self._stub.GetTransaction,
                              pb.GetTransactionRequest(txid=txid),
                              self._settle_timeout)
        except TxcoordError as e:
            if e.code == grpc.StatusCode.OUT_OF_RANGE:
                raise OutcomeExpired("GetTransaction", e.code, e.details) from None
            raise


class Agent:
    """The Agent service of one txagent at `target` ("host:port")."""

    def __init__(self, target, call_timeout_s=3.0, release_timeout_s=5.0,
                 channel=None):
        self.target = target
        self._channel = channel or grpc.insecure_channel(target)
        self._stub = pb_grpc.AgentStub(self._channel)
        self._call_timeout = call_timeout_s
        self._release_timeout = release_timeout_s

    def close(self):
        self._channel.close()

    def execute(self, txid, statements, prepare=False, lock_timeout_ms=0):
        """Runs `statements` (from statement()) in txid's branch here, or as
        one local transaction when txid is b"". Returns the
        pb.ExecuteResponse.

        Never repeated: after UNAVAILABLE or DEADLINE_EXCEEDED the
        statements may have run. On TxcoordError the caller aborts the
        transaction and retries it whole, with a new txid.
        """
        try:
            return self._stub.Execute(
                pb.ExecuteRequest(txid=txid, statements=statements,
                                  prepare=prepare,
                                  lock_timeout_ms=lock_timeout_ms),
                timeout=self._call_timeout, wait_for_ready=True)
        except grpc.RpcError as e:
            raise _error("Execute", e) from None

    def release(self, txid):
        """Rolls back txid's unprepared branch here at once; returns whether
        one was. Repeated on UNAVAILABLE/DEADLINE_EXCEEDED for up to
        release_timeout_s; past that the agent's idle timeout does it."""
        give_up = time.monotonic() + self._release_timeout
        backoff = Backoff()
        while True:
            try:
                return self._stub.Release(
                    pb.ReleaseRequest(txid=txid), timeout=self._call_timeout,
                    wait_for_ready=True).released
            except grpc.RpcError as e:
                if e.code() not in _CALL_RETRY or time.monotonic() >= give_up:
                    raise _error("Release", e) from None
            time.sleep(min(backoff.next_delay(),
                           max(0.0, give_up - time.monotonic())))


class Transaction:
    """One global transaction: runs SQL at agents and remembers which, so
    that commit() and abort() can release the branches the coordinator does
    not know of (an agent enlists a branch only on its first write)."""

    def __init__(self, coordinator, txid):
        self.coordinator = coordinator
        self.txid = txid
        # Agents used, by target, and whether the transaction changed a row
        # there (then the branch is enlisted and the coordinator ends it).
        self._agents = {}
        self._wrote = set()

    def execute(self, agent, sql, *params, prepare=False, lock_timeout_ms=0):
        """Runs one statement at `agent`; returns its pb.StatementResult."""
        return self.execute_many(agent, [statement(sql, *params)],
                                 prepare=prepare,
                                 lock_timeout_ms=lock_timeout_ms).results[0]

    def execute_many(self, agent, statements, prepare=False, lock_timeout_ms=0):
        """Runs `statements` at `agent` in this transaction's branch there.

        On TxcoordError call abort() and retry the whole transaction. With
        prepare (early prepare), no later Execute may use that branch, and
        ABORTED means the transaction must not be committed.
        """
        # Remembered before the call: a failed Execute may still have run.
        self._agents[agent.target] = agent
        response = agent.execute(self.txid, statements, prepare=prepare,
                                 lock_timeout_ms=lock_timeout_ms)
        if any(r.changes > 0 for r in response.results):
            self._wrote.add(agent.target)
        return response

    def commit(self):
        """Commits (see Coordinator.commit), then releases the agents where
        it changed no row. Raises as Coordinator.commit does."""
        result = self.coordinator.commit(self.txid)
        self._release(t for t in self._agents if t not in self._wrote)
        return result

    def abort(self):
        """Aborts at the coordinator, then releases every agent used (best
        effort). Raises as Coordinator.abort does, after releasing."""
        try:
            self.coordinator.abort(self.txid)
        finally:
            self._release(self._agents)

    def _release(self, targets):
        for target in list(targets):
            try:
                self._agents[target].release(self.txid)
            except TxcoordError:
                pass  # the agent's --branch_idle_timeout rolls it back later
