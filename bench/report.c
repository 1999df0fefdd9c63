/* SPDX-License-Identifier: MIT */
/*
 * report.c: what bench prints and writes: the configuration header, a table
 * per workload with its notes and targets, the JSON rows and the SVG chart.
 */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *bench_class_name(enum bench_class c)
{
	static const char *const names[BENCH_NCLASS] = {"sync", "threaded", "ring", "ref"};

	return (unsigned)c < BENCH_NCLASS ? names[c] : "?";
}

/* ------------------------------------------------------------- formatting */

/* 3 significant digits with a k/M/G suffix: 57.3M, 412k, 9.98k, 1.00. */
static const char *si(char *buf, size_t len, double v)
{
	static const char *const sfx[] = {"", "k", "M", "G", "T"};
	unsigned i = 0;

	while (fabs(v) >= 999.5 && i < 4) {
		v /= 1000;
		i++;
	}
	if (fabs(v) >= 99.95 || v == 0)
		snprintf(buf, len, "%.0f%s", v, sfx[i]);
	else if (fabs(v) >= 9.995)
		snprintf(buf, len, "%.1f%s", v, sfx[i]);
	else
		snprintf(buf, len, "%.2f%s", v, sfx[i]);
	return buf;
}

/* A duration given in microseconds, in the unit that reads best. */
static const char *dur_us(char *buf, size_t len, double us)
{
	if (us < 1)
		snprintf(buf, len, "%.2f us", us);
	else if (us < 1000)
		snprintf(buf, len, "%.0f us", us);
	else if (us < 1e6)
		snprintf(buf, len, "%.1f ms", us / 1e3);
	else
		snprintf(buf, len, "%.2f s", us / 1e6);
	return buf;
}

/* A plain number, 3 significant digits, never in exponent form. */
static const char *num(char *buf, size_t len, double v)
{
	double a = fabs(v);

	if (a >= 99.95)
		snprintf(buf, len, "%.0f", v);
	else if (a >= 9.995)
		snprintf(buf, len, "%.1f", v);
	else if (a >= 0.9995 || a == 0)
		snprintf(buf, len, "%.2f", v);
	else if (a >= 0.001)
		snprintf(buf, len, "%.3f", v);
	else
		snprintf(buf, len, "%.2g", v);
	return buf;
}

/* The JSON-ready parameter list of describe(), for people: a=1, b=2. */
static void plain_params(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (*r == '"')
			continue;
		if (r[0] == ':' && r[1] == ' ') {
			*w++ = '=';
			r++;
			continue;
		}
		*w++ = *r;
	}
	*w = '\0';
}

static const char *mib(char *buf, size_t len, long kib)
{
	if (kib <= 0)
		snprintf(buf, len, "-");
	else if (kib < 10 * 1024)
		snprintf(buf, len, "%.1f", kib / 1024.0);
	else
		snprintf(buf, len, "%.0f", kib / 1024.0);
	return buf;
}

/* ----------------------------------------------------------------- config */

void bench_print_config(const struct bench_config *c, const struct bench_params *p)
{
	printf("ursa bench %s (git %s)\n", c->version, c->git);
	printf("  build     %s, %s, sanitizers: %s, fiber backend: %s\n", c->compiler, c->buildtype,
	       c->sanitize, c->fiber);
	printf("  io_uring  %s\n", c->ring);
	printf("  machine   %u CPUs (%s), %.1f GiB, %s\n", c->cpus, c->cpu_model, c->mem_gib,
	       c->kernel);
	printf("  python    %s\n", c->python[0] ? c->python : "not found (asyncio rows skipped)");
	printf("  pinning   ursa workers %s; raw-ring and ping-pong threads pinned by their paths\n",
	       c->pin ? "pinned, one per CPU (URSA_OPT_PIN; --no-pin to compare)"
	              : "not pinned (--no-pin: the library's default)");
	if (c->load1 >= 0)
		printf("  load      %.2f (1-minute average at start)%s\n", c->load1,
		       c->load1 > 0.5 * c->cpus ? ": other work is running; expect noisy numbers" : "");
	printf("  method    each path in its own process; %u warm-up run%s, then %u reps "
	       "(fewer past --budget %gs); median [min .. max]%s\n",
	       p->warmup, p->warmup == 1 ? "" : "s", p->reps, p->budget_s,
	       p->quick ? "; --quick" : "");
	if (strcmp(c->buildtype, "release") != 0 && strncmp(c->buildtype, "release", 7) != 0)
		printf("  warning   not a release build: numbers are not representative\n");
	if (strcmp(c->sanitize, "none") != 0)
		printf("  warning   sanitizers on: numbers are not representative\n");
}

