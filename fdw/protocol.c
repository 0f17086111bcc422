/*-------------------------------------------------------------------------
 *
 * protocol.c
 *		  The client side of the FDW <-> sidecar protocol (sidecar/PROTOCOL.md):
 *		  connecting, framing, sending a request, reading the answer's frames
 *		  and raising the sidecar's errors.
 *
 * One connection carries one request. It is reached through the Unix socket
 * <DataDir>/pg_mooncake/sidecar.sock, or over TCP when the server has the
 * options host and port. Closing the connection tells the sidecar to stop
 * working on the request, so the socket is never left open by an error: the
 * connection struct is allocated in a memory context that the caller owns,
 * and a reset callback on that context closes the socket. Whoever aborts
 * the transaction thus also hangs up on the sidecar.
 *
 * The socket is non-blocking and every wait goes through WaitLatchOrSocket,
 * so a query cancel, statement_timeout or postmaster death interrupts a
 * backend waiting for the sidecar; an interrupt that raises an error there
 * closes the socket at once, so the sidecar interrupts the DuckDB query
 * while the backend reports the error.
 *
 * Over TCP the connection may speak TLS (pg_mooncake.sidecar_sslmode):
 * OpenSSL runs on the same non-blocking socket, and its WANT_READ and
 * WANT_WRITE become the same latch waits.
 *
 * Requests are JSON built here in the server encoding and sent as UTF-8;
 * JSON answers and error texts arrive as UTF-8 and are converted back.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "pgstat.h"
#include "port/pg_bswap.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/jsonfuncs.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_mooncake.h"

#define CONNECT_TIMEOUT_MS	10000	/* TCP connect; Unix sockets never wait */
#define RECV_CHUNK			65536	/* least free space we read into */
#define FRAME_HEADER_LEN	5	/* type byte + uint32 length */
#define MAX_FRAME_LEN		((uint32) (MaxAllocSize - FRAME_HEADER_LEN - 1))

#ifdef MSG_NOSIGNAL
#define SEND_FLAGS MSG_NOSIGNAL
#else
#define SEND_FLAGS 0
#endif

/* Why the last I/O on a connection failed */
typedef enum MooncakeFailure
{
	MC_OK,
	MC_LOST,					/* the peer closed the connection */
	MC_IO,						/* a socket call failed, see failure_errno */
	MC_TIMEOUT,					/* the deadline passed */
	MC_PROTOCOL,				/* the peer broke the protocol */
	MC_TLS						/* TLS failed, see failure_detail */
} MooncakeFailure;

struct MooncakeConnection
{
	pgsocket	sock;			/* the socket, PGINVALID_SOCKET once closed */
	char	   *op;				/* request name, for error context */
	char	   *target;			/* Iceberg table of the request, or NULL */
	StringInfoData inbuf;		/* received bytes, unread from inbuf.cursor */
	TimestampTz deadline;		/* give up waiting then; 0 = never */
	MooncakeFailure failure;	/* why the last I/O call failed */
	int			failure_errno;	/* errno of an MC_IO failure */
	char	   *failure_detail; /* what failed, for MC_TLS */
	SSL		   *ssl;			/* TLS over sock, or NULL */
	MemoryContextCallback close_callback;	/* closes sock on context reset */
	char	   *secret;			/* over TCP: the secret to send first */
};

static int	errcontext_request(MooncakeConnection *conn);
static void check_interrupts_hanging_up(MooncakeConnection *conn);
static bool conn_wait(MooncakeConnection *conn, int event);

/*
 * Path of the sidecar's Unix socket.
 */
char *
mooncake_socket_path(void)
{
	return psprintf("%s/%s/%s", DataDir, MOONCAKE_DIR_NAME,
					MOONCAKE_SOCKET_NAME);
}

static void
close_on_reset(void *arg)
{
	MooncakeConnection *conn = (MooncakeConnection *) arg;

	if (conn->ssl != NULL)
	{
		SSL_free(conn->ssl);
		conn->ssl = NULL;
	}
	if (conn->sock != PGINVALID_SOCKET)
	{
		closesocket(conn->sock);
		conn->sock = PGINVALID_SOCKET;
	}
}

/*
 * A connection struct in CurrentMemoryContext, with the callback that closes
 * its socket registered before any socket exists.
 */
static MooncakeConnection *
connection_create(const char *op, const char *target)
{
	MooncakeConnection *conn = palloc0(sizeof(MooncakeConnection));

	conn->sock = PGINVALID_SOCKET;
	conn->op = pstrdup(op);
	conn->target = target ? pstrdup(target) : NULL;
	initStringInfo(&conn->inbuf);
	conn->close_callback.func = close_on_reset;
	conn->close_callback.arg = conn;
	MemoryContextRegisterResetCallback(CurrentMemoryContext,
									   &conn->close_callback);
	return conn;
}

