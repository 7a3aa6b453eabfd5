# bootstrap.py - nimbus' runtime for `python3.x` functions: the Lambda Runtime API loop, stdlib only.
#
# Started as `/usr/bin/python3 /var/runtime/python/bootstrap.py` with Lambda's environment. It loads
# the handler named by _HANDLER ("module.function"; the module may be a dotted or slashed package
# path) from LAMBDA_TASK_ROOT, then serves invocations for ever over one keep-alive HTTP connection
# to AWS_LAMBDA_RUNTIME_API: GET next -> handler(event, context) -> POST response or error, the POST
# and the following GET next in one write (HTTP/1.1 pipelining, like runtimes/c; RuntimeClient).
#
# It follows the official runtime (awslambdaric) in what a function can observe: error types and
# messages, the error document, the context object, the root logger's format, the "[ERROR] ..." log
# record. Differences are listed in runtimes/README.md. It does not do response streaming,
# SnapStart hooks, X-Ray cause headers or the telemetry log fd.
#
# Invariants: stdout and stderr are line-buffered, and every log record this file writes goes to
# stdout, so print(), logging and error records reach the function's log in the order written.

import http.client
import importlib
import io
import json
import logging
import os
import socket
import sys
import time
import urllib.parse

RUNTIME_PREFIX = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
ERROR_LOG_LINE_TERMINATE = "\r"  # one log record per error, like the official runtime
ERROR_LOG_IDENT = "\u00a0"  # NO-BREAK SPACE keeps the traceback's indentation in log viewers
USER_AGENT = "nimbus-python/%d.%d.%d" % sys.version_info[:3]

_current_request_id = None
_current_tenant_id = None


class FaultException(Exception):
    """A failure the runtime itself classifies (errorType Runtime.*), as in awslambdaric."""

    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type, msg, trace=None):
        super().__init__(msg)
        self.msg = msg
        self.exception_type = exception_type
        self.trace = trace


class RuntimeAPIError(Exception):
    pass


# ---- the Runtime API client ------------------------------------------------------------------


class _KeptReader(io.BufferedReader):
    """The connection's one read buffer. http.client.HTTPResponse closes its file once a body is
    read; this one stays open, so the bytes of a pipelined reply behind it stay buffered."""

    def close(self):
        pass

    def really_close(self):
        io.BufferedReader.close(self)