/* ------------------------------------------------------------------ table */

static const struct bench_row *find_row(const struct bench_row *rows, unsigned n,
                                        const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(rows[i].path->name, name) == 0)
			return &rows[i];
	return NULL;
}

/* The cost of a row on a metric (lower is better). */
static double cost(const struct bench_row *r, enum bench_metric m)
{
	switch (m) {
	case BENCH_M_OPS:
		return r->ops_s > 0 ? 1.0 / r->ops_s : 0;
	case BENCH_M_WALL:
		return r->wall_s;
	case BENCH_M_RSS:
		return (double)r->rss_kib;
	case BENCH_M_RSS_KIB_PER_OP:
		return r->ops > 0 ? (double)r->rss_kib / r->ops : 0;
	case BENCH_M_RSS_MIB:
		return (double)r->rss_kib / 1024;
	case BENCH_M_SRV_CPU:
		return r->srv_us_op;
	case BENCH_M_NS_OP:
		return r->ops_s > 0 ? 1e9 / r->ops_s : 0;
	case BENCH_M_CPU_SHARE:
		return r->ops_s > 0 && r->wall_s > 0 ? r->cpu_s / (r->ops_s * r->wall_s) : 0;
	}
	return 0;
}

/* The unit an absolute target's value is printed in. */
static const char *abs_unit(enum bench_metric m)
{
	return m == BENCH_M_RSS_KIB_PER_OP ? " KiB" : m == BENCH_M_RSS_MIB ? " MiB" : "";
}

int bench_target_eval(const struct bench_target *t, const struct bench_row *rows, unsigned n,
                      double *value)
{
	const struct bench_row *a = find_row(rows, n, t->a), *b = t->b ? find_row(rows, n, t->b) : NULL;
	double ca, cb;

	*value = 0;
	if (!a || a->status != BENCH_OK)
		return -1;
	if (!t->b) {
		/* One row's own figure: ns per op, or a CPU share (an idle worker's
		 * CPU can be nothing at all). */
		*value = cost(a, t->metric);
		if (*value <= 0 && t->metric != BENCH_M_CPU_SHARE)
			return -1;
		return t->at_most ? *value <= t->goal : *value >= t->goal;
	}
	if (!b || b->status != BENCH_OK)
		return -1;
	ca = cost(a, t->metric);
	cb = cost(b, t->metric);
	if (ca <= 0 || cb <= 0)
		return -1;
	if (t->at_most) {
		*value = ca / cb;
		return *value <= t->goal;
	}
	*value = cb / ca;
	return *value >= t->goal;
}

void bench_print_table(const struct bench_workload *w, const struct bench_params *p,
                       struct bench_row *rows, unsigned n)
{
	char params[512] = "", a[32], b[32], c[32], d[32], e[32];
	unsigned long tasks = bench_tasks(p, w);

