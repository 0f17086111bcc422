/*-------------------------------------------------------------------------
 *
 * bgworker.c
 *		  The sidecar supervisor: a background worker that runs the
 *		  mooncake-sidecar process and restarts it when it dies.
 *
 * The supervisor has no database connection. It creates the private
 * directory <DataDir>/pg_mooncake (mode 0700: the socket in it is reachable
 * only by the cluster's OS user), starts the sidecar with fork() + execv(),
 * polls for its exit every 100 ms and restarts it with a backoff that starts
 * at 200 ms and doubles up to 10 s, going back to 200 ms once a sidecar has
 * run for 30 s. On SIGTERM (any postmaster shutdown) it asks the sidecar to
 * stop, gives it 5 s, then kills it. If the supervisor itself dies, the
 * sidecar is sent SIGTERM (on Linux by the kernel, through
 * PR_SET_PDEATHSIG; elsewhere by our exit callback when there is one).
 *
 * The sidecar's stdout and stderr are the supervisor's, so whatever it
 * prints lands in the server log.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "pg_mooncake.h"

#define SUPERVISOR_POLL_MS		100 /* how often we look for a dead sidecar */
#define RESTART_DELAY_MIN_MS	200 /* first restart delay */
#define RESTART_DELAY_MAX_MS	10000	/* longest restart delay */
#define HEALTHY_RUN_MS			30000	/* a run this long resets the delay */
#define STOP_GRACE_MS			5000	/* SIGTERM to SIGKILL */
#define SIDECAR_MAX_ARGS		40

static pid_t sidecar_pid = 0;	/* running sidecar, or 0 */
static TimestampTz sidecar_started_at;	/* when sidecar_pid was started */
static TimestampTz next_start_at;	/* earliest time of the next start */
static int	restart_delay_ms = RESTART_DELAY_MIN_MS;	/* current backoff */
static char *sidecar_argv[SIDECAR_MAX_ARGS + 1];	/* NULL-terminated */
static char *sidecar_socket;	/* the socket path given to the sidecar */

/*
 * Register the supervisor; called from _PG_init() while the postmaster loads
 * shared_preload_libraries.
 */
void
mooncake_register_supervisor(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	strlcpy(worker.bgw_library_name, "pg_mooncake",
			sizeof(worker.bgw_library_name));
	strlcpy(worker.bgw_function_name, "mooncake_supervisor_main",
			sizeof(worker.bgw_function_name));
	strlcpy(worker.bgw_name, "pg_mooncake sidecar supervisor",
			sizeof(worker.bgw_name));
	strlcpy(worker.bgw_type, "pg_mooncake supervisor",
			sizeof(worker.bgw_type));
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;

	RegisterBackgroundWorker(&worker);
}

/*
 * The sidecar executable: the GUC, or mooncake-sidecar beside postgres.
 */
static char *
sidecar_executable(void)
{
	char		dir[MAXPGPATH];

	if (mooncake_sidecar_path != NULL && mooncake_sidecar_path[0] != '\0')
		return pstrdup(mooncake_sidecar_path);

	strlcpy(dir, my_exec_path, sizeof(dir));
	get_parent_directory(dir);
	return psprintf("%s/mooncake-sidecar", dir);
}

/*
 * Host the sidecar should connect to: the first Unix socket directory of
 * this server, or the loopback address when there is none.
 */
static char *
sidecar_pg_host(void)
{
	char	   *rawstring;
	List	   *dirs = NIL;

	if (Unix_socket_directories == NULL || Unix_socket_directories[0] == '\0')
		return "127.0.0.1";

	rawstring = pstrdup(Unix_socket_directories);
	if (!SplitDirectoriesString(rawstring, ',', &dirs) || dirs == NIL)
		return "127.0.0.1";
	return pstrdup((char *) linitial(dirs));
}

/*
 * Build the sidecar's argument vector once; it lives for the whole life of
 * the supervisor.
 */
/* path, made absolute against the data directory if it is relative */
static char *
data_dir_path(const char *path)
{
	if (is_absolute_path(path))
		return pstrdup(path);
	return psprintf("%s/%s", DataDir, path);
}

