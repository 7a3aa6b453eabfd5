# app.py - a Python function whose module cannot be imported (handler app.handler): the import
# of a module that does not exist must fail the invocation with Runtime.ImportModuleError.
import nimbus_no_such_module  # noqa: F401


def handler(event, context):
    return "unreachable"