static bool
prepare_socket(pgsocket sock)
{
	return fcntl(sock, F_SETFD, FD_CLOEXEC) == 0 && pg_set_noblock(sock);
}

static bool
open_unix(MooncakeConnection *conn, char **detail)
{
	struct sockaddr_un addr;
	char	   *path = mooncake_socket_path();
	int			save_errno;

	if (strlen(path) >= sizeof(addr.sun_path))
	{
		*detail = psprintf("The socket path \"%s\" is longer than the system allows.",
						   path);
		return false;
	}
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	strlcpy(addr.sun_path, path, sizeof(addr.sun_path));

	conn->sock = socket(AF_UNIX, SOCK_STREAM, 0);
	if (conn->sock == PGINVALID_SOCKET)
	{
		*detail = psprintf("Could not create a socket: %s.", strerror(errno));
		return false;
	}
	/* a Unix socket connects or fails at once, even non-blocking */
	if (!prepare_socket(conn->sock) ||
		connect(conn->sock, (struct sockaddr *) &addr, sizeof(addr)) != 0)
	{
		save_errno = errno;
		*detail = psprintf("Could not connect to socket \"%s\": %s.",
						   path, strerror(save_errno));
		closesocket(conn->sock);
		conn->sock = PGINVALID_SOCKET;
		return false;
	}
	return true;
}

/*
 * Wait until a non-blocking connect() on conn->sock finished; 0 or errno.
 */
static int
finish_tcp_connect(MooncakeConnection *conn)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   CONNECT_TIMEOUT_MS);

	for (;;)
	{
		long		timeout;
		int			rc;
		int			err = 0;
		socklen_t	errlen = sizeof(err);

		timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
												  deadline);
		if (timeout <= 0)
			return ETIMEDOUT;
		rc = WaitLatchOrSocket(MyLatch,
							   WL_LATCH_SET | WL_SOCKET_WRITEABLE |
							   WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							   conn->sock, timeout, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			check_interrupts_hanging_up(conn);
		}
		if (rc & WL_SOCKET_WRITEABLE)
		{
			if (getsockopt(conn->sock, SOL_SOCKET, SO_ERROR,
						   (char *) &err, &errlen) != 0)
				return errno;
			return err;
		}
	}
}

/*
 * The secret of the sidecar's TCP listener (see sidecar/auth.go), or NULL
 * when its file cannot be read: the sidecar then refuses the request with
 * 28000, which says what is missing.
 */
