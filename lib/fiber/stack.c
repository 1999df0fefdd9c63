/* SPDX-License-Identifier: MIT */
/*
 * stack.c: guarded fiber stacks from per-core slabs (layout in stack.h).
 *
 * Sections: guards (probing, installing, the mprotect fallback's map-count
 * budget); single stacks; slabs; the per-core cache's hot paths (get, put,
 * the remote list); the trim tick.
 *
 * A slab's free slots are a stack of indices, free[0 .. nfree): pops and
 * pushes at the top, so the slot used last is used next (its pages are
 * resident and in cache).  free[0 .. ncold) were given back with
 * MADV_DONTNEED: still guarded, no memory.  Trimming takes from the bottom,
 * where slots have been free longest; low-water marks say how long (see
 * ursa__stack_trim).
 */
#include "stack.h"

#include "switch.h" /* URSA__ASAN */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef URSA_HAVE_VALGRIND
#include <valgrind/valgrind.h>
#endif
#ifdef URSA__ASAN
#include <sanitizer/asan_interface.h>
#endif

/* Linux 6.13 added guard regions; Debian 12's headers predate them. */
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
/* "This process" for pidfd calls, without opening a pidfd (Linux 6.14). */
#define PIDFD_SELF_PROCESS (-10001)
/* process_madvise takes at most UIO_MAXIOV ranges per call. */
#define IOV_BATCH 1024

/* Slab sizes: the first slab of a class has SLAB_MIN_SLOTS slots, each next
 * one as many as the class has already (so capacity doubles), up to
 * SLAB_MAX_SLOTS and SLAB_MAX_BYTES of address space. */
#define SLAB_MIN_SLOTS 16u
#define SLAB_MAX_SLOTS 4096u
#define SLAB_MAX_BYTES (2ull << 30)

/* Slots given back per tick at most (made cold, then as many unmapped), and
 * the pause before the next batch: a slot costs about 0.6 us to make cold
 * and 1.1 us to unmap with 256 KiB guards (its 64 guard entries), so a tick
 * holds its core for a few ms at most and the memory of a million idle
 * stacks goes back in about half a second of two cores' time. */
#define TRIM_BATCH 8192u
#define TRIM_CONTINUE_NS 1000000ull
/* The low-water marks move every trim interval / TRIM_TICKS: a slot is
 * given back once it has sat free and untouched through TRIM_TICKS such
 * periods (between stack_trim_ms and 1.25 x that). */
#define TRIM_TICKS 4
/* Ticks come at least this often while there is anything to collect or
 * give back (a long stack_trim_ms then means more ticks per interval, not
 * late ones), and a tick kept alive only to collect slots lent to other
 * cores backs off up to this. */
#define LENT_TICK_MAX_NS 1000000000ull

struct ursa__slab {
	struct ursa__stack_cache *cache;   /* owner */
	struct ursa__slab *all_next, *all_prev;
	struct ursa__slab *av_next, *av_prev; /* pool->avail, circular when on it */
	char *base;
	size_t slot_size;                  /* guard + class size */
	size_t len;                        /* mapped bytes */
	unsigned cls;
	bool on_avail;
	uint32_t nslots;
	uint32_t carved;                   /* slots [0, carved) were handed out once */
	uint32_t guarded;                  /* slots [0, guarded) have their guard */
	uint32_t nfree, ncold;
	uint32_t low;                      /* least nfree since the marks last moved */
	uint32_t hist[TRIM_TICKS - 1];     /* low of the periods before */
	unsigned *vg;                      /* valgrind stack ids (nslots), or NULL */
	uint32_t free[];                   /* nslots entries */
};

/* ------------------------------------------------------------------ guards */

/* 0 = not probed yet, 1 = MADV_GUARD_INSTALL works, 2 = use mprotect. */
static atomic_int guard_mode;
/* 0 = not probed, 1 = process_madvise on PIDFD_SELF works, 2 = it does not. */
static atomic_int pmadv_mode;

/* The mprotect fallback's budget of memory mappings (process-wide). */
static atomic_long mp_vmas;        /* VMAs our guards added */
static atomic_long mp_limit;       /* usable: max_map_count - what was there - reserve */
static atomic_long mp_max;         /* vm.max_map_count as read */
static atomic_bool mp_said;

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

