/* The metric hot path in C: the point buffer log_metric appends to, and log_metric itself.
 *
 * Pure Python tops out near 1 us of CPU per logged point (a Python call, four list appends, a float
 * object per value and timestamp, then a conversion of every list to numpy and a numpy varint
 * encoder in the sender); one Python process then cannot log a million points a second. Here a
 * point is four stores into preallocated C columns, and the sender's encoding is one C loop
 * (tracklane.wire._varints).
 *
 * PointBuffer is the base of tracklane._metrics.buffer.MetricBuffer. Only the common argument types
 * are handled here (a known key; a float or int value; an int or None step and timestamp);
 * anything else goes to the subclass's _log_slow, which checks and converts in Python and comes
 * back through append(). Every method runs under the GIL and never calls back into Python while
 * the columns are half-written, so the sender thread's take() sees whole points, in order.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

typedef struct {
    PyObject_HEAD
    PyObject *key_ids; /* dict: key -> index in the key table (filled by the subclass's intern) */
    PyObject *sealed;  /* list: sealed segments (tuples of 4 bytes) and pushed items, oldest first */
    Py_ssize_t segment; /* points per segment: sealed when this many */
    Py_ssize_t room;    /* points the columns have room for (grown up to `segment`) */
    Py_ssize_t len;     /* points in the current segment */
    uint32_t *keys;
    double *values;
    int64_t *steps;
    int64_t *stamps; /* epoch milliseconds */
} PointBuffer;

static PyObject *str_log_slow;
static PyObject *str_on_seal;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void free_columns(PointBuffer *self) {
    PyMem_Free(self->keys);
    PyMem_Free(self->values);
    PyMem_Free(self->steps);
    PyMem_Free(self->stamps);
    self->keys = NULL;
    self->values = NULL;
    self->steps = NULL;
    self->stamps = NULL;
}

/* Columns start this small and double up to the segment size: a large flush_points costs memory
 * only in the threads that log that much. */
#define FIRST_ROOM 4096

static int resize_columns(PointBuffer *self, Py_ssize_t room) {
    void *keys = PyMem_Realloc(self->keys, room * sizeof(uint32_t));
    if (keys) self->keys = keys;
    void *values = PyMem_Realloc(self->values, room * sizeof(double));
    if (values) self->values = values;
    void *steps = PyMem_Realloc(self->steps, room * sizeof(int64_t));
    if (steps) self->steps = steps;
    void *stamps = PyMem_Realloc(self->stamps, room * sizeof(int64_t));
    if (stamps) self->stamps = stamps;
    if (!keys || !values || !steps || !stamps) {
        PyErr_NoMemory(); /* the columns that grew are only bigger: nothing is lost */
        return -1;
    }
    self->room = room;
    return 0;
}

static int PB_init(PointBuffer *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"segment_points", NULL};
    Py_ssize_t segment;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n", kwlist, &segment)) return -1;
    if (segment < 1) segment = 1;
    free_columns(self);
    self->len = self->room = 0;
    Py_XSETREF(self->key_ids, PyDict_New());
    Py_XSETREF(self->sealed, PyList_New(0));
    if (!self->key_ids || !self->sealed) return -1;
    self->segment = segment;
    return resize_columns(self, segment < FIRST_ROOM ? segment : FIRST_ROOM);
}

static int PB_traverse(PointBuffer *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->key_ids);
    Py_VISIT(self->sealed);
    return 0;
}

static int PB_clear(PointBuffer *self) {
    Py_CLEAR(self->key_ids);
    Py_CLEAR(self->sealed);
    return 0;
}

