#!/usr/bin/env bash
# azd preprovision hook (azure.yaml), before every `azd provision` / `azd up`:
#
# 1. Regenerate infra/rules.generated.json from the rules file (azd environment value
#    AUTOPILOT_RULES_FILE; default: the file it was generated from), so that the vaults and policies
#    Bicep deploys are exactly those of the rules the app reads (AUTOPILOT_RULES). It prints which
#    vaults this deployment handles and which it skips (other subscriptions).
# 2. Give the azd environment an HMAC secret for the backup-now API once (AUTOPILOT_HMAC_SECRET);
#    Bicep stores it in Key Vault. It stays the same on later provisions.
#
# Needs Python 3.11 with PyYAML (the project's .venv, made by `make setup`, or python3).
# azd runs hooks with sh; this script needs bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi

args=()
if [ -n "${AUTOPILOT_RULES_FILE:-}" ]; then args+=(--rules "$AUTOPILOT_RULES_FILE"); fi
# The rules' vault templates are expanded for these subscriptions (comma-separated ids; empty: as before).
if [ -n "${AUTOPILOT_TEMPLATE_SUBSCRIPTIONS:-}" ]; then args+=(--subscriptions "$AUTOPILOT_TEMPLATE_SUBSCRIPTIONS"); fi
if [ -n "${AZURE_SUBSCRIPTION_ID:-}" ]; then
  args+=(--subscription "$AZURE_SUBSCRIPTION_ID" --other-subscriptions "${AUTOPILOT_VAULTS_OTHER_SUBSCRIPTIONS:-false}")
fi
"$python" scripts/rules_to_bicep_params.py "${args[@]}"

if [ -z "$(azd env get-value AUTOPILOT_HMAC_SECRET 2>/dev/null || true)" ]; then
  echo "preprovision: generating the backup-now HMAC secret (AUTOPILOT_HMAC_SECRET) for this azd environment"
  azd env set AUTOPILOT_HMAC_SECRET "$("$python" -c 'import secrets; print(secrets.token_urlsafe(48))')"
fi