	if (w->describe)
		w->describe(p, w, params, sizeof(params));
	plain_params(params);
	printf("\n%s: %s\n  op = one %s; %s", w->name, w->summary, w->unit, params);
	{
		double load;

		/* The machine may be shared: say how busy it was. */
		if (getloadavg(&load, 1) == 1)
			printf("; load %.1f", load);
	}
	printf("\n");
	printf("  %-8s %-14s %8s %-21s", "path", "impl", "ops/s", " [min .. max]");
	if (!w->latency)
		printf(" %9s", "ns/op");
	else
		printf(" %9s %9s", "p50", "p99");
	if (w->server_cpu)
		printf(" %9s %6s", "srv us/op", "client");
	printf(" %8s %8s %8s %8s %3s\n", "wall s", "cpu s", "RSS MiB",
	       w->baseline ? "x base" : "", "n");
	for (unsigned i = 0; i < n; i++) {
		const struct bench_row *r = &rows[i];

		printf("  %-8s %-14s", bench_class_name(r->path->cls), r->path->name);
		if (r->status != BENCH_OK) {
			printf(" %s: %s\n", r->status == BENCH_SKIP ? "cannot run" : "FAILED",
			       r->why[0] ? r->why : "no reason given");
			continue;
		}
		snprintf(e, sizeof(e), " [%s .. %s]", si(a, sizeof(a), r->ops_s_min),
		         si(b, sizeof(b), r->ops_s_max));
		printf(" %8s %-21s", si(c, sizeof(c), r->ops_s), e);
		if (!w->latency)
			printf(" %9.1f", r->ops_s > 0 ? 1e9 / r->ops_s : 0);
		else if (r->lat.valid)
			printf(" %9s %9s", dur_us(a, sizeof(a), r->lat.p50_us),
			       dur_us(b, sizeof(b), r->lat.p99_us));
		else
			printf(" %9s %9s", "-", "-");
		if (w->server_cpu) {
			snprintf(d, sizeof(d), "%.0f%%", 100 * r->client_busy);
			printf(" %9.2f %6s", r->srv_us_op, d);
		}
		snprintf(d, sizeof(d), "%s%s", num(a, sizeof(a), r->wall_s),
		         r->extrapolated ? "*" : "");
		printf(" %8s %8s", d, num(b, sizeof(b), r->cpu_s));
		printf(" %8s", mib(a, sizeof(a), r->rss_kib));
		if (r->ratio > 0)
			printf(" %7sx", num(a, sizeof(a), r->ratio));
		else
			printf(" %8s", "-");
		printf(" %3u\n", r->nreps);
	}
	for (unsigned i = 0; i < n; i++)
		if (rows[i].ratio > 0) {
			printf("  x base: ops/s over %s's\n", w->baseline);
			break;
		}
	if (w->server_cpu) {
		printf("  srv us/op: the server's CPU (user + system, all its threads) over the load "
		       "generator's measured interval, per op [min .. max]:");
		for (unsigned i = 0; i < n; i++)
			if (rows[i].status == BENCH_OK)
				printf(" %s %.2f [%.2f .. %.2f]%s", rows[i].path->name, rows[i].srv_us_op,
				       rows[i].srv_us_op_min, rows[i].srv_us_op_max,
				       i + 1 < n ? ";" : "");
		printf("\n  client: the load generator's CPU over its wall time (one CPU of its "
		       "own); at 90%% or more it is saturated and ops/s measure it, not the "
		       "server\n");
		for (unsigned i = 0; i < n; i++)
			if (rows[i].status == BENCH_OK && rows[i].client_busy >= 0.9)
				printf("  note: %s/%s: the client was saturated (%.0f%% of its CPU)\n",
				       bench_class_name(rows[i].path->cls), rows[i].path->name,
				       100 * rows[i].client_busy);
	}
	for (unsigned i = 0; i < n; i++) {
		const struct bench_row *r = &rows[i];

		if (r->status == BENCH_OK && r->why[0])
			printf("  note: %s/%s: %s\n", bench_class_name(r->path->cls), r->path->name,
			       r->why);
		if (r->status == BENCH_OK && r->path->one_cpu && r->wall_s > 0 &&
		    r->cpu_s < 0.9 * r->wall_s)
			printf("  note: %s/%s: got %.0f%% of a CPU (the machine is busy): this row "
			       "understates it\n",
			       bench_class_name(r->path->cls), r->path->name,
			       100 * r->cpu_s / r->wall_s);
		if (r->status == BENCH_OK && r->nreps < p->reps && !r->path->max_reps)
			printf("  note: %s/%s: %u of %u reps (--budget %gs reached)\n",
			       bench_class_name(r->path->cls), r->path->name, r->nreps, p->reps,
			       p->budget_s);
	}
	for (unsigned i = 0; i < w->ntargets; i++) {
		const struct bench_target *t = &w->targets[i];
		double v;
		int met;

		/* A target set at another size says nothing about this one. */
		if (t->at_tasks && t->at_tasks != tasks)
			continue;
		met = bench_target_eval(t, rows, n, &v);
		printf("  target: %s: ", t->text);
		if (met < 0)
			printf("not measured (a path is missing or could not run)\n");
		else if (t->b)
			printf("%sx, %s\n", num(a, sizeof(a), v), met ? "met" : "MISSED");
		else if (t->metric == BENCH_M_CPU_SHARE)
			printf("%.2f%%, %s\n", 100 * v, met ? "met" : "MISSED");
		else if (t->metric == BENCH_M_RSS_KIB_PER_OP || t->metric == BENCH_M_RSS_MIB)
			printf("%s%s, %s\n", num(a, sizeof(a), v), abs_unit(t->metric),
			       met ? "met" : "MISSED");
		else
			printf("%s, %s\n", dur_us(a, sizeof(a), v / 1000), met ? "met" : "MISSED");
	}
	(void)c;
}