class _Connection:
    """A TCP connection to the Runtime API. Replies are parsed by http.client.HTTPResponse, one
    per request, all reading the same buffer (makefile() is what HTTPResponse calls)."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fp = _KeptReader(self.sock.makefile("rb", buffering=0), 65536)
        self.reused = False  # a reply was read on it: the peer may have closed it since

    def makefile(self, mode):
        return self.fp

    def send(self, parts):
        """Writes parts (bytes-like) with as few sendmsg calls as the socket allows."""
        views = [memoryview(b) for b in parts if len(b)]
        while views:
            n = self.sock.sendmsg(views)
            while views and n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            if n:
                views[0] = views[0][n:]

    def read_reply(self, method):
        """One reply: (status, headers, body). Raises RemoteDisconnected (a ConnectionResetError)
        when the connection closed before any byte of it."""
        resp = http.client.HTTPResponse(self, method=method)
        resp.begin()
        data = resp.read()
        self.reused = True
        return resp, data

    def close(self):
        self.fp.really_close()
        self.sock.close()


class RuntimeClient:
    """One keep-alive HTTP/1.1 connection to the Runtime API. The outcome of an invocation (POST
    response or error) and the following GET next go out in one write (HTTP/1.1 pipelining, as
    runtimes/c does): the platform then holds its 202 and sends it with the next invocation, so
    the instance is never between two calls while the platform could hand it work. next_sent says
    that GET is in flight. A request on a *reused* connection that closed before any reply byte
    arrived (the peer timed it out) is sent once more on a fresh connection."""

    def __init__(self, address):
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise RuntimeAPIError("bad AWS_LAMBDA_RUNTIME_API '%s'" % address)
        self.host = host.strip("[]")
        self.port = int(port)
        self.conn = None
        self.next_sent = False
        self._head_common = ("Host: %s\r\nUser-Agent: %s\r\n" % (address, USER_AGENT)).encode(
            "latin-1"
        )
        self._next_head = self._head("GET", RUNTIME_PREFIX + "/invocation/next", None, None)

    def _head(self, method, path, body, headers):
        lines = ["%s %s HTTP/1.1\r\n" % (method, path)]
        if headers:
            lines.extend("%s: %s\r\n" % kv for kv in headers.items())
        if body is not None:
            lines.append("Content-Length: %d\r\n" % len(body))
        lines.append("\r\n")
        first, rest = lines[0], "".join(lines[1:])
        return first.encode("latin-1") + self._head_common + rest.encode("latin-1")

    def _close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.next_sent = False

    def _read(self, method):
        resp, data = self.conn.read_reply(method)
        if resp.will_close:
            self._close()
        return resp.status, resp.headers, data

    def _request(self, method, path, body=None, headers=None, then_next=False):
        parts = [self._head(method, path, body, headers)]
        if body is not None:
            parts.append(body)
        if then_next:
            parts.append(self._next_head)
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = _Connection(self.host, self.port)
            reused = self.conn.reused
            try:
                self.conn.send(parts)
                reply = self._read(method)
            except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
                # a kept-alive connection the peer closed meanwhile: retry once on a new one
                # (RemoteDisconnected, "closed without a response", is a ConnectionResetError)
                self._close()
                if not reused or attempt:
                    raise
                continue
            except Exception:
                self._close()
                raise
            # a reply that closed the connection also dropped the GET behind it
            self.next_sent = then_next and self.conn is not None
            return reply
        raise AssertionError("unreachable")

    def _read_next(self):
        """The reply to the GET next that went out with the last POST; if the connection closed
        before any of it arrived, asks again on a fresh one."""
        self.next_sent = False
        try:
            return self._read("GET")
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            self._close()
        except Exception:
            self._close()
            raise
        return self._request("GET", RUNTIME_PREFIX + "/invocation/next")

    def wait_next_invocation(self):
        if self.next_sent:
            status, headers, body = self._read_next()
        else:
            status, headers, body = self._request("GET", RUNTIME_PREFIX + "/invocation/next")
        if status != 200:
            raise RuntimeAPIError(
                "GET invocation/next answered %d: %s" % (status, body.decode("utf-8", "replace"))
            )
        return body, headers

    def _post(self, path, body, headers, then_next=False):
        status, _, data = self._request("POST", path, body, headers, then_next)
        if status >= 500:
            raise RuntimeAPIError(
                "POST %s answered %d: %s" % (path, status, data.decode("utf-8", "replace"))
            )
        if status != 202:
            # e.g. 413 for a response over 6 MB: the platform reports it to the caller
            sys.stderr.write(
                "nimbus-runtime: POST %s answered %d: %s\n"
                % (path, status, data.decode("utf-8", "replace"))
            )

    @staticmethod
    def _invocation_path(request_id, what):
        return "%s/invocation/%s/%s" % (
            RUNTIME_PREFIX,
            urllib.parse.quote(request_id, safe=""),
            what,
        )

    def post_invocation_result(self, request_id, body, content_type):
        """Posts the result, and the next GET next with it."""
        self._post(
            self._invocation_path(request_id, "response"),
            body,
            {"Content-Type": content_type},
            then_next=True,
        )

    def post_invocation_error(self, request_id, error_result):
        """Posts the error document, and the next GET next with it."""
        self._post(
            self._invocation_path(request_id, "error"),
            to_json(error_result).encode("utf-8"),
            _error_headers(error_result),
            then_next=True,
        )

    def post_init_error(self, error_result):
        self._post(
            RUNTIME_PREFIX + "/init/error",
            to_json(error_result).encode("utf-8"),
            _error_headers(error_result),
        )


def _error_headers(error_result):
    error_type = "".join(c if " " <= c < "\x7f" else "?" for c in error_result.get("errorType", ""))
    return {
        "Content-Type": "application/json",
        ERROR_TYPE_HEADER: error_type or "Runtime.Unknown",
    }


# ---- (un)marshalling -------------------------------------------------------------------------


def _json_default(obj):
    import decimal

    if isinstance(obj, decimal.Decimal):
        # awslambdaric writes the exact decimal text; the stdlib encoder cannot, so approximate
        if obj.is_nan():
            return float("nan")
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    raise TypeError("Object of type %s is not JSON serializable" % obj.__class__.__name__)


def to_json(obj):
    return json.dumps(obj, default=_json_default)


def unmarshal_request(body, content_type):
    # awslambdaric passes non-JSON payloads through as bytes; a missing type means JSON here
    if content_type and content_type.split(";")[0].strip() != "application/json":
        return body
    try:
        return json.loads(body)
    except Exception as e:
        raise FaultException(
            FaultException.UNMARSHAL_ERROR, "Unable to unmarshal input: {}".format(str(e))
        )


def marshal_response(response):
    if isinstance(response, bytes):
        return response, "application/unknown"
    try:
        return to_json(response).encode("utf-8"), "application/json"
    except Exception as e:
        raise FaultException(
            FaultException.MARSHAL_ERROR, "Unable to marshal response: {}".format(str(e))
        )


# ---- the context object (same shape as awslambdaric.lambda_context) ---------------------------


class CognitoIdentity(object):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id,
            self.cognito_identity_pool_id,
        )


class Client(object):
    __slots__ = [
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    ]

    def __repr__(self):
        return "Client([%s])" % ",".join("%s=%s" % (f, getattr(self, f)) for f in self.__slots__)


class ClientContext(object):
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return "ClientContext([custom=%s,env=%s,client=%s])" % (self.custom, self.env, self.client)


def make_obj_from_dict(_class, _dict):
    if _dict is None:
        return None
    obj = _class()
    for field in _class.__slots__:
        setattr(obj, field, _dict.get(field, None))
    return obj


class LambdaContext(object):
    def __init__(
        self,
        invoke_id,
        client_context,
        cognito_identity,
        epoch_deadline_time_in_ms,
        invoked_function_arn=None,
        tenant_id=None,
    ):
        self.aws_request_id = invoke_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id

        self.client_context = make_obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = make_obj_from_dict(Client, self.client_context.client)

        self.identity = make_obj_from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")

        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self):
        epoch_now_in_ms = int(time.time() * 1000)
        delta_ms = self._epoch_deadline_time_in_ms - epoch_now_in_ms
        return delta_ms if delta_ms > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,"
            "function_name=%s,memory_limit_in_mb=%s,function_version=%s,"
            "invoked_function_arn=%s,client_context=%s,identity=%s,tenant_id=%s])"
            % (
                self.aws_request_id,
                self.log_group_name,
                self.log_stream_name,
                self.function_name,
                self.memory_limit_in_mb,
                self.function_version,
                self.invoked_function_arn,
                self.client_context,
                self.identity,
                self.tenant_id,
            )
        )


def parse_json_header(header, name):
    try:
        return json.loads(header)
    except Exception as e:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR,
            "Unable to parse {} JSON: {}".format(name, str(e)),
        )


def create_lambda_context(
    client_context_json,
    cognito_identity_json,
    epoch_deadline_time_in_ms,
    invoke_id,
    invoked_function_arn,
    tenant_id,
):
    client_context = None
    if client_context_json:
        client_context = parse_json_header(client_context_json, "Client Context")
    cognito_identity = None
    if cognito_identity_json:
        cognito_identity = parse_json_header(cognito_identity_json, "Cognito Identity")
    return LambdaContext(
        invoke_id,
        client_context,
        cognito_identity,
        epoch_deadline_time_in_ms,
        invoked_function_arn,
        tenant_id,
    )


# ---- loading the handler ---------------------------------------------------------------------


def _get_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(
            FaultException.MALFORMED_HANDLER_NAME,
            "Bad handler '{}': {}".format(handler, str(e)),
        )

    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                "Cannot use built-in module {} as a handler module".format(modname),
            )
        m = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(
            FaultException.IMPORT_MODULE_ERROR,
            "Unable to import module '{}': {}".format(modname, str(e)),
        )
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR,
            "Syntax error in module '{}': {}".format(modname, str(e)),
            trace,
        )

    try:
        request_handler = getattr(m, fname)
    except AttributeError:
        raise FaultException(
            FaultException.HANDLER_NOT_FOUND,
            "Handler '{}' missing on module '{}'".format(fname, modname),
        )
    return request_handler


# ---- errors ----------------------------------------------------------------------------------


def _error_has_request_id():
    # awslambdaric adds "requestId" to error documents from python3.12 on
    env = os.environ.get("AWS_EXECUTION_ENV", "")
    prefix = "AWS_Lambda_python3."
    if not env.startswith(prefix):
        return False
    minor = env[len(prefix) :]
    return minor.isdigit() and int(minor) >= 12


def make_error(error_message, error_type, stack_trace, invoke_id=None):
    result = {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
    }
    if invoke_id is not None and _error_has_request_id():
        result["requestId"] = invoke_id
    result["stackTrace"] = stack_trace if stack_trace else []
    return result


def _user_traceback(tb):
    """The traceback as format_list() lines, without the leading frames of this file."""
    import traceback

    frames = traceback.extract_tb(tb)
    for i, frame in enumerate(frames):
        if "/bootstrap.py" not in frame.filename:
            frames = frames[i:]
            break
    return traceback.format_list(frames)


def build_fault_result(exc_info, msg, invoke_id=None):
    etype, value, tb = exc_info
    return make_error(msg if msg else str(value), etype.__name__, _user_traceback(tb), invoke_id)


def _replace_line_indentation(line, indent_char, new_indent_char):
    n = len(line) - len(line.lstrip(indent_char))
    return new_indent_char * n + line[n:]


def log_error(error_result):
    """Writes the error as one log record, like awslambdaric's StandardLogSink."""
    if _LOG_FORMAT_JSON:
        record = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "level": "ERROR",
        }
        record.update(error_result)
        sys.stdout.write(to_json(record) + "\n")
        return
    description = "[ERROR]"
    error_type = error_result.get("errorType")
    if error_type:
        description += " " + error_type
    error_message = error_result.get("errorMessage")
    if error_message:
        if error_type:
            description += ":"
        description += " " + error_message
    lines = [description]
    stack_trace = error_result.get("stackTrace")
    if stack_trace is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack_trace:
            if element == "":
                lines.append("")
                continue
            for trace_line in element.splitlines():
                lines.append(_replace_line_indentation(trace_line, " ", ERROR_LOG_IDENT))
    sys.stdout.write(ERROR_LOG_LINE_TERMINATE.join(lines) + "\n")


