/* SPDX-License-Identifier: MIT */
/*
 * `uiommu migrate --chart FILE.png`: one chart of the rounds, drawn by
 * gnuplot (Debian package gnuplot-nox) rather than by hand: the CLI writes a
 * data file and a gnuplot script into a fresh directory under $TMPDIR, runs
 * `gnuplot script`, and removes both.
 *
 * What it shows, per round (x; the stop-copy round last, as "stop"):
 *  - bars: the pages each dirty source reported dirty during the round
 *    (which the next round sends), stacked. Sources overlap (a page the
 *    guest and the device both wrote is in both), so the stack can be taller
 *    than what the next round sends;
 *  - a line: the pages the round sent (round 1: every page the guest ever
 *    wrote);
 *  - on the right axis, in ms: the expected downtime the policy computed
 *    after each pre-copy round, and the downtime limit as a flat line. The
 *    round where the first falls under the second is where the engine
 *    switched over. Over "stop", the downtime the migration actually had;
 *  - the throttle in force, as a label over the rounds that had one;
 *  - with a pinning device behind a type1 container, the pages pinned at
 *    each round's collection: type1 reports them dirty in every round, so
 *    they are a floor under what every round sends.
 * Both axes are logarithmic: round 1 moves most of memory and later rounds
 * a few thousand pages, and its expected downtime is seconds where the last
 * one's is tens of ms; linear axes would flatten everything after round 1.
 *
 * Data columns: x, label, the stacked (cumulative) source counts, pages
 * sent, expected downtime (ms; "?" for stop), throttle (%), actual downtime
 * (ms; stop only, "?" elsewhere), pinned pages. Stacking is done here, so the
 * script needs no gnuplot histogram mode and mixes bars and lines freely.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "migrate.h"

struct chart_files {
	char dir[256], data[300], script[300], log[300];
};

static bool is_executable_in_path(const char *name)
{
	const char *path = getenv("PATH");
	char buf[512];

	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, n ? path : ".", name);
		if (!access(buf, X_OK))
			return true;
		path += n + (path[n] == ':');
	}
	return false;
}

int mig_chart_check(void)
{
	return is_executable_in_path("gnuplot") ? 0 : -ENOENT;
}

static void write_data_row(FILE *f, const struct mig_report *r,
			   const struct uiommu_mig_round_info *ri, unsigned int x)
{
	uint64_t sum = 0;

	if (ri->stopcopy)
		fprintf(f, "%u \"stop\"", x);
	else
		fprintf(f, "%u \"%u\"", x, ri->round);
	for (unsigned int s = 0; s < ri->nr_sources; s++) {
		sum += ri->source_pages[s];
		fprintf(f, " %llu", (unsigned long long)sum);
	}
	fprintf(f, " %llu", (unsigned long long)ri->dirty_pages);
	if (ri->stopcopy)
		fprintf(f, " ? %.0f %.3f", ri->throttle * 100, (double)r->res.downtime_ns / 1e6);
	else
		fprintf(f, " %.3f %.0f ?", (double)ri->expected_downtime_ns / 1e6,
			ri->throttle * 100);
	fprintf(f, " %llu\n", (unsigned long long)ri->pinned_pages);
}

static int write_data(const char *path, const struct mig_report *r)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f, "# x label");
	for (unsigned int s = 0; s < r->rounds[0].nr_sources; s++)
		fprintf(f, " %s(cumulative)", r->rounds[0].source_name[s]);
	fprintf(f, " sent expected_downtime_ms throttle_pct downtime_ms pinned\n");
	for (unsigned int i = 0; i < r->nr_rounds; i++)
		write_data_row(f, r, &r->rounds[i], i + 1);
	return fclose(f) ? -errno : 0;
}

static void write_title(FILE *f, const struct mig_report *r)
{
	const struct uiommu_mig_result *res = &r->res;

	fprintf(f,
		"set title \"uiommu migrate: %llu MiB guest, %u %s, %s at %.0f MB/s, device %.0f MB/s"
		"\\n%s in %.2f s, downtime %.1f ms, %u pre-copy rounds, throttle max %.0f %%\"\n",
		(unsigned long long)(r->o->m.mem_bytes >> 20), r->o->m.nr_vcpus, r->backend,
		r->o->wl_name, r->o->rate_mbps, r->o->m.dma_bytes ? r->o->dma_rate_mbps : 0,
		uiommu_mig_state_name(res->state), (double)res->total_ns / 1e9,
		(double)res->downtime_ns / 1e6, res->rounds, res->throttle_max * 100);
}

static void write_setup(FILE *f, const char *png, const struct mig_report *r)
{
	fprintf(f, "if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {\n"
		   "  set terminal pngcairo size 1250,650 font \"sans,10\"\n"
		   "} else {\n  set terminal png size 1250,650\n}\n");
	fprintf(f, "set output \"%s\"\n", png);
	write_title(f, r);
	fprintf(f, "set datafile missing \"?\"\n"
		   "set xlabel \"round (bars: pages each source reported dirty during the round, "
		   "which the next round sends)\"\n"
		   "set ylabel \"pages (log scale)\"\n"
		   "set y2label \"downtime (ms, log scale)\"\n"
		   "set logscale y\nset yrange [1:*]\nset logscale y2\nset y2range [1:*]\n"
		   "set ytics nomirror\nset y2tics\nset grid ytics\n"
		   "set xrange [0.4:%u.6]\n"
		   "set style fill solid 0.75 border -1\nset boxwidth 0.6\n"
		   "set key outside right top vertical Left reverse\n",
		r->nr_rounds);
}

static void write_plot(FILE *f, const char *data, const struct mig_report *r)
{
	unsigned int ns = r->rounds[0].nr_sources, sent = 3 + ns;

	fprintf(f, "names = \"");
	for (unsigned int s = 0; s < ns; s++)
		fprintf(f, "%s%s", s ? " " : "", r->rounds[0].source_name[s]);
	fprintf(f, "\"\nLIMIT = %.3f\n", (double)r->o->policy.downtime_limit_ns / 1e6);
	/* Tallest (cumulative) bar first, so that each source shows above the last. */
	fprintf(f,
		"plot for [i=%u:1:-1] \"%s\" using 1:(column(2+i) >= 1 ? column(2+i) : 1/0):xtic(2)"
		" with boxes title \"dirtied: \".word(names, i), \\\n"
		"  \"%s\" using 1:%u with linespoints lw 2 pt 7 lc rgb \"black\""
		" title \"pages sent\", \\\n"
		"  \"%s\" using 1:%u:(column(%u) > 0 ? sprintf(\"throttle %%d%%%%\", column(%u)) : \"\")"
		" with labels offset 0,1.2 notitle, \\\n"
		"  \"%s\" using 1:%u axes x1y2 with linespoints lw 2 dt 2 pt 5 lc rgb \"dark-red\""
		" title \"expected downtime (ms)\", \\\n"
		"  LIMIT axes x1y2 with lines dt 3 lw 2 lc rgb \"red\" title \"downtime limit\", \\\n"
		"  \"%s\" using 1:%u axes x1y2 with points pt 9 ps 2.5 lc rgb \"red\""
		" title \"actual downtime (ms)\"",
		ns, data, data, sent, data, sent, sent + 2, sent + 2, data, sent + 1, data, sent + 3);
	/* Pinned pages: a floor under every round's "sent", reported before stop-copy. */
	if (r->res.pinned_pages)
		fprintf(f, ", \\\n  \"%s\" using 1:(column(%u) >= 1 ? column(%u) : 1/0) with "
			   "linespoints lw 2 dt 4 pt 13 lc rgb \"dark-orange\""
			   " title \"pinned (resent every round)\"",
			data, sent + 4, sent + 4);
	fprintf(f, "\n");
}

