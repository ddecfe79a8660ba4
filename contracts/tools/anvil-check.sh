#!/usr/bin/env bash
# Deploys the contracts to a real anvil chain with script/Deploy.s.sol and runs one deal
# through them over JSON-RPC with cast (RP agree, JC agree, addResult, acceptResult),
# checking every balance change to the wei and the final state. This is the deployment
# path operators use, on a real node, outside forge's test EVM.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=node_modules/@foundry-rs
ANVIL=$BIN/anvil-linux-amd64/bin/anvil
FORGE=$BIN/forge-linux-amd64/bin/forge
CAST=$BIN/cast-linux-amd64/bin/cast

log=$(mktemp)
anvil_pid=
trap 'kill $anvil_pid 2>/dev/null || true; rm -f "$log"' EXIT
# A random loopback port; another one if it is taken.
for _ in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 20000))
  "$ANVIL" --host 127.0.0.1 --port "$port" >"$log" 2>&1 &
  anvil_pid=$!
  export ETH_RPC_URL="http://127.0.0.1:$port"
  # Ready once *our* anvil says it is listening (a port taken by another node must
  # not be mistaken for ours).
  for _ in $(seq 1 50); do
    grep -q "Listening on" "$log" && break 2
    kill -0 "$anvil_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$anvil_pid" 2>/dev/null || true
done
grep -q "Listening on" "$log" && "$CAST" chain-id >/dev/null || {
  cat "$log"
  echo "anvil did not start" >&2
  exit 1
}

# anvil's development accounts, unlocked, so only the deployer needs a key: the first
# account's, which anvil's default mnemonic makes public knowledge.
read -r DEPLOYER SOLVER RP JC MEDIATOR _ < <("$CAST" rpc eth_accounts | tr -d '[]"' | tr ',' ' ')
DEPLOYER_KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80

echo "deploying to anvil on 127.0.0.1:$port"
addresses=$(WEB3_PRIVATE_KEY=$DEPLOYER_KEY "$FORGE" script script/Deploy.s.sol:Deploy \
  --rpc-url "$ETH_RPC_URL" --broadcast 2>&1 | grep -E '^ +WEB3_[A-Z_]+=0x' | sed 's/^ *//')
eval "$addresses"
echo "$addresses"
: "${WEB3_CONTROLLER_ADDRESS:?deployment printed no controller address}"

send() { "$CAST" send --unlocked --from "$1" "${@:2}" >/dev/null; }
balance() { "$CAST" call "$WEB3_TOKEN_ADDRESS" "balanceOf(address)(uint256)" "$1" | awk '{print $1}'; }

# Fund and approve.
for who in $RP $JC; do
  send "$DEPLOYER" "$WEB3_TOKEN_ADDRESS" "transfer(address,uint256)" "$who" 1000
  send "$who" "$WEB3_TOKEN_ADDRESS" "approve(address,uint256)" "$WEB3_PAYMENTS_ADDRESS" 1000
done

# price 10, payment collateral 30, multiple 4, fee 5, Cs 7, Cj 11, 2 instructions:
# cost 20, results collateral 80.
TERMS_TYPE='((address,address,address,address),((uint256,uint256),(uint256,uint256),(uint256,uint256),(uint256,uint256)),(uint256,uint256,uint256,uint256))'
TERMS="(($SOLVER,$JC,$RP,$MEDIATOR),((100,0),(200,7),(300,11),(400,0)),(10,30,4,5))"
DEAL=$("$CAST" keccak "anvil-check deal")
RESULTS=$("$CAST" keccak "results")

rp0=$(balance $RP); jc0=$(balance $JC)
send "$RP" "$WEB3_CONTROLLER_ADDRESS" "agree(bytes32,$TERMS_TYPE)" "$DEAL" "$TERMS"
send "$JC" "$WEB3_CONTROLLER_ADDRESS" "agree(bytes32,$TERMS_TYPE)" "$DEAL" "$TERMS"
[ "$(balance "$WEB3_PAYMENTS_ADDRESS")" = 48 ] || { echo "escrow after agreeing: want 48" >&2; exit 1; }
send "$RP" "$WEB3_CONTROLLER_ADDRESS" "addResult(bytes32,$TERMS_TYPE,bytes32,uint64)" "$DEAL" "$TERMS" "$RESULTS" 2
send "$JC" "$WEB3_CONTROLLER_ADDRESS" "acceptResult(bytes32,$TERMS_TYPE)" "$DEAL" "$TERMS"

key=$("$CAST" call "$WEB3_CONTROLLER_ADDRESS" "dealKey(bytes32,$TERMS_TYPE)(bytes32)" "$DEAL" "$TERMS")
state=$("$CAST" call "$WEB3_STORAGE_ADDRESS" "stateOf(bytes32)(uint8)" "$key")
rp_delta=$(( $(balance $RP) - rp0 )); jc_delta=$(( $(balance $JC) - jc0 ))
escrow=$(balance "$WEB3_PAYMENTS_ADDRESS")
echo "final state $state (3 = ResultsAccepted); RP $rp_delta, JC $jc_delta, escrow $escrow"
[ "$state" = 3 ] && [ "$rp_delta" = 20 ] && [ "$jc_delta" = -20 ] && [ "$escrow" = 0 ] || {
  echo "anvil check failed: want state 3, RP +20, JC -20, escrow 0" >&2
  exit 1
}
echo "anvil check passed"