static char *
read_secret(void)
{
	const char *path = mooncake_sidecar_secret_file;
	char		buf[256];
	FILE	   *f;
	size_t		n;

	if (path == NULL || path[0] == '\0')
		path = psprintf("%s/pg_mooncake/sidecar.secret", DataDir);
	f = AllocateFile(path, "r");
	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	FreeFile(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	if (n == 0)
		return NULL;
	return pnstrdup(buf, n);
}


/* One TLS context per backend, rebuilt when the settings change */
static SSL_CTX *tls_context = NULL;
static int	tls_context_mode = -1;
static char *tls_context_rootcert = NULL;

/* The last OpenSSL error as text, in CurrentMemoryContext */
static char *
tls_error_text(void)
{
	unsigned long code = ERR_get_error();
	const char *reason;

	ERR_clear_error();
	if (code == 0)
		return pstrdup("no error reported by OpenSSL");
	reason = ERR_reason_error_string(code);
	if (reason == NULL)
		return psprintf("OpenSSL error code %lu", code);
	return pstrdup(reason);
}

/*
 * The TLS context of the current settings, or NULL with *detail set.
 */
static SSL_CTX *
tls_get_context(char **detail)
{
	const char *rootcert = mooncake_sidecar_sslrootcert ? mooncake_sidecar_sslrootcert : "";
	SSL_CTX    *ctx;

	if (tls_context != NULL && tls_context_mode == mooncake_sidecar_sslmode &&
		tls_context_rootcert != NULL && strcmp(tls_context_rootcert, rootcert) == 0)
		return tls_context;
	if (tls_context != NULL)
	{
		SSL_CTX_free(tls_context);
		tls_context = NULL;
	}

	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
	{
		*detail = psprintf("Could not create a TLS context: %s.", tls_error_text());
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (mooncake_sidecar_sslmode >= MOONCAKE_SSL_VERIFY_CA)
	{
		if (rootcert[0] == '\0')
		{
			SSL_CTX_free(ctx);
			*detail = psprintf("pg_mooncake.sidecar_sslmode is \"%s\" but pg_mooncake.sidecar_sslrootcert is not set.",
							   mooncake_sidecar_sslmode == MOONCAKE_SSL_VERIFY_CA ? "verify-ca" : "verify-full");
			return NULL;
		}
		if (access(rootcert, R_OK) != 0)
		{
			int			save_errno = errno;

			SSL_CTX_free(ctx);
			*detail = psprintf("Could not read the root certificates \"%s\": %s.",
							   rootcert, strerror(save_errno));
			return NULL;
		}
		if (SSL_CTX_load_verify_locations(ctx, rootcert, NULL) != 1)
		{
			char	   *why = tls_error_text();

			SSL_CTX_free(ctx);
			*detail = psprintf("Could not read the root certificates \"%s\": %s.",
							   rootcert, why);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);

	tls_context = ctx;
	tls_context_mode = mooncake_sidecar_sslmode;
	if (tls_context_rootcert != NULL)
		free(tls_context_rootcert);
	tls_context_rootcert = strdup(rootcert);
	if (tls_context_rootcert == NULL)
	{
		SSL_CTX_free(ctx);
		tls_context = NULL;
		*detail = pstrdup("Out of memory.");
		return NULL;
	}
	return ctx;
}

/*
 * Wait as an OpenSSL call that returned rc asks; false (with the failure
 * recorded) when it failed instead or the deadline passed.
 */
static bool
tls_wait(MooncakeConnection *conn, int rc, const char *what)
{
	int			err = SSL_get_error(conn->ssl, rc);

	switch (err)
	{
		case SSL_ERROR_WANT_READ:
			return conn_wait(conn, WL_SOCKET_READABLE);
		case SSL_ERROR_WANT_WRITE:
			return conn_wait(conn, WL_SOCKET_WRITEABLE);
		case SSL_ERROR_ZERO_RETURN:
			conn->failure = MC_LOST;
			conn->failure_errno = 0;
			return false;
		case SSL_ERROR_SYSCALL:
			if (errno == EINTR)
				return true;
			conn->failure = (errno == 0 || errno == EPIPE || errno == ECONNRESET) ? MC_LOST : MC_IO;
			conn->failure_errno = errno;
			ERR_clear_error();
			return false;
		default:
			conn->failure = MC_TLS;
			conn->failure_detail = psprintf("TLS %s failed: %s.", what, tls_error_text());
			return false;
	}
}

/*
 * Run the TLS handshake on conn's connected socket, verifying the sidecar's
 * certificate as the sslmode asks (verify-full: its name is host).
 */
static bool
tls_start(MooncakeConnection *conn, const char *host, char **detail)
{
	SSL_CTX    *ctx = tls_get_context(detail);
	int			rc;

	if (ctx == NULL)
		return false;
	conn->ssl = SSL_new(ctx);
	if (conn->ssl == NULL || SSL_set_fd(conn->ssl, conn->sock) != 1)
	{
		*detail = psprintf("Could not start TLS: %s.", tls_error_text());
		return false;
	}
	if (mooncake_sidecar_sslmode == MOONCAKE_SSL_VERIFY_FULL)
	{
		/* a name or an IP address, as libpq's verify-full accepts */
		if (SSL_set1_host(conn->ssl, host) != 1)
		{
			*detail = psprintf("Could not set the host name to verify: %s.", tls_error_text());
			return false;
		}
	}
	/* the server name for SNI, unless host is an address */
	if (strspn(host, "0123456789.:abcdefABCDEF") != strlen(host) || strchr(host, '.') == NULL)
		(void) SSL_set_tlsext_host_name(conn->ssl, host);

	conn->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												 CONNECT_TIMEOUT_MS);
	while ((rc = SSL_connect(conn->ssl)) != 1)
	{
		if (!tls_wait(conn, rc, "handshake"))
		{
			long		verify = SSL_get_verify_result(conn->ssl);

			if (verify != X509_V_OK)
				*detail = psprintf("The sidecar's certificate was not accepted: %s.",
								   X509_verify_cert_error_string(verify));
			else if (conn->failure == MC_TLS)
				*detail = conn->failure_detail;
			else if (conn->failure == MC_TIMEOUT)
				*detail = pstrdup("The TLS handshake timed out.");
			else
				*detail = psprintf("The TLS handshake failed: %s.",
								   conn->failure_errno ? strerror(conn->failure_errno)
								   : "the sidecar closed the connection (is its listener TLS?)");
			conn->deadline = 0;
			conn->failure = MC_OK;
			return false;
		}
	}
	conn->deadline = 0;
	return true;
}

static bool
open_tcp(MooncakeConnection *conn, const char *host, const char *port,
		 char **detail)
{
	struct addrinfo hints;
	struct addrinfo *addrs;
	struct addrinfo *ai;
	int			rc;
	int			err = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &addrs);
	if (rc != 0)
	{
		*detail = psprintf("Could not resolve \"%s\": %s.", host,
						   gai_strerror(rc));
		return false;
	}

	for (ai = addrs; ai != NULL; ai = ai->ai_next)
	{
		conn->sock = socket(ai->ai_family, SOCK_STREAM, 0);
		if (conn->sock == PGINVALID_SOCKET)
		{
			err = errno;
			continue;
		}
		if (!prepare_socket(conn->sock))
			err = errno;
		else if (connect(conn->sock, ai->ai_addr, ai->ai_addrlen) == 0)
			err = 0;
		else if (errno == EINPROGRESS || errno == EINTR)
			err = finish_tcp_connect(conn);
		else
			err = errno;
		if (err == 0)
			break;
		closesocket(conn->sock);
		conn->sock = PGINVALID_SOCKET;
	}
	freeaddrinfo(addrs);

	if (conn->sock == PGINVALID_SOCKET)
	{
		*detail = psprintf("Could not connect to %s port %s: %s.",
						   host, port, strerror(err));
		return false;
	}
	rc = 1;
	(void) setsockopt(conn->sock, IPPROTO_TCP, TCP_NODELAY,
					  (char *) &rc, sizeof(rc));
	if (mooncake_sidecar_sslmode != MOONCAKE_SSL_DISABLE &&
		!tls_start(conn, host, detail))
	{
		close_on_reset(conn);
		return false;
	}
	conn->secret = read_secret();
	return true;
}

static bool
connection_open(MooncakeConnection *conn, const char *host, const char *port,
				char **detail)
{
	if (host != NULL && port != NULL)
		return open_tcp(conn, host, port, detail);
	return open_unix(conn, detail);
}

/*
 * Connect to the sidecar for one request named op (about the Iceberg table
 * target, if not NULL). host and port are NULL for the local Unix socket.
 * The connection belongs to CurrentMemoryContext: resetting or deleting it
 * closes the socket.
 */
MooncakeConnection *
mooncake_connect(const char *host, const char *port,
				 const char *op, const char *target)
{
	MooncakeConnection *conn = connection_create(op, target);
	char	   *detail = NULL;

	if (!connection_open(conn, host, port, &detail))
	{
		if (host != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not connect to the mooncake sidecar"),
					 errdetail_internal("%s", detail),
					 errhint("Check that the sidecar at %s port %s is running and reachable, or remove the options host and port of server \"%s\".",
							 host, port, MOONCAKE_SERVER_NAME)));
		else
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not connect to the mooncake sidecar"),
					 errdetail_internal("%s", detail),
					 errhint("The sidecar is started by the pg_mooncake background worker: "
							 "check that pg_mooncake is in shared_preload_libraries and the server log. "
							 "It is restarted automatically within seconds if it died.")));
	}
	return conn;
}