static void
build_sidecar_argv(void)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	struct passwd *pw;
	int			n = 0;

	errno = 0;
	pw = getpwuid(geteuid());
	if (pw == NULL)
	{
		int			save_errno = errno;

		ereport(ERROR,
				(errmsg("could not look up the operating system user of the server: %s",
						save_errno ? strerror(save_errno) : "no such user")));
	}

	sidecar_argv[n++] = sidecar_executable();
	sidecar_argv[n++] = "--socket";
	sidecar_socket = mooncake_socket_path();
	sidecar_argv[n++] = sidecar_socket;
	sidecar_argv[n++] = "--data-dir";
	sidecar_argv[n++] = pstrdup(DataDir);
	sidecar_argv[n++] = "--pg-host";
	sidecar_argv[n++] = sidecar_pg_host();
	sidecar_argv[n++] = "--pg-port";
	sidecar_argv[n++] = psprintf("%d", PostPortNumber);
	sidecar_argv[n++] = "--pg-user";
	sidecar_argv[n++] = pstrdup(pw->pw_name);
	sidecar_argv[n++] = "--flush-interval";
	sidecar_argv[n++] = psprintf("%dms", mooncake_flush_interval);
	if (mooncake_warehouse != NULL && mooncake_warehouse[0] != '\0')
	{
		sidecar_argv[n++] = "--warehouse";
		sidecar_argv[n++] = pstrdup(mooncake_warehouse);
	}
	sidecar_argv[n++] = "--lake-cache-size";
	sidecar_argv[n++] = psprintf("%dMB", mooncake_lake_cache_size);
	if (!mooncake_enable_bgworker)
		sidecar_argv[n++] = "--no-cdc";
	if (mooncake_sidecar_listen != NULL && mooncake_sidecar_listen[0] != '\0')
	{
		sidecar_argv[n++] = "--tcp";
		sidecar_argv[n++] = pstrdup(mooncake_sidecar_listen);
		if (mooncake_sidecar_secret_file != NULL && mooncake_sidecar_secret_file[0] != '\0')
		{
			sidecar_argv[n++] = "--tcp-secret-file";
			sidecar_argv[n++] = pstrdup(mooncake_sidecar_secret_file);
		}
		if (mooncake_sidecar_ssl_cert_file != NULL && mooncake_sidecar_ssl_cert_file[0] != '\0')
		{
			sidecar_argv[n++] = "--tls-cert";
			sidecar_argv[n++] = data_dir_path(mooncake_sidecar_ssl_cert_file);
		}
		if (mooncake_sidecar_ssl_key_file != NULL && mooncake_sidecar_ssl_key_file[0] != '\0')
		{
			sidecar_argv[n++] = "--tls-key";
			sidecar_argv[n++] = data_dir_path(mooncake_sidecar_ssl_key_file);
		}
	}
	if (mooncake_flight_listen != NULL && mooncake_flight_listen[0] != '\0')
	{
		sidecar_argv[n++] = "--flight";
		sidecar_argv[n++] = pstrdup(mooncake_flight_listen);
		sidecar_argv[n++] = "--flight-token-ttl";
		sidecar_argv[n++] = psprintf("%ds", mooncake_flight_token_ttl);
		if (mooncake_flight_tls_cert != NULL && mooncake_flight_tls_cert[0] != '\0')
		{
			sidecar_argv[n++] = "--flight-tls-cert";
			sidecar_argv[n++] = data_dir_path(mooncake_flight_tls_cert);
		}
		if (mooncake_flight_tls_key != NULL && mooncake_flight_tls_key[0] != '\0')
		{
			sidecar_argv[n++] = "--flight-tls-key";
			sidecar_argv[n++] = data_dir_path(mooncake_flight_tls_key);
		}
	}
	if (mooncake_metrics_listen != NULL && mooncake_metrics_listen[0] != '\0')
	{
		sidecar_argv[n++] = "--metrics";
		sidecar_argv[n++] = pstrdup(mooncake_metrics_listen);
	}
	/* Both TCP listeners, the FDW's and Flight's, may then leave loopback. */
	if (mooncake_sidecar_listen_insecure)
		sidecar_argv[n++] = "--tcp-insecure";
	Assert(n <= SIDECAR_MAX_ARGS);
	sidecar_argv[n] = NULL;

	MemoryContextSwitchTo(oldcxt);
}

/*
 * Create <DataDir>/pg_mooncake with mode 0700, or force that mode on it.
 */
static void
prepare_directory(void)
{
	char	   *dir = psprintf("%s/%s", DataDir, MOONCAKE_DIR_NAME);

	if (mkdir(dir, S_IRWXU) == 0)
		return;
	if (errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", dir)));
	if (chmod(dir, S_IRWXU) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not set permissions of directory \"%s\": %m",
						dir)));
}

/*
 * In the child after fork(): become the sidecar. Never returns into
 * PostgreSQL code: anything that fails ends in _exit().
 */