/* ------------------------------------------------------------------- JSON */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, const char *key, double v, bool valid)
{
	fprintf(f, ", \"%s\": ", key);
	if (valid && isfinite(v))
		fprintf(f, "%.6g", v);
	else
		fputs("null", f);
}

static void json_config(FILE *f, const struct bench_config *c)
{
	fputs("{\"version\": ", f);
	json_str(f, c->version);
	fputs(", \"git\": ", f);
	json_str(f, c->git);
	fputs(", \"compiler\": ", f);
	json_str(f, c->compiler);
	fputs(", \"build_type\": ", f);
	json_str(f, c->buildtype);
	fputs(", \"sanitizers\": ", f);
	json_str(f, c->sanitize);
	fputs(", \"fiber_backend\": ", f);
	json_str(f, c->fiber);
	fputs(", \"io_uring\": ", f);
	json_str(f, c->ring);
	fprintf(f, ", \"cpus\": %u, \"cpu_model\": ", c->cpus);
	json_str(f, c->cpu_model);
	fputs(", \"kernel\": ", f);
	json_str(f, c->kernel);
	fprintf(f, ", \"mem_gib\": %.1f, \"load1\": %.2f, \"pinned\": %s, \"python\": ", c->mem_gib,
	        c->load1, c->pin ? "true" : "false");
	json_str(f, c->python);
	fputc('}', f);
}