/*
 * Like mooncake_connect, but return NULL instead of raising an error.
 */
MooncakeConnection *
mooncake_try_connect(const char *host, const char *port,
					 const char *op, const char *target)
{
	MooncakeConnection *conn = connection_create(op, target);
	char	   *detail = NULL;

	if (!connection_open(conn, host, port, &detail))
		return NULL;
	return conn;
}

/*
 * Hang up. The struct stays valid (its context owns it) but unusable.
 */
void
mooncake_disconnect(MooncakeConnection *conn)
{
	close_on_reset(conn);
}

/*
 * Serve interrupts. When one raises an error (a query cancel,
 * statement_timeout, a terminate), hang up before the error propagates:
 * the sidecar stops the request's DuckDB query as soon as it sees the
 * connection close, without waiting for the error to reach the client and
 * the transaction's abort to reset the connection's memory context.
 */
static void
check_interrupts_hanging_up(MooncakeConnection *conn)
{
	if (!INTERRUPTS_PENDING_CONDITION())
		return;
	PG_TRY();
	{
		CHECK_FOR_INTERRUPTS();
	}
	PG_CATCH();
	{
		close_on_reset(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * Sleep until the socket is ready for event, or the latch is set (then
 * serve interrupts). False when the connection's deadline has passed.
 */
static bool
conn_wait(MooncakeConnection *conn, int event)
{
	int			events = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | event;
	long		timeout = -1;
	int			rc;

	if (conn->deadline != 0)
	{
		timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
												  conn->deadline);
		if (timeout <= 0)
		{
			conn->failure = MC_TIMEOUT;
			return false;
		}
		events |= WL_TIMEOUT;
	}

	rc = WaitLatchOrSocket(MyLatch, events, conn->sock, timeout,
						   PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
	{
		ResetLatch(MyLatch);
		check_interrupts_hanging_up(conn);
	}
	return true;
}

static bool
conn_send(MooncakeConnection *conn, const char *data, size_t len)
{
	while (len > 0)
	{
		ssize_t		n;

		if (conn->ssl != NULL)
		{
			int			rc;

			ERR_clear_error();
			rc = SSL_write(conn->ssl, data, (int) Min(len, (size_t) INT_MAX));
			if (rc > 0)
			{
				data += rc;
				len -= rc;
			}
			else if (!tls_wait(conn, rc, "write"))
				return false;
			continue;
		}
		n = send(conn->sock, data, len, SEND_FLAGS);

		if (n >= 0)
		{
			data += n;
			len -= n;
		}
		else if (errno == EINTR)
			continue;
		else if (errno == EAGAIN || errno == EWOULDBLOCK)
		{
			if (!conn_wait(conn, WL_SOCKET_WRITEABLE))
				return false;
		}
		else
		{
			conn->failure = (errno == EPIPE) ? MC_LOST : MC_IO;
			conn->failure_errno = errno;
			return false;
		}
	}
	return true;
}

/*
 * Make at least need unread bytes available in conn->inbuf. Moves the
 * unread bytes to the start of the buffer, so pointers into it from an
 * earlier call become invalid.
 */
static bool
conn_fill(MooncakeConnection *conn, size_t need)
{
	StringInfo	buf = &conn->inbuf;

	while ((size_t) (buf->len - buf->cursor) < need)
	{
		ssize_t		n;

		if (buf->cursor > 0)
		{
			int			avail = buf->len - buf->cursor;

			memmove(buf->data, buf->data + buf->cursor, avail);
			buf->len = avail;
			buf->cursor = 0;
			buf->data[avail] = '\0';
		}
		enlargeStringInfo(buf, Max((int) (need - buf->len), RECV_CHUNK));

		if (conn->ssl != NULL)
		{
			int			rc;

			ERR_clear_error();
			rc = SSL_read(conn->ssl, buf->data + buf->len,
						  buf->maxlen - buf->len - 1);
			if (rc > 0)
			{
				buf->len += rc;
				buf->data[buf->len] = '\0';
			}
			else if (!tls_wait(conn, rc, "read"))
				return false;
			continue;
		}
		n = recv(conn->sock, buf->data + buf->len,
				 buf->maxlen - buf->len - 1, 0);
		if (n > 0)
		{
			buf->len += n;
			buf->data[buf->len] = '\0';
		}
		else if (n == 0)
		{
			conn->failure = MC_LOST;
			conn->failure_errno = 0;
			return false;
		}
		else if (errno == EINTR)
			continue;
		else if (errno == EAGAIN || errno == EWOULDBLOCK)
		{
			if (!conn_wait(conn, WL_SOCKET_READABLE))
				return false;
		}
		else
		{
			conn->failure = (errno == ECONNRESET) ? MC_LOST : MC_IO;
			conn->failure_errno = errno;
			return false;
		}
	}
	return true;
}

static bool
read_frame_internal(MooncakeConnection *conn, char *type,
					const char **payload, uint32 *len)
{
	const char *p;
	uint32		n;

	if (conn->sock == PGINVALID_SOCKET)
		elog(ERROR, "mooncake sidecar connection is closed");

	if (!conn_fill(conn, FRAME_HEADER_LEN))
		return false;
	p = conn->inbuf.data + conn->inbuf.cursor;
	memcpy(&n, p + 1, sizeof(n));
	n = pg_ntoh32(n);
	if (n > MAX_FRAME_LEN)
	{
		conn->failure = MC_PROTOCOL;
		return false;
	}
	if (!conn_fill(conn, FRAME_HEADER_LEN + (size_t) n))
		return false;

	p = conn->inbuf.data + conn->inbuf.cursor;
	*type = p[0];
	*payload = p + FRAME_HEADER_LEN;
	*len = n;
	conn->inbuf.cursor += FRAME_HEADER_LEN + n;
	return true;
}

static int
errcontext_request(MooncakeConnection *conn)
{
	if (conn->target != NULL)
		return errcontext("mooncake sidecar request \"%s\" on table %s",
						  conn->op, conn->target);
	return errcontext("mooncake sidecar request \"%s\"", conn->op);
}

static void
report_failure(MooncakeConnection *conn)
{
	switch (conn->failure)
	{
		case MC_LOST:
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("lost connection to the mooncake sidecar"),
					 conn->failure_errno != 0
					 ? errdetail_internal("%s", strerror(conn->failure_errno))
					 : errdetail("The sidecar closed the connection before the end of its answer."),
					 errcontext_request(conn)));
			break;
		case MC_IO:
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("lost connection to the mooncake sidecar"),
					 errdetail_internal("%s", strerror(conn->failure_errno)),
					 errcontext_request(conn)));
			break;
		case MC_TIMEOUT:
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("the mooncake sidecar did not answer in time"),
					 errcontext_request(conn)));
			break;
		case MC_PROTOCOL:
			mooncake_protocol_violation(conn, "A message is longer than the largest allowed.");
			break;
		case MC_TLS:
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("lost connection to the mooncake sidecar"),
					 errdetail_internal("%s", conn->failure_detail),
					 errcontext_request(conn)));
			break;
		case MC_OK:
			break;
	}
	elog(ERROR, "unexpected mooncake sidecar connection state %d",
		 (int) conn->failure);
}

