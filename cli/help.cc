#include "cli/help.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/cluster_commands.h"

namespace txcoord::cli {
namespace {

constexpr char kGlobalHelp[] =
    "Global flags (any command, anywhere on the line):\n"
    "  --coordinator=HOST:PORT  the coordinator (default 127.0.0.1:7070)\n"
    "  --agent=HOST:PORT        the agent, for in-doubt, resolve, heuristics, outbox\n"
    "  --json                   print JSON for scripts instead of tables\n"
    "  --timeout=DURATION       deadline of each call, e.g. 3s or 500ms (default 10s)\n"
    "  --tls-ca=FILE            talk TLS, verifying the daemon with this CA (PEM)\n"
    "  --tls-cert=FILE, --tls-key=FILE\n"
    "                           client certificate and key (mutual TLS; the admin\n"
    "                           API needs an identity on the daemon's --admin_allow)\n"
    "  --help, -h               help for the command\n"
    "Cluster mode (docs/cluster.md): with --registry the daemons are found in etcd\n"
    "  --registry=etcd://HOST:PORT[,...]  show/retry/abort/mark-done go to the txid's\n"
    "                           owner; list asks every coordinator; txctl nodes\n"
    "  --registry-prefix=P      the deployment's key prefix (default /txcoord)\n"
    "  --service=NAME           the agent registered for service NAME (not --agent)\n"
    "  --coordinator-id=ID      the coordinator registered as ID (not --coordinator)\n"
    "  --coordinator-service=S  the coordinators' service for list (default txcoord)\n";

constexpr char kExitHelp[] =
    "Exit codes:\n"
    "  0  ok\n"
    "  1  usage error (bad command line, malformed txid or flag value)\n"
    "  2  not found (no such transaction, branch or directory)\n"
    "  3  refused (FAILED_PRECONDITION or PERMISSION_DENIED: wrong state, or not allowed)\n"
    "  4  unreachable (UNAVAILABLE or DEADLINE_EXCEEDED: the daemon did not answer)\n"
    "  5  other error\n"
    "  6  the WAL is corrupt (wal check, wal dump)\n";

std::vector<CommandSpec>* MakeCommands() {
  return new std::vector<CommandSpec>{
      {"list",
       "list [--state=S[,S...]] [--min-age=D] [--participant=NAME] [--page-size=N] "
       "[--page-token=T] [--all] [--finished]",
       "list open transactions at the coordinator (the first thing to run)",
       "Lists the coordinator's open transactions, oldest first: state, age, branches,\n"
       "branches still waiting for phase 2, failed phase-2 attempts and the latest\n"
       "problem. A healthy coordinator lists only young ACTIVE/PREPARING transactions;\n"
       "anything COMMITTING for long has a branch that does not acknowledge (see\n"
       "`txctl help show`).\n"
       "  --state=S,...     only these states: active, preparing, committing\n"
       "                    (committed, aborted with --finished)\n"
       "  --min-age=D       only transactions at least this old (e.g. 30s, 5m)\n"
       "  --participant=P   only transactions with a branch at participant P\n"
       "  --page-size=N     transactions per page (1..1000, default 100)\n"
       "  --page-token=T    continue after a previous page\n"
       "  --all             fetch every page\n"
       "  --finished        include recently finished transactions\n",
       {"state", "min-age", "participant", "page-size", "page-token", "all", "finished"},
       0,
       0,
       RunList},
      {"show",
       "show TXID",
       "one transaction in detail: branches, votes, phase 2, errors",
       "Shows one transaction: state, times, and per branch its vote, whether it\n"
       "acknowledged phase 2, how many phase-2 calls failed, when the last one was\n"
       "sent and the last error. Use it on anything `list` shows as stuck. A branch\n"
       "marked HEURISTIC_MIXED was forced the other way by an operator at its agent\n"
       "(docs/operations.md); one marked heuristic was settled with mark-done. One\n"
       "marked awaited was named in the client's Commit but its agent has not\n"
       "enlisted it yet: the transaction aborts at the prepare timeout without it.\n",
       {},
       1,
       1,
       RunShow},
      {"retry",
       "retry TXID",
       "resend phase-2 Commit now, with the retry backoff reset",
       "Resends Commit at once to every branch of a COMMITTING transaction that has\n"
       "not acknowledged, and restarts the retry backoff from its first step. The\n"
       "coordinator retries forever by itself (backoff capped by --phase2_retry_max);\n"
       "use this after fixing what blocked a branch (agent restarted, network back)\n"
       "to avoid waiting for the next retry. Refused (exit 3) unless COMMITTING.\n",
       {},
       1,
       1,
       RunRetry},
      {"abort",
       "abort TXID [--reason=TEXT]",
       "abort an undecided (ACTIVE or PREPARING) transaction",
       "Aborts a transaction that is not decided yet, e.g. one whose client went\n"
       "away while it held row locks at the agents. Abort is sent to its branches.\n"
       "Refused with exit 3 once COMMIT is logged: a committed transaction can only\n"
       "go forward (retry; mark-done for a branch repaired by hand).\n"
       "  --reason=TEXT   kept as the abort reason and logged\n",
       {"reason"},
       1,
       1,
       RunAbort},
      {"mark-done",
       "mark-done TXID PARTICIPANT [--note=TEXT]",
       "count a branch as committed after repairing it by hand",
       "Tells the coordinator that an operator settled PARTICIPANT's branch of a\n"
       "COMMITTING transaction by hand (e.g. its agent's database was restored, or\n"
       "it answered HEURISTIC_MIXED and the data was repaired): the branch counts as\n"
       "acknowledged and is shown as heuristic; when every branch is, the transaction\n"
       "ends. Only for a branch that will never acknowledge by itself: a branch that\n"
       "is merely slow finishes alone. The mark is written to the coordinator's WAL\n"
       "before the command answers, so a coordinator restart keeps it.\n"
       "  --note=TEXT     what was done (logged)\n",
       {"note"},
       2,
       2,
       RunMarkDone},
      {"in-doubt",
       "in-doubt --agent=HOST:PORT",
       "list an agent's prepared branches still waiting for an outcome",
       "Lists the branches an agent has prepared (voted YES, row locks held) whose\n"
       "outcome it has not learned yet, with their age and owning coordinator. The\n"
       "agent asks the coordinator by itself; a branch that stays here for long means\n"
       "the coordinator cannot answer (down, or its data directory was lost: then it\n"
       "answers that the txid belongs to another coordinator). See `txctl help resolve`.\n",
       {},
       0,
       0,
       RunInDoubt},
      {"resolve",
       "resolve TXID --commit|--abort --agent=HOST:PORT [--reason=TEXT]",
       "force an in-doubt branch's outcome at an agent (heuristic decision)",
       "Last resort when a branch's coordinator cannot tell its outcome (its data is\n"
       "lost, or it is gone for good): forces the branch to commit or abort. The\n"
       "decision is stored in the agent's database (_txcoord_heuristics) in the same\n"
       "transaction that applies it, and the agent keeps asking the coordinator: if\n"
       "the coordinator's real outcome turns out different, both sides report\n"
       "HEURISTIC_MIXED and the data must be repaired by hand. Before choosing, look\n"
       "at the transaction's other branches (`in-doubt` at every agent): a branch that\n"
       "already committed anywhere means --commit; none prepared elsewhere usually\n"
       "means --abort. Exit 2 if the branch is not prepared at this agent.\n"
       "  --commit | --abort   the outcome to force (exactly one)\n"
       "  --reason=TEXT        why (stored with the decision)\n",
       {"commit", "abort", "reason"},
       1,
       1,
       RunResolve},
      {"heuristics",
       "heuristics --agent=HOST:PORT [--mixed-only]",
       "list heuristic decisions taken at an agent and whether they held",
       "Lists every outcome an operator forced at this agent, with what the\n"
       "coordinator decided once known. HEURISTIC_MIXED rows are contradictions:\n"
       "the transaction committed in some databases and aborted in others.\n"
       "  --mixed-only   only the contradictions\n",
       {"mixed-only"},
       0,
       0,
       RunHeuristics},
      {"outbox list",
       "outbox list --agent=HOST:PORT [--state=pending|delivered|dead] [--limit=N]",
       "an agent's transactional messages: backlog, dead letters, relay state",
       "Counts the agent's outbox (pending, dead, delivered and kept), the age of the\n"
       "oldest pending message, what the relay is doing (relaying, broker unreachable,\n"
       "standby, no broker configured) and its last error; then lists messages, oldest\n"
       "first: by default the pending and dead ones, which are what needs attention.\n"
       "A growing backlog with \"broker unreachable\" heals by itself once the broker is\n"
       "back; dead messages were refused by the stream --outbox_max_attempts times\n"
       "(see `txctl help outbox retry`). docs/messaging.md is the runbook.\n"
       "  --state=S   only this state\n"
       "  --limit=N   at most N messages (1..10000, default 100)\n",
       {"state", "limit"},
       0,
       0,
       RunOutboxList},
      {"outbox show",
       "outbox show ID --agent=HOST:PORT",
       "one outbox message: state, attempts, last error, headers, payload",
       "Shows one message of the agent's outbox, payload included (as text when it\n"
       "is UTF-8; --json gives it in base64). Exit 2 if there is no such id.\n",
       {},
       1,
       1,
       RunOutboxShow},
      {"outbox retry",
       "outbox retry ID... | --all-dead --agent=HOST:PORT",
       "send dead (or backing-off) outbox messages again, now",
       "Makes the given messages (or, with --all-dead, every dead one) pending again\n"
       "with their attempts reset: the relay publishes them in its next round. Fix\n"
       "what made the stream refuse them first (see their last error). A retried\n"
       "message goes out after later messages of its key that were already delivered.\n"
       "  --all-dead   every dead message\n",
       {"all-dead"},
       0,
       10000,
       RunOutboxRetry},
      {"outbox purge",
       "outbox purge --delivered|--dead [ID...] --agent=HOST:PORT",
       "delete delivered or dead outbox messages",
       "Deletes delivered messages (they are deleted by themselves after\n"
       "--outbox_retention) or dead ones (kept until an operator decides): all of the\n"
       "state, or only the ids given. Pending messages are never purged.\n"
       "  --delivered | --dead   which state (exactly one)\n",
       {"delivered", "dead"},
       0,
       10000,
       RunOutboxPurge},
      {"nodes",
       "nodes --registry=etcd://HOST:PORT[,...] [--registry-prefix=P]",
       "list the daemons registered in etcd: role, service, node, endpoint, weight, state",
       "Lists every coordinator and agent registered under <prefix>/nodes/ in etcd\n"
       "(docs/cluster.md): its role, service, node id (a coordinator's is the first\n"
       "part of its txids), gRPC and HTTP endpoints, weight, state (serving or\n"
       "draining), version and pid. A daemon that died disappears once its lease\n"
       "expires (--registry_ttl); one stopping shows as draining.\n",
       {},
       0,
       0,
       RunNodes},
      {"config list",
       "config list [SERVICE] --registry=etcd://HOST:PORT[,...] [--registry-prefix=P]",
       "the config centre's settings in etcd, of every service or one",
       "Lists the settings etcd holds under <prefix>/config/ (docs/cluster.md, \"Config\n"
       "centre\"): service, setting, value and the etcd revision that wrote it. A value\n"
       "the daemons would ignore (invalid, or an unknown name) is flagged with why. A\n"
       "setting not listed is its daemon's flag.\n"
       "  --registry=URL          the etcd (etcd://HOST:PORT[,HOST:PORT...])\n"
       "  --registry-prefix=P     the deployment's key prefix (default /txcoord)\n",
       {"registry", "registry-prefix"},
       0,
       1,
       RunConfigList},
      {"config get",
       "config get SERVICE NAME --registry=etcd://HOST:PORT[,...]",
       "one setting of a service as etcd holds it (exit 2 if unset)",
       "Shows the value etcd holds for setting NAME of SERVICE (an agent's --name, or\n"
       "a coordinator's --registry_service) and the revision that wrote it, or says\n"
       "that it is not set (exit 2): its daemons then use their flag.\n"
       "  --registry=URL, --registry-prefix=P   as for config list\n",
       {"registry", "registry-prefix"},
       2,
       2,
       RunConfigGet},
      {"config set",
       "config set SERVICE NAME VALUE --registry=etcd://HOST:PORT[,...]",
       "change a setting at every daemon of a service, without a restart",
       "Validates VALUE against the setting's type and range, then writes it to etcd\n"
       "(only over the value it read) and prints old -> new. The service's daemons\n"
       "apply it as their watch sees it and log the change. An invalid value or an\n"
       "unknown setting is refused with exit 1 and nothing is written. Settings:\n"
       "  agent: lock_timeout, max_statement_time, branch_idle_timeout,\n"
       "         outbox_max_attempts, outbox_max_backoff, outbox_retention\n"
       "  coordinator: tx_timeout, prepare_timeout, phase2_retry_max\n"
       "  --registry=URL, --registry-prefix=P   as for config list\n",
       {"registry", "registry-prefix"},
       3,
       3,
       RunConfigSet},
      {"config unset",
       "config unset SERVICE NAME --registry=etcd://HOST:PORT[,...]",
       "delete a setting: its daemons go back to their flag",
       "Deletes the setting from etcd; the service's daemons return to the value of\n"
       "their flag (and log it). Unsetting what is not set is not an error.\n"
       "  --registry=URL, --registry-prefix=P   as for config list\n",
       {"registry", "registry-prefix"},
       2,
       2,
       RunConfigUnset},
      {"config history",
       "config history SERVICE NAME --registry=etcd://HOST:PORT[,...]",
       "the values a setting had, newest first, from etcd's revisions",
       "Walks back through etcd's revisions of the setting: each value and the\n"
       "revision that wrote it, newest first, until it was first set or etcd\n"
       "compacted the older revisions (said so). Values the daemons ignored are\n"
       "flagged. A delete hides the values before it.\n"
       "  --registry=URL, --registry-prefix=P   as for config list\n",
       {"registry", "registry-prefix"},
       2,
       2,
       RunConfigHistory},
      {"wal check",
       "wal check DIR",
       "check a coordinator's WAL offline (exit 6 if corrupt)",
       "Reads the WAL in DIR (the coordinator's --data-dir or its wal/ directory)\n"
       "without changing it and says what the coordinator would do on start: open\n"
       "it, cut a torn tail (the last write interrupted by a crash: harmless), or\n"
       "refuse because a record before the tail is corrupt (exit 6, naming file and\n"
       "offset). The last segment normally ends in zeros written ahead of the\n"
       "appends (--wal_preallocate_bytes): reported, not a problem. Needs no\n"
       "daemon; run it while the coordinator is stopped. Also says how many\n"
       "committed transactions have no END (recovery finishes them).\n",
       {},
       1,
       1,
       RunWalCheck},
      {"wal dump",
       "wal dump DIR",
       "print every record of a coordinator's WAL offline",
       "Prints each good record of the WAL in DIR in log order: segment, offset,\n"
       "type and, for COMMIT, the branches (participant and endpoint); then the\n"
       "transactions committed without END, which recovery re-drives. Stops at the\n"
       "first corrupt record (exit 6). Needs no daemon.\n",
       {},
       1,
       1,
       RunWalDump},
  };
}

}  // namespace

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec>* const kCommands = MakeCommands();
  return *kCommands;
}

