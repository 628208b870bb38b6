#!/usr/bin/python3
"""Turns a `scripts/bench --profile` directory into figures per transaction
for each daemon: where its CPU time went (perf cpu-clock samples, by
library and, for kernel time, by what the kernel was doing), its busiest
functions, and its syscalls, context switches and thread starts; at 1
client also how long each agent took to answer a call on the thread that
read it, and how much of that it spent in fdatasync.

  bench/profile_summary.py PROFILE_DIR

perf stamps samples with CLOCK_MONOTONIC_RAW (-k monotonic_raw), the clock
of txn_bench's commit timeline, so the summary counts exactly the
transactions that each recording saw.

The daemons are built without frame pointers, so user-space stacks are not
reliable: user time is attributed to the function and library where the
sample landed (self time); kernel stacks are complete and say which
syscall the kernel time belongs to.
"""
import collections
import json
import os
import re
import subprocess
import sys

SAMPLE_HZ = 499  # perf record -F in scripts/bench
SYSCALLS = ["fdatasync", "fsync", "pwrite64", "write", "futex", "sendmsg", "recvmsg", "epoll_wait"]

# Kernel time, by the first of these found in the kernel stack (which runs
# from the sampled function down to the syscall entry).
KERNEL_CATEGORIES = [
    ("fsync (ext4, jbd2, block)", r"fdatasync|__x64_sys_fsync|ext4_sync_file|jbd2|blk_"),
    ("thread start/exit, mmap", r"copy_process|clone|do_exit|exit_mm|mmap|munmap|mprotect|"
                                r"madvise|prctl|exit_to_user_mode_loop.*task_work"),
    ("futex (mutexes, condvars, wakeups)", r"futex"),
    ("loopback TCP, epoll", r"tcp_|inet_|sock_|sys_sendmsg|sys_recvmsg|epoll|__sys_sendto|"
                            r"__sys_recvfrom|net_rx|__napi|ip_|skb"),
    ("file writes/reads", r"vfs_write|vfs_read|ext4_file_write|pwrite|pread|generic_perform_write"),
    ("scheduler", r"schedule|finish_task_switch|try_to_wake_up|pick_next"),
    ("page faults", r"page_fault|handle_mm_fault|do_user_addr_fault"),
]

# User time, by library of the sampled function.
LIBRARY_CATEGORIES = [
    ("SQLite", r"libsqlite3"),
    ("gRPC core/C++", r"libgrpc|libgpr|libaddress_sorting|libupb|libre2|libcares|libssl|libcrypto"),
    ("protobuf", r"libprotobuf"),
    ("abseil (Mutex, time, strings)", r"libabsl_"),
    ("libstdc++", r"libstdc\+\+"),
    ("dynamic linker (TLS of new threads)", r"ld-linux"),
    ("txcoord's own code", r"/txcoord$|/txagent$"),
]
MALLOC = r"malloc|free|_int_|cfree|tcache|arena|sysmalloc|realloc|calloc|memalign"


def classify(dso, sym, kernel_stack):
    if dso == "[kernel.kallsyms]":
        stack = " ".join(kernel_stack)
        for name, pattern in KERNEL_CATEGORIES:
            if re.search(pattern, stack):
                return "kernel: " + name
        return "kernel: other"
    if "libc.so" in dso:
        return "libc: malloc/free" if re.search(MALLOC, sym) else "libc: other (memcpy, pthread)"
    for name, pattern in LIBRARY_CATEGORIES:
        if re.search(pattern, dso):
            return name
    return "other: " + os.path.basename(dso)