static void PB_dealloc(PointBuffer *self) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    PB_clear(self);
    free_columns(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* The current segment as (keys, values, steps, stamps) bytes; the segment starts over. */
static PyObject *cut(PointBuffer *self) {
    Py_ssize_t n = self->len;
    PyObject *item = Py_BuildValue(
        "(y#y#y#y#)", (const char *)self->keys, n * (Py_ssize_t)sizeof(uint32_t), (const char *)self->values,
        n * (Py_ssize_t)sizeof(double), (const char *)self->steps, n * (Py_ssize_t)sizeof(int64_t),
        (const char *)self->stamps, n * (Py_ssize_t)sizeof(int64_t));
    if (item) self->len = 0;
    return item;
}

/* Moves a non-empty current segment onto the sealed list. */
static int seal_current(PointBuffer *self) {
    if (!self->len) return 0;
    PyObject *item = cut(self);
    if (!item) return -1;
    int rc = PyList_Append(self->sealed, item);
    Py_DECREF(item);
    return rc;
}

/* Appends one converted point; seals and tells the subclass (_on_seal) when the segment is full. */
static PyObject *put(PointBuffer *self, uint32_t key, double value, int64_t step, int64_t stamp) {
    if (self->len == self->room && resize_columns(self, Py_MIN(2 * self->room, self->segment)) < 0) return NULL;
    Py_ssize_t i = self->len;
    self->keys[i] = key;
    self->values[i] = value;
    self->steps[i] = step;
    self->stamps[i] = stamp;
    self->len = i + 1;
    if (self->len < self->segment) Py_RETURN_NONE;
    if (seal_current(self) < 0) return NULL;
    return PyObject_CallMethodNoArgs((PyObject *)self, str_on_seal);
}

/* An exact int as int64, or 0 with *ok = 0 (no error left set) when it is not one or too big. */
static int64_t exact_int64(PyObject *obj, int *ok) {
    if (!PyLong_CheckExact(obj)) {
        *ok = 0;
        return 0;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        *ok = 0;
        return 0;
    }
    return (int64_t)v;
}

/* A float, or an exact int that fits a double; *ok = 0 otherwise (no error left set). */
static double fast_double(PyObject *obj, int *ok) {
    if (PyFloat_Check(obj)) return PyFloat_AS_DOUBLE(obj);
    if (PyLong_CheckExact(obj)) {
        double v = PyLong_AsDouble(obj);
        if (v == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            *ok = 0;
        }
        return v;
    }
    *ok = 0;
    return 0.0;
}

/* The key's index when the key is already in the table, else -1 (no error left set). */
static long known_key(PointBuffer *self, PyObject *key) {
    if (!PyUnicode_CheckExact(key)) return -1;
    PyObject *index = PyDict_GetItemWithError(self->key_ids, key);
    if (!index) {
        PyErr_Clear();
        return -1;
    }
    return PyLong_AsLong(index);
}

/* One point with Python arguments: the C path for the common types, else the subclass's _log_slow. */
static PyObject *log_point(PointBuffer *self, PyObject *key, PyObject *value, PyObject *step_obj,
                           PyObject *stamp_obj) {
    int ok = 1;
    long index = known_key(self, key);
    double v = fast_double(value, &ok);
    int64_t step = step_obj == Py_None ? 0 : exact_int64(step_obj, &ok);
    int64_t stamp = stamp_obj == Py_None ? 0 : exact_int64(stamp_obj, &ok);
    if (index < 0 || !ok) {
        PyObject *call[5] = {(PyObject *)self, key, value, step_obj, stamp_obj};
        return PyObject_VectorcallMethod(str_log_slow, call, 5, NULL);
    }
    return put(self, (uint32_t)index, v, step, stamp ? stamp : now_ms());
}

static PyObject *PB_log(PointBuffer *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 2 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "log(key, value, step=None, timestamp=None)");
        return NULL;
    }
    return log_point(self, args[0], args[1], nargs > 2 ? args[2] : Py_None, nargs > 3 ? args[3] : Py_None);
}

static PyObject *PB_append(PointBuffer *self, PyObject *args) {
    unsigned int index;
    double value;
    long long step, stamp;
    if (!PyArg_ParseTuple(args, "IdLL", &index, &value, &step, &stamp)) return NULL;
    return put(self, index, value, step, stamp ? stamp : now_ms());
}

