/* SPDX-License-Identifier: MIT */
/*
 * symbolize.h: naming code addresses in ursa's reports (stack overflow,
 * stall, crash).  Every frame is printed as module+offset, which
 * `addr2line -f -e MODULE OFFSET` resolves later whatever the build; where
 * the library was built with elfutils' libdw the frame also gets its
 * function (static ones included, from the symbol table) and file:line
 * (from the debug information, when the module has it).
 */
#ifndef URSA_SYMBOLIZE_H
#define URSA_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>

/* A symbolizer for one report: loads the process's modules once (libdw), or
 * nothing.  Not async-signal-safe (it allocates): from a handler, use it only
 * on the way to an abort, after the frames went out in their plain form. */
struct ursa__sym;
struct ursa__sym *ursa__sym_open(void);
void ursa__sym_close(struct ursa__sym *s);

/*
 * The function containing addr: its name (static functions too, with libdw;
 * else what dladdr finds, which needs the symbol exported), or "?".  Written
 * into buf.  s may be NULL (dladdr only).
 */
const char *ursa__sym_name(struct ursa__sym *s, const void *addr, char *buf, size_t len);

/*
 * Write frames[0..n) to fd, one line each: "  #i MODULE+0xOFFSET", then,
 * with s, " FUNCTION+0xOFF (FILE:LINE)" where known.  Return addresses
 * (every frame but the first when first_is_pc) are looked up one byte back,
 * at the call.  s may be NULL: the plain form, which takes no lock and
 * allocates nothing beyond dladdr's own.
 */
void ursa__sym_print(struct ursa__sym *s, int fd, void *const *frames, int n, bool first_is_pc);

#endif /* URSA_SYMBOLIZE_H */