def read_cpu_samples(profile_dir, pids):
    """Yields (pid, dso, sym, kernel stack) for every sample of a daemon."""
    out = subprocess.run(
        ["perf", "script", "-i", os.path.join(profile_dir, "cpu.perf.data"), "-F", "pid,tid,ip,sym,dso"],
        capture_output=True, text=True, check=True).stdout
    for block in out.split("\n\n"):
        lines = [l for l in block.strip("\n").split("\n") if l.strip()]
        if not lines:
            continue
        head = re.match(r"\s*(\d+)/(\d+)", lines[0])
        if not head or int(head.group(1)) not in pids:
            continue
        frames = []
        for line in lines[1:]:
            m = re.match(r"\s*[0-9a-f]+ (.*) \((.*)\)$", line)
            if m:
                frames.append((re.sub(r"\+0x[0-9a-f]+$", "", m.group(1)), m.group(2)))
        if not frames:
            continue
        sym, dso = frames[0]
        kernel_stack = [f[0] for f in frames if f[1] == "[kernel.kallsyms]"]
        yield int(head.group(1)), dso, sym, kernel_stack


def recording_span(path):
    """First and last sample time of a recording (CLOCK_MONOTONIC_RAW, s)."""
    out = subprocess.run(["perf", "script", "-i", path, "-F", "time"], capture_output=True,
                         text=True, check=True).stdout
    times = [float(t.strip().rstrip(":")) for t in out.splitlines() if t.strip()]
    return min(times), max(times)


def commits_between(timeline, start, end):
    """Commits in [start, end] (CLOCK_MONOTONIC_RAW, s), from 100 ms buckets."""
    total = 0.0
    for i, n in enumerate(timeline["commits"]):
        b0 = timeline["start_monotonic_raw"] + i * timeline["bucket_s"]
        b1 = b0 + timeline["bucket_s"]
        overlap = min(b1, end) - max(b0, start)
        if overlap > 0:
            total += n * overlap / timeline["bucket_s"]
    return total