# ---- logging and stdio -----------------------------------------------------------------------

_LOG_FORMAT_JSON = os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"


class LambdaLoggerFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _current_request_id or ""
        record.tenant_id = _current_tenant_id
        return True


class LambdaLoggerHandler(logging.Handler):
    """Writes formatted records to the current sys.stdout, each ending in a newline (the format
    has one; a record with a traceback needs one added after it)."""

    def emit(self, record):
        try:
            msg = self.format(record)
            sys.stdout.write(msg if msg.endswith("\n") else msg + "\n")
        except Exception:
            self.handleError(record)


class JsonFormatter(logging.Formatter):
    """An approximation of awslambdaric's JSON log format (AWS_LAMBDA_LOG_FORMAT=JSON)."""

    def format(self, record):
        out = {
            "timestamp": "%s.%03dZ"
            % (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)), record.msecs),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "requestId": getattr(record, "aws_request_id", ""),
        }
        if record.exc_info and record.exc_info[0] is not None:
            etype, value, tb = record.exc_info
            out["errorType"] = etype.__name__
            out["errorMessage"] = str(value)
            out["stackTrace"] = _user_traceback(tb)
        return json.dumps(out, default=str) + "\n"


def setup_logging():
    """Configures the root logger like the Lambda Python runtime does: one handler writing
    `[LEVEL]\\t<UTC time>.<ms>Z\\t<request id>\\t<message>` lines to stdout; the level stays
    WARNING unless AWS_LAMBDA_LOG_LEVEL says otherwise."""
    logging.Formatter.converter = time.gmtime
    handler = LambdaLoggerHandler()
    if _LOG_FORMAT_JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    handler.addFilter(LambdaLoggerFilter())
    root = logging.getLogger()
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in ("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "CRITICAL"):
        root.setLevel(
            {"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level)
        )
    root.addHandler(handler)


def setup_stdio():
    # `python -u` semantics per line: print() output is flushed at every newline
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass


def setup_sys_path(task_root):
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != here]
    sys.path.insert(0, task_root)


# ---- the loop --------------------------------------------------------------------------------


def update_xray_env_variable(xray_trace_id):
    if xray_trace_id is not None:
        os.environ["_X_AMZN_TRACE_ID"] = xray_trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)


