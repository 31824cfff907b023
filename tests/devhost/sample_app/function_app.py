"""A small function app that only devhost's tests use: one of each trigger devhost runs."""

import azure.functions as func
from sample_http import bp
from sample_journal import record

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(bp)


@app.event_grid_trigger(arg_name="event")
def on_event(event: func.EventGridEvent) -> None:
    if isinstance(event, func.CloudEvent):
        record(
            "on_event",
            schema="cloudevents",
            id=event.id,
            type=event.type,
            source=event.source,
            subject=event.subject,
            data=event.get_json(),
        )
    else:
        record(
            "on_event",
            schema="eventgrid",
            id=event.id,
            subject=event.subject,
            event_type=event.event_type,
            topic=event.topic,
            data=event.get_json(),
            data_version=event.data_version,
            event_time=event.event_time,
        )
    if "fail" in (event.subject or ""):
        raise RuntimeError(f"cannot handle {event.subject}")


@app.timer_trigger(arg_name="timer", schedule="%TICK_SCHEDULE%")
def tick(timer: func.TimerRequest) -> None:
    record("tick", past_due=timer.past_due)


@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True)
def on_startup(timer: func.TimerRequest) -> None:
    record("on_startup", past_due=timer.past_due)


@app.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="out", queue_name="results", connection="AzureWebJobsStorage")
def on_work(msg: func.QueueMessage, out: func.Out[str], context: func.Context) -> None:
    body = msg.get_body().decode()
    record(
        "on_work",
        body=body,
        id=msg.id,
        dequeue_count=msg.dequeue_count,
        inserted=msg.insertion_time is not None,
        invocation_id=context.invocation_id,
    )
    out.set(f"done:{body}")


@app.queue_trigger(arg_name="msg", queue_name="doomed", connection="AzureWebJobsStorage")
def always_fails(msg: func.QueueMessage) -> None:
    record("always_fails", body=msg.get_body().decode(), dequeue_count=msg.dequeue_count)
    raise RuntimeError("this message can never be handled")
