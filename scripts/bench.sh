#!/usr/bin/env bash
# Benchmarks (not part of the test command): set-up and build, then one benchmark.
#   npm run bench [-- options]            the overlay benchmark on its own lab (prefix wtb): underlay vs
#                                         Weft vs hand-configured wireguard-go, start-up and restart times
#   npm run bench -- datapath [options]   the datapath benchmark in its own namespaces (wdb-*): policy
#   npm run bench:datapath [-- options]   cost eBPF vs iptables at 0/1k/10k rules, same-site VXLAN by
#                                         eBPF vs WireGuard vs raw
#   npm run bench -- services [options]   on its own lab (wsb): wrk from a workload in gcp to an HTTP
#                                         service with 3 backends in aws and azure: direct vs the VIP
#                                         (socket LB in eBPF) vs HAProxy in the client's namespace
#   npm run bench -- inventory [options]  a real controller syncing 10,000 instances from the three
#                                         clouds' simulators: full, unchanged and 1 %-retagged syncs,
#                                         controller memory (loopback only; root not needed)
#   npm run bench -- cli [options]        `weft status` and `weft --help` start time, `weft agent`
#                                         resident memory after start (loopback only; root not needed)
#   npm run bench -- agent [options]      one real agent with 100 peers and 1,000 policy rules against a
#                                         real controller, in its own namespace: RSS, idle CPU, `weft status`
#   npm run bench -- scale [options]      a real controller (embedded NATS) and 1,000 / 5,000 / 10,000
#                                         simulated agents (real NATS clients, own credentials, the agent's
#                                         own watches and heartbeats; no data plane): enrollment rate, sync,
#                                         change-to-all latency, bytes per change, controller and NATS RSS
#                                         and CPU, reconnect storm (`--agents N`: one size; loopback only,
#                                         root not needed)
#   npm run bench -- outage [options]     fail static on its own lab (wob): the controller and its NATS frozen
#                                         (or --kind kill) for --seconds (default 600) under pings across every
#                                         pair of hosts: lost pings, offline/removed nodes, gateway changes,
#                                         time to converge after the return
# Each prints a table and writes bench-results/<name>-<timestamp>.json and <name>-latest.json.
# Needs root (inventory, cli and scale do not). Options go to the benchmark; `-- --help` (or `-- datapath --help`) lists them; see
# test/bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=overlay
case "${1:-}" in
  overlay | datapath | inventory | cli | services | agent | outage | scale)
    bench=$1
    shift
    ;;
esac
if [ "$bench" != inventory ] && [ "$bench" != cli ] && [ "$bench" != scale ] && [ "$(id -u)" -ne 0 ]; then
  hint="sudo npm run bench"
  [ "$bench" = datapath ] && hint="sudo npm run bench -- datapath"
  [ "$bench" = services ] && hint="sudo npm run bench -- services"
  [ "$bench" = outage ] && hint="sudo npm run bench -- outage"
  echo "weft bench: needs root (network namespaces, WireGuard interfaces, tc programs); run: $hint" >&2
  exit 1
fi
bash scripts/setup.sh
echo "==> type-checking the benchmarks" >&2
npx tsc -p test/bench/tsconfig.json
exec npx tsx "test/bench/${bench}.ts" "$@"
