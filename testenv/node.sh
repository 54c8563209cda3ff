# shellcheck shell=bash disable=SC2034  # (variables are read by testenv/run)
# testenv/node.sh — the test world's one real node, sourced by testenv/run.
#
# A kubelet, containerd (Debian's, with Debian's runc), the CNI plugins
# (Debian's containernetworking-plugins: bridge, host-local, loopback,
# portmap) and kube-proxy in iptables mode, all inside network namespaces that
# this run creates:
#
#   host (root netns)                node netns                 campus netns
#   127.0.0.1: apiserver, registry,  containerd, kubelet,       test clients
#   OIDC ── unix sockets (socat) ──  kube-proxy, socat          $CAMPUS_IP
#   ──────────── /30 veth ────────── $NODE_IP                   (a "campus
#                                    cni0 10.244.0.1/24 ─ Pods    network")
#                                    $NODE_CAMPUS_IP ── /24 veth ──┘
#
# - Everything the node serves (node, Pod, Service and load-balancer
#   addresses) lives in those namespaces. The host sends only to the node's
#   own address (the apiserver calls the kubelet there for logs and exec);
#   nothing listens on the host's end of that link. The node reaches what
#   listens on the host's 127.0.0.1 (apiserver, registry, OIDC provider)
#   through unix sockets, bridged by socat to the node's own address and
#   loopback, so an image named 127.0.0.1:<registry port>/… is pulled by the
#   node exactly as tests and Berth name it, and Pods reach the apiserver at
#   10.96.0.1:443 → $NODE_IP:6443. The campus namespace has no route out and
#   does not forward.
# - The node's processes share one private mount namespace (a slave of the
#   host's), with fresh tmpfs over /run and /var/log: what they mount (Pod
#   volumes, overlay snapshots, Pod network namespaces) is never seen by the
#   host and goes away with them.
# - Cgroups (v1 here) live under /<controller>/$NODE_CGROUP, removed at exit.
#
# Pods reach it only if they tolerate the taint berth.testenv/real-node and
# select the label berth.testenv/node=real; a namespace gets both defaults
# with the annotations in $TESTENV_REAL_NODE_ANNOTATIONS (PodNodeSelector and
# PodTolerationRestriction admission), so Berth itself needs nothing special.

NODE_NAME=berth-node
POD_CIDR=10.244.0.0/24
CAMPUS_POOL=10.250.1.0/24
PUBLIC_POOL=10.250.2.0/24
REAL_NODE_LABEL=berth.testenv/node=real
REAL_NODE_TAINT=berth.testenv/real-node

