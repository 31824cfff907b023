"""The function app: one FunctionApp that registers the blueprints in handlers/. Nothing else."""

import azure.functions as func

app = func.FunctionApp()