def socket_fd(trace):
    """The fd a recvmsg or sendmsg tracepoint's fields name."""
    return int(re.search(r"\bfd: (0x[0-9a-f]+)", trace).group(1), 16)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    profile_dir = sys.argv[1]
    names = {}
    with open(os.path.join(profile_dir, "pids")) as f:
        for line in f:
            name, pid = line.split()
            names[int(pid)] = name
    with open(os.path.join(profile_dir, "txn_bench.json")) as f:
        point = json.load(f)["points"][0]
    t0, t1 = recording_span(os.path.join(profile_dir, "cpu.perf.data"))
    t2, t3 = recording_span(os.path.join(profile_dir, "sys.perf.data"))
    cpu_transactions = commits_between(point["timeline"], t0, t1)
    sys_transactions = commits_between(point["timeline"], t2, t3)
    agents = sorted(n for n in names.values() if n != "coordinator")
    # Agents are summed: per transaction, each does its share of the work.
    group = {pid: ("coordinator" if n == "coordinator" else "agents") for pid, n in names.items()}
    print(f"profile of {point['mode']}:{point['branches']}:{point['clients']}: "
          f"{point['tx_per_s']:.0f} tx/s; {cpu_transactions:.0f} transactions in {t1 - t0:.1f} s of CPU "
          f"samples, {sys_transactions:.0f} in {t3 - t2:.1f} s of syscall counts; agents "
          f"({', '.join(agents)}) summed")

    by_category = collections.defaultdict(collections.Counter)
    by_symbol = collections.defaultdict(collections.Counter)
    for pid, dso, sym, kernel_stack in read_cpu_samples(profile_dir, set(names)):
        by_category[group[pid]][classify(dso, sym, kernel_stack)] += 1
        by_symbol[group[pid]][f"{sym} ({os.path.basename(dso)})"] += 1
    ms_per_sample = 1000.0 / SAMPLE_HZ
    transactions = cpu_transactions
    for daemon in ("coordinator", "agents"):
        total = sum(by_category[daemon].values())
        if total == 0:
            continue
        print(f"\n{daemon}: {total * ms_per_sample / transactions:.2f} ms CPU per transaction "
              f"({total} samples), by where it went:")
        for category, n in by_category[daemon].most_common():
            if n / total >= 0.01:
                print(f"  {100 * n / total:5.1f}%  {n * ms_per_sample / transactions:6.3f} ms/tx  {category}")
        print(f"  busiest functions (self):")
        for symbol, n in by_symbol[daemon].most_common(12):
            print(f"  {100 * n / total:5.1f}%  {symbol}")

    counts = collections.defaultdict(collections.Counter)
    fdatasync_ms = collections.defaultdict(list)  # daemon -> durations
    entered = {}  # tid -> time of sys_enter_fdatasync
    # A call an agent's sync server answers on the thread that read it: from
    # its recvmsg to that thread's next sendmsg on the same connection, and
    # the time in fdatasync between them.
    reading = {}  # tid -> [fd, start, ms in fdatasync]
    answered = collections.defaultdict(list)  # (daemon, fd) -> [(ms, ms in fdatasync)]
    out = subprocess.run(
        ["perf", "script", "-i", os.path.join(profile_dir, "sys.perf.data"), "-F",
         "pid,tid,time,event,trace"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)/(\d+)\s+([\d.]+):\s+(\S+):(.*)", line)
        if not m or int(m.group(1)) not in names:
            continue
        name, tid, when = names[int(m.group(1))], int(m.group(2)), float(m.group(3))
        event = m.group(4).split(":")[-1]
        if event == "sys_exit_fdatasync":
            if tid in entered:
                synced = 1000 * (when - entered.pop(tid))
                fdatasync_ms[name].append(synced)
                if tid in reading:
                    reading[tid][2] += synced
            continue
        if event == "sys_enter_fdatasync":
            entered[tid] = when
        elif event == "sys_enter_recvmsg" and name != "coordinator":
            reading[tid] = [socket_fd(m.group(5)), when, 0.0]
        elif event == "sys_enter_sendmsg" and tid in reading:
            read_fd, start, synced = reading.pop(tid)
            if read_fd == socket_fd(m.group(5)):
                answered[(name, read_fd)].append((1000 * (when - start), synced))
        counts[name][event.replace("sys_enter_", "")] += 1
    transactions = sys_transactions
    columns = SYSCALLS + ["sched_switch", "sched_process_fork"]
    print("\nper transaction (sched_switch: a thread left the CPU; sched_process_fork: a thread started):")
    print(f"{'daemon':<12}" + "".join(f"{c.replace('sched_process_', 'thread_'):>12}" for c in columns))
    for name in ["coordinator"] + agents:
        print(f"{name:<12}" + "".join(f"{counts[name][c] / transactions:12.2f}" for c in columns))
    print("\nfdatasync inside the daemons, ms:")
    for name in ["coordinator"] + agents:
        d = sorted(fdatasync_ms[name])
        if d:
            print(f"  {name:<12} p50 {d[len(d) // 2]:.3f}  p99 {d[min(len(d) - 1, int(len(d) * 0.99))]:.3f}"
                  f"  max {d[-1]:.3f}  ({len(d)} calls, {sum(d) / transactions:.3f} ms per transaction)")
    if point["clients"] != 1:
        # Under load a connection carries many calls at once, and one
        # thread's read and its next write no longer belong to one call.
        return 0
    print("\ncalls an agent answered on the thread that read them (recvmsg to the answer's sendmsg "
          "on one connection, fd: a connection, one per peer that calls; in fdatasync: the thread's "
          "own syncs in that time, a mean):")
    for (name, fd), spans in sorted(answered.items()):
        if len(spans) < transactions / 10:
            continue  # a connection barely used (health checks, the resolver)
        d = sorted(ms for ms, _ in spans)
        synced = [s for _, s in spans]
        print(f"  {name:<12} fd {fd:<4} {len(spans) / transactions:5.2f} per transaction  "
              f"p50 {d[len(d) // 2]:.3f} ms  mean {sum(d) / len(d):.3f}  in fdatasync "
              f"{sum(synced) / len(synced):.3f}  ({sum(1 for s in synced if s > 0)} of {len(spans)} "
              f"synced themselves)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