def handle_event_request(client, request_handler, invoke_id, event_body, headers):
    error_result = None
    try:
        deadline = headers.get("Lambda-Runtime-Deadline-Ms")
        lambda_context = create_lambda_context(
            headers.get("Lambda-Runtime-Client-Context"),
            headers.get("Lambda-Runtime-Cognito-Identity"),
            int(deadline) if deadline and deadline.isdigit() else 0,
            invoke_id,
            headers.get("Lambda-Runtime-Invoked-Function-Arn"),
            headers.get("Lambda-Runtime-Aws-Tenant-Id"),
        )
        event = unmarshal_request(event_body, headers.get("Content-Type"))
        response = request_handler(event, lambda_context)
        result, result_content_type = marshal_response(response)
    except FaultException as e:
        error_result = make_error(e.msg, e.exception_type, e.trace, invoke_id)
    except Exception:
        error_result = build_fault_result(sys.exc_info(), None, invoke_id)

    if error_result is not None:
        log_error(error_result)
        client.post_invocation_error(invoke_id, error_result)
    else:
        client.post_invocation_result(invoke_id, result, result_content_type)


def main():
    global _current_request_id, _current_tenant_id, _LOG_FORMAT_JSON

    # read here, not only at import: a zygote (zygote.py) imports this file before the
    # function's environment exists
    _LOG_FORMAT_JSON = os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"
    setup_stdio()
    task_root = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
    setup_sys_path(task_root)
    try:
        os.chdir(task_root)
    except OSError:
        pass

    try:
        client = RuntimeClient(os.environ.get("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"))
    except RuntimeAPIError as e:
        sys.stderr.write("nimbus-runtime: %s\n" % e)
        return 1

    try:
        setup_logging()
        request_handler = _get_handler(os.environ.get("_HANDLER", ""))
    except Exception as e:
        if isinstance(e, FaultException):
            error_result = make_error(e.msg, e.exception_type, e.trace)
        else:
            error_result = build_fault_result(sys.exc_info(), None)
        log_error(error_result)
        client.post_init_error(error_result)
        return 1

    while True:
        try:
            event_body, headers = client.wait_next_invocation()
        except (RuntimeAPIError, OSError, http.client.HTTPException) as e:
            sys.stderr.write("nimbus-runtime: cannot get the next invocation: %s\n" % e)
            return 1
        invoke_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        if not invoke_id:
            sys.stderr.write("nimbus-runtime: invocation without Lambda-Runtime-Aws-Request-Id\n")
            return 1
        _current_request_id = invoke_id
        _current_tenant_id = headers.get("Lambda-Runtime-Aws-Tenant-Id")
        update_xray_env_variable(headers.get("Lambda-Runtime-Trace-Id"))
        try:
            handle_event_request(client, request_handler, invoke_id, event_body, headers)
        except (RuntimeAPIError, OSError, http.client.HTTPException) as e:
            sys.stderr.write("nimbus-runtime: cannot post the result of %s: %s\n" % (invoke_id, e))
            return 1


# zygote.py loads this file as __main__ with _NIMBUS_ZYGOTE set, and calls main() per instance
if __name__ == "__main__" and not globals().pop("_NIMBUS_ZYGOTE", False):
    sys.exit(main())
