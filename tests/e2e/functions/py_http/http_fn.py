# http_fn.py - the Python function of the HTTP trigger tests (test_http_triggers.py) and the HTTP
# trigger benchmark (runtime python3.x, handler http_fn.handler). It receives payload format 2.0
# events; the query parameter (or header x-mode) "mode" picks the answer.
import base64
import json
import time


def _raw_body(event):
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()


def handler(event, context):
    qs = event.get("queryStringParameters") or {}
    mode = qs.get("mode") or (event.get("headers") or {}).get("x-mode") or "echo"
    if mode == "echo":
        return {"statusCode": 200, "headers": {"content-type": "application/json"},
                "body": json.dumps(event)}
    if mode == "reverse":  # binary round trip: the body reversed, base64 out
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(_raw_body(event)[::-1]).decode(),
                "isBase64Encoded": True}
    if mode == "cookies":
        return {"statusCode": 201, "cookies": ["a=1; Max-Age=60", "b=2; Path=/"],
                "headers": {"x-multi": "v1,v2", "content-type": "text/plain"}, "body": "made"}
    if mode == "bare":
        return {"hello": "world", "n": 1}
    if mode == "string":
        return "hi"
    if mode == "error":
        raise RuntimeError("boom")
    if mode == "sleep":
        time.sleep(10)
        return "late"
    if mode == "size":
        raw = _raw_body(event)
        return {"statusCode": 200, "body": json.dumps({"len": len(raw), "b64": event["isBase64Encoded"]})}
    if mode == "tiny":
        return {"statusCode": 200, "body": "ok"}
    return {"statusCode": 400, "body": "unknown mode"}
