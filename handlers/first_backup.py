"""The first backups that wait for a new VM's agent: a queue trigger looks at the VM again."""

import logging

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger("handlers.first_backup")


@bp.function_name("first_backup_due")
@bp.queue_trigger(arg_name="message", queue_name="%FIRST_BACKUP_QUEUE%", connection="AzureWebJobsStorage")
def first_backup_due(message: func.QueueMessage) -> None:
    from autopilot.app import get_autopilot
    from autopilot.protect import first_backup

    text = message.get_body().decode("utf-8", errors="replace")
    data = first_backup.parse(text)
    if data is None:
        log.warning("set aside a first-backup message that is not one (id %s): %.200r", message.id, text)
        return
    log.info("first backup of %s: %s", data["vmId"], first_backup.due(get_autopilot(), data))