static size_t round_page(size_t n)
{
	size_t ps = page_size();

	return (n + ps - 1) & ~(ps - 1);
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

static bool on_valgrind(void)
{
#ifdef URSA_HAVE_VALGRIND
	return RUNNING_ON_VALGRIND != 0;
#else
	return false;
#endif
}

/* URSA_DISABLE=guard_install: behave as on a kernel before 6.13, so the
 * mprotect fallback is tested on one that has guard regions (meson.build). */
static bool guard_install_disabled(void)
{
	const char *list = getenv("URSA_DISABLE");
	static const char what[] = "guard_install";
	size_t n = sizeof(what) - 1;

	for (const char *p = list; p && *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] != 0))
		if (strncmp(p, what, n) == 0 && (p[n] == ',' || p[n] == 0))
			return true;
	return false;
}

/*
 * Apply `advice` to n ranges: one process_madvise per IOV_BATCH ranges where
 * the kernel takes it for this process (6.14: PIDFD_SELF; 6.13 lets any
 * advice through for the calling process), else one madvise each.  *calls
 * counts the system calls.  0 or -errno.
 */
static int advise_ranges(struct iovec *iov, size_t n, int advice, uint64_t *calls)
{
	size_t i = 0;

	if (atomic_load_explicit(&pmadv_mode, memory_order_relaxed) != 2 && !on_valgrind()) {
		while (i < n) {
			size_t k = n - i < IOV_BATCH ? n - i : IOV_BATCH, want = 0;
			long done;

			for (size_t j = 0; j < k; j++)
				want += iov[i + j].iov_len;
			(*calls)++;
			done = syscall(SYS_process_madvise, PIDFD_SELF_PROCESS, &iov[i], k, advice, 0);
			if (done < 0) {
				/* EBADF: no PIDFD_SELF; EINVAL/EPERM: advice not
				 * allowed; ENOSYS: no process_madvise.  Use madvise
				 * from now on.  Anything else is the advice's own
				 * failure, which madvise will report. */
				if (errno == EBADF || errno == EINVAL || errno == EPERM || errno == ENOSYS)
					atomic_store_explicit(&pmadv_mode, 2, memory_order_relaxed);
				break;
			}
			atomic_store_explicit(&pmadv_mode, 1, memory_order_relaxed);
			if ((size_t)done == want) {
				i += k;
				continue;
			}
			/* Short: skip the ranges done, redo the rest one by one. */
			for (size_t left = (size_t)done; left >= iov[i].iov_len; i++)
				left -= iov[i].iov_len;
			break;
		}
	}
	for (; i < n; i++) {
		(*calls)++;
		if (madvise(iov[i].iov_base, iov[i].iov_len, advice) != 0)
			return -errno;
	}
	return 0;
}

