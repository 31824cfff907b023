#!/usr/bin/env bash
# azd postprovision hook (azure.yaml), after main.bicep: deploy the rules file's Recovery Services
# vaults and backup policies, and its restore drills' staging resource groups and storage accounts
# (infra/vaults.bicep), in a subscription deployment of its own.
#
# Why not in main.bicep: the vaults hold the backups and must outlive the app, and `azd down`
# deletes every resource group its deployment touched (whatever else it holds). This deployment is
# unknown to azd, so `azd down` leaves the vaults, their resource groups and their backups alone.
#
# azd environment values it reads: AUTOPILOT_VAULT_MODE (create | existing, default create),
# AUTOPILOT_VAULTS_OTHER_SUBSCRIPTIONS (true | false, default false), AUTOPILOT_DEPLOY_VAULTS
# (false: skip this step, e.g. when someone else manages the vaults).
# Needs: az (logged in; it installs the Bicep CLI on first use).
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
cd "$(dirname "$0")/../.."

for name in AZURE_ENV_NAME AZURE_LOCATION AUTOPILOT_IDENTITY_PRINCIPAL_ID AZURE_LOG_ANALYTICS_WORKSPACE_ID; do
  if [ -z "${!name:-}" ]; then
    echo "postprovision: $name is not set; run this through azd (azd provision), or first: eval \"\$(azd env get-values)\"" >&2
    exit 1
  fi
done

if [ "${AUTOPILOT_DEPLOY_VAULTS:-true}" = "false" ]; then
  echo "postprovision: AUTOPILOT_DEPLOY_VAULTS=false: vaults and policies are left to you (docs/DEPLOY.md)"
  exit 0
fi

subscription="${AZURE_SUBSCRIPTION_ID:-$(az account show --query id --output tsv)}"
deployment="autopilot-vaults-$(printf '%s' "$AZURE_ENV_NAME" | cut -c1-47)"

echo "postprovision: deploying the vaults, policies and drill staging of the rules file (infra/vaults.bicep, deployment $deployment)"
az deployment sub create \
  --subscription "$subscription" \
  --name "$deployment" \
  --location "$AZURE_LOCATION" \
  --template-file infra/vaults.bicep \
  --parameters \
  environmentName="$AZURE_ENV_NAME" \
  principalId="$AUTOPILOT_IDENTITY_PRINCIPAL_ID" \
  workspaceId="$AZURE_LOG_ANALYTICS_WORKSPACE_ID" \
  vaultMode="${AUTOPILOT_VAULT_MODE:-create}" \
  includeOtherSubscriptionVaults="${AUTOPILOT_VAULTS_OTHER_SUBSCRIPTIONS:-false}" \
  --query 'properties.outputs' \
  --output json
