/*
 * zygote_py.c - _nimbus_zygote, the CPython extension that makes a Python interpreter a zygote
 * (zygote.h; the Python side is runtimes/python/zygote.py).
 *
 *   harden()      zygote_harden, or OSError
 *   serve(fd)     zygote_serve on the spawner's socket. Returns None in the zygote when the
 *                 spawner is gone. In a sandbox's runtime child - fully set up, unprivileged,
 *                 seccomp on - it returns (argv, envp), two lists of bytes from the spec, after
 *                 PyOS_AfterFork_Child (Python's own at-fork hooks: random reseeds itself,
 *                 threading resets).
 *
 * How the child gets back into Python: serve() calls zygote_serve under setjmp; the runtime child,
 * deep inside the clone and fork that made it (sandbox.c), longjmps here. The frames in between
 * are copies in the child's own memory, so the jump only unwinds C frames of this call.
 * PyOS_BeforeFork/AfterFork_Parent wrap each clone in the zygote, as os.fork does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <setjmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "seccomp.h"
#include "zygote.h"

static jmp_buf resume;
static const struct nb_sandbox_req *child_req;

static void run_child(const struct nb_sandbox_req *req, void *arg)
{
    (void)arg;
    child_req = req;
    longjmp(resume, 1);
}

static void before_fork(void)
{
    PyOS_BeforeFork();
}

static void after_fork_parent(void)
{
    PyOS_AfterFork_Parent();
}

static PyObject *raise_err(const struct nb_err *err)
{
    PyObject *v = Py_BuildValue("(is)", err->code, err->msg);
    if (v) {
        PyErr_SetObject(PyExc_OSError, v);
        Py_DECREF(v);
    }
    return NULL;
}

static PyObject *strv_list(char **v)
{
    PyObject *l = PyList_New(0);
    for (size_t i = 0; l && v[i]; i++) {
        PyObject *b = PyBytes_FromString(v[i]);
        if (!b || PyList_Append(l, b) < 0) {
            Py_XDECREF(b);
            Py_DECREF(l);
            return NULL;
        }
        Py_DECREF(b);
    }
    return l;
}

static PyObject *py_harden(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    struct nb_err err = {0};
    if (zygote_harden(&err) < 0)
        return raise_err(&err);
    Py_RETURN_NONE;
}

static PyObject *py_serve(PyObject *self, PyObject *args)
{
    (void)self;
    static int sock;
    static struct sock_fprog prog;
    static struct nb_sandbox_env env;
    static const struct nb_zygote_hooks hooks = {before_fork, after_fork_parent};
    struct nb_err err = {0};
    if (!PyArg_ParseTuple(args, "i", &sock))
        return NULL;
    if (!prog.filter && seccomp_build(&prog, &err) < 0)
        return raise_err(&err);
    env.prog = &prog;
    env.root_dir = SANDBOX_ROOT_DIR;
    env.spawner_pidfd = (int)syscall(SYS_pidfd_open, getppid(), 0);
    env.run = run_child;
    if (env.spawner_pidfd < 0) {
        err_set(&err, errno, "cannot open the spawner's pidfd: %s", strerror(errno));
        return raise_err(&err);
    }
    if (setjmp(resume)) {
        /* A sandbox's runtime child. */
        PyOS_AfterFork_Child();
        PyObject *argv = strv_list(child_req->argv);
        PyObject *envp = argv ? strv_list(child_req->envp) : NULL;
        if (!envp) {
            Py_XDECREF(argv);
            return NULL;
        }
        return Py_BuildValue("(NN)", argv, envp);
    }
    int r = zygote_serve(sock, &env, &hooks, &err);
    close(env.spawner_pidfd);
    if (r < 0)
        return raise_err(&err);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"harden", py_harden, METH_NOARGS, "Namespaces, read-only mounts, reduced capabilities."},
    {"serve", py_serve, METH_VARARGS,
     "Serve park requests on fd; returns (argv, envp) in a sandbox's runtime child."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_nimbus_zygote",
    .m_doc = "nimbus' Python zygote (src/zygote_py.c)",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__nimbus_zygote(void);
PyMODINIT_FUNC PyInit__nimbus_zygote(void)
{
    return PyModule_Create(&module);
}
