#!/usr/bin/env bash
# testenv/selftest.sh — checks that a running testenv does what README.md
# promises. Run it inside the environment:
#
#   testenv/run -- testenv/selftest.sh
#
# Ends with "N passed, N failed" and exits non-zero if anything failed.
set -uo pipefail

: "${KUBECONFIG:?run me via testenv/run}"
pass=0 fail=0
ok() { echo "ok   - $*"; pass=$((pass + 1)); }
bad() { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { # check <description> <cmd>...
    local d=$1
    shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}
# eventually <seconds> <cmd>...: poll until cmd succeeds (no blind sleeps)
eventually() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.25
    done
}
NS=testenv-selftest-$$
work=$(mktemp -d)
trap 'kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1; rm -rf "$work"' EXIT

# --- Kubernetes -----------------------------------------------------------------
ready_nodes() { [[ $(kubectl get nodes --no-headers | awk '$2 == "Ready"' | wc -l) -eq 2 ]]; }
check "2 Ready nodes" ready_nodes
version_is_built() { [[ $(kubectl get --raw /version | grep -o '"gitVersion": *"[^"]*"') == *"\"$TESTENV_KUBE_VERSION\""* ]]; }
check "/version reports $TESTENV_KUBE_VERSION" version_is_built
kubectl_is_built() { [[ $(command -v kubectl) == "$TESTENV_KUBECTL" ]]; }
check "kubectl on PATH is the built one" kubectl_is_built

kubectl create namespace "$NS" >/dev/null
kubectl -n "$NS" create deployment demo --image="$TESTENV_IMAGE" --replicas=2 >/dev/null
running_pods() { [[ $(kubectl -n "$NS" get pods -l app=demo --field-selector=status.phase=Running --no-headers 2>/dev/null | wc -l) -eq 2 ]]; }
check "deployment pods Running on KWOK nodes" eventually 60 running_pods
on_kwok() { kubectl -n "$NS" get pods -l app=demo -o jsonpath='{.items[*].spec.nodeName}' | grep -q kwok-node-; }
check "pods are bound to kwok-node-*" on_kwok
pod_log() { kubectl -n "$NS" logs deploy/demo --tail=5 2>/dev/null | grep -q 'add-two: listening'; }
check "kubectl logs serves the fake container log (TESTENV_POD_LOG)" eventually 30 pod_log

token_request() { [[ $(kubectl -n "$NS" create token default --duration=10m) == eyJ* ]]; }
check "TokenRequest works (kubectl create token)" token_request

# ResourceQuota: the controller computes status, admission refuses over-quota pods.
kubectl -n "$NS" create quota q --hard=requests.cpu=1,limits.cpu=1,pods=5 >/dev/null
quota_used() { [[ -n $(kubectl -n "$NS" get quota q -o jsonpath='{.status.used.pods}') ]]; }
check "ResourceQuota status computed by the controller-manager" eventually 60 quota_used
if kubectl -n "$NS" run big --image="$TESTENV_IMAGE" --restart=Never \
    --overrides='{"spec":{"containers":[{"name":"big","image":"'"$TESTENV_IMAGE"'","resources":{"requests":{"cpu":"2"},"limits":{"cpu":"2"}}}]}}' \
    >"$work/quota.out" 2>&1; then
    bad "over-quota pod refused (it was created)"
else
    check "over-quota pod refused (exceeded quota)" grep -q "exceeded quota" "$work/quota.out"
fi

# LimitRanger: defaults are applied at admission.
kubectl -n "$NS" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: LimitRange
metadata: {name: defaults}
spec:
  limits:
  - type: Container
    default: {cpu: 100m, memory: 64Mi}
    defaultRequest: {cpu: 50m, memory: 32Mi}
EOF
kubectl -n "$NS" run small --image="$TESTENV_IMAGE" --restart=Never >/dev/null 2>&1
limits_defaulted() { [[ $(kubectl -n "$NS" get pod small -o jsonpath='{.spec.containers[0].resources.requests.cpu}') == 50m ]]; }
check "LimitRange defaults applied" limits_defaulted

# Garbage collector: deleting the Deployment removes its ReplicaSet and pods.
kubectl -n "$NS" delete deployment demo --wait=false >/dev/null
no_rs() { [[ -z $(kubectl -n "$NS" get rs -o name) ]]; }
check "garbage collector removes the ReplicaSet" eventually 60 no_rs

