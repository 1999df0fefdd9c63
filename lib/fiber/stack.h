/* SPDX-License-Identifier: MIT */
/*
 * stack.h: fiber stacks.  Tasks take their stacks from per-core slabs: one
 * anonymous mapping holds many equal slots, each a guard region and a stack,
 * and the task record lives at the top of its own stack, so one pop gives
 * both:
 *
 *   slab   slot 0                                  slot 1
 *   |------|---------------------------------------|---------------- ...
 *   | guard | stack, grows down <- | canary | rec | | guard | stack ...
 *   ^map    ^lo                    ^lo+size  (64)   ^map of slot 1
 *
 * The guard is installed with MADV_GUARD_INSTALL when the kernel has it (it
 * does not split the mapping, so a million stacks cost no extra VMAs; guard
 * markers survive MADV_DONTNEED) and with mprotect(PROT_NONE) otherwise (two
 * VMAs per stack: vm.max_map_count bounds the count, see stack.c).
 *
 * Life of a slot: carved once from its slab (guard installed), then popped
 * and pushed on its core's free lists with its touched pages kept (hot
 * reuse: no syscall, no page fault); a slot freed on another core goes back
 * through a lock-free list.  Slots idle for longer than the trim interval,
 * beyond the number kept, are given back off the hot path: MADV_DONTNEED
 * (cold, still guarded) or munmap of a whole free slab.  docs/design.md has
 * the numbers.
 */
#ifndef URSA_FIBER_STACK_H
#define URSA_FIBER_STACK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ursa__slab;
struct iovec;

struct ursa__stack {
	void *map;               /* start of the guard region */
	size_t size;             /* usable bytes, [lo, lo + size) */
	size_t guard;            /* bytes of guard below lo */
	struct ursa__slab *slab; /* NULL for a stack of its own (ursa__stack_map) */
	uint32_t slot;           /* index in slab */
	unsigned vg_id;          /* valgrind's stack id (ursa__stack_map only) */
};

/* The guard below every stack unless the runtime says otherwise: bigger
 * than any plausible frame, so a function with a large local array that
 * was compiled without -fstack-clash-protection still lands in it (the
 * reasoning and the cost are in docs/design.md). */
#define URSA__STACK_GUARD_DEFAULT (256u * 1024u)

/* Size classes: 16 KiB << k for k < URSA__STACK_CLASSES (up to 1 GiB).  A
 * requested size is rounded up to its class. */
#define URSA__STACK_MIN (16u * 1024u)
#define URSA__STACK_CLASSES 17
#define URSA__STACK_MAX ((size_t)URSA__STACK_MIN << (URSA__STACK_CLASSES - 1))

/* Map one stack of `size` usable bytes (rounded up to pages) on its own,
 * with the default guard.  For tests and probing; tasks use the cache.
 * 0 or -errno. */
int ursa__stack_map(struct ursa__stack *s, size_t size);
void ursa__stack_unmap(struct ursa__stack *s);

static inline void *ursa__stack_lo(const struct ursa__stack *s)
{
	return (char *)s->map + s->guard;
}

/* True if addr lies in s's guard region. */
bool ursa__stack_in_guard(const struct ursa__stack *s, const void *addr);

/* False if something wrote past the top of a cache stack into the canary
 * below its task record (an overrun of a local buffer, upwards). */
bool ursa__stack_top_intact(const struct ursa__stack *s);

/* How guards are made on this kernel: "madvise", "mprotect" or "unprobed". */
const char *ursa__stack_guard_kind(void);

/* ------------------------------------------------------- the per-core cache */

/* What a cache has done, for tests and bench (owner thread only). */
struct ursa__stack_stats {
	uint64_t maps, unmaps;   /* slab mmap / munmap calls */
	uint64_t carve_calls;    /* calls made for slots handed out the first time:
	                            guards (madvise, process_madvise, mprotect) and
	                            faulting in their top page */
	uint64_t trim_calls;     /* MADV_DONTNEED calls giving back idle slots */
	uint64_t slots_trimmed;  /* slots given back cold (DONTNEED) */
	uint64_t ticks;          /* trim ticks run */
	unsigned slabs;          /* slabs mapped now */
	size_t mapped;           /* bytes of address space mapped now */
	unsigned live;           /* slots in use (handed out, not yet back) */
	unsigned free_hot;       /* free slots with their pages kept */
};

