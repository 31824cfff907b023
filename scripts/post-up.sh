#!/usr/bin/env bash
# azd postup hook (azure.yaml): subscribe the function's Event Grid trigger (protect_on_create) to
# the VM writes and deletes of the subscription's Event Grid system topic.
#
# It runs after `azd up` because the webhook URL carries the function's `eventgrid_extension`
# system key, which exists only once the deployed app's host has started. The subscription's
# filter, retries and dead-lettering are declared in infra/eventgrid-subscription.json; this script
# fills in the URL and PUTs it (create or update, so re-running it is safe, e.g. after `azd deploy`
# or after rotating the key).
#
# Needs: az (logged in to the deployment's tenant), curl, python3. Reads the azd environment's
# values (azd passes them to hooks; by hand: `eval "$(azd env get-values)"` first). To use an
# existing system topic (Azure allows one per subscription), or one of another subscription in scope,
# set AUTOPILOT_SYSTEM_TOPIC_NAME, AUTOPILOT_SYSTEM_TOPIC_RESOURCE_GROUP and, for another
# subscription, AUTOPILOT_SYSTEM_TOPIC_SUBSCRIPTION.
# azd runs hooks with sh; this script needs bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  if [ -z "${!1:-}" ]; then
    echo "post-up: $1 is not set; run this through azd (azd up), or first: eval \"\$(azd env get-values)\"" >&2
    exit 1
  fi
}
need AZURE_RESOURCE_GROUP
need AZURE_FUNCTION_APP_NAME
need AZURE_FUNCTION_APP_HOSTNAME

app="$AZURE_FUNCTION_APP_NAME"
app_rg="$AZURE_RESOURCE_GROUP"
host="$AZURE_FUNCTION_APP_HOSTNAME"
topic="${AUTOPILOT_SYSTEM_TOPIC_NAME:-${EVENTGRID_SYSTEM_TOPIC_NAME:-}}"
topic_rg="${AUTOPILOT_SYSTEM_TOPIC_RESOURCE_GROUP:-$app_rg}"
subscription="${AUTOPILOT_SYSTEM_TOPIC_SUBSCRIPTION:-${AZURE_SUBSCRIPTION_ID:-$(az account show --query id -o tsv)}}"
subscription_name="protect-on-create"
api_version="2025-02-15"

if [ -z "$topic" ]; then
  echo "post-up: no Event Grid system topic (createSystemTopic is false): set AUTOPILOT_SYSTEM_TOPIC_NAME and" >&2
  echo "         AUTOPILOT_SYSTEM_TOPIC_RESOURCE_GROUP to the subscription's existing one and run $0 again." >&2
  exit 1
fi

if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi

# 1. The Event Grid extension's system key. The host creates it when it starts with an Event Grid
#    trigger, so wake the host (the OpenAPI document needs no key) until the key is there.
echo "post-up: waiting for the eventgrid_extension system key of $app"
key=""
for _ in $(seq 1 30); do
  key="$(az functionapp keys list --resource-group "$app_rg" --name "$app" \
    --query 'systemKeys.eventgrid_extension' --output tsv 2>/dev/null || true)"
  if [ -n "$key" ]; then break; fi
  curl --silent --show-error --output /dev/null --max-time 60 "https://$host/api/openapi.json" || true
  sleep 10
done
if [ -z "$key" ]; then
  echo "post-up: the app has no eventgrid_extension system key after 5 minutes; is the code deployed" >&2
  echo "         (azd deploy) and does the host start (Application Insights > Failures)? Then run $0 again." >&2
  exit 1
fi

# 2. Dead-lettering writes with the system topic's managed identity; a topic without one (an
#    existing topic) gets no dead-letter destination.
deadletter_storage="${EVENTGRID_DEADLETTER_STORAGE_ID:-}"
deadletter_container="${EVENTGRID_DEADLETTER_CONTAINER:-}"
identity="$(az eventgrid system-topic show --subscription "$subscription" --resource-group "$topic_rg" --name "$topic" \
  --query 'identity.type' --output tsv 2>/dev/null || true)"
if [ "$identity" != "SystemAssigned" ] && [ "$identity" != "SystemAssigned, UserAssigned" ]; then
  echo "post-up: warning: system topic $topic has no system-assigned identity; events that cannot be delivered" >&2
  echo "         after the retries are dropped (the sweep still finds their VMs)." >&2
  deadletter_storage=""
  deadletter_container=""
fi

# 3. The body (infra/eventgrid-subscription.json with the URL filled in), in a private temp file.
umask 077
body="$(mktemp)"
trap 'rm -f "$body"' EXIT
AUTOPILOT_EVENTGRID_KEY="$key" "$python" scripts/eventgrid_subscription.py \
  --host "$host" \
  --deadletter-storage-id "$deadletter_storage" \
  --deadletter-container "$deadletter_container" >"$body"

url="/subscriptions/$subscription/resourceGroups/$topic_rg/providers/Microsoft.EventGrid/systemTopics/$topic/eventSubscriptions/$subscription_name?api-version=$api_version"
echo "post-up: subscribing $app/protect_on_create to VM writes and deletes of $topic"
az rest --method put --url "$url" --body "@$body" --output none

# 4. Event Grid validates the webhook (the Functions host answers the handshake) before the
#    subscription succeeds.
state=""
for _ in $(seq 1 30); do
  state="$(az rest --method get --url "$url" --query 'properties.provisioningState' --output tsv 2>/dev/null || true)"
  case "$state" in
    Succeeded | Failed | Canceled) break ;;
  esac
  sleep 5
done
if [ "$state" != "Succeeded" ]; then
  echo "post-up: the event subscription ended as '${state:-unknown}'; see the system topic's event subscription" >&2
  echo "         in the portal (webhook validation needs the deployed app to answer)." >&2
  exit 1
fi
echo "post-up: event subscription $subscription_name is ready; new VMs are protected within seconds"
