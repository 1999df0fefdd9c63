// SPDX-License-Identifier: MIT
/*
 * fetch: fetch many URLs at once on ursa, through libcurl's multi interface
 * on the ursa adapter (<ursa/adapters/curl.h>) -- the seeds' aiohttp
 * fetcher and rate-limited API client.
 *
 *   ursa-fetch [--parallel N] [--timeout-ms MS] [--retries N]
 *              [--backoff-ms MS] [--rate N] [--burst N] [--out DIR]
 *              [--file LIST] [URL...]
 *
 * --parallel N   at most N transfers in flight, and at most N connections
 *                open (libcurl's connection cache included) [8]
 * --timeout-ms   each attempt's deadline, connecting included [30000]
 * --retries N    attempts after the first, for connection errors and 5xx
 *                answers, after --backoff-ms, doubling each time, plus up
 *                to half again at random (jitter) [2, 100 ms]
 * --rate N       at most N attempts started per second (a token bucket
 *                holding --burst tokens [1]); retries take tokens too
 * --out DIR      write the body of the i-th URL (from 0) to DIR/i
 * --file LIST    read URLs from LIST, one a line ("-": stdin)
 *
 * One line per URL as it finishes: the HTTP status (or what failed:
 * timeout, refused, error), the body's bytes, the time from the first
 * attempt's start, the attempts, the URL.  Then a summary line.  Exit 0 when
 * every URL answered 2xx, 1 otherwise.
 *
 * The shape is the asyncio one: N worker tasks take URLs from a shared
 * index (one core: no lock), each transfer is one ursa_curl_perform that
 * parks only its task, and a deadline scope around it is the timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <ursa.h>
#include <ursa/adapters/curl.h>

#define BODY_MAX (256u << 20) /* a body larger than this fails the URL */

static unsigned parallel = 8, retries = 2, burst = 1;
static uint64_t timeout_ns = URSA_SEC(30), backoff_ns = URSA_MS(100);
static double rate; /* attempts per second; 0: no limit */
static const char *out_dir;

static char **urls;
static size_t nurls, next_url;

struct body {
	char *p;
	size_t len, cap;
};

struct result {
	long status;      /* HTTP status, or 0 */
	const char *fail; /* what failed, or NULL */
	size_t bytes;
	uint64_t ns;
	unsigned attempts;
};

static struct {
	size_t ok, failed, bytes;
} total;

/* ------------------------------------------------------------ the bucket */

/*
 * The token bucket as a schedule (GCRA): tat is when the bucket would next
 * be full of debt.  An attempt may start at tat - (burst - 1) * interval or
 * later; taking a token moves tat on by one interval.  Tasks reserve their
 * start in turn (one core) and sleep until it.
 */
static uint64_t tat;

static int bucket_take(void)
{
	uint64_t interval, now = ursa_now(), start, tau;

	if (rate <= 0)
		return 0;
	interval = (uint64_t)(1e9 / rate);
	tau = (uint64_t)(burst - 1) * interval;
	start = tat > tau && tat - tau > now ? tat - tau : now;
	tat = (tat > start ? tat : start) + interval;
	return start > now ? ursa_sleep_until(start) : 0;
}

/* -------------------------------------------------------------- a fetch */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t k = size * n;

	if (b->len + k > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		char *q;

		while (cap < b->len + k)
			cap *= 2;
		if (cap > BODY_MAX || !(q = realloc(b->p, cap)))
			return 0; /* libcurl fails the transfer (CURLE_WRITE_ERROR) */
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, k);
	b->len += k;
	return k;
}

/* Whether an attempt's outcome is worth another: the connection failed (or
 * broke before an answer), or the server answered 5xx. */
static bool retryable(int rc, CURLcode res, long status)
{
	if (rc < 0)
		return false; /* timed out or cancelled */
	switch (res) {
	case CURLE_OK:
		return status >= 500 && status <= 599;
	case CURLE_COULDNT_CONNECT: case CURLE_COULDNT_RESOLVE_HOST: case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR: case CURLE_GOT_NOTHING: case CURLE_PARTIAL_FILE:
		return true;
	default:
		return false;
	}
}

