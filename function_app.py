"""The function app: one FunctionApp that registers the blueprints in handlers/. Nothing else."""

import azure.functions as func

from handlers import backup_now, drills, first_backup, protect_on_create, retention, sweep

app = func.FunctionApp()
app.register_functions(protect_on_create.bp)
app.register_functions(backup_now.bp)
app.register_functions(sweep.bp)
app.register_functions(retention.bp)
app.register_functions(first_backup.bp)
app.register_functions(drills.bp)