/*
 * Raise an invalid-message error for a response that breaks the protocol.
 */
void
mooncake_protocol_violation(MooncakeConnection *conn, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROTOCOL_VIOLATION),
			 errmsg("invalid message from the mooncake sidecar"),
			 errdetail_internal("%s", detail),
			 conn ? errcontext_request(conn) : 0));
	pg_unreachable();
}

/*
 * Text from the sidecar (UTF-8, len bytes) in the server encoding, palloc'd.
 */
static char *
text_from_sidecar(const char *s, int len)
{
	char	   *copy = pnstrdup(s, len);

	return pg_any_to_server(copy, len, PG_UTF8);
}

/*
 * Report an E frame as an ERROR with the sidecar's SQLSTATE, message,
 * detail and hint; or an N frame (elevel NOTICE) as a NOTICE with its
 * message, detail and hint.
 */
static void
report_sidecar_message(MooncakeConnection *conn, const char *payload,
					   uint32 len, int elevel)
{
	const char *code = NULL;
	char	   *message = NULL;
	char	   *detail = NULL;
	char	   *hint = NULL;
	uint32		pos = 0;
	int			sqlstate = ERRCODE_FDW_ERROR;

	while (pos < len && payload[pos] != '\0')
	{
		char		field = payload[pos++];
		const char *value = payload + pos;
		const char *end = memchr(value, '\0', len - pos);

		if (end == NULL)
			mooncake_protocol_violation(conn, "An error message field is not terminated.");
		pos = (end - payload) + 1;

		switch (field)
		{
			case 'C':
				code = value;
				break;
			case 'M':
				message = text_from_sidecar(value, end - value);
				break;
			case 'D':
				detail = text_from_sidecar(value, end - value);
				break;
			case 'H':
				hint = text_from_sidecar(value, end - value);
				break;
			default:
				/* fields we do not know are skipped, as libpq does */
				break;
		}
	}

	if (elevel < ERROR)
	{
		/* a notice of the sidecar's, e.g. the progress of a copy */
		if (message != NULL)
			ereport(elevel,
					(errmsg_internal("%s", message),
					 detail ? errdetail_internal("%s", detail) : 0,
					 hint ? errhint("%s", hint) : 0));
		return;
	}

	/* only an error class is acceptable: not success, warning or no data */
	if (code != NULL && strlen(code) == 5 &&
		strspn(code, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 5 &&
		strncmp(code, "00", 2) != 0 && strncmp(code, "01", 2) != 0 &&
		strncmp(code, "02", 2) != 0)
		sqlstate = MAKE_SQLSTATE(code[0], code[1], code[2], code[3], code[4]);

	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg_internal("%s", message ? message :
							 "the mooncake sidecar reported an error without a message"),
			 detail ? errdetail_internal("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0,
			 errcontext_request(conn)));
}

