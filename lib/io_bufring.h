/* SPDX-License-Identifier: MIT */
/*
 * io_bufring.h: what io_bufring.c (buffer groups, multishot receivers)
 * offers the rest of the library and the tests.
 */
#ifndef URSA_IO_BUFRING_H
#define URSA_IO_BUFRING_H

#include "io.h"

/* Free every buffer group left on this core (the ring has closed). */
void ursa__io_bufring_fini_all(struct ursa__io_core *io);

/* How often g's receivers met an empty ring (-ENOBUFS), for tests. */
unsigned ursa__io_bufring_enobufs(const struct ursa_bufgroup *g);

#endif /* URSA_IO_BUFRING_H */