static int write_script(const struct chart_files *cf, const char *png, const struct mig_report *r)
{
	FILE *f = fopen(cf->script, "w");

	if (!f)
		return -errno;
	write_setup(f, png, r);
	write_plot(f, cf->data, r);
	return fclose(f) ? -errno : 0;
}

/*
 * Runs gnuplot on the script, its output into the log. posix_spawn rather
 * than fork: this process has vCPU threads. The child gets an empty signal
 * mask (ours blocks SIGINT for the cancel thread).
 */
static int run_gnuplot(const struct chart_files *cf)
{
	char name[] = "gnuplot", script[sizeof(cf->script)];
	char *argv[] = { name, script, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none;
	int status, ret;
	pid_t pid;

	memcpy(script, cf->script, sizeof(script));
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, cf->log, O_WRONLY | O_CREAT | O_TRUNC,
					 0600);
	posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
	ret = posix_spawnp(&pid, "gnuplot", &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (ret)
		return -ret;
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -EIO;
}

static void show_log(const char *log)
{
	char line[256];
	FILE *f = fopen(log, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		fprintf(stderr, "  gnuplot: %s", line);
	fclose(f);
}

static int make_files(struct chart_files *cf)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(cf->dir, sizeof(cf->dir), "%s/uiommu-chart.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(cf->dir))
		return -errno;
	snprintf(cf->data, sizeof(cf->data), "%s/rounds.dat", cf->dir);
	snprintf(cf->script, sizeof(cf->script), "%s/chart.gp", cf->dir);
	snprintf(cf->log, sizeof(cf->log), "%s/gnuplot.log", cf->dir);
	return 0;
}

int mig_chart_write(const char *png, const struct mig_report *r)
{
	struct chart_files cf;
	int ret;

	if (!r->nr_rounds)
		return -ENODATA;
	if (strchr(png, '"') || strchr(png, '\\'))
		return -EINVAL; /* it goes into the script between double quotes */
	ret = make_files(&cf);
	if (ret)
		return ret;
	ret = write_data(cf.data, r);
	if (!ret)
		ret = write_script(&cf, png, r);
	if (!ret)
		ret = run_gnuplot(&cf);
	if (ret == -EIO)
		show_log(cf.log);
	unlink(cf.data);
	unlink(cf.script);
	unlink(cf.log);
	rmdir(cf.dir);
	return ret;
}