# --- registry -----------------------------------------------------------------
accept='application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json'
murl="http://$TESTENV_REGISTRY/v2/demo/add-two/manifests/1.0"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $accept" "$murl")
check "registry: manifest without credentials → 401 (got $code)" test "$code" = 401
curl -s -D "$work/h" -o "$work/manifest" -u "$TESTENV_REGISTRY_USER:$TESTENV_REGISTRY_PASSWORD" -H "Accept: $accept" "$murl"
check "registry: manifest with credentials → 200" grep -q '^HTTP/1.1 200' "$work/h"
check "registry: Docker-Content-Digest = TESTENV_IMAGE_DIGEST" grep -qi "^Docker-Content-Digest: $TESTENV_IMAGE_DIGEST" "$work/h"
check "registry: schema 2 manifest" grep -q '"schemaVersion":2' "$work/manifest"
check "registry binary exported" test -x "$TESTENV_REGISTRY_BIN"

# --- Dex --------------------------------------------------------------------------
curl -sf "$TESTENV_OIDC_ISSUER/.well-known/openid-configuration" >"$work/discovery"
check "Dex discovery answers with our issuer" grep -q "\"issuer\": *\"$TESTENV_OIDC_ISSUER\"" "$work/discovery"

# Log each user in exactly as an HTTP client (e.g. Berth's tests) would.
origin=${TESTENV_OIDC_ISSUER%"${TESTENV_OIDC_ISSUER#http://*/}"} # http://host:port/
origin=${origin%/}
dex_login() { # dex_login <email> <password> → prints the code, or fails
    local jar=$work/jar.$RANDOM redirect=http://localhost:45678/auth/callback loc
    # 1. authorize: Dex 302s (single connector) to its login form; follow it.
    local form
    form=$(curl -s -L -c "$jar" -b "$jar" -G "$TESTENV_OIDC_ISSUER/auth" \
        --data-urlencode client_id="$TESTENV_OIDC_CLIENT_ID" --data-urlencode response_type=code \
        --data-urlencode scope="openid email profile" --data-urlencode redirect_uri="$redirect" \
        --data-urlencode state=st4te)
    local action
    action=$(grep -o 'action="[^"]*"' <<<"$form" | head -1 | sed 's/^action="//; s/"$//; s/&amp;/\&/g')
    [[ -n $action ]] || return 1
    # 2. post the form; with skipApprovalScreen Dex 303s to redirect_uri?code=…&state=…
    loc=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" \
        --data-urlencode login="$1" --data-urlencode password="$2" "$origin$action")
    [[ $loc == "$redirect?code="*"&state=st4te" ]] || return 1
    local c=${loc#*code=}
    echo "${c%%&*}"
}
# id_token_names <base64 payload> <email>: the payload's email claim is <email>.
id_token_names() { [[ $(base64 -d <<<"$1" 2>/dev/null) == *"\"email\":\"$2\""* ]]; }
IFS=, read -ra users <<<"$TESTENV_OIDC_USERS"
for u in "${users[@]}"; do
    email=${u%%:*} pw=${u#*:}
    if code=$(dex_login "$email" "$pw"); then
        tok=$(curl -s -u "$TESTENV_OIDC_CLIENT_ID:$TESTENV_OIDC_CLIENT_SECRET" \
            -d grant_type=authorization_code -d code="$code" \
            -d redirect_uri=http://localhost:45678/auth/callback "$TESTENV_OIDC_ISSUER/token")
        idt=$(sed -n 's/.*"id_token":"\([^"]*\)".*/\1/p' <<<"$tok" | cut -d. -f2 | tr '_-' '/+')
        while ((${#idt} % 4)); do idt+="="; done
        check "Dex login + token exchange for $email (id_token email claim)" id_token_names "$idt" "$email"
    else
        bad "Dex login for $email"
    fi
done
if dex_login "${users[0]%%:*}" wrong-password >/dev/null; then
    bad "Dex rejects a wrong password"
else
    ok "Dex rejects a wrong password"
fi

# --- namespace lifecycle (namespace controller) --------------------------------
kubectl delete namespace "$NS" --wait=false >/dev/null
ns_gone() { ! kubectl get namespace "$NS" >/dev/null 2>&1; }
check "namespace deletion completes" eventually 90 ns_gone

echo "$pass passed, $fail failed"
((fail == 0))
