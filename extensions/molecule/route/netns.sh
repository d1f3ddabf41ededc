#!/bin/sh
# The network namespaces of the imds.azure route scenario (see docs/docsite/rst/route.rst).
#
#   netns.sh up      create them (after removing leftovers of an earlier run)
#   netns.sh down    stop what runs inside them and delete them
#
# imdsr-vm: eth0 10.0.1.10/26 with the default route via 10.0.1.1, and the "cluster
#   adapter" clus0 holding 169.254.1.156/16, so 169.254.0.0/16 is on-link through it.
#   clus0 is one end of a veth pair whose other end (clus0p) stays in imdsr-vm without
#   an address; a permanent neighbour entry sends frames for 169.254.169.254 into it and
#   the kernel drops them there: requests time out, as through a Windows cluster adapter.
#   (A dummy interface would do the same, but not every kernel ships the dummy module.)
# imdsr-az: the far end of eth0 with 10.0.1.1/26, and 169.254.169.254/32 on lo, where
#   create.yml starts the IMDS emulator.
# Neither namespace has any link to the host's own network.
set -eu
VM=imdsr-vm
AZ=imdsr-az
CLUSTER_MAC=02:00:a9:fe:01:9c

down() {
    # End only our processes: whatever still runs inside our namespaces, by pid.
    for ns in "$VM" "$AZ"; do
        if ip netns list | grep -qw "^$ns"; then
            pids=$(ip netns pids "$ns")
            if [ -n "$pids" ]; then
                # shellcheck disable=SC2086
                kill $pids 2>/dev/null || true
            fi
            ip netns delete "$ns"
        fi
    done
}

up() {
    down
    ip netns add "$VM"
    ip netns add "$AZ"
    ip -n "$VM" -batch - <<BATCH
link set lo up
link add eth0 type veth peer name eth0 netns $AZ
addr add 10.0.1.10/26 dev eth0
link set eth0 up
route add default via 10.0.1.1 dev eth0
link add clus0 type veth peer name clus0p address $CLUSTER_MAC
addr add 169.254.1.156/16 dev clus0
link set clus0p up
link set clus0 up
neigh replace 169.254.169.254 lladdr $CLUSTER_MAC dev clus0 nud permanent
BATCH
    ip -n "$AZ" -batch - <<BATCH
link set lo up
addr add 169.254.169.254/32 dev lo
addr add 10.0.1.1/26 dev eth0
link set eth0 up
BATCH
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
