/* Protobuf base-128 varint columns in C, for the metric codec client and server share (metrics.py).
 *
 * A numpy varint encoder costs ~100 ns a value; this is one C loop (~10 ns a timestamp), and the
 * server's decoder is the same loop backwards. Long columns are coded with the GIL released.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* ---- protobuf base-128 varints ---- */

/* Columns this long are coded with the GIL released: the server's store threads (or the client's
 * producer) run meanwhile. Shorter ones are not worth the switch. */
#define NOGIL_BYTES (64 * 1024)

static Py_ssize_t encode_into(const char *src, Py_ssize_t n, Py_ssize_t itemsize, uint8_t *out) {
    uint8_t *p = out;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t v;
        if (itemsize == 4) {
            uint32_t w;
            memcpy(&w, src + i * 4, 4);
            v = w;
        } else {
            memcpy(&v, src + i * 8, 8);
        }
        while (v >= 0x80) {
            *p++ = (uint8_t)(v | 0x80);
            v >>= 7;
        }
        *p++ = (uint8_t)v;
    }
    return p - out;
}

static PyObject *encode_varints(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (view.itemsize != 4 && view.itemsize != 8) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "encode_varints: items must be 4 (uint32) or 8 (int64/uint64) bytes");
        return NULL;
    }
    Py_ssize_t n = view.len / view.itemsize;
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * (view.itemsize == 4 ? 5 : 10));
    if (!out) {
        PyBuffer_Release(&view);
        return NULL;
    }
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
    Py_ssize_t size;
    if (view.len >= NOGIL_BYTES) {
        Py_BEGIN_ALLOW_THREADS size = encode_into(view.buf, n, view.itemsize, dst);
        Py_END_ALLOW_THREADS
    } else {
        size = encode_into(view.buf, n, view.itemsize, dst);
    }
    PyBuffer_Release(&view);
    if (_PyBytes_Resize(&out, size) < 0) return NULL;
    return out;
}

/* The 7-bit groups of the first `bytes` (1-8) bytes of x, joined: only the groups the varint has
 * (a column's varints are mostly one length, so the jump is well predicted). */
static inline uint64_t join_groups(uint64_t x, int bytes) {
    uint64_t v = 0;
    switch (bytes) {
    case 8: v |= (x >> 7) & (0x7FULL << 49); /* fall through */
    case 7: v |= (x >> 6) & (0x7FULL << 42); /* fall through */
    case 6: v |= (x >> 5) & (0x7FULL << 35); /* fall through */
    case 5: v |= (x >> 4) & (0x7FULL << 28); /* fall through */
    case 4: v |= (x >> 3) & (0x7FULL << 21); /* fall through */
    case 3: v |= (x >> 2) & (0x7FULL << 14); /* fall through */
    case 2: v |= (x >> 1) & (0x7FULL << 7); /* fall through */
    default: v |= x & 0x7FULL;
    }
    return v;
}

/* How many varints end in [p, end): the bytes below 0x80, eight at a time. */
static Py_ssize_t count_varints(const uint8_t *p, const uint8_t *end) {
    Py_ssize_t n = 0;
    for (; end - p >= 8; p += 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        /* One 0/1 flag per byte, summed into the top byte by the multiplication. */
        n += (Py_ssize_t)((((~x & 0x8080808080808080ULL) >> 7) * 0x0101010101010101ULL) >> 56);
    }
    for (; p < end; p++) n += *p < 0x80;
    return n;
}

/* Decodes n varints (n = the bytes below 0x80, counted by the caller); NULL or an error message. */
static const char *decode_into(const uint8_t *p, const uint8_t *end, Py_ssize_t n, char *dst) {
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t v = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (end - p >= 8) {
            /* Eight bytes at once: the first byte without its high bit ends the varint. */
            uint64_t x;
            memcpy(&x, p, 8);
            uint64_t stops = ~x & 0x8080808080808080ULL;
            if (stops) {
                int bytes = (__builtin_ctzll(stops) >> 3) + 1;
                v = join_groups(x, bytes);
                p += bytes;
                memcpy(dst + i * 8, &v, 8);
                continue;
            }
        }
#endif
        int shift = 0;
        for (;;) {
            uint8_t b = *p++;
            if (shift == 63 && b > 1) return "varint longer than 64 bits";
            v |= (uint64_t)(b & 0x7F) << shift;
            if (b < 0x80) break;
            shift += 7;
        }
        memcpy(dst + i * 8, &v, 8);
    }
    return p == end ? NULL : "truncated varint at the end";
}

static PyObject *decode_varints(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    const uint8_t *p = view.buf, *end = p + view.len;
    Py_ssize_t n = count_varints(p, end);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * 8);
    if (!out) {
        PyBuffer_Release(&view);
        return NULL;
    }
    char *dst = PyBytes_AS_STRING(out);
    const char *error;
    if (view.len >= NOGIL_BYTES) {
        Py_BEGIN_ALLOW_THREADS error = decode_into(p, end, n, dst);
        Py_END_ALLOW_THREADS
    } else {
        error = decode_into(p, end, n, dst);
    }
    PyBuffer_Release(&view);
    if (error) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    return out;
}

static PyMethodDef module_methods[] = {
    {"encode_varints", encode_varints, METH_O,
     "Packed varint bytes of a buffer of uint32 (4-byte items) or int64/uint64 (8-byte items)."},
    {"decode_varints", decode_varints, METH_O,
     "Little-endian uint64 bytes of packed varints (ValueError when malformed)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tracklane.wire._varints",
    .m_doc = "Protobuf base-128 varint columns in C.",
    .m_size = 0,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__varints(void) { return PyModuleDef_Init(&module_def); }
