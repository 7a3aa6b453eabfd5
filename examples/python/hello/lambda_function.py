# lambda_function.py - the Python "hello" example (runtime python3.x, handler
# lambda_function.handler): greets the event's "name", echoes the context fields a function can
# see, logs through print() and the logging module, and raises when the event has "fail": true.
import logging
import os

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)  # Lambda leaves the root logger at WARNING


def handler(event, context):
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    print("hello from python, request", context.aws_request_id)
    logger.info("event: %s", event)
    if isinstance(event, dict) and event.get("fail"):
        raise ValueError("the event asked me to fail")
    client_context = context.client_context
    return {
        "message": "Hello, %s!" % name,
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "invoked_function_arn": context.invoked_function_arn,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_time_in_millis": context.get_remaining_time_in_millis(),
        "client_context_custom": client_context.custom if client_context else None,
        "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
    }
