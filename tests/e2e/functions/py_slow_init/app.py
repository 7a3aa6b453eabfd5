# app.py - a Python function whose import takes INIT_SLEEP seconds (handler app.handler): a cold
# start that outlives the function's timeout must still answer the caller by the timeout.
import os
import time

time.sleep(float(os.environ.get("INIT_SLEEP", "0")))


def handler(event, context):
    return {"initialised": True}
