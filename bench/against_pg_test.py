#!/usr/bin/python3
"""Tests of bench/against_pg.py: how rounds of txn_bench and pg2pc_bench runs
become the table's figures, ratios and verdicts (make test runs it)."""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import against_pg  # noqa: E402


def point(clients, mode, tx_per_s, p50, p99, cpu, x_floor=1.0):
    return {"clients": clients, "mode": mode, "branches": 3, "tx_per_s": tx_per_s,
            "txn_ms": {"p50": p50, "p99": p99}, "commit_ms": {"p50": p50 / 2},
            "commit_floor_ms": p50 / 2 / x_floor, "commit_x_floor": {"p50": x_floor},
            "cpu_ms_per_tx": cpu, "cpu_busy": 0.8, "machine_cpu_busy": 0.9, "failed": 0}


def conditions(started, smoke=False):
    return {"started_utc": started, "commit": "abc1234", "host": "vm", "cpus": 2,
            "smoke": smoke, "servers": 3, "warmup_seconds": 2, "point_seconds": 10,
            "load_before": "1.00", "load_after": "2.00", "branches_at_once": True,
            "name_branches": True, "reserve_txids": 64}


def txcoord_run(started, points):
    return {"conditions": conditions(started), "points": points}


def peer_run(started, points):
    return {"conditions": conditions(started), "points": points,
            "check": "balances add up"}


def ours(clients, tx_per_s, p50, p99, x_floor=1.0):
    """txcoord's early point; its CPU per transfer is 2 ms in all."""
    return point(clients, "early", tx_per_s, p50, p99,
                 {"client": 0.5, "coordinator": 0.5, "agents": 1.0}, x_floor)


def ours_2pc(clients, tx_per_s, p50, p99, x_floor=1.0):
    """txcoord's plain-2PC point; its CPU per transfer is 3 ms in all."""
    return point(clients, "2pc", tx_per_s, p50, p99,
                 {"client": 0.5, "coordinator": 1.0, "agents": 1.5}, x_floor)


def theirs(clients, tx_per_s, p50, p99):
    return point(clients, "early", tx_per_s, p50, p99, {"client": 0.5, "servers": 0.5})


def throughput_rounds(clients, rounds, ours_ms=(10, 30), theirs_ms=(10, 40)):
    """One pair per round: (txcoord's tx/s, the peer's), the latencies fixed."""
    return [(txcoord_run(f"r{i}t", [ours(clients, mine, *ours_ms)]),
             peer_run(f"r{i}p", [theirs(clients, peer, *theirs_ms)]))
            for i, (mine, peer) in enumerate(rounds)]