int bench_write_json(const char *file, const struct bench_config *c,
                     const struct bench_params *p, struct bench_row *rows, unsigned n)
{
	FILE *f = fopen(file, "w");
	static const char *const status[] = {"ok", "skipped", "failed"};

	if (!f) {
		perror(file);
		return -1;
	}
	fputs("[\n", f);
	for (unsigned i = 0; i < n; i++) {
		const struct bench_row *r = &rows[i];
		const struct bench_row *wrows = r;
		unsigned wn = 0;
		bool ok = r->status == BENCH_OK;
		char params[512] = "";
		bool first_t = true;

		/* The rows of this workload, for its targets. */
		while (wrows > rows && wrows[-1].w == r->w)
			wrows--;
		while (wrows + wn < rows + n && wrows[wn].w == r->w)
			wn++;
		if (r->w->describe)
			r->w->describe(p, r->w, params, sizeof(params));
		fputs("  {\"workload\": ", f);
		json_str(f, r->w->name);
		fputs(", \"path\": ", f);
		json_str(f, bench_class_name(r->path->cls));
		fputs(", \"impl\": ", f);
		json_str(f, r->path->name);
		fputs(", \"status\": ", f);
		json_str(f, status[r->status]);
		fputs(ok ? ", \"note\": " : ", \"reason\": ", f);
		json_str(f, r->why);
		fputs(", \"unit\": ", f);
		json_str(f, r->w->unit);
		json_num(f, "ops", r->ops, ok);
		json_num(f, "ops_per_sec", r->ops_s, ok);
		json_num(f, "ops_per_sec_min", r->ops_s_min, ok);
		json_num(f, "ops_per_sec_max", r->ops_s_max, ok);
		json_num(f, "wall_s", r->wall_s, ok);
		json_num(f, "wall_s_min", r->wall_s_min, ok);
		json_num(f, "wall_s_max", r->wall_s_max, ok);
		json_num(f, "cpu_s", r->cpu_s, ok);
		json_num(f, "server_cpu_us_per_op", r->srv_us_op, ok && r->w->server_cpu);
		json_num(f, "server_cpu_us_per_op_min", r->srv_us_op_min, ok && r->w->server_cpu);
		json_num(f, "server_cpu_us_per_op_max", r->srv_us_op_max, ok && r->w->server_cpu);
		json_num(f, "client_cpu_busy", r->client_busy, ok && r->w->server_cpu);
		json_num(f, "peak_rss_kib", (double)r->rss_kib, ok && r->rss_kib > 0);
		json_num(f, "p50_us", r->lat.p50_us, ok && r->lat.valid);
		json_num(f, "p99_us", r->lat.p99_us, ok && r->lat.valid);
		json_num(f, "max_us", r->lat.max_us, ok && r->lat.valid);
		json_num(f, "ratio_vs_baseline", r->ratio, ok && r->ratio > 0);
		fputs(", \"baseline\": ", f);
		json_str(f, r->w->baseline ? r->w->baseline : "");
		fprintf(f, ", \"reps\": %u, \"extrapolated\": %s", r->nreps,
		        r->extrapolated ? "true" : "false");
		fprintf(f, ", \"params\": {%s%s\"reps\": %u, \"warmup\": %u, \"quick\": %s",
		        params, params[0] ? ", " : "", p->reps, p->warmup, p->quick ? "true" : "false");
		if (r->w->micro)
			fprintf(f, ", \"iters\": %llu", (unsigned long long)r->iters);
		fputs("}, \"targets\": [", f);
		for (unsigned t = 0; t < r->w->ntargets; t++) {
			const struct bench_target *tg = &r->w->targets[t];
			double v;
			int met;

			if (strcmp(tg->a, r->path->name) != 0 ||
			    (tg->at_tasks && tg->at_tasks != bench_tasks(p, r->w)))
				continue;
			met = bench_target_eval(tg, wrows, wn, &v);
			fputs(first_t ? "{\"target\": " : ", {\"target\": ", f);
			first_t = false;
			json_str(f, tg->text);
			json_num(f, "value", v, met >= 0);
			json_num(f, "goal", tg->goal, true);
			fprintf(f, ", \"met\": %s, \"at_tasks\": %lu}",
			        met < 0 ? "null" : met ? "true" : "false", tg->at_tasks);
		}
		fputs("], \"config\": ", f);
		json_config(f, c);
		fprintf(f, "}%s\n", i + 1 < n ? "," : "");
	}
	fputs("]\n", f);
	if (fclose(f) != 0) {
		perror(file);
		return -1;
	}
	return 0;
}

/* -------------------------------------------------------------------- SVG */

static void svg_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