static PyObject *PB_seal(PointBuffer *self, PyObject *Py_UNUSED(ignored)) {
    if (seal_current(self) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *PB_push(PointBuffer *self, PyObject *item) {
    if (seal_current(self) < 0 || PyList_Append(self->sealed, item) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *PB_take(PointBuffer *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"sealed_only", NULL};
    int sealed_only = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$p", kwlist, &sealed_only)) return NULL;
    PyObject *out = self->sealed;
    PyObject *fresh = PyList_New(0);
    if (!fresh) return NULL;
    if (!sealed_only && self->len) {
        PyObject *item = cut(self);
        if (!item || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(fresh);
            return NULL;
        }
        Py_DECREF(item);
    }
    self->sealed = fresh;
    return out;
}

static PyObject *PB_pending(PointBuffer *self, PyObject *Py_UNUSED(ignored)) {
    return PyBool_FromLong(self->len > 0 || PyList_GET_SIZE(self->sealed) > 0);
}

static PyObject *PB_get_key_ids(PointBuffer *self, void *closure) { return Py_NewRef(self->key_ids); }
static PyObject *PB_get_sealed(PointBuffer *self, void *closure) {
    return PyLong_FromSsize_t(PyList_GET_SIZE(self->sealed));
}

static PyMethodDef PB_methods[] = {
    {"log", (PyCFunction)(void (*)(void))PB_log, METH_FASTCALL,
     "log(key, value, step=None, timestamp=None): appends one point (timestamp in epoch ms, None or 0 for now)."},
    {"append", (PyCFunction)PB_append, METH_VARARGS,
     "append(index, value, step, timestamp_ms): appends one point already checked and converted."},
    {"seal", (PyCFunction)PB_seal, METH_NOARGS, "Moves the current points onto the sealed list."},
    {"push", (PyCFunction)PB_push, METH_O, "Seals the current points, then appends an item after them."},
    {"take", (PyCFunction)(void (*)(void))PB_take, METH_VARARGS | METH_KEYWORDS,
     "take(*, sealed_only=False): sealed items (and the current points as one more) in order; removes them."},
    {"pending", (PyCFunction)PB_pending, METH_NOARGS, "Whether take() would return anything."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef PB_getset[] = {
    {"key_ids", (getter)PB_get_key_ids, NULL, "key -> index in the key table", NULL},
    {"sealed_count", (getter)PB_get_sealed, NULL, "how many sealed items wait for take()", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot PB_slots[] = {
    {Py_tp_doc, "Columns of metric points one thread appends to and the sender takes."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, PB_init},
    {Py_tp_dealloc, PB_dealloc},
    {Py_tp_traverse, PB_traverse},
    {Py_tp_clear, PB_clear},
    {Py_tp_methods, PB_methods},
    {Py_tp_getset, PB_getset},
    {0, NULL},
};

static PyType_Spec PB_spec = {
    .name = "tracklane._metrics._native.PointBuffer",
    .basicsize = sizeof(PointBuffer),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = PB_slots,
};

/* ---- fluent log_metric ---- */

/* tracklane.log_metric without a Python frame. Its contract with the Python side (fluent/state.py
 * hands it over, and hands it again whenever the fluent state is replaced): `runs` is the
 * threading.local whose .stack lists this thread's active runs, and the top run's ._metrics is its
 * PointBuffer (or None before its first metric). The plain case appends there and counts
 * `fast_calls`; whatever is not that plain case (no runs handed over, no active run, no buffer yet,
 * run_id given, odd keywords) calls the Python function it wraps, which does everything else. So
 * there is one behaviour, a point costs ~100 ns, and a test sees the counter stand still when the
 * Python side stops meeting the contract. */
typedef struct {
    PyObject_HEAD
    PyObject *runs;    /* handed over by fluent/state.py: threading.local with .stack; None at first */
    Py_ssize_t fast_calls; /* calls that took the fast path */
    PyObject *slow;    /* the Python log_metric */
    PyObject *dict;    /* __doc__, __wrapped__ & co. (functools.update_wrapper) */
    vectorcallfunc vectorcall;
} MetricLogger;

static PyTypeObject *point_buffer_type;
static PyObject *str_stack, *str_metrics, *str_step, *str_timestamp, *str_run_id;

/* The active run's buffer of this thread (new reference), or NULL without an error set. */
static PyObject *active_buffer(MetricLogger *self) {
    if (self->runs == NULL || self->runs == Py_None) return NULL;
    PyObject *stack = PyObject_GetAttr(self->runs, str_stack);
    if (!stack) return NULL;
    PyObject *buffer = NULL;
    if (PyList_CheckExact(stack) && PyList_GET_SIZE(stack) > 0) {
        buffer = PyObject_GetAttr(PyList_GET_ITEM(stack, PyList_GET_SIZE(stack) - 1), str_metrics);
        if (buffer && !PyObject_TypeCheck(buffer, point_buffer_type)) Py_CLEAR(buffer);
    }
    Py_DECREF(stack);
    return buffer;
}

static PyObject *ML_vectorcall(MetricLogger *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *arg[4] = {NULL, NULL, Py_None, Py_None}; /* key, value, step, timestamp */
    int plain = nargs >= 2 && nargs <= 4;
    for (Py_ssize_t i = 0; plain && i < nargs; i++) arg[i] = args[i];
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; plain && i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i), *given = args[nargs + i];
        if (name == str_step && nargs < 3) arg[2] = given;
        else if (name == str_timestamp && nargs < 4) arg[3] = given;
        else if (name == str_run_id && given == Py_None) continue;
        else plain = 0; /* anything else: the Python function decides (and names the error) */
    }
    if (plain) {
        PyObject *buffer = active_buffer(self);
        if (buffer) {
            PyObject *result = log_point((PointBuffer *)buffer, arg[0], arg[1], arg[2], arg[3]);
            Py_DECREF(buffer);
            if (result) self->fast_calls++;
            return result;
        }
        PyErr_Clear(); /* no active run or buffer yet: the Python path starts them */
    }
    return PyObject_Vectorcall(self->slow, args, nargsf, kwnames);
}

static int ML_init(MetricLogger *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"slow", NULL};
    PyObject *slow;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O", kwlist, &slow)) return -1;
    Py_XSETREF(self->runs, Py_NewRef(Py_None));
    Py_XSETREF(self->slow, Py_NewRef(slow));
    self->vectorcall = (vectorcallfunc)ML_vectorcall;
    return 0;
}

static PyObject *ML_call(MetricLogger *self, PyObject *args, PyObject *kwargs) {
    return PyVectorcall_Call((PyObject *)self, args, kwargs);
}

static int ML_traverse(MetricLogger *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->runs);
    Py_VISIT(self->slow);
    Py_VISIT(self->dict);
    return 0;
}

static int ML_clear(MetricLogger *self) {
    Py_CLEAR(self->runs);
    Py_CLEAR(self->slow);
    Py_CLEAR(self->dict);
    return 0;
}

static void ML_dealloc(MetricLogger *self) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    ML_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyMemberDef ML_members[] = {
    {"__dictoffset__", T_PYSSIZET, offsetof(MetricLogger, dict), READONLY, NULL},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(MetricLogger, vectorcall), READONLY, NULL},
    {"runs", T_OBJECT, offsetof(MetricLogger, runs), 0,
     "the threading.local whose .stack holds this thread's active runs (handed over by fluent/state.py)"},
    {"fast_calls", T_PYSSIZET, offsetof(MetricLogger, fast_calls), READONLY, "calls that took the fast path"},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef ML_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot ML_slots[] = {
    {Py_tp_doc, "MetricLogger(slow): fluent log_metric's fast path in C (see _metrics/_native.c)."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, ML_init},
    {Py_tp_call, ML_call},
    {Py_tp_dealloc, ML_dealloc},
    {Py_tp_traverse, ML_traverse},
    {Py_tp_clear, ML_clear},
    {Py_tp_members, ML_members},
    {Py_tp_getset, ML_getset},
    {0, NULL},
};

static PyType_Spec ML_spec = {
    .name = "tracklane._metrics._native.MetricLogger",
    .basicsize = sizeof(MetricLogger),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .slots = ML_slots,
};

static int intern(PyObject **slot, const char *name) {
    *slot = PyUnicode_InternFromString(name);
    return *slot ? 0 : -1;
}

static int module_exec(PyObject *module) {
    if (intern(&str_log_slow, "_log_slow") < 0 || intern(&str_on_seal, "_on_seal") < 0 ||
        intern(&str_stack, "stack") < 0 ||
        intern(&str_metrics, "_metrics") < 0 || intern(&str_step, "step") < 0 ||
        intern(&str_timestamp, "timestamp") < 0 || intern(&str_run_id, "run_id") < 0)
        return -1;
    PyObject *buffer_type = PyType_FromModuleAndSpec(module, &PB_spec, NULL);
    if (!buffer_type) return -1;
    point_buffer_type = (PyTypeObject *)buffer_type; /* the module keeps it alive */
    int rc = PyModule_AddObjectRef(module, "PointBuffer", buffer_type);
    Py_DECREF(buffer_type);
    if (rc < 0) return -1;
    PyObject *logger_type = PyType_FromModuleAndSpec(module, &ML_spec, NULL);
    if (!logger_type) return -1;
    rc = PyModule_AddObjectRef(module, "MetricLogger", logger_type);
    Py_DECREF(logger_type);
    return rc;
}

static PyModuleDef_Slot module_slots[] = {{Py_mod_exec, module_exec}, {0, NULL}};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tracklane._metrics._native",
    .m_doc = "The metric hot path in C: the point buffer and fluent log_metric.",
    .m_slots = module_slots,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModuleDef_Init(&module_def); }