const std::vector<std::string>& GlobalFlags() {
  static const std::vector<std::string>* const kFlags =
      new std::vector<std::string>{"coordinator",
                                   "agent",
                                   "json",
                                   "timeout",
                                   "help",
                                   "tls-cert",
                                   "tls-key",
                                   "tls-ca",
                                   "registry",
                                   "registry-prefix",
                                   "service",
                                   "coordinator-id",
                                   "coordinator-service"};
  return *kFlags;
}

const CommandSpec* FindCommand(const std::vector<std::string>& words, size_t* consumed) {
  const CommandSpec* best = nullptr;
  for (const CommandSpec& spec : Commands()) {
    std::vector<std::string> parts = absl::StrSplit(spec.name, ' ');
    if (parts.size() > words.size()) continue;
    if (!std::equal(parts.begin(), parts.end(), words.begin())) continue;
    if (best == nullptr || parts.size() > *consumed) {
      best = &spec;
      *consumed = parts.size();
    }
  }
  return best;
}

std::string OverviewHelp() {
  std::string text =
      "txctl: operate a txcoord deployment: find stuck transactions at the\n"
      "coordinator, settle in-doubt branches at agents, inspect a WAL offline,\n"
      "change per-service policy in etcd (config).\n\n"
      "Usage: txctl [global flags] COMMAND [args] [flags]\n\nCommands:\n";
  for (const CommandSpec& spec : Commands()) {
    absl::StrAppend(&text, "  ", spec.name,
                    std::string(16 - std::min<size_t>(spec.name.size(), 15), ' '), spec.summary,
                    "\n");
  }
  absl::StrAppend(&text, "\n", kGlobalHelp, "\n", kExitHelp,
                  "\n`txctl help COMMAND` or `txctl COMMAND --help` explains a command.\n"
                  "The runbook is docs/operations.md.\n");
  return text;
}

std::string CommandHelp(const CommandSpec& spec) {
  return absl::StrCat("Usage: txctl ", spec.usage, "\n\n", spec.summary, ".\n\n", spec.details,
                      "\n", kGlobalHelp, "\n", kExitHelp);
}

}  // namespace txcoord::cli