/* One size class of one core: its slabs. */
struct ursa__stack_pool {
	struct ursa__slab *avail;  /* slabs with free slots, the last pushed to first */
	struct ursa__slab *carve;  /* newest slab, with slots never handed out */
	struct ursa__slab *all;    /* every slab of this pool */
	unsigned capacity;         /* slots in all slabs */
};

/* A slot freed on another core, waiting for its owner (written over the
 * dead task record at the slot's top). */
struct ursa__stack_node {
	struct ursa__stack_node *next;
	struct ursa__slab *slab;
	uint32_t slot;
};

/* Settings, from struct ursa_opts (runtime.c). */
struct ursa__stack_config {
	size_t size;       /* default stack size (bytes) */
	size_t guard;      /* guard bytes below each stack */
	size_t rec_size;   /* bytes kept at each stack's top for the task record */
	unsigned keep;     /* free stacks kept ready per core, never trimmed */
	uint64_t trim_ns;  /* free stacks beyond keep idle this long go back */
};

/*
 * A core's stacks.  Owned by its thread; other threads only push onto
 * `remote`.  The cache asks for a trim tick through arm() when it has
 * something to give back later (or a slot out on another core whose return
 * it must collect); the owner then calls ursa__stack_trim when it fires.
 */
struct ursa__stack_cache {
	struct ursa__stack_config cfg;
	struct ursa__stack_pool pools[URSA__STACK_CLASSES];
	unsigned default_class;
	unsigned lent;             /* slots handed out for tasks of other cores */
	bool tick_armed;
	unsigned lent_backoff;     /* ticks in a row that found nothing lent back */
	uint64_t shifted_ns;       /* when the slabs' low-water marks last moved */
	void (*arm)(void *ctx, uint64_t delay_ns);
	void *arm_ctx;
	struct ursa__stack_stats stats;
	struct iovec *iov;         /* scratch for batched madvise (IOV_BATCH) */
	_Alignas(64) _Atomic(struct ursa__stack_node *) remote; /* other threads push */
	char pad_[64 - sizeof(void *)];
};

/* 0, or -EINVAL for a configuration out of range (see stack.c). */
int ursa__stack_cache_init(struct ursa__stack_cache *c, const struct ursa__stack_config *cfg,
                           void (*arm)(void *ctx, uint64_t delay_ns), void *arm_ctx);
/* Unmap every slab.  Only once no thread uses any of this cache's slots
 * and none will push to it again (after every worker has stopped). */
void ursa__stack_cache_fini(struct ursa__stack_cache *c);
/* The owner, stopping: if every slot is back (none in use here or on
 * another core), unmap every slab now and return true; nothing will push
 * to this cache again.  fini then has nothing left to do. */
bool ursa__stack_cache_release(struct ursa__stack_cache *c);

/*
 * A stack of `size` bytes (0: the configured size), rounded up to its
 * class, with cfg.rec_size bytes at its top for the task record: *rec
 * points there (64-byte aligned, zeroed), s describes the
 * stack below it.  lend: the slot will be freed on another core.
 * 0, -EINVAL for a size above URSA__STACK_MAX, or -ENOMEM.
 */
int ursa__stack_get(struct ursa__stack_cache *c, size_t size, bool lend, struct ursa__stack *s,
                    void **rec);
/* Give back a stack from ursa__stack_get, on any core's thread; `here` is
 * that thread's cache.  The task record on it is dead from now on. */
void ursa__stack_put(struct ursa__stack_cache *here, const struct ursa__stack *s);

/* The trim tick: collect slots freed on other cores, give back what has
 * been idle long enough beyond cfg.keep.  Returns the delay before the next
 * tick is wanted, 0 for none (the cache then arms again when needed). */
uint64_t ursa__stack_trim(struct ursa__stack_cache *c, uint64_t now_ns);

/* The class a size falls in, or -EINVAL. */
int ursa__stack_class(size_t size);

#endif /* URSA_FIBER_STACK_H */