/*
 * Send the request, a JSON object in the server encoding, as a Q frame.
 */
void
mooncake_send_request(MooncakeConnection *conn, const char *json)
{
	char	   *utf8 = pg_server_to_any(json, strlen(json), PG_UTF8);
	size_t		len = strlen(utf8);
	uint32		netlen;
	StringInfoData frame;

	if (len > MAX_FRAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("mooncake sidecar request is too long")));

	initStringInfo(&frame);
	if (conn->secret != NULL)
	{
		/* Over TCP, an A frame with the listener's secret comes first. */
		netlen = pg_hton32((uint32) strlen(conn->secret));
		appendStringInfoChar(&frame, 'A');
		appendBinaryStringInfo(&frame, (char *) &netlen, sizeof(netlen));
		appendStringInfoString(&frame, conn->secret);
	}
	appendStringInfoChar(&frame, 'Q');
	netlen = pg_hton32((uint32) len);
	appendBinaryStringInfo(&frame, (char *) &netlen, sizeof(netlen));
	appendBinaryStringInfo(&frame, utf8, len);

	if (!conn_send(conn, frame.data, frame.len))
		report_failure(conn);
	pfree(frame.data);
}

/*
 * Read the next frame; its payload stays valid until the next read on conn.
 * An E frame is raised as an ERROR; N frames (notices) are shown as
 * NOTICEs and skipped; any other type is returned.
 */
