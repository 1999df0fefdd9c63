/* SPDX-License-Identifier: MIT */
/*
 * stack.h: fiber stacks.  Each stack is one anonymous mapping:
 *
 *   map                 map + guard                         map + guard + size
 *   | guard (no access) | usable stack, grows down from here <-|
 *
 * The guard is installed with MADV_GUARD_INSTALL when the kernel has it (the
 * mapping is not split, so a million stacks cost no extra VMAs) and with
 * mprotect(PROT_NONE) otherwise (one extra VMA per stack: about 32k stacks
 * under the default vm.max_map_count).
 */
#ifndef URSA_FIBER_STACK_H
#define URSA_FIBER_STACK_H

#include <stdbool.h>
#include <stddef.h>

struct ursa__stack {
	void *map;       /* start of the mapping (the guard) */
	size_t size;     /* usable bytes above the guard */
	unsigned vg_id;  /* valgrind's stack id (0 without valgrind headers) */
};

/* Bytes of guard below every stack. */
size_t ursa__stack_guard_size(void);

/* Map a stack of `size` usable bytes (rounded up to pages).  0 or -errno. */
int ursa__stack_map(struct ursa__stack *s, size_t size);
void ursa__stack_unmap(struct ursa__stack *s);

static inline void *ursa__stack_lo(const struct ursa__stack *s)
{
	return (char *)s->map + ursa__stack_guard_size();
}

/* True if addr lies in s's guard region. */
bool ursa__stack_in_guard(const struct ursa__stack *s, const void *addr);

/* How guards are made on this kernel: "madvise" or "mprotect". */
const char *ursa__stack_guard_kind(void);

/*
 * A per-core LIFO cache of free stacks of one size (the runtime's default),
 * so spawn does not pay for mmap and page faults.  Owned by one thread.
 */
struct ursa__stack_cache {
	struct ursa__stack *items;
	unsigned n, cap;
	size_t size;
	/* Stacks the cache cannot keep, unmapped in batches: munmap of one
	 * stack costs a VMA split and a TLB shootdown, while adjacent stacks,
	 * which consecutive mmaps produce, merge into one range that unmaps
	 * for far less a stack (docs/bench.md has the figures). */
	struct ursa__stack *doomed;
	unsigned ndoomed;
};

int ursa__stack_cache_init(struct ursa__stack_cache *c, size_t size, unsigned cap);
void ursa__stack_cache_fini(struct ursa__stack_cache *c);
/* A stack of `size` bytes (0 = the cache's size), cached or new. 0 or -errno. */
int ursa__stack_get(struct ursa__stack_cache *c, struct ursa__stack *s, size_t size);
/* Return a stack: kept if it has the cache's size and there is room, else unmapped. */
void ursa__stack_put(struct ursa__stack_cache *c, struct ursa__stack *s);

#endif /* URSA_FIBER_STACK_H */
