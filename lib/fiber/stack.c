/* SPDX-License-Identifier: MIT */
/*
 * stack.c: mapping, guarding and caching fiber stacks (layout in stack.h).
 */
#include "stack.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef URSA_HAVE_VALGRIND
#include <valgrind/valgrind.h>
#endif

/* Linux 6.13 added guard regions; Debian 12's headers predate them. */
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

/* Four pages: one huge frame without -fstack-clash-protection is less
 * likely to jump a bigger guard, and the guard costs no memory. */
#define GUARD_PAGES 4

/* 0 = not probed yet, 1 = MADV_GUARD_INSTALL works, 2 = use mprotect. */
static atomic_int guard_mode;

static size_t page_size(void)
{
	/* Every worker may be first: relaxed is enough, all write the same. */
	static _Atomic size_t ps;
	size_t v = atomic_load_explicit(&ps, memory_order_relaxed);

	if (!v) {
		v = (size_t)sysconf(_SC_PAGESIZE);
		atomic_store_explicit(&ps, v, memory_order_relaxed);
	}
	return v;
}

size_t ursa__stack_guard_size(void)
{
	return GUARD_PAGES * page_size();
}

static int install_guard(void *addr, size_t len)
{
	int mode = atomic_load_explicit(&guard_mode, memory_order_relaxed);

	if (mode != 2) {
		if (madvise(addr, len, MADV_GUARD_INSTALL) == 0) {
			atomic_store_explicit(&guard_mode, 1, memory_order_relaxed);
			return 0;
		}
		/* EINVAL: the kernel predates guard regions.  Remember, fall back. */
		if (errno != EINVAL)
			return -errno;
		atomic_store_explicit(&guard_mode, 2, memory_order_relaxed);
	}
	return mprotect(addr, len, PROT_NONE) == 0 ? 0 : -errno;
}

const char *ursa__stack_guard_kind(void)
{
	switch (atomic_load_explicit(&guard_mode, memory_order_relaxed)) {
	case 1:
		return "madvise";
	case 2:
		return "mprotect";
	default:
		return "unprobed";
	}
}

int ursa__stack_map(struct ursa__stack *s, size_t size)
{
	size_t ps = page_size(), guard = ursa__stack_guard_size();
	void *map;
	int rc;

	size = (size + ps - 1) & ~(ps - 1);
	if (size < 4 * ps)
		size = 4 * ps;
	/* NORESERVE: a million 128 KiB stacks are 128 GiB of address space but
	 * only the pages touched are memory; do not charge commit for the rest. */
	map = mmap(NULL, guard + size, PROT_READ | PROT_WRITE,
	           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (map == MAP_FAILED)
		return -errno;
	rc = install_guard(map, guard);
	if (rc < 0) {
		munmap(map, guard + size);
		return rc;
	}
	s->map = map;
	s->size = size;
	s->vg_id = 0;
#ifdef URSA_HAVE_VALGRIND
	/* Without this, memcheck takes a switch to another stack for a huge
	 * stack-pointer move and reports nonsense. */
	s->vg_id = VALGRIND_STACK_REGISTER(ursa__stack_lo(s), (char *)ursa__stack_lo(s) + size);
#endif
	return 0;
}

void ursa__stack_unmap(struct ursa__stack *s)
{
	if (!s->map)
		return;
#ifdef URSA_HAVE_VALGRIND
	VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
	munmap(s->map, ursa__stack_guard_size() + s->size);
	s->map = NULL;
}

bool ursa__stack_in_guard(const struct ursa__stack *s, const void *addr)
{
	uintptr_t a = (uintptr_t)addr, lo = (uintptr_t)s->map;

	return s->map && a >= lo && a < lo + ursa__stack_guard_size();
}

/* Stacks gathered before one batched unmap. */
#define DOOMED_BATCH 1024

static int by_address(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct ursa__stack *)a)->map;
	uintptr_t y = (uintptr_t)((const struct ursa__stack *)b)->map;

	return x < y ? -1 : x > y;
}

/* Unmap every doomed stack, merging neighbours into one munmap each. */
static void flush_doomed(struct ursa__stack_cache *c)
{
	size_t guard = ursa__stack_guard_size();
	unsigned i = 0;

	if (c->ndoomed > 1) /* qsort's array must not be NULL, even for 0 */
		qsort(c->doomed, c->ndoomed, sizeof(*c->doomed), by_address);
	while (i < c->ndoomed) {
		char *lo = c->doomed[i].map;
		char *hi = lo + guard + c->doomed[i].size;

#ifdef URSA_HAVE_VALGRIND
		VALGRIND_STACK_DEREGISTER(c->doomed[i].vg_id);
#endif
		for (i++; i < c->ndoomed && (char *)c->doomed[i].map == hi; i++) {
#ifdef URSA_HAVE_VALGRIND
			VALGRIND_STACK_DEREGISTER(c->doomed[i].vg_id);
#endif
			hi += guard + c->doomed[i].size;
		}
		munmap(lo, (size_t)(hi - lo));
	}
	c->ndoomed = 0;
}

int ursa__stack_cache_init(struct ursa__stack_cache *c, size_t size, unsigned cap)
{
	size_t ps = page_size();

	c->size = (size + ps - 1) & ~(ps - 1);
	if (c->size < 4 * ps)
		c->size = 4 * ps;
	c->n = 0;
	c->cap = cap;
	c->items = cap ? calloc(cap, sizeof(*c->items)) : NULL;
	c->ndoomed = 0;
	c->doomed = calloc(DOOMED_BATCH, sizeof(*c->doomed));
	if ((cap && !c->items) || !c->doomed) {
		free(c->items);
		free(c->doomed);
		c->items = c->doomed = NULL;
		return -ENOMEM;
	}
	return 0;
}

void ursa__stack_cache_fini(struct ursa__stack_cache *c)
{
	while (c->n) {
		c->doomed[c->ndoomed++] = c->items[--c->n];
		if (c->ndoomed == DOOMED_BATCH)
			flush_doomed(c);
	}
	flush_doomed(c);
	free(c->items);
	free(c->doomed);
	c->items = c->doomed = NULL;
}

int ursa__stack_get(struct ursa__stack_cache *c, struct ursa__stack *s, size_t size)
{
	int rc;

	if ((size == 0 || size == c->size) && c->n) {
		*s = c->items[--c->n];
		return 0;
	}
	rc = ursa__stack_map(s, size ? size : c->size);
	/* Out of address space (RLIMIT_AS) or of mappings (vm.max_map_count):
	 * stacks waiting for their batched unmap still hold up to DOOMED_BATCH
	 * stacks' worth.  Give them back and try once more, or spawn would fail
	 * long after tasks have ended (tests/test_process.c). */
	if (rc == -ENOMEM && c->ndoomed) {
		flush_doomed(c);
		rc = ursa__stack_map(s, size ? size : c->size);
	}
	return rc;
}

void ursa__stack_put(struct ursa__stack_cache *c, struct ursa__stack *s)
{
	if (s->size == c->size && c->n < c->cap)
		c->items[c->n++] = *s;
	else {
		c->doomed[c->ndoomed++] = *s;
		if (c->ndoomed == DOOMED_BATCH)
			flush_doomed(c);
	}
	s->map = NULL;
}