char
mooncake_read_frame(MooncakeConnection *conn, const char **payload,
					uint32 *len)
{
	char		type;

	for (;;)
	{
		if (!read_frame_internal(conn, &type, payload, len))
			report_failure(conn);
		if (type != 'N')
			break;
		/* a notice while the request runs: show it and read on */
		report_sidecar_message(conn, *payload, *len, NOTICE);
	}
	if (type == 'E')
		report_sidecar_message(conn, *payload, *len, ERROR);
	return type;
}

/*
 * The J frame of a JSON answer, in the server encoding; NULL when the
 * payload is not valid JSON text.
 */
static char *
json_answer(const char *payload, uint32 len, bool raise)
{
	char	   *copy;
	char	   *answer;

	if (!raise && !pg_verify_mbstr(PG_UTF8, payload, len, true))
		return NULL;
	copy = pnstrdup(payload, len);
	answer = pg_any_to_server(copy, len, PG_UTF8);
	if (!mooncake_json_is_valid(answer))
		return NULL;
	return answer;
}

/*
 * Send a frame of the given type after the request (a columnstore_load's
 * chunks and end).
 */
void
mooncake_send_frame(MooncakeConnection *conn, char type, const char *payload,
					size_t len)
{
	char		hdr[FRAME_HEADER_LEN];
	uint32		netlen;

	if (conn->sock == PGINVALID_SOCKET)
		elog(ERROR, "mooncake sidecar connection is closed");
	if (len > MAX_FRAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("mooncake sidecar message is too long")));
	hdr[0] = type;
	netlen = pg_hton32((uint32) len);
	memcpy(hdr + 1, &netlen, sizeof(netlen));
	if (!conn_send(conn, hdr, sizeof(hdr)) || !conn_send(conn, payload, len))
		report_failure(conn);
}

/*
 * While a request is still being sent: if the sidecar has answered already
 * (it does so only with an error), raise its answer. Does not wait.
 */
void
mooncake_check_early_answer(MooncakeConnection *conn)
{
	const char *payload;
	uint32		len;
	char		type;

	if (conn->sock == PGINVALID_SOCKET)
		elog(ERROR, "mooncake sidecar connection is closed");
	if (conn->inbuf.len == conn->inbuf.cursor &&
		(conn->ssl == NULL || SSL_pending(conn->ssl) <= 0))
	{
		struct pollfd pfd;

		pfd.fd = conn->sock;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, 0) <= 0)
			return;
	}
	type = mooncake_read_frame(conn, &payload, &len);
	mooncake_protocol_violation(conn,
								psprintf("Got a message of type %d before the end of the request.",
										 (int) (unsigned char) type));
}

/*
 * Read the J answer of a request and return its JSON text in the server
 * encoding, palloc'd in CurrentMemoryContext. Errors of the sidecar are
 * raised.
 */
char *
mooncake_read_answer(MooncakeConnection *conn)
{
	const char *payload;
	uint32		len;
	char		type;
	char	   *answer;

	type = mooncake_read_frame(conn, &payload, &len);
	if (type != 'J')
		mooncake_protocol_violation(conn,
									psprintf("Expected a JSON answer, got a message of type %d.",
											 (int) (unsigned char) type));
	answer = json_answer(payload, len, true);
	if (answer == NULL)
		mooncake_protocol_violation(conn, "The answer is not valid JSON.");
	return answer;
}

/*
 * Send one non-scan request and return the JSON text of its J answer,
 * palloc'd in the caller's context. Errors of the sidecar are raised; so
 * is a failure to connect, unless missing_ok (then NULL).
 */