int bench_write_svg(const char *file, const struct bench_config *c, struct bench_row *rows,
                    unsigned n)
{
	static const char *const colour[BENCH_NCLASS] = {"#8a8a8a", "#e08a2c", "#2c6fbb",
	                                                 "#5a9e5a"};
	const int width = 980, label_w = 190, bar_w = 520, row_h = 22, head_h = 30;
	FILE *f = fopen(file, "w");
	int height = 70, y;
	char a[32], b[32];

	if (!f) {
		perror(file);
		return -1;
	}
	for (unsigned i = 0; i < n; i++)
		height += row_h + (i == 0 || rows[i].w != rows[i - 1].w ? head_h + 10 : 0);
	fprintf(f,
	        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	        "font-family=\"sans-serif\" font-size=\"12\">\n"
	        "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
	        width, height);
	fprintf(f, "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">ursa bench %s "
	           "(git ", c->version);
	svg_text(f, c->git);
	fputs(")</text>\n<text x=\"10\" y=\"42\" fill=\"#555\">", f);
	svg_text(f, c->kernel);
	fprintf(f, ", %u CPUs, ", c->cpus);
	svg_text(f, c->compiler);
	fputs(", fiber ", f);
	svg_text(f, c->fiber);
	fputs(". Bars: ops/s, median of the reps, linear scale per workload; whiskers: min and "
	      "max.</text>\n", f);
	y = 60;
	for (unsigned i = 0; i < n;) {
		const struct bench_workload *w = rows[i].w;
		unsigned j = i;
		double top = 0;

		while (j < n && rows[j].w == w) {
			if (rows[j].status == BENCH_OK && rows[j].ops_s_max > top)
				top = rows[j].ops_s_max;
			j++;
		}
		y += 10;
		fprintf(f, "<text x=\"10\" y=\"%d\" font-size=\"14\" font-weight=\"bold\">", y + 18);
		svg_text(f, w->name);
		fputs("</text><text x=\"140\" y=\"", f);
		fprintf(f, "%d\" fill=\"#555\">op = one ", y + 18);
		svg_text(f, w->unit);
		fputs("</text>\n", f);
		y += head_h;
		for (; i < j; i++) {
			const struct bench_row *r = &rows[i];
			char label[96];

			snprintf(label, sizeof(label), "%s/%s", bench_class_name(r->path->cls),
			         r->path->name);
			fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", label_w - 8,
			        y + 15);
			svg_text(f, label);
			fputs("</text>\n", f);
			if (r->status != BENCH_OK || top <= 0) {
				fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"#a33\">", label_w, y + 15);
				svg_text(f, r->status == BENCH_SKIP ? "cannot run: " : "failed: ");
				svg_text(f, r->why);
				fputs("</text>\n", f);
			} else {
				double x = bar_w * r->ops_s / top;
				double x0 = bar_w * r->ops_s_min / top, x1 = bar_w * r->ops_s_max / top;

				fprintf(f,
				        "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
				        "fill=\"%s\"/>\n",
				        label_w, y + 3, x < 1 ? 1 : x, row_h - 6, colour[r->path->cls]);
				fprintf(f,
				        "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" "
				        "stroke=\"#222\"/>\n",
				        label_w + x0, label_w + x1, y + row_h / 2, y + row_h / 2);
				fprintf(f, "<text x=\"%.1f\" y=\"%d\">%s ops/s", label_w + x1 + 6, y + 15,
				        si(a, sizeof(a), r->ops_s));
				if (r->ratio > 0)
					fprintf(f, " (%sx %s)", num(b, sizeof(b), r->ratio), w->baseline);
				if (r->extrapolated)
					fputs(" extrapolated", f);
				if (strncmp(r->why, "capped", 6) == 0)
					fputs(" capped: fewer tasks", f);
				fputs("</text>\n", f);
			}
			y += row_h;
		}
	}
	fputs("</svg>\n", f);
	if (fclose(f) != 0) {
		perror(file);
		return -1;
	}
	return 0;
}