static long read_long_file(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static long count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	long n = 0;
	int ch;

	if (!f)
		return -1;
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

/* The message, once per process, when the fallback runs out of mappings. */
static void say_map_limit(void)
{
	long max = atomic_load_explicit(&mp_max, memory_order_relaxed);
	long vmas = atomic_load_explicit(&mp_vmas, memory_order_relaxed);

	if (atomic_exchange(&mp_said, true))
		return;
	fprintf(stderr,
	        "ursa: out of memory mappings for stack guards: without MADV_GUARD_INSTALL "
	        "(Linux before 6.13, or URSA_DISABLE=guard_install) each guard is an mprotect "
	        "that costs two mappings, and vm.max_map_count is %ld (%ld stacks guarded now, "
	        "a sixteenth of the limit left for the rest of the program); spawn returns "
	        "-ENOMEM.  Raise vm.max_map_count (sysctl) or run on a newer kernel.\n",
	        max, vmas / 2);
}

/* The fallback's budget, read the first time it is needed. */
static void mp_budget_init(void)
{
	long max, have;

	if (atomic_load_explicit(&mp_limit, memory_order_acquire))
		return;
	max = read_long_file("/proc/sys/vm/max_map_count");
	if (max <= 0)
		max = 65530; /* the kernel's default */
	have = count_maps();
	if (have < 0)
		have = 0;
	atomic_store_explicit(&mp_max, max, memory_order_relaxed);
	/* Leave a sixteenth for the program's own mmaps, threads, rings. */
	atomic_store_explicit(&mp_limit, max - have - max / 16 > 0 ? max - have - max / 16 : 1,
	                      memory_order_release);
}

/*
 * Guard n slots starting at `first` (each slot's lowest `guard` bytes).
 * Returns how many were guarded (all of them, or fewer when the mprotect
 * fallback reaches its map budget or a call fails: *err then says why).
 */
static uint32_t install_guards(struct iovec *iov, char *first, size_t slot_size, size_t guard,
                               uint32_t n, uint64_t *calls, int *err)
{
	int mode = atomic_load_explicit(&guard_mode, memory_order_relaxed);
	uint32_t done = 0;

	*err = 0;
	if (mode == 0) {
		/* Probe on the first slot: EINVAL means the kernel predates
		 * guard regions. */
		(*calls)++;
		if (!guard_install_disabled() && madvise(first, guard, MADV_GUARD_INSTALL) == 0) {
			atomic_store_explicit(&guard_mode, 1, memory_order_relaxed);
			mode = 1;
			done = 1;
		} else if (guard_install_disabled() || errno == EINVAL) {
			atomic_store_explicit(&guard_mode, 2, memory_order_relaxed);
			mode = 2;
		} else {
			*err = -errno;
			return 0;
		}
	}
	if (mode == 1) {
		while (done < n) {
			uint32_t k = n - done < IOV_BATCH ? n - done : IOV_BATCH;
			int rc;

			for (uint32_t j = 0; j < k; j++) {
				iov[j].iov_base = first + (size_t)(done + j) * slot_size;
				iov[j].iov_len = guard;
			}
			rc = advise_ranges(iov, k, MADV_GUARD_INSTALL, calls);
			if (rc < 0) {
				/* Some of this batch may be guarded; count none
				 * of it (a guard installed twice is harmless). */
				*err = rc;
				break;
			}
			done += k;
		}
		return done;
	}

	/* mprotect: each guard splits the mapping, two VMAs more per slot.
	 * Stay inside the budget rather than let the kernel refuse the
	 * program's next mmap. */
	mp_budget_init();
	for (; done < n; done++) {
		long vmas = atomic_fetch_add_explicit(&mp_vmas, 2, memory_order_relaxed) + 2;

		if (vmas > atomic_load_explicit(&mp_limit, memory_order_relaxed)) {
			atomic_fetch_sub_explicit(&mp_vmas, 2, memory_order_relaxed);
			say_map_limit();
			*err = -ENOMEM;
			break;
		}
		(*calls)++;
		if (mprotect(first + (size_t)done * slot_size, guard, PROT_NONE) != 0) {
			*err = -errno;
			atomic_fetch_sub_explicit(&mp_vmas, 2, memory_order_relaxed);
			if (*err == -ENOMEM)
				say_map_limit(); /* the kernel's count was reached first */
			break;
		}
	}
	return done;
}

/* Give back the map budget of n slots guarded by mprotect. */
static void release_guards(uint32_t n)
{
	if (atomic_load_explicit(&guard_mode, memory_order_relaxed) == 2)
		atomic_fetch_sub_explicit(&mp_vmas, 2 * (long)n, memory_order_relaxed);
}

/* NORESERVE: a million 128 KiB stacks are 128 GiB of address space but
 * only the pages touched are memory; do not charge commit for the rest.
 * MAP_STACK also keeps transparent huge pages out (Linux 6.7+): a 2 MiB
 * page under a stack would cost 512 times the page it touches. */
static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* ------------------------------------------------------------ single stacks */

int ursa__stack_map(struct ursa__stack *s, size_t size)
{
	size_t guard = URSA__STACK_GUARD_DEFAULT;
	uint64_t calls = 0;
	struct iovec one;
	void *map;
	int err;

	size = round_page(size);
	if (size < URSA__STACK_MIN)
		size = URSA__STACK_MIN;
	map = map_anon(guard + size);
	if (!map)
		return -errno;
	if (install_guards(&one, map, guard + size, guard, 1, &calls, &err) != 1) {
		munmap(map, guard + size);
		return err;
	}
	memset(s, 0, sizeof(*s));
	s->map = map;
	s->size = size;
	s->guard = guard;
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
	release_guards(1);
	munmap(s->map, s->guard + s->size);
	s->map = NULL;
}

bool ursa__stack_in_guard(const struct ursa__stack *s, const void *addr)
{
	uintptr_t a = (uintptr_t)addr, lo = (uintptr_t)s->map;

	return s->map && a >= lo && a < lo + s->guard;
}

int ursa__stack_class(size_t size)
{
	int k = 0;

	if (size > URSA__STACK_MAX)
		return -EINVAL;
	while (((size_t)URSA__STACK_MIN << k) < size)
		k++;
	return k;
}

/* ------------------------------------------------------------------- slabs */

/* Whole pages, so that every slot and guard is page-aligned (with 64 KiB
 * pages the smallest classes are one page). */
static size_t class_size(unsigned cls)
{
	return round_page((size_t)URSA__STACK_MIN << cls);
}

/*
 * Between a stack's top and its record: a gap whose first word is a canary,
 * the first thing a buffer overrun running up the stack from its first
 * frames hits before it reaches the record (ursa__stack_top_intact).
 */
#define TOP_GAP 64

static uint64_t top_canary(const void *rec)
{
	return (uint64_t)(uintptr_t)rec ^ 0x9e3779b97f4a7c15ull;
}

bool ursa__stack_top_intact(const struct ursa__stack *st)
{
	const char *rec = (const char *)ursa__stack_lo(st) + st->size + TOP_GAP;

	return !st->slab || *(const uint64_t *)(const void *)(rec - TOP_GAP) == top_canary(rec);
}

/* Where slot i's task record goes, and the stack below it. */
static char *slot_base(const struct ursa__slab *s, uint32_t i)
{
	return s->base + (size_t)i * s->slot_size;
}

static char *slot_rec(const struct ursa__slab *s, uint32_t i)
{
	const struct ursa__stack_cache *c = s->cache;

	return slot_base(s, i) + s->slot_size - c->cfg.rec_size;
}

static void describe_slot(const struct ursa__slab *s, uint32_t i, struct ursa__stack *st)
{
	st->map = slot_base(s, i);
	st->guard = s->cache->cfg.guard;
	st->size = s->slot_size - st->guard - s->cache->cfg.rec_size - TOP_GAP;
	st->slab = (struct ursa__slab *)s;
	st->slot = i;
	st->vg_id = s->vg ? s->vg[i] : 0;
}

/* The record area is not stack: ASan should catch a use of a dead task's
 * record as it caught a use of its freed heap block before records moved
 * here.  (A slot's stack keeps its dead frames' poison, as any reused fiber
 * stack does: each new frame writes its own shadow.) */
static void poison_rec(const struct ursa__slab *s, uint32_t i, bool poison)
{
#ifdef URSA__ASAN
	if (poison)
		__asan_poison_memory_region(slot_rec(s, i), s->cache->cfg.rec_size);
	else
		__asan_unpoison_memory_region(slot_rec(s, i), s->cache->cfg.rec_size);
#else
	(void)s;
	(void)i;
	(void)poison;
#endif
}

/*
 * Zero a record area (64-byte aligned, a multiple of 64 bytes) with plain
 * 16-byte stores.  gcc expands a memset of this size into `rep stos`, whose
 * start-up cost made spawn+join 20-30% slower than a calloc'd record on the
 * VMs here (perf: 60% of ursa_spawn's own time on that one instruction).
 */
typedef uint64_t ursa__u64x2 __attribute__((vector_size(16)));

#if defined(__GNUC__) && !defined(__clang__)
/* Or gcc turns the loop back into a memset. */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif
static void zero_rec(void *rec, size_t n)
{
	ursa__u64x2 *p = rec, z = {0, 0};

	for (size_t i = 0; i < n / sizeof(z); i += 4) {
		p[i] = z;
		p[i + 1] = z;
		p[i + 2] = z;
		p[i + 3] = z;
	}
}

static void all_link(struct ursa__stack_pool *p, struct ursa__slab *s)
{
	s->all_prev = NULL;
	s->all_next = p->all;
	if (p->all)
		p->all->all_prev = s;
	p->all = s;
}

static void all_unlink(struct ursa__stack_pool *p, struct ursa__slab *s)
{
	if (s->all_prev)
		s->all_prev->all_next = s->all_next;
	else
		p->all = s->all_next;
	if (s->all_next)
		s->all_next->all_prev = s->all_prev;
}

/* pool->avail is circular: avail is the slab pushed to last, avail->av_prev
 * the one pushed to longest ago. */
static void avail_unlink(struct ursa__stack_pool *p, struct ursa__slab *s)
{
	if (s->av_next == s) {
		p->avail = NULL;
	} else {
		s->av_prev->av_next = s->av_next;
		s->av_next->av_prev = s->av_prev;
		if (p->avail == s)
			p->avail = s->av_next;
	}
	s->on_avail = false;
}

static void avail_push_front(struct ursa__stack_pool *p, struct ursa__slab *s)
{
	struct ursa__slab *h = p->avail;

	if (!h) {
		s->av_next = s->av_prev = s;
	} else {
		s->av_next = h;
		s->av_prev = h->av_prev;
		h->av_prev->av_next = s;
		h->av_prev = s;
	}
	p->avail = s;
	s->on_avail = true;
}

/* Map a slab of up to `want` slots of class cls; fewer when the address
 * space is short (RLIMIT_AS), down to one.  NULL and *err on failure. */
static struct ursa__slab *slab_new(struct ursa__stack_cache *c, unsigned cls, uint32_t want,
                                   int *err)
{
	size_t slot = c->cfg.guard + class_size(cls);
	struct ursa__slab *s;
	void *base = NULL;

	if ((uint64_t)want * slot > SLAB_MAX_BYTES)
		want = (uint32_t)(SLAB_MAX_BYTES / slot);
	if (want == 0)
		want = 1;
	for (;;) {
		base = map_anon(want * slot);
		if (base || errno != ENOMEM || want == 1)
			break;
		want /= 2;
	}
	if (!base) {
		*err = -errno;
		return NULL;
	}
	s = calloc(1, sizeof(*s) + want * sizeof(s->free[0]));
	if (s && on_valgrind()) {
		s->vg = calloc(want, sizeof(*s->vg));
		if (!s->vg) {
			free(s);
			s = NULL;
		}
	}
	if (!s) {
		munmap(base, want * slot);
		*err = -ENOMEM;
		return NULL;
	}
	s->cache = c;
	s->base = base;
	s->slot_size = slot;
	s->len = want * slot;
	s->cls = cls;
	s->nslots = want;
	c->stats.maps++;
	c->stats.slabs++;
	c->stats.mapped += s->len;
	return s;
}

static void slab_unmap(struct ursa__stack_cache *c, struct ursa__slab *s)
{
#ifdef URSA_HAVE_VALGRIND
	if (s->vg)
		for (uint32_t i = 0; i < s->carved; i++)
			VALGRIND_STACK_DEREGISTER(s->vg[i]);
#endif
	release_guards(s->guarded);
	munmap(s->base, s->len);
	c->stats.unmaps++;
	c->stats.slabs--;
	c->stats.mapped -= s->len;
	free(s->vg);
	free(s);
}

/* Unmap a slab none of whose slots is in use, and forget it. */
static void slab_release(struct ursa__stack_cache *c, struct ursa__slab *s)
{
	struct ursa__stack_pool *p = &c->pools[s->cls];

	c->stats.free_hot -= s->nfree - s->ncold;
	p->capacity -= s->nslots;
	if (s->on_avail)
		avail_unlink(p, s);
	if (p->carve == s)
		p->carve = NULL;
	all_unlink(p, s);
	slab_unmap(c, s);
}

/* Fault in the top page of n fresh slots (the task record and the first
 * frames go there) with MADV_POPULATE_WRITE, a batch per call: the same
 * zeroing as a first touch, without a page-fault exception per slot. */
static void populate_tops(struct ursa__stack_cache *c, struct ursa__slab *s, uint32_t first,
                          uint32_t n)
{
	size_t ps = page_size();

	for (uint32_t j = 0; j < n; j++) {
		c->iov[j].iov_base = slot_base(s, first + j) + s->slot_size - ps;
		c->iov[j].iov_len = ps;
	}
	/* A failure (no memory now, a kernel before 5.14) only means the
	 * pages fault in when touched. */
	(void)advise_ranges(c->iov, n, MADV_POPULATE_WRITE, &c->stats.carve_calls);
}

/* Hand out slot `carved` of p->carve for the first time, guarding a batch
 * of slots ahead if needed.  0, or -errno with nothing changed. */
static int carve(struct ursa__stack_cache *c, struct ursa__stack_pool *p, uint32_t *idx)
{
	struct ursa__slab *s = p->carve;
	uint32_t i = s->carved;

	if (i == s->guarded) {
		/* Guards go on in batches that grow with the slab: a small
		 * program pays for few, a burst for one call per IOV_BATCH. */
		uint32_t n = s->nslots - i, want = i < SLAB_MIN_SLOTS ? SLAB_MIN_SLOTS : i;
		int err;

		if (want > IOV_BATCH)
			want = IOV_BATCH;
		if (n > want)
			n = want;
		n = install_guards(c->iov, slot_base(s, i), s->slot_size, c->cfg.guard, n,
		                   &c->stats.carve_calls, &err);
		if (n == 0)
			return err;
		s->guarded += n;
		populate_tops(c, s, i, n);
	}
#ifdef URSA_HAVE_VALGRIND
	if (s->vg) {
		struct ursa__stack st;

		describe_slot(s, i, &st);
		s->vg[i] = VALGRIND_STACK_REGISTER(ursa__stack_lo(&st),
		                                   (char *)ursa__stack_lo(&st) + st.size);
	}
#endif
	s->carved++;
	if (s->carved == s->nslots)
		p->carve = NULL;
	*idx = i;
	return 0;
}

/* Release every slab of c with no slot in use, kept or not: the last resort
 * before reporting -ENOMEM. */
static void release_free_slabs(struct ursa__stack_cache *c)
{
	for (unsigned k = 0; k < URSA__STACK_CLASSES; k++) {
		struct ursa__slab *s = c->pools[k].all, *next;

		for (; s; s = next) {
			next = s->all_next;
			if (s->nfree == s->carved)
				slab_release(c, s);
		}
	}
}

/* ------------------------------------------------------------ cache: paths */

static unsigned drain_remote(struct ursa__stack_cache *c);

int ursa__stack_cache_init(struct ursa__stack_cache *c, const struct ursa__stack_config *cfg,
                           void (*arm)(void *ctx, uint64_t delay_ns), void *arm_ctx)
{
	int cls = ursa__stack_class(cfg->size ? cfg->size : URSA__STACK_MIN);

	memset(c, 0, sizeof(*c));
	if (cls < 0)
		return cls;
	c->cfg = *cfg;
	c->cfg.guard = round_page(cfg->guard ? cfg->guard : URSA__STACK_GUARD_DEFAULT);
	/* The record sits in the stack's top cache lines; a slot on its way
	 * back from another core carries its node there instead. */
	c->cfg.rec_size = cfg->rec_size > sizeof(struct ursa__stack_node)
	                          ? cfg->rec_size
	                          : sizeof(struct ursa__stack_node);
	c->cfg.rec_size = (c->cfg.rec_size + 63) & ~(size_t)63;
	if (c->cfg.rec_size > URSA__STACK_MIN / 2)
		return -EINVAL;
	/* Off the stack: carving runs on the spawning task's stack, which
	 * may be 16 KiB. */
	c->iov = calloc(IOV_BATCH, sizeof(*c->iov));
	if (!c->iov)
		return -ENOMEM;
	c->default_class = (unsigned)cls;
	c->arm = arm;
	c->arm_ctx = arm_ctx;
	atomic_init(&c->remote, NULL);
	return 0;
}

void ursa__stack_cache_fini(struct ursa__stack_cache *c)
{
	for (unsigned k = 0; k < URSA__STACK_CLASSES; k++) {
		struct ursa__slab *s = c->pools[k].all, *next;

		for (; s; s = next) {
			next = s->all_next;
			slab_unmap(c, s);
		}
		memset(&c->pools[k], 0, sizeof(c->pools[k]));
	}
	free(c->iov);
	c->iov = NULL;
	atomic_store_explicit(&c->remote, NULL, memory_order_relaxed);
}

bool ursa__stack_cache_release(struct ursa__stack_cache *c)
{
	drain_remote(c);
	if (c->stats.live)
		return false;
	ursa__stack_cache_fini(c);
	return true;
}

static void arm_tick(struct ursa__stack_cache *c, uint64_t delay_ns)
{
	c->tick_armed = true;
	if (c->arm)
		c->arm(c->arm_ctx, delay_ns);
}

/* A free slot onto its slab's stack (owner thread). */
static void push_local(struct ursa__stack_cache *c, struct ursa__slab *s, uint32_t i)
{
	struct ursa__stack_pool *p = &c->pools[s->cls];

	poison_rec(s, i, true);
	s->free[s->nfree++] = i;
	c->stats.free_hot++;
	c->stats.live--;
	/* The slab pushed to last is popped from first: its top slot is the
	 * hottest. */
	if (p->avail != s) {
		if (s->on_avail)
			avail_unlink(p, s);
		avail_push_front(p, s);
	}
}

/* Take the slots other cores gave back.  acquire: pairs with the release
 * in ursa__stack_put, so the node (and everything the task wrote on its
 * stack) is visible here before the slot is reused. */
static unsigned drain_remote(struct ursa__stack_cache *c)
{
	struct ursa__stack_node *n = atomic_exchange_explicit(&c->remote, NULL, memory_order_acquire);
	unsigned k = 0;

	while (n) {
		struct ursa__stack_node *next = n->next;

		push_local(c, n->slab, n->slot);
		n = next;
		k++;
	}
	c->lent -= k;
	return k;
}

/* When to look for lent slots again: the trim interval, doubled for each
 * tick in a row that found none back, at most LENT_TICK_MAX_NS. */
static uint64_t lent_delay(const struct ursa__stack_cache *c)
{
	uint64_t d = c->cfg.trim_ns << (c->lent_backoff < 8 ? c->lent_backoff : 8);

	return d < LENT_TICK_MAX_NS && d >= c->cfg.trim_ns ? d : LENT_TICK_MAX_NS;
}

static void pop(struct ursa__stack_cache *c, struct ursa__slab *s, uint32_t *idx)
{
	struct ursa__stack_pool *p = &c->pools[s->cls];

	*idx = s->free[--s->nfree];
	if (s->nfree < s->ncold)
		s->ncold = s->nfree; /* a cold slot: it will fault its pages in */
	else
		c->stats.free_hot--;
	if (s->nfree < s->low)
		s->low = s->nfree;
	if (s->nfree == 0)
		avail_unlink(p, s);
}

int ursa__stack_get(struct ursa__stack_cache *c, size_t size, bool lend, struct ursa__stack *st,
                    void **rec)
{
	int cls = size ? ursa__stack_class(size) : (int)c->default_class;
	struct ursa__stack_pool *p;
	struct ursa__slab *s;
	uint32_t i = 0;
	int rc = 0;

	if (cls < 0)
		return cls;
	p = &c->pools[cls];
	if (!p->avail && atomic_load_explicit(&c->remote, memory_order_relaxed))
		drain_remote(c);
	if (p->avail) {
		s = p->avail;
		pop(c, s, &i);
	} else {
		for (int attempt = 0;; attempt++) {
			if (!p->carve) {
				uint32_t want = p->capacity < SLAB_MIN_SLOTS ? SLAB_MIN_SLOTS
				                                             : p->capacity;

				if (want > SLAB_MAX_SLOTS)
					want = SLAB_MAX_SLOTS;
				p->carve = slab_new(c, (unsigned)cls, want, &rc);
				if (p->carve) {
					all_link(p, p->carve);
					p->capacity += p->carve->nslots;
				}
			}
			if (p->carve) {
				s = p->carve;
				rc = carve(c, p, &i);
				if (rc == 0)
					break;
				/* No guard for a fresh slot: drop the slab if
				 * nothing of it is in use (the map budget and the
				 * address space it held go back). */
				if (s->carved == 0)
					slab_release(c, s);
				p->carve = NULL;
			}
			/* Out of address space or mappings: what this core
			 * keeps free may be what is missing.  Once. */
			if (attempt > 0 || (rc != -ENOMEM && rc != -EAGAIN))
				return rc;
			release_free_slabs(c);
		}
	}
	c->stats.live++;
	poison_rec(s, i, false);
	describe_slot(s, i, st);
	*rec = slot_rec(s, i);
	zero_rec(*rec, c->cfg.rec_size);
	*(uint64_t *)(void *)((char *)*rec - TOP_GAP) = top_canary(*rec);
	if (lend) {
		c->lent++;
		if (!c->tick_armed)
			arm_tick(c, lent_delay(c));
	}
	return 0;
}

void ursa__stack_put(struct ursa__stack_cache *here, const struct ursa__stack *st)
{
	struct ursa__slab *s = st->slab;
	struct ursa__stack_cache *owner = s->cache;
	uint32_t i = st->slot;

	if (owner == here) {
		push_local(here, s, i);
		if (here->stats.free_hot > here->cfg.keep && !here->tick_armed) {
			uint64_t quarter = here->cfg.trim_ns / TRIM_TICKS;

			arm_tick(here, quarter < LENT_TICK_MAX_NS ? quarter : LENT_TICK_MAX_NS);
		}
		return;
	}
	/* Another core's slot: onto its lock-free list (a Treiber stack; the
	 * owner takes the whole list at once, so there is no ABA).  The node
	 * overwrites the dead task record. */
	struct ursa__stack_node *n = (struct ursa__stack_node *)(void *)slot_rec(s, i);
	struct ursa__stack_node *head = atomic_load_explicit(&owner->remote, memory_order_relaxed);

	n->slab = s;
	n->slot = i;
	do {
		n->next = head;
		/* release: pairs with the acquire exchange in drain_remote. */
	} while (!atomic_compare_exchange_weak_explicit(&owner->remote, &head, n,
	                                                memory_order_release,
	                                                memory_order_relaxed));
}

/* --------------------------------------------------------------- trimming */

/* Give back free[ncold .. ncold + n) of s with MADV_DONTNEED: each slot's
 * stack and record, not its guard (a range over the guard too would merge
 * neighbours, but makes the kernel walk 64 more page-table entries a slot
 * for nothing: 0.6 us a slot this way, 1.1-1.5 us to unmap one). */
static void make_cold(struct ursa__stack_cache *c, struct ursa__slab *s, uint32_t n)
{
	size_t guard = c->cfg.guard;
	uint32_t *idx = &s->free[s->ncold];

	for (uint32_t done = 0; done < n;) {
		uint32_t k = n - done < IOV_BATCH ? n - done : IOV_BATCH;

		for (uint32_t j = 0; j < k; j++) {
			c->iov[j].iov_base = slot_base(s, idx[done + j]) + guard;
			c->iov[j].iov_len = s->slot_size - guard;
		}
		/* DONTNEED on our own private mapping does not fail; if it
		 * did, the memory would stay resident, counted as cold:
		 * harmless. */
		(void)advise_ranges(c->iov, k, MADV_DONTNEED, &c->stats.trim_calls);
		done += k;
	}
	s->ncold += n;
	c->stats.free_hot -= n;
	c->stats.slots_trimmed += n;
}

/* Slots of s that sat free and untouched through the last TRIM_TICKS
 * periods: free[ncold .. idle_top). */
static uint32_t idle_top(const struct ursa__slab *s)
{
	uint32_t m = s->low;

	for (unsigned k = 0; k < TRIM_TICKS - 1; k++)
		if (s->hist[k] < m)
			m = s->hist[k];
	return m > s->ncold ? m : s->ncold;
}

uint64_t ursa__stack_trim(struct ursa__stack_cache *c, uint64_t now_ns)
{
	uint64_t quarter = c->cfg.trim_ns / TRIM_TICKS, next = 0;
	unsigned budget = TRIM_BATCH;
	unsigned drained;
	bool more = false;

	c->tick_armed = false;
	c->stats.ticks++;
	drained = drain_remote(c);

	/* Memory first (RSS): idle slots beyond the budget go cold, oldest
	 * first: the back of each pool's avail list was pushed to longest
	 * ago. */
	for (unsigned k = 0; k < URSA__STACK_CLASSES && !more; k++) {
		struct ursa__stack_pool *p = &c->pools[k];
		struct ursa__slab *s = p->avail ? p->avail->av_prev : NULL;

		while (s && c->stats.free_hot > c->cfg.keep) {
			struct ursa__slab *prev = s == p->avail ? NULL : s->av_prev;
			uint32_t idle = idle_top(s) - s->ncold;
			uint32_t excess = c->stats.free_hot - c->cfg.keep;

			if (budget == 0) {
				more = true;
				break;
			}
			if (idle > excess)
				idle = excess;
			if (idle > budget)
				idle = budget;
			if (idle) {
				budget -= idle;
				make_cold(c, s, idle);
			}
			s = prev;
		}
	}
	/* Then address space and page tables: slabs with every slot free and
	 * cold are unmapped, a batch of slots per tick (at least one slab). */
	budget = TRIM_BATCH;
	for (unsigned k = 0; k < URSA__STACK_CLASSES && !more; k++) {
		struct ursa__slab *s = c->pools[k].all, *next_s;

		for (; s; s = next_s) {
			next_s = s->all_next;
			if (s->nfree != s->carved || s->ncold != s->nfree || !s->carved)
				continue;
			if (s->nslots > budget && budget < TRIM_BATCH) {
				more = true;
				break;
			}
			budget = s->nslots > budget ? 0 : budget - s->nslots;
			slab_release(c, s);
		}
	}
	/* Every quarter interval, whether or not this tick finished its work
	 * (or slots would stop becoming idle while slabs are unmapped):
	 * shift the low-water marks. */
	if (now_ns - c->shifted_ns >= quarter) {
		for (unsigned k = 0; k < URSA__STACK_CLASSES; k++)
			for (struct ursa__slab *s = c->pools[k].all; s; s = s->all_next) {
				memmove(&s->hist[1], &s->hist[0],
				        sizeof(s->hist) - sizeof(s->hist[0]));
				s->hist[0] = s->low;
				s->low = s->nfree;
			}
		c->shifted_ns = now_ns;
	}
	if (more) {
		c->tick_armed = true;
		return TRIM_CONTINUE_NS;
	}
	if (c->stats.free_hot > c->cfg.keep) {
		next = c->shifted_ns + quarter - now_ns;
		if (next < TRIM_CONTINUE_NS)
			next = TRIM_CONTINUE_NS;
	}
	if (c->lent) {
		/* Slots lent to other cores: look again, backing off while
		 * none come back. */
		uint64_t d;

		c->lent_backoff = drained ? 0 : c->lent_backoff + 1;
		d = lent_delay(c);
		if (!next || d < next)
			next = d;
	} else {
		c->lent_backoff = 0;
	}
	if (next > LENT_TICK_MAX_NS)
		next = LENT_TICK_MAX_NS;
	c->tick_armed = next != 0;
	return next;
}
