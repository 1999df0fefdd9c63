/* SPDX-License-Identifier: MIT */
/*
 * io_buf.h: registered I/O buffers (io_buf.c).  Each core keeps a pool of
 * aligned buffers in one region registered with its ring
 * (IORING_REGISTER_BUFFERS, fixed buffer 0), handed out one per op with
 * ursa_iobuf_get and given back with ursa_iobuf_put from any thread.  A read
 * or write into one of them goes to the kernel as READ_FIXED / WRITE_FIXED,
 * which skips pinning the user pages on every op (what O_DIRECT costs).
 */
#ifndef URSA_IO_BUF_H
#define URSA_IO_BUF_H

#include "runtime.h"

#include <stdbool.h>
#include <stddef.h>

/* Whether [buf, buf + n) lies in core c's registered region: the op may
 * then use the fixed form with buffer index 0. */
bool ursa__io_buf_fixed(struct ursa__core *c, const void *buf, size_t n);

/* Free c's pool; after its ring is gone. */
void ursa__io_buf_fini(struct ursa__core *c);

/* Buffers of c's pool handed out now (tests: every one came back). */
unsigned ursa__io_buf_held(struct ursa__core *c);

#endif /* URSA_IO_BUF_H */