static void
exec_sidecar(pid_t parent)
{
	sigset_t	none;
	int			sig;
	long		maxfd;
	long		fd;

#ifdef __linux__
	/* die with the supervisor, even if it is killed with SIGKILL */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
		_exit(1);
#endif

	/* the sidecar must not inherit PostgreSQL's handlers or blocked set */
	for (sig = 1; sig < NSIG; sig++)
	{
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	/* nor the latch, epoll and postmaster-death descriptors */
	maxfd = sysconf(_SC_OPEN_MAX);
	if (maxfd < 0 || maxfd > 65536)
		maxfd = 65536;
	for (fd = 3; fd < maxfd; fd++)
		close((int) fd);

	execv(sidecar_argv[0], sidecar_argv);

	fprintf(stderr, "pg_mooncake: could not execute mooncake sidecar \"%s\": %s\n",
			sidecar_argv[0], strerror(errno));
	_exit(127);
}

static void
schedule_restart(TimestampTz now)
{
	next_start_at = TimestampTzPlusMilliseconds(now, restart_delay_ms);
	restart_delay_ms = Min(restart_delay_ms * 2, RESTART_DELAY_MAX_MS);
}

static void
start_sidecar(void)
{
	TimestampTz now = GetCurrentTimestamp();
	pid_t		parent = getpid();
	pid_t		pid;

	if (access(sidecar_argv[0], X_OK) != 0)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("could not start mooncake sidecar: executable \"%s\" is not usable: %m",
						sidecar_argv[0]),
				 errhint("Install mooncake-sidecar next to the postgres executable, or set pg_mooncake.sidecar_path. "
						 "The next attempt is in %d ms.", restart_delay_ms)));
		schedule_restart(now);
		return;
	}

	/* do not let the child flush our buffered output a second time */
	fflush(NULL);

	pid = fork();
	if (pid < 0)
	{
		ereport(LOG,
				(errmsg("could not fork mooncake sidecar: %m")));
		schedule_restart(now);
		return;
	}
	if (pid == 0)
		exec_sidecar(parent);

	sidecar_pid = pid;
	sidecar_started_at = now;
	ereport(LOG,
			(errmsg("started mooncake sidecar (PID %d)", (int) pid)));
}

static void
report_sidecar_exit(pid_t pid, int status)
{
	if (WIFEXITED(status))
		ereport(LOG,
				(errmsg("mooncake sidecar (PID %d) exited with exit code %d",
						(int) pid, WEXITSTATUS(status))));
	else if (WIFSIGNALED(status))
		ereport(LOG,
				(errmsg("mooncake sidecar (PID %d) was terminated by signal %d: %s",
						(int) pid, WTERMSIG(status),
						pg_strsignal(WTERMSIG(status)))));
	else
		ereport(LOG,
				(errmsg("mooncake sidecar (PID %d) exited with unrecognized status %d",
						(int) pid, status)));
}

/*
 * Notice a dead sidecar and plan its restart.
 */
static void
reap_sidecar(void)
{
	TimestampTz now;
	int			status = 0;
	pid_t		rc;

	if (sidecar_pid == 0)
		return;

	rc = waitpid(sidecar_pid, &status, WNOHANG);
	if (rc == 0 || (rc < 0 && errno == EINTR))
		return;

	now = GetCurrentTimestamp();
	if (rc < 0)
		ereport(LOG,
				(errmsg("could not wait for mooncake sidecar (PID %d): %m",
						(int) sidecar_pid)));
	else
		report_sidecar_exit(sidecar_pid, status);

	if (TimestampDifferenceMilliseconds(sidecar_started_at, now) >= HEALTHY_RUN_MS)
		restart_delay_ms = RESTART_DELAY_MIN_MS;
	sidecar_pid = 0;

	/* a killed sidecar leaves its socket behind; the next one needs the name */
	(void) unlink(sidecar_socket);

	schedule_restart(now);
}

/*
 * Stop the sidecar: SIGTERM, up to STOP_GRACE_MS for it to exit, SIGKILL.
 */
static void
stop_sidecar(void)
{
	int			status = 0;
	int			waited;
	pid_t		rc;

	if (sidecar_pid == 0)
		return;

	(void) kill(sidecar_pid, SIGTERM);
	for (waited = 0; waited < STOP_GRACE_MS; waited += SUPERVISOR_POLL_MS)
	{
		rc = waitpid(sidecar_pid, &status, WNOHANG);
		if (rc == sidecar_pid)
		{
			report_sidecar_exit(sidecar_pid, status);
			sidecar_pid = 0;
			return;
		}
		if (rc < 0 && errno != EINTR)
		{
			sidecar_pid = 0;
			return;
		}
		pg_usleep(SUPERVISOR_POLL_MS * 1000L);
	}

	ereport(LOG,
			(errmsg("mooncake sidecar (PID %d) did not stop within %d ms, killing it",
					(int) sidecar_pid, STOP_GRACE_MS)));
	(void) kill(sidecar_pid, SIGKILL);
	while ((rc = waitpid(sidecar_pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (rc == sidecar_pid)
		report_sidecar_exit(sidecar_pid, status);
	sidecar_pid = 0;
}

/*
 * Whatever way the supervisor exits (error, postmaster death), do not leave
 * a sidecar behind.
 */
static void
supervisor_on_exit(int code, Datum arg)
{
	if (sidecar_pid != 0)
		(void) kill(sidecar_pid, SIGTERM);
}

void
mooncake_supervisor_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	/* we reap the sidecar with waitpid(), which SIG_IGN would defeat */
	pqsignal(SIGCHLD, SIG_DFL);
	BackgroundWorkerUnblockSignals();

	on_proc_exit(supervisor_on_exit, (Datum) 0);

	prepare_directory();
	build_sidecar_argv();

	next_start_at = GetCurrentTimestamp();

	while (!ShutdownRequestPending)
	{
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		reap_sidecar();
		if (sidecar_pid == 0 && GetCurrentTimestamp() >= next_start_at)
			start_sidecar();

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 SUPERVISOR_POLL_MS,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}

	stop_sidecar();
	proc_exit(0);
}
