#!/usr/bin/env bash
# The cluster under load: three Plenum nodes and three NATS servers, each
# pair in its own network namespace, with N users on every node (default
# 300) and four speakers spread over the nodes; prints loss, latency and
# each node's CPU (cluster/netload_test.go). Needs root. The test client
# runs in the same machine, so on a small machine it limits the numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-300}
PLENUM_CLUSTER_LOAD=$N go test -count=1 -timeout 20m -v -run 'TestNetworkLoad$' ./cluster 2>&1 |
	grep -E '^\s+netload_test\.go|^(--- |ok|FAIL|PASS)'