# node_plan: names and addresses for this run (before the PKI is made, since
# the apiserver's certificate names the host end of the node link).
node_plan() {
    local id r
    id=${D##*.}
    id=${id,,}
    NODE_NS=berth-$id-node
    CAMPUS_NS=berth-$id-campus
    NODE_CGROUP=berth-$id
    NODE_DIR=$D/node
    # A /30 of 172.30.0.0/16 no other run (or anything else) uses.
    while :; do
        r=$((RANDOM % 256)).$((RANDOM % 64 * 4))
        ip -4 addr show | grep -q " 172\.30\.${r%.*}\.$((${r#*.} + 1))/" || break
    done
    NODE_HOST_IP=172.30.${r%.*}.$((${r#*.} + 1))
    NODE_IP=172.30.${r%.*}.$((${r#*.} + 2))
    CAMPUS_IP=10.250.0.1
    NODE_CAMPUS_IP=10.250.0.2
    mkdir -p "$NODE_DIR"
}

# node_certs: client certificates for the kubelet and kube-proxy, the
# kubelet's serving certificate, and the apiserver's client certificate for
# calling kubelets.
node_certs() {
    sign kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "$CLIENT_EXT"
    sign kube-proxy "/CN=system:kube-proxy" "$CLIENT_EXT"
    sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$CLIENT_EXT"
    sign kubelet-serving "/CN=$NODE_NAME" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME"
}

# node_network: the two namespaces and their links. Undone by node_cleanup.
node_network() {
    local id=${NODE_NS#berth-}
    id=${id%-node}
    NODE_VETH_HOST=bth${id}h
    ip netns add "$NODE_NS"
    ip netns add "$CAMPUS_NS"
    NODE_NETNS_MADE=1
    # host <-> node
    ip link add "$NODE_VETH_HOST" type veth peer name eth0 netns "$NODE_NS"
    ip addr add "$NODE_HOST_IP/30" dev "$NODE_VETH_HOST"
    ip link set "$NODE_VETH_HOST" up
    # campus <-> node
    ip -n "$CAMPUS_NS" link add eth0 type veth peer name campus0 netns "$NODE_NS"
    ip -n "$NODE_NS" addr add "$NODE_IP/30" dev eth0
    ip -n "$NODE_NS" addr add "$NODE_CAMPUS_IP/24" dev campus0
    ip -n "$CAMPUS_NS" addr add "$CAMPUS_IP/24" dev eth0
    local ns
    for ns in "$NODE_NS" "$CAMPUS_NS"; do ip -n "$ns" link set lo up; done
    ip -n "$NODE_NS" link set eth0 up
    ip -n "$NODE_NS" link set campus0 up
    ip -n "$CAMPUS_NS" link set eth0 up
    # The node's way out is the campus network (which goes nowhere); the
    # campus reaches the load-balancer pools and Services through the node.
    ip -n "$NODE_NS" route add default via "$CAMPUS_IP"
    local net
    for net in "$CAMPUS_POOL" "$PUBLIC_POOL" "$SERVICE_CIDR" "$POD_CIDR"; do
        ip -n "$CAMPUS_NS" route add "$net" via "$NODE_CAMPUS_IP"
    done
    ip netns exec "$NODE_NS" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.route_localnet=1
    ip netns exec "$NODE_NS" sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
    ip netns exec "$CAMPUS_NS" sysctl -qw net.ipv4.ip_forward=0
}

# node_bridge <name> <host port> <address in the node> <port in the node>:
# what listens on the host's 127.0.0.1:<host port> answers in the node at
# <address>:<port>, through a unix socket in the run's temp dir.
node_bridge() {
    local sock=$NODE_DIR/$1.sock
    start "bridge-$1" socat "UNIX-LISTEN:$sock,fork,unlink-early" "TCP:127.0.0.1:$2"
    start "bridge-$1-node" ip netns exec "$NODE_NS" \
        socat "TCP-LISTEN:$4,bind=$3,fork,reuseaddr" "UNIX-CONNECT:$sock"
}

node_bridges() {
    node_bridge apiserver "$API_PORT" "$NODE_IP" 6443
    node_bridge registry "$REG_PORT" 127.0.0.1 "$REG_PORT"
    node_bridge oidc-in-cluster "$DEX2_PORT" "$NODE_IP" "$DEX2_PORT"
}

node_cgroups() {
    local c
    for c in /sys/fs/cgroup/*/; do
        c=${c%/}
        [[ -d $c && ! -L $c ]] || continue
        mkdir -p "$c/$NODE_CGROUP"
        # A new cpuset cgroup has no CPUs or memory nodes until given its parent's.
        if [[ -e $c/cpuset.cpus ]]; then
            cat "$c/cpuset.cpus" >"$c/$NODE_CGROUP/cpuset.cpus"
            cat "$c/cpuset.mems" >"$c/$NODE_CGROUP/cpuset.mems"
        fi
    done
}

node_configs() {
    local N=$NODE_DIR
    mkdir -p "$N/cni/net.d" "$N/cni/ipam" "$N/kubelet" "$N/pod-logs" "$N/containerd" "$N/pv"
    cat >"$N/containerd/config.toml" <<EOF
version = 2
root = "$N/containerd/root"
state = "$N/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$N/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$N/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # This VM does not let even root lower oom_score_adj (runc fails with
  # "failed to update /proc/self/oom_score_adj: Permission denied"): keep
  # every container at or above containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$N/cni/net.d"
EOF
    cat >"$N/cni/net.d/10-berth.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "berth-testenv",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$N/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "10.244.0.1"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
    kubeconfig_at "$N/kubelet.kubeconfig" kubelet "https://$NODE_IP:6443"
    kubeconfig_at "$N/kube-proxy.kubeconfig" kube-proxy "https://$NODE_IP:6443"
    cat >"$N/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 on these machines: kubelet 1.35 refuses it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$NODE_CGROUP
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
containerRuntimeEndpoint: unix://$N/containerd.sock
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $P/kubelet-serving.crt
tlsPrivateKeyFile: $P/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $P/ca.crt}
# Only the apiserver holds a client certificate of the test CA's that the
# kubelet accepts; within the test world that is enough.
authorization: {mode: AlwaysAllow}
podLogsDir: $N/pod-logs
failSwapOn: false
resolvConf: ""
serializeImagePulls: false
# The run's temp dir shares the host's disk: never evict for disk pressure.
evictionHard: {memory.available: "100Mi", nodefs.available: "0%", imagefs.available: "0%", nodefs.inodesFree: "0%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
maxPods: 50
EOF
    # Tests steer Pods here by namespace (see the top of this file); with
    # TESTENV_PODS_ON=real (testenv/serve) every Pod comes here instead.
    if [[ ${TESTENV_PODS_ON:-kwok} != real ]]; then
        printf 'registerWithTaints:\n- {key: %s, value: "true", effect: NoSchedule}\n' \
            "$REAL_NODE_TAINT" >>"$N/kubelet.yaml"
    fi
    cat >"$N/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
clientConnection: {kubeconfig: $N/kube-proxy.kubeconfig}
# A network namespace cannot change the host-wide conntrack table size.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
EOF
    # The inside of the node: one shell in the node's network namespace and a
    # private mount namespace, parent of containerd, the kubelet and
    # kube-proxy; when it is stopped, so are they.
    cat >"$N/inside.sh" <<EOF
set -euo pipefail
mount --make-rslave /
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=755 tmpfs /var/log
mkdir -p /run/netns
trap 'trap - TERM INT; kill -TERM 0 2>/dev/null; wait' TERM INT
containerd --config "$N/containerd/config.toml" >"$D/logs/containerd.log" 2>&1 &
for _ in \$(seq 100); do [[ -S $N/containerd.sock ]] && break; sleep 0.1; done
ctr --address "$N/containerd.sock" -n k8s.io images import "$D/image/pause.tar" >"$D/logs/pause-import.log" 2>&1
"$K8S_BIN/kubelet" --config="$N/kubelet.yaml" --kubeconfig="$N/kubelet.kubeconfig" \\
    --root-dir="$N/kubelet" --cert-dir="$N/kubelet/pki" \\
    --hostname-override=$NODE_NAME --node-ip=$NODE_IP \\
    --node-labels=$REAL_NODE_LABEL >"$D/logs/kubelet.log" 2>&1 &
"$K8S_BIN/kube-proxy" --config="$N/kube-proxy.yaml" >"$D/logs/kube-proxy.log" 2>&1 &
# One of them stopping stops the node (and testenv/run's wait says so).
wait -n || true
echo "node: a node process exited; see containerd.log, kubelet.log, kube-proxy.log" >&2
trap - TERM INT
kill -TERM 0
EOF
}

# node_start: after the apiserver is ready. The Endpoints of the
# `kubernetes` Service point at the node's bridge to the apiserver, so Pods
# (Berth's own, in-cluster) reach it at 10.96.0.1:443 through kube-proxy.
node_start() {
    start node nsenter --net="/run/netns/$NODE_NS" unshare --mount --propagation unchanged \
        bash "$NODE_DIR/inside.sh"
    "$KUBECTL" apply -f - >"$D/logs/node-objects.log" 2>&1 <<EOF || { cat "$D/logs/node-objects.log" >&2; die "creating the node's objects failed"; }
apiVersion: v1
kind: Endpoints
metadata: {name: kubernetes, namespace: default}
subsets:
- addresses: [{ip: $NODE_IP}]
  ports: [{name: https, port: 6443, protocol: TCP}]
EOF
    # Pre-made volumes on the node's disk (a directory per volume in the temp
    # dir): claims without a storage class bind to them, and a file written
    # to one survives the Pod. No provisioner to build or run.
    local i
    for i in $(seq 1 12); do
        mkdir -p "$NODE_DIR/pv/pv-$i"
        chmod 0777 "$NODE_DIR/pv/pv-$i"
        cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: testenv-pv-$i
  labels: {berth.testenv/volume: "true"}
spec:
  capacity: {storage: $((i <= 8 ? 1 : 10))Gi}
  accessModes: [ReadWriteOnce, ReadWriteMany]
  persistentVolumeReclaimPolicy: Delete
  volumeMode: Filesystem
  hostPath: {path: $NODE_DIR/pv/pv-$i, type: Directory}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - {key: kubernetes.io/hostname, operator: In, values: [$NODE_NAME]}
EOF
    done >"$D/pvs.yaml"
    "$KUBECTL" create -f "$D/pvs.yaml" >>"$D/logs/node-objects.log" 2>&1 || { cat "$D/logs/node-objects.log" >&2; die "creating volumes failed"; }
}

real_node_ready() {
    [[ $("$KUBECTL" get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}

# node_cleanup: stop what the node left behind (containers outlive their
# shims' parent), then remove cgroups and namespaces. Safe to call twice.
node_cleanup() {
    [[ -n ${NODE_DIR:-} ]] || return 0
    pkill -KILL -f "containerd-shim.*$NODE_DIR" 2>/dev/null || true
    local c pid
    for c in /sys/fs/cgroup/*/"${NODE_CGROUP:-none}"; do
        [[ -d $c ]] || continue
        while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done < <(find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null)
    done
    sleep 0.2
    for c in /sys/fs/cgroup/*/"${NODE_CGROUP:-none}"; do
        [[ -d $c ]] || continue
        find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
    if [[ -n ${NODE_NETNS_MADE:-} ]]; then
        ip netns del "$NODE_NS" 2>/dev/null || true
        ip netns del "$CAMPUS_NS" 2>/dev/null || true
    fi
}

# node_metallb: MetalLB's controller with two pools shaped like Geddes': the
# campus pool assigns automatically; geddes-public-pool only when a Service
# names it (metallb.io/address-pool, or the older metallb.universe.tf/
# address-pool, which v0.15 still honours). It runs in the node's network
# namespace: its metrics listener binds every interface, and there it binds
# only the node's.
node_metallb() {
    "$KUBECTL" apply --server-side -f "$TESTENV_METALLB_CRDS" >"$D/logs/metallb-objects.log" 2>&1 ||
        { cat "$D/logs/metallb-objects.log" >&2; die "applying MetalLB's CRDs failed"; }
    "$KUBECTL" wait --for=condition=Established --timeout=60s crd/ipaddresspools.metallb.io \
        crd/communities.metallb.io >>"$D/logs/metallb-objects.log" 2>&1 ||
        { cat "$D/logs/metallb-objects.log" >&2; die "MetalLB's CRDs were not established"; }
    "$KUBECTL" apply -f - >>"$D/logs/metallb-objects.log" 2>&1 <<EOF || { cat "$D/logs/metallb-objects.log" >&2; die "creating MetalLB's pools failed"; }
apiVersion: v1
kind: Namespace
metadata: {name: metallb-system}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: geddes-campus-pool, namespace: metallb-system}
spec:
  addresses: [$CAMPUS_POOL]
  avoidBuggyIPs: true
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: geddes-public-pool, namespace: metallb-system}
spec:
  addresses: [$PUBLIC_POOL]
  autoAssign: false
  avoidBuggyIPs: true
EOF
    kubeconfig_at "$NODE_DIR/metallb.kubeconfig" admin "https://$NODE_IP:6443"
    METALLB_PORT=7472
    start metallb env -u METALLB_ML_SECRET_NAME -u METALLB_DEPLOYMENT \
        ip netns exec "$NODE_NS" "$TESTENV_METALLB" --kubeconfig "$NODE_DIR/metallb.kubeconfig" \
        --namespace metallb-system --webhook-mode disabled --disable-cert-rotation \
        --port "$METALLB_PORT" --log-level info
}

metallb_ready() {
    ip netns exec "$NODE_NS" curl -sf "http://127.0.0.1:$METALLB_PORT/metrics" |
        grep -q '^metallb_k8s_client_config_loaded_bool 1'
}

# node_route_pools_from_host: with TESTENV_PODS_ON=real (testenv/serve), the
# host routes the two pools to the node over its link, so a person's browser
# on this machine opens a workload's address as Berth shows it. The routes go
# with the link at exit. Tests don't need them (their clients stand in the
# campus namespace), and concurrent runs would fight over them.
node_route_pools_from_host() {
    local pool
    for pool in "$CAMPUS_POOL" "$PUBLIC_POOL"; do
        if ip -4 route show "$pool" | grep -q .; then
            log "warning: $pool is already routed on this host (another testenv/serve?); open addresses from $CAMPUS_NS instead"
            continue
        fi
        ip route add "$pool" via "$NODE_IP" dev "$NODE_VETH_HOST"
    done
}