static void fetch_one(struct ursa_curl *curl, size_t i, struct result *r, struct body *b)
{
	uint64_t t0 = ursa_now(), wait = backoff_ns;
	CURL *h = curl_easy_init();
	char err[CURL_ERROR_SIZE];
	CURLcode res = CURLE_OK;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	if (!h) {
		r->fail = "error: out of memory";
		return;
	}
	curl_easy_setopt(h, CURLOPT_URL, urls[i]);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	for (;;) {
		struct ursa_scope s;

		b->len = 0;
		r->status = 0;
		err[0] = '\0';
		if (bucket_take() < 0) {
			rc = -ECANCELED;
			break;
		}
		r->attempts++;
		/* The attempt's deadline: the scope cancels the transfer. */
		ursa_scope_enter(&s, ursa_now() + timeout_ns);
		rc = ursa_curl_perform(curl, h, &res);
		if (ursa_scope_exit(&s) == -ETIMEDOUT)
			rc = -ETIMEDOUT;
		if (rc == 0 && res == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
		if (r->attempts > retries || !retryable(rc, res, r->status))
			break;
		/* Back off: wait, doubling, plus up to half again at random. */
		{
			uint32_t jitter = 0;

			(void)!getrandom(&jitter, sizeof(jitter), 0);
			if (ursa_sleep(wait + (wait / 2) * (jitter % 1024) / 1024) < 0) {
				rc = -ECANCELED;
				break;
			}
			wait *= 2;
		}
	}
	r->ns = ursa_now() - t0;
	r->bytes = b->len;
	if (rc == -ETIMEDOUT)
		r->fail = "timeout";
	else if (rc < 0)
		r->fail = "cancelled";
	else if (res == CURLE_COULDNT_CONNECT)
		r->fail = "refused";
	else if (res != CURLE_OK) {
		static char msg[CURL_ERROR_SIZE + 16]; /* one core: used at once */

		snprintf(msg, sizeof(msg), "error(%s)", err[0] ? err : curl_easy_strerror(res));
		for (char *c = msg; *c; c++)
			if (*c == ' ')
				*c = '_'; /* one word in the line */
		r->fail = msg;
	}
	curl_easy_cleanup(h);
}

static int save(size_t i, const struct body *b)
{
	char path[4096];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%zu", out_dir, i);
	if ((fd = ursa_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return fd;
	n = ursa_write_all(fd, b->p, b->len);
	ursa_close(fd);
	return n == (ssize_t)b->len ? 0 : (n < 0 ? (int)n : -EIO);
}

static void *worker(void *arg)
{
	struct ursa_curl *curl = arg;
	struct body b = {0};

	while (next_url < nurls) {
		size_t i = next_url++;
		struct result r;
		bool ok;

		fetch_one(curl, i, &r, &b);
		ok = !r.fail && r.status >= 200 && r.status <= 299;
		if (ok && out_dir && save(i, &b) < 0)
			ok = false, r.fail = "error(write)";
		if (r.fail)
			printf("%s", r.fail);
		else
			printf("%ld", r.status);
		printf(" %zu %.1fms %u %s\n", r.bytes, (double)r.ns / 1e6, r.attempts, urls[i]);
		total.bytes += r.bytes;
		if (ok)
			total.ok++;
		else
			total.failed++;
	}
	free(b.p);
	return NULL;
}

static void *main_task(void *arg)
{
	struct ursa_task **w = calloc(parallel, sizeof(*w));
	struct ursa_curl *curl;
	uint64_t t0 = ursa_now();
	unsigned n = 0;
	double s;

	(void)arg;
	if (!w || ursa_curl_create(&curl) < 0)
		return (void *)1;
	/* The limit is on connections as well as transfers: libcurl opens no
	 * more than N, its cache of idle ones included. */
	curl_multi_setopt(curl->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)parallel);
	curl_multi_setopt(curl->multi, CURLMOPT_MAXCONNECTS, (long)parallel);
	for (; n < parallel && n < nurls; n++)
		if (ursa_spawn(&w[n], worker, curl))
			break;
	for (unsigned i = 0; i < n; i++)
		(void)!ursa_join(w[i], NULL);
	(void)!ursa_curl_destroy(curl);
	free(w);
	s = (double)(ursa_now() - t0) / 1e9;
	printf("fetched %zu URLs: %zu ok, %zu failed, %zu bytes in %.3f s (%.1f URLs/s)\n", nurls,
	       total.ok, total.failed, total.bytes, s, s > 0 ? (double)nurls / s : 0.0);
	fflush(stdout);
	return total.failed ? (void *)1 : NULL;
}

static void add_url(const char *u)
{
	static size_t cap;

	if (nurls == cap) {
		cap = cap ? cap * 2 : 64;
		if (!(urls = realloc(urls, cap * sizeof(*urls)))) {
			perror("ursa-fetch");
			exit(2);
		}
	}
	if (!(urls[nurls++] = strdup(u))) {
		perror("ursa-fetch");
		exit(2);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: ursa-fetch [--parallel N] [--timeout-ms MS] [--retries N] "
	                "[--backoff-ms MS] [--rate N] [--burst N] [--out DIR] [--file LIST] [URL...]\n");
	exit(2);
}

static unsigned long num(const char *s, unsigned long min)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end || v < min)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"parallel", required_argument, NULL, 'p'}, {"timeout-ms", required_argument, NULL, 't'},
		{"retries", required_argument, NULL, 'r'},  {"backoff-ms", required_argument, NULL, 'b'},
		{"rate", required_argument, NULL, 'R'},     {"burst", required_argument, NULL, 'B'},
		{"out", required_argument, NULL, 'o'},      {"file", required_argument, NULL, 'f'},
		{NULL, 0, NULL, 0}};
	struct ursa_opts ro = {.cores = 1};
	const char *file = NULL;
	void *failed = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p': parallel = (unsigned)num(optarg, 1); break;
		case 't': timeout_ns = URSA_MS(num(optarg, 1)); break;
		case 'r': retries = (unsigned)num(optarg, 0); break;
		case 'b': backoff_ns = URSA_MS(num(optarg, 0)); break;
		case 'R': rate = strtod(optarg, NULL); if (rate <= 0) usage(); break;
		case 'B': burst = (unsigned)num(optarg, 1); break;
		case 'o': out_dir = optarg; break;
		case 'f': file = optarg; break;
		default: usage();
		}
	}
	for (int i = optind; i < argc; i++)
		add_url(argv[i]);
	if (file) {
		/* Before the runtime starts: plain stdio is fine here. */
		FILE *f = strcmp(file, "-") ? fopen(file, "r") : stdin;
		char line[8192];

		if (!f) {
			perror(file);
			return 2;
		}
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\r\n")] = '\0';
			if (line[0] && line[0] != '#')
				add_url(line);
		}
		if (f != stdin)
			fclose(f);
	}
	if (!nurls)
		usage();
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return 2;
	rc = ursa_run(main_task, NULL, &ro, &failed);
	curl_global_cleanup();
	for (size_t i = 0; i < nurls; i++)
		free(urls[i]);
	free(urls);
	return rc == 0 && !failed ? 0 : 1;
}