static char *
request_internal(const char *host, const char *port, const char *op,
				 const char *target, const char *json, bool missing_ok)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	MemoryContext reqcxt;
	MooncakeConnection *conn;
	const char *payload;
	uint32		len;
	char		type;
	char	   *answer;

	/*
	 * The connection lives in a context of the current (sub)transaction, so
	 * an error anywhere below closes it when the transaction aborts.
	 */
	reqcxt = AllocSetContextCreate(CurTransactionContext,
								   "mooncake sidecar request",
								   ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(reqcxt);

	if (missing_ok)
	{
		conn = mooncake_try_connect(host, port, op, target);
		if (conn == NULL)
		{
			MemoryContextSwitchTo(oldcxt);
			MemoryContextDelete(reqcxt);
			return NULL;
		}
	}
	else
		conn = mooncake_connect(host, port, op, target);
	mooncake_send_request(conn, json);
	type = mooncake_read_frame(conn, &payload, &len);
	if (type != 'J')
		mooncake_protocol_violation(conn,
									psprintf("Expected a JSON answer, got a message of type %d.",
											 (int) (unsigned char) type));

	MemoryContextSwitchTo(oldcxt);
	answer = json_answer(payload, len, true);
	if (answer == NULL)
		mooncake_protocol_violation(conn, "The answer is not valid JSON.");

	MemoryContextDelete(reqcxt);
	return answer;
}

char *
mooncake_request(const char *host, const char *port,
				 const char *op, const char *target, const char *json)
{
	return request_internal(host, port, op, target, json, false);
}

/*
 * mooncake_request to this server's own sidecar (its Unix socket), or NULL
 * when none answers the connection.
 */
char *
mooncake_local_request(const char *op, const char *json)
{
	return request_internal(NULL, NULL, op, NULL, json, true);
}

/*
 * Send a request on conn and return its J answer, or NULL on any failure:
 * connection lost, no answer within timeout_ms, an E frame, a malformed
 * answer. Only interrupts and out-of-memory raise errors.
 */
char *
mooncake_try_request(MooncakeConnection *conn, const char *json,
					 int timeout_ms)
{
	char	   *utf8 = pg_server_to_any(json, strlen(json), PG_UTF8);
	size_t		len = strlen(utf8);
	uint32		netlen = pg_hton32((uint32) len);
	StringInfoData frame;
	const char *payload;
	uint32		plen;
	char		type;

	conn->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												 timeout_ms);

	initStringInfo(&frame);
	if (conn->secret != NULL)
	{
		/* Over TCP, an A frame with the listener's secret comes first. */
		netlen = pg_hton32((uint32) strlen(conn->secret));
		appendStringInfoChar(&frame, 'A');
		appendBinaryStringInfo(&frame, (char *) &netlen, sizeof(netlen));
		appendStringInfoString(&frame, conn->secret);
	}
	appendStringInfoChar(&frame, 'Q');
	appendBinaryStringInfo(&frame, (char *) &netlen, sizeof(netlen));
	appendBinaryStringInfo(&frame, utf8, len);

	if (!conn_send(conn, frame.data, frame.len) ||
		!read_frame_internal(conn, &type, &payload, &plen) ||
		type != 'J')
		return NULL;
	return json_answer(payload, plen, false);
}

/*
 * Is json a syntactically valid JSON text?
 */
bool
mooncake_json_is_valid(const char *json)
{
	text	   *t = cstring_to_text(json);
	JsonParseErrorType err;

#if PG_VERSION_NUM >= 170000
	JsonLexContext lex;

	makeJsonLexContext(&lex, t, false);
	err = pg_parse_json(&lex, &nullSemAction);
	freeJsonLexContext(&lex);
#else
	JsonLexContext *lex = makeJsonLexContext(t, false);

	err = pg_parse_json(lex, &nullSemAction);
#endif
	pfree(t);
	return err == JSON_SUCCESS;
}

/*
 * The text of field of the JSON object json (like json ->> field), or NULL
 * when it is missing or JSON null. json must be valid JSON.
 */
char *
mooncake_json_field(const char *json, const char *field)
{
	LOCAL_FCINFO(fcinfo, 2);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, 2, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = CStringGetTextDatum(json);
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = CStringGetTextDatum(field);
	fcinfo->args[1].isnull = false;

	result = json_object_field_text(fcinfo);
	if (fcinfo->isnull)
		return NULL;
	return TextDatumGetCString(result);
}

/*
 * Start a request object: {"op":<op>. The caller adds fields and the '}'.
 */
void
mooncake_json_begin(StringInfo buf, const char *op)
{
	appendStringInfoString(buf, "{\"op\":");
	escape_json(buf, op);
}

/*
 * Add ,"key":"value" to a request object.
 */
void
mooncake_json_add_string(StringInfo buf, const char *key, const char *value)
{
	appendStringInfoChar(buf, ',');
	escape_json(buf, key);
	appendStringInfoChar(buf, ':');
	escape_json(buf, value);
}
