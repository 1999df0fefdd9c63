/* SPDX-License-Identifier: MIT */
/*
 * symbolize.c: module+offset for every frame (dladdr), and function and
 * file:line where libdw is available (URSA_HAVE_LIBDW).
 */
#include "symbolize.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef URSA_HAVE_LIBDW
#include <elfutils/libdwfl.h>
#endif

struct ursa__sym {
#ifdef URSA_HAVE_LIBDW
	Dwfl *dwfl;
#else
	int unused;
#endif
};

#ifdef URSA_HAVE_LIBDW
static const Dwfl_Callbacks callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
};
#endif

struct ursa__sym *ursa__sym_open(void)
{
#ifdef URSA_HAVE_LIBDW
	struct ursa__sym *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->dwfl = dwfl_begin(&callbacks);
	if (!s->dwfl || dwfl_linux_proc_report(s->dwfl, getpid()) != 0 ||
	    dwfl_report_end(s->dwfl, NULL, NULL) != 0) {
		if (s->dwfl)
			dwfl_end(s->dwfl);
		free(s);
		return NULL;
	}
	return s;
#else
	return NULL;
#endif
}

void ursa__sym_close(struct ursa__sym *s)
{
	if (!s)
		return;
#ifdef URSA_HAVE_LIBDW
	dwfl_end(s->dwfl);
#endif
	free(s);
}

/* The module's base name, so a line stays short; the full path would only
 * repeat what /proc/PID/maps says. */
static const char *base(const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;

	return slash ? slash + 1 : path ? path : "?";
}

const char *ursa__sym_name(struct ursa__sym *s, const void *addr, char *buf, size_t len)
{
	Dl_info info;

	snprintf(buf, len, "?");
#ifdef URSA_HAVE_LIBDW
	if (s) {
		Dwarf_Addr a = (Dwarf_Addr)(uintptr_t)addr;
		Dwfl_Module *m = dwfl_addrmodule(s->dwfl, a);
		const char *name = m ? dwfl_module_addrname(m, a) : NULL;

		if (name) {
			snprintf(buf, len, "%s", name);
			return buf;
		}
	}
#else
	(void)s;
#endif
	if (dladdr(addr, &info) && info.dli_sname)
		snprintf(buf, len, "%s", info.dli_sname);
	return buf;
}

/* " FUNCTION+0xOFF (FILE:LINE)" for pc, or "" where nothing is known. */
static void describe(struct ursa__sym *s, uintptr_t pc, char *out, size_t len)
{
	out[0] = 0;
#ifdef URSA_HAVE_LIBDW
	if (s) {
		Dwfl_Module *m = dwfl_addrmodule(s->dwfl, pc);
		GElf_Off off = 0;
		GElf_Sym sym;
		const char *name = m ? dwfl_module_addrinfo(m, pc, &off, &sym, NULL, NULL, NULL)
		                     : NULL;
		Dwfl_Line *line = m ? dwfl_module_getsrc(m, pc) : NULL;
		const char *file = NULL;
		int lineno = 0;
		size_t n = 0;

		if (name)
			n = (size_t)snprintf(out, len, " %s+0x%llx", name, (unsigned long long)off);
		if (line)
			file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
		if (file && n < len)
			snprintf(out + n, len - n, " (%s:%d)", file, lineno);
		return;
	}
#else
	(void)s;
	(void)pc;
#endif
}

void ursa__sym_print(struct ursa__sym *s, int fd, void *const *frames, int n, bool first_is_pc)
{
	for (int i = 0; i < n; i++) {
		uintptr_t pc = (uintptr_t)frames[i];
		/* A return address points after the call; the call is one back. */
		uintptr_t at = (i == 0 && first_is_pc) || pc == 0 ? pc : pc - 1;
		char line[768], more[512];
		Dl_info info;
		int len;

		if (dladdr((void *)at, &info) && info.dli_fname)
			len = snprintf(line, sizeof(line), "  #%-2d %s+0x%llx", i, base(info.dli_fname),
			               (unsigned long long)(pc - (uintptr_t)info.dli_fbase));
		else
			len = snprintf(line, sizeof(line), "  #%-2d 0x%llx", i, (unsigned long long)pc);
		describe(s, at, more, sizeof(more));
		if (len > 0 && (size_t)len < sizeof(line))
			len += snprintf(line + len, sizeof(line) - (size_t)len, "%s\n", more);
		if (len > (int)sizeof(line) - 1)
			len = (int)sizeof(line) - 1;
		if (len > 0)
			(void)!write(fd, line, (size_t)len);
	}
}