class AgainstPgTest(unittest.TestCase):
    def test_one_round_gives_each_ratio_and_its_verdict(self):
        pair = (txcoord_run("t1", [ours(1, 400, 0.9, 2.0), ours(16, 900, 10, 30),
                                   ours(64, 1000, 50, 120)]),
                peer_run("t0", [theirs(1, 800, 1.0, 1.5), theirs(16, 1000, 12, 40),
                                theirs(64, 800, 60, 100)]))
        rows = {r["clients"]: r for r in against_pg.compare([pair])}
        self.assertEqual(sorted(rows), [1, 16, 64])
        self.assertAlmostEqual(rows[1]["ratio_txcoord_to_peer"]["txn_p50"], 0.9)
        self.assertEqual(rows[1]["verdict"], "**met**")
        self.assertAlmostEqual(rows[16]["ratio_txcoord_to_peer"]["tx_per_s"], 0.9)
        self.assertIn("0.90× the peer's tx/s", rows[16]["verdict"])
        # Throughput met, but the tail is worse than the peer's.
        self.assertAlmostEqual(rows[64]["ratio_txcoord_to_peer"]["tx_per_s"], 1.25)
        self.assertIn("p99 1.2× the peer's", rows[64]["verdict"])
        self.assertAlmostEqual(rows[64]["ratio_txcoord_to_peer"]["cpu_ms_per_tx"], 2.0)
        self.assertEqual(rows[64]["rounds"], 1)

    def test_rounds_take_the_median_of_each_rounds_ratio_not_the_ratio_of_medians(self):
        # Round by round the ratio is 0.5, 1.1 and 1.2 (median 1.1: met),
        # while the medians of the figures (600 / 600) would say 1.0.
        [row] = against_pg.compare(throughput_rounds(16, [(500, 1000), (660, 600), (600, 500)]))
        self.assertEqual(row["rounds"], 3)
        self.assertAlmostEqual(row["ratio_txcoord_to_peer"]["tx_per_s"], 1.1)
        self.assertEqual(row["ratio_range"]["tx_per_s"], [0.5, 1.2])
        self.assertEqual(row["txcoord"]["tx_per_s"], 600)
        self.assertEqual(row["peer"]["tx_per_s"], 600)
        self.assertEqual(row["verdict"], "**met**")
        self.assertEqual(len(row["each_round"]), 3)

    def test_each_txcoord_mode_is_set_beside_the_same_peer_point(self):
        pair = (txcoord_run("t1", [ours_2pc(16, 500, 20, 50, x_floor=2.0), ours(16, 1100, 9, 30)]),
                peer_run("t0", [theirs(16, 1000, 10, 40)]))
        rows = against_pg.compare([pair])
        self.assertEqual([(r["clients"], r["mode"]) for r in rows], [(16, "2pc"), (16, "early")])
        plain, early = rows
        self.assertAlmostEqual(plain["ratio_txcoord_to_peer"]["tx_per_s"], 0.5)
        self.assertAlmostEqual(plain["ratio_txcoord_to_peer"]["cpu_ms_per_tx"], 3.0)
        self.assertIn("0.50× the peer's tx/s", plain["verdict"])
        self.assertIn("p99 1.2× the peer's", plain["verdict"])
        self.assertAlmostEqual(early["ratio_txcoord_to_peer"]["tx_per_s"], 1.1)
        self.assertEqual(early["verdict"], "**met**")
        self.assertEqual(plain["peer"], early["peer"])

    def test_the_verdict_follows_the_median_ratio_where_the_ratio_of_medians_disagrees(self):
        # Ratios 0.8, 1.05 and 1.1 (median 1.05: met); the figures' medians,
        # 840 against 900, would say 0.93 (missed).
        [row] = against_pg.compare(throughput_rounds(64, [(720, 900), (840, 800), (990, 900)],
                                                     ours_ms=(50, 90), theirs_ms=(60, 100)))
        self.assertAlmostEqual(row["txcoord"]["tx_per_s"] / row["peer"]["tx_per_s"], 840 / 900)
        self.assertAlmostEqual(row["ratio_txcoord_to_peer"]["tx_per_s"], 1.05)
        self.assertEqual(row["verdict"], "**met**")

    def test_failed_transfers_count_each_peer_point_once(self):
        peer_point = theirs(1, 800, 1.0, 1.5)
        peer_point["failed"] = 1
        mine = ours(1, 400, 0.9, 2.0)
        mine["failed"] = 2
        pair = (txcoord_run("t1", [ours_2pc(1, 300, 1.2, 2.0), mine]), peer_run("t0", [peer_point]))
        table = against_pg.markdown([pair], against_pg.compare([pair]))
        self.assertIn("**3 transfers failed.**", table)

    def test_a_client_count_only_one_side_measured_is_left_out(self):
        pair = (txcoord_run("t1", [ours(1, 400, 0.9, 2.0), ours(4, 500, 3, 6)]),
                peer_run("t0", [theirs(1, 800, 1.0, 1.5)]))
        self.assertEqual([r["clients"] for r in against_pg.compare([pair])], [1])

    def test_commit_floor_rows_take_the_median_multiple_over_rounds(self):
        runs = [txcoord_run("a", [ours(1, 400, 1.0, 2.0, x_floor=1.2), ours(16, 900, 10, 30)]),
                txcoord_run("b", [ours(1, 400, 1.0, 2.0, x_floor=1.5)]),
                txcoord_run("c", [ours(1, 400, 1.0, 2.0, x_floor=1.4)])]
        [row] = against_pg.floor_rows(runs)
        self.assertEqual(row["mode"], "early")
        self.assertEqual(row["rounds"], 3)
        self.assertAlmostEqual(row["x_floor"], 1.4)
        self.assertEqual(row["x_floor_each_round"], [1.2, 1.5, 1.4])
        self.assertEqual(row["verdict"], "**missed**: 1.4×")
        self.assertIn("(1.20–1.50)", against_pg.floor_markdown([row]))

    def test_main_writes_the_json_the_table_and_splices_the_doc(self):
        with tempfile.TemporaryDirectory() as d:
            paths = {}
            for name, run in (
                    ("t1", txcoord_run("2026-01-01T00:00:10Z", [ours(1, 400, 0.9, 2.0)])),
                    ("p1", peer_run("2026-01-01T00:00:00Z", [theirs(1, 800, 1.0, 1.5)])),
                    ("t2", txcoord_run("2026-01-01T00:01:00Z", [ours(1, 400, 1.2, 2.0)])),
                    ("p2", peer_run("2026-01-01T00:01:10Z", [theirs(1, 800, 1.0, 1.5)]))):
                paths[name] = os.path.join(d, name + ".json")
                with open(paths[name], "w") as f:
                    json.dump(run, f)
            doc = os.path.join(d, "doc.md")
            with open(doc, "w") as f:
                f.write(f"before\n{against_pg.BEGIN}\nold table\n{against_pg.END}\nafter\n")
            out_json, out_md = os.path.join(d, "out.json"), os.path.join(d, "out.md")
            with open(os.devnull, "w") as devnull:
                stdout, sys.stdout = sys.stdout, devnull
                try:
                    code = against_pg.main(["against_pg.py", out_json, out_md,
                                            "--pair", paths["t1"], paths["p1"],
                                            "--pair", paths["t2"], paths["p2"],
                                            "--splice", doc])
                finally:
                    sys.stdout = stdout
            self.assertEqual(code, 0)
            with open(out_json) as f:
                result = json.load(f)
            self.assertEqual(result["rounds"], 2)
            self.assertEqual(len(result["txcoord"]["runs"]), 2)
            self.assertEqual(result["peer"]["conditions"]["started_utc"], "2026-01-01T00:00:00Z")
            # Rounds 0.9 and 1.2: median 1.05, so the 1-client target is missed.
            self.assertAlmostEqual(result["comparison"][0]["ratio_txcoord_to_peer"]["txn_p50"],
                                   1.05)
            self.assertEqual(result["comparison"][0]["verdict"], "**missed**: p50 1.1× the peer's")
            with open(out_md) as f:
                table = f.read()
            self.assertIn("in 2 rounds", table)
            self.assertIn("1.05× (0.90–1.20)", table)
            self.assertIn("runs started from 2026-01-01T00:00:00Z to 2026-01-01T00:01:10Z", table)
            with open(doc) as f:
                spliced = f.read()
            self.assertNotIn("old table", spliced)
            self.assertTrue(spliced.startswith("before\n"))
            self.assertTrue(spliced.endswith(f"{against_pg.END}\nafter\n"))
            self.assertIn("1.05× (0.90–1.20)", spliced)

    def test_main_refuses_arguments_without_a_pair(self):
        with open(os.devnull, "w") as devnull:
            stderr, sys.stderr = sys.stderr, devnull
            try:
                self.assertEqual(against_pg.main(["against_pg.py", "out.json", "out.md"]), 2)
            finally:
                sys.stderr = stderr


if __name__ == "__main__":
    unittest.main()
