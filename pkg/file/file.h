/* Reading a whole small file: the one way rollgate reads migrations, the config file,
 * secret files and the service-account files. */
#ifndef RG_FILE_H
#define RG_FILE_H

#include <stddef.h>

#include "err/err.h"

/* rg_file_read's flag: refuse a regular file that grows while it is read: it is being written, and
 * what was read is neither the old version nor the new one. */
#define RG_FILE_UNCHANGED 0x2u

/* Reads a whole regular file of at most cap bytes into *data (allocated, NUL-terminated; the
 * file may hold NULs of its own) and *len (len may be NULL). Only a regular file is read: the
 * open is O_NONBLOCK (and O_NOCTTY) and fstat then refuses a FIFO, a socket, a directory or a
 * device before any read, so a wrong path can neither hang nor read a device.
 *
 * On failure sets err with code and a message that starts with path: "PATH: cannot open:
 * <strerror>", "PATH: cannot read: not a regular file (a FIFO)", "PATH: file is N bytes, over
 * the 1 MiB limit", "PATH: over the 64 KiB limit" (a file that says 0 bytes, as /proc's do),
 * "PATH: file changed while it was being read", "PATH: cannot read: <strerror>". errno then tells
 * why without the path, for a caller that must not show it: the failed call's (ENOENT, EACCES,
 * EISDIR...), EFBIG over the cap, EINVAL for the other refusals. What was read is wiped before it
 * is freed, as it may be a secret. */
int rg_file_read(const char *path, size_t cap, unsigned flags, char **data, size_t *len,
                 enum rg_code code, struct rg_err *err) RG_WUR;

#endif
